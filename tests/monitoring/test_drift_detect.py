"""detect_drift and multivariate_drift: inputs, verdicts on known shifts, edge cases."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

import mlops.monitoring.drift as drift
from mlops.errors import InvalidInput
from mlops.models import build_reference_profile
from mlops.monitoring.drift import detect_drift, multivariate_drift


def _table(rows: int, seed: int, *, shift: float = 0.0, scale: float = 1.0) -> dict[str, Any]:
    generator = np.random.default_rng(seed)
    labels = np.array(["red", "green", "blue", "black", "white"], dtype=object)
    return {
        "age": generator.normal(40 + shift * 10, 10 * scale, rows),
        "income": generator.lognormal(10, 0.5, rows),
        "score": generator.uniform(0, 1, rows),
        "color": labels[generator.choice(5, rows, p=[0.4, 0.25, 0.15, 0.1, 0.1])],
    }


def test_public_names_are_exported_sorted_and_complete() -> None:
    exported = drift.__all__
    assert exported == sorted(exported, key=lambda name: (not name.isupper(), name))
    public = {name for name in vars(drift) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(drift, name)).__name__ == "module"}
    assert set(exported) == public - modules
    assert {"detect_drift", "multivariate_drift", "DriftReport", "DRIFT_METHODS"} <= set(exported)


def test_mean_and_variance_shifts_drift_and_the_rest_does_not() -> None:
    reference = _table(5000, 1)
    current = _table(5000, 2)
    current["age"] = current["age"] + 5  # half a standard deviation
    current["income"] = np.exp(10 + (np.log(current["income"]) - 10) * 1.6)  # wider spread
    report = detect_drift(reference, current)
    assert report.drifted_columns == ("age", "income")
    assert report.column("age").method == "wasserstein"
    assert report.column("color").method == "jensenshannon"
    assert report.drifted_count == 2
    assert report.tested_count == 4
    assert report.share == 0.5
    assert report.dataset_drift  # 0.5 >= 0.5, Evidently's comparison


def test_category_reweighting_drifts() -> None:
    reference = _table(3000, 3)
    current = _table(3000, 4)
    generator = np.random.default_rng(5)
    labels = np.array(["red", "green", "blue", "black", "white"], dtype=object)
    current["color"] = labels[generator.choice(5, 3000, p=[0.1, 0.1, 0.15, 0.25, 0.4])]
    report = detect_drift(reference, current)
    assert report.drifted_columns == ("color",)
    assert not report.dataset_drift  # 1 of 4 < 0.5


def test_small_references_get_p_value_tests_that_see_a_mean_shift() -> None:
    report = detect_drift(_table(800, 6), _table(800, 7, shift=0.3))
    age = report.column("age")
    assert age.method == "ks"
    assert age.drifted
    assert age.p_value is not None
    assert age.p_value < 0.05
    assert report.column("color").method == "chisquare"


@pytest.mark.parametrize("seed", range(10))
def test_no_false_alarms_from_distances_on_equal_distributions(seed: int) -> None:
    report = detect_drift(_table(5000, seed), _table(5000, 100 + seed))
    assert report.drifted_columns == ()
    assert {column.method for column in report.columns} == {"wasserstein", "jensenshannon"}


def test_p_value_tests_alarm_at_their_nominal_rate_on_equal_distributions() -> None:
    # at threshold 0.05 a correct test flags about 5% of identically distributed pairs
    alarms = 0
    for seed in range(200):
        generator = np.random.default_rng(seed)
        report = detect_drift({"x": generator.normal(size=200)}, {"x": generator.normal(size=200)})
        alarms += report.column("x").drifted is True
    assert 3 <= alarms <= 20


def test_threshold_and_method_options_per_column() -> None:
    reference, current = _table(5000, 8), _table(5000, 9, shift=0.05)
    loose = detect_drift(reference, current, threshold={"age": 0.01})
    assert loose.column("age").drifted
    assert loose.column("age").threshold == 0.01
    assert loose.column("income").threshold == 0.1
    mixed = detect_drift(reference, current, method={"age": "psi", "color": "chisquare"})
    assert mixed.column("age").method == "psi"
    assert mixed.column("color").method == "chisquare"
    assert mixed.column("income").method == "wasserstein"
    same = detect_drift(reference, current, method="hellinger")
    assert {column.method for column in same.columns} == {"hellinger"}


def test_method_unfit_for_a_column_kind_names_the_column_and_the_fitting_methods() -> None:
    with pytest.raises(InvalidInput, match=r"'ks' cannot test the categorical column 'color'"):
        detect_drift(_table(100, 1), _table(100, 2), method="ks")
    with pytest.raises(InvalidInput, match="chisquare"):
        detect_drift(_table(100, 1), _table(100, 2), method={"color": "wasserstein"})
    with pytest.raises(InvalidInput, match="'ks' cannot test"):  # even with too few values
        detect_drift({"c": ["a"] * 5}, {"c": ["b"] * 5}, method="ks")


def test_options_naming_unknown_columns_are_refused() -> None:
    with pytest.raises(InvalidInput, match="'agee'"):
        detect_drift(_table(100, 1), _table(100, 2), threshold={"agee": 0.2})
    with pytest.raises(InvalidInput, match="not in the reference"):
        detect_drift(_table(100, 1), _table(100, 2), columns=["age", "height"])
    with pytest.raises(InvalidInput, match="'numeric' or 'categorical'"):
        detect_drift(_table(100, 1), _table(100, 2), column_types={"age": "number"})
    with pytest.raises(InvalidInput, match="drift_share"):
        detect_drift(_table(100, 1), _table(100, 2), drift_share=0)
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        detect_drift(_table(100, 1), _table(100, 2), method="ks", columns=["age"], threshold=5)


def test_drift_share_threshold_counts_only_tested_columns() -> None:
    reference, current = _table(2000, 10), _table(2000, 11)
    current["age"] = current["age"] + 20
    current["score"] = [None] * 2000  # empty: no verdict, not in the share
    report = detect_drift(reference, current, drift_share=0.34)
    assert report.tested_count == 3
    assert report.share == pytest.approx(1 / 3)
    assert not report.dataset_drift
    assert detect_drift(reference, current, drift_share=1 / 3).dataset_drift


def test_prediction_is_tested_apart_from_the_dataset_share() -> None:
    reference, current = _table(2000, 12), _table(2000, 13)
    generator = np.random.default_rng(0)
    reference["proba"] = generator.beta(2, 5, 2000)
    current["proba"] = generator.beta(5, 2, 2000)
    report = detect_drift(reference, current, prediction="proba")
    assert report.prediction is not None
    assert report.prediction.name == "proba"
    assert report.prediction.drifted
    assert "proba" not in [column.name for column in report.columns]
    assert report.drifted_count == 0
    assert report.column("proba") is report.prediction
    with pytest.raises(InvalidInput, match="prediction column 'label'"):
        detect_drift(reference, current, prediction="label")


# inputs


def test_dataframes_records_arrays_and_profiles_give_the_same_verdicts() -> None:
    pandas = pytest.importorskip("pandas")
    reference, current = _table(1500, 14), _table(1500, 15, shift=0.4)
    expected = detect_drift(reference, current)
    frames = detect_drift(pandas.DataFrame(reference), pandas.DataFrame(current))
    assert frames.to_dict() == expected.to_dict()
    records = pandas.DataFrame(current).to_dict("records")
    assert detect_drift(reference, records).to_dict() == expected.to_dict()
    numeric = ["age", "income", "score"]
    matrix = detect_drift(
        np.column_stack([reference[name] for name in numeric]),
        np.column_stack([current[name] for name in numeric]),
        columns=numeric,
    )
    assert matrix.drifted_columns == ("age",)
    unnamed = detect_drift(
        np.column_stack([reference[name] for name in numeric]),
        pandas.DataFrame(current)[numeric],
    )
    assert [column.name for column in unnamed.columns] == numeric
    profile = build_reference_profile(pandas.DataFrame(reference), sample_size=1000)
    from_profile = detect_drift(profile, current)
    assert from_profile.reference_rows == 1000
    assert from_profile.column("age").method == "ks"  # the sample is a small reference
    assert from_profile.drifted_columns == ("age",)


def test_pandas_categories_and_nullable_integers() -> None:
    pandas = pytest.importorskip("pandas")
    generator = np.random.default_rng(16)
    reference = pandas.DataFrame(
        {
            "tier": pandas.Categorical(generator.choice(["gold", "silver"], 500)),
            "visits": pandas.array(generator.integers(0, 100, 500), dtype="Int64"),
        }
    )
    current = reference.copy()
    current.loc[:9, "visits"] = None
    report = detect_drift(reference, current)
    assert report.column("tier").kind == "categorical"
    assert report.column("visits").kind == "numeric"
    assert report.column("visits").nulls == {"reference": 0, "current": 10}
    assert report.drifted_columns == ()


def test_empty_inputs_are_refused_with_a_clear_message() -> None:
    pandas = pytest.importorskip("pandas")
    with pytest.raises(InvalidInput, match="the current data is empty"):
        detect_drift(_table(50, 1), pandas.DataFrame({"age": []}))
    with pytest.raises(InvalidInput, match="reference data"):
        detect_drift([], _table(50, 1))
    with pytest.raises(InvalidInput, match="reference"):
        detect_drift({"age": []}, _table(50, 1))


# column typing (Evidently's infer_column_type)


def test_column_kinds_follow_evidently() -> None:
    generator = np.random.default_rng(17)
    reference = {
        "floats_few": generator.choice([0.0, 1.0], 300),
        "ints_10": generator.integers(0, 10, 300),
        "ints_11": np.arange(300) % 11,
        "flags": generator.random(300) < 0.5,
        "names": generator.choice(["a", "b", "c"], 300).tolist(),
    }
    report = detect_drift(reference, reference)
    kinds = {column.name: column.kind for column in report.columns}
    assert kinds == {
        "floats_few": "numeric",
        "ints_10": "categorical",
        "ints_11": "numeric",
        "flags": "categorical",
        "names": "categorical",
    }
    forced = detect_drift(reference, reference, column_types={"ints_11": "categorical"})
    assert forced.column("ints_11").kind == "categorical"
    assert forced.column("ints_11").method == "chisquare"


# edge cases


def test_a_column_missing_from_current_is_reported_and_not_counted() -> None:
    reference, current = _table(2000, 18), _table(2000, 19)
    del current["score"]
    current["extra"] = current["age"]
    report = detect_drift(reference, current)
    score = report.column("score")
    assert score.status == "missing"
    assert score.drifted is None
    assert score.kind == "numeric"
    assert report.tested_count == 3
    assert any("'score' is missing" in warning for warning in report.warnings)
    assert any("'extra'" in warning and "ignored" in warning for warning in report.warnings)


def test_new_categories_count_in_the_test_and_are_listed() -> None:
    reference = {"city": ["paris", "rome"] * 600}
    current = {"city": ["paris", "rome"] * 500 + ["oslo"] * 150 + ["lima"] * 50}
    column = detect_drift(reference, current).column("city")
    assert column.new_categories == ("oslo", "lima")
    assert column.drifted
    assert "2 value(s) unseen" in column.message
    small = detect_drift({"city": ["a", "b"] * 100}, {"city": ["a", "b"] * 90 + ["c"] * 20})
    assert small.column("city").method == "chisquare"
    assert small.column("city").p_value == 0.0


def test_all_null_columns_are_empty_without_a_verdict() -> None:
    reference = {"x": [None] * 100, "y": list(range(100)), "z": [1.5] * 100}
    current = {"x": [None] * 100, "y": [None] * 100, "z": [1.5] * 100}
    report = detect_drift(reference, current)
    assert report.column("x").status == "empty"
    assert report.column("x").kind is None
    assert report.column("y").status == "empty"
    assert "current" in report.column("y").message
    assert report.column("y").nulls == {"reference": 0, "current": 100}
    assert report.tested_count == 1


def test_constant_columns_never_give_nan() -> None:
    same = detect_drift({"c": [3.0] * 2000}, {"c": [3.0] * 2000}).column("c")
    assert (same.status, same.statistic) == ("no_drift", 0.0)
    moved = detect_drift({"c": [3.0] * 2000}, {"c": [3.5] * 2000}).column("c")
    assert moved.status == "drift"
    assert moved.statistic is not None
    assert moved.statistic > 0
    for method in drift.DRIFT_METHODS:
        column = detect_drift({"c": [3.0] * 200}, {"c": [3.0] * 300}, method=method).column("c")
        assert column.status == "no_drift", method


def test_too_few_values_give_no_verdict() -> None:
    reference = {"x": list(np.linspace(0, 1, 500)), "y": [1.0] * 20 + [None] * 480}
    current = {"x": list(np.linspace(0, 1, 29)) + [None] * 471, "y": [1.0] * 500}
    report = detect_drift(reference, current)
    assert report.column("x").status == "not_enough_data"
    assert report.column("x").current_rows == 29
    assert report.column("y").status == "not_enough_data"
    assert report.tested_count == 0
    assert not report.dataset_drift
    assert any("no column could be tested" in warning for warning in report.warnings)
    assert detect_drift(reference, current, min_rows=20).tested_count == 2


def test_numbers_against_text_is_refused_naming_the_column() -> None:
    with pytest.raises(InvalidInput, match=r"column 'age' holds numbers .* labels in the current"):
        detect_drift({"age": [30, 40, 50] * 20}, {"age": ["30", "40", "50"] * 20})
    labels = detect_drift(
        {"age": [30, 40, 50] * 20},
        {"age": ["30", "40", "50"] * 20},
        column_types={"age": "categorical"},
    )
    assert labels.column("age").new_categories == ("30", "40", "50")


def test_nulls_nan_and_infinities_are_dropped_and_counted() -> None:
    reference = {"x": [1.0, 2.0, None, float("nan"), float("inf")] * 40}
    current = {"x": np.array([1.0, 2.0, np.nan, -np.inf, 2.0] * 40)}
    column = detect_drift(reference, current).column("x")
    assert column.nulls == {"reference": 120, "current": 80}
    assert (column.reference_rows, column.current_rows) == (80, 120)
    labels = detect_drift({"c": ["a", None, "b"] * 40}, {"c": ["a", float("nan"), "b"] * 40})
    assert labels.column("c").nulls == {"reference": 40, "current": 40}


def test_dates_are_skipped_with_a_warning_or_refused_when_asked_for() -> None:
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i % 30) for i in range(100)]
    reference = {"day": days, "x": list(range(100))}
    report = detect_drift(reference, reference)
    assert [column.name for column in report.columns] == ["x"]
    assert any("'day' holds date values" in warning for warning in report.warnings)
    with pytest.raises(InvalidInput, match="'day'"):
        detect_drift(reference, reference, columns=["day"])
    vectors = detect_drift(
        {"v": [[1, 2]] * 50, "x": [1.0] * 50}, {"v": [[1]] * 50, "x": [1.0] * 50}
    )
    assert [column.name for column in vectors.columns] == ["x"]
    assert any("'v' holds list values" in warning for warning in vectors.warnings)


def test_large_inputs_are_tested_on_threads_with_the_same_result() -> None:
    reference, current = _table(60_000, 20), _table(60_000, 21, shift=0.2)
    threaded = detect_drift(reference, current)
    small = detect_drift(
        {name: values[:40_000] for name, values in reference.items()},
        {name: values[:40_000] for name, values in current.items()},
    )
    assert threaded.drifted_columns == small.drifted_columns == ("age",)


# multivariate


def _correlated(rows: int, correlation: float, seed: int) -> dict[str, Any]:
    generator = np.random.default_rng(seed)
    x = generator.normal(size=rows)
    y = correlation * x + np.sqrt(1 - correlation**2) * generator.normal(size=rows)
    return {"x": x, "y": y, "z": generator.normal(size=rows), "w": generator.uniform(size=rows)}


def test_multivariate_catches_a_correlation_flip_no_column_test_sees() -> None:
    reference, current = _correlated(4000, 0.8, 1), _correlated(4000, -0.8, 2)
    report = detect_drift(reference, current, multivariate=True)
    assert report.drifted_columns == ()
    assert report.multivariate is not None
    assert report.multivariate.drifted
    assert report.multivariate.current_error > report.multivariate.upper  # type: ignore[operator]
    assert report.multivariate.columns == ("x", "y", "z", "w")


def test_multivariate_rarely_alarms_on_equal_distributions() -> None:
    alarms = sum(
        bool(multivariate_drift(_correlated(1000, 0.8, s), _correlated(1000, 0.8, 99 + s)).drifted)
        for s in range(40)
    )
    assert alarms <= 3  # about 1% expected with the 3-sigma band


def test_multivariate_needs_two_numeric_columns_and_enough_rows() -> None:
    result = multivariate_drift({"x": [1.0] * 500, "c": ["a"] * 500}, {"x": [1.0] * 500})
    assert result.status == "not_enough_data"
    assert result.drifted is None
    small = multivariate_drift(_correlated(100, 0.5, 1), _correlated(100, 0.5, 2))
    assert small.status == "not_enough_data"
    with pytest.raises(InvalidInput, match="'c'"):
        multivariate_drift(
            {"x": [1.0] * 500, "c": ["a"] * 500},
            {"x": [1.0] * 500, "c": ["a"] * 500},
            columns=["x", "c"],
        )


def test_multivariate_keeps_components_up_to_the_variance_share() -> None:
    result = multivariate_drift(_correlated(2000, 0.9, 3), _correlated(2000, 0.9, 4))
    assert result.explained_variance >= 0.65
    assert result.components == 2  # (x+y) carries ~1.9 of 4, one more passes 65%
    assert len(result.chunk_errors) >= 20


# Evidently itself, when installed


def test_verdicts_match_evidently() -> None:
    pytest.importorskip("evidently")
    pandas = pytest.importorskip("pandas")
    from evidently import Report
    from evidently.presets import DataDriftPreset

    for rows, shift in ((600, 0.3), (3000, 0.15)):
        generator = np.random.default_rng(rows)
        reference = pandas.DataFrame(_table(rows, rows))
        current = pandas.DataFrame(_table(rows, rows + 1, shift=shift))
        reference["small_int"] = generator.integers(0, 4, rows)
        current["small_int"] = generator.integers(0, 4, rows)
        snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference)
        prefix = "Value Drift for column "
        theirs = {
            test["name"][len(prefix) :]: str(test["status"]).endswith("FAIL")
            for test in snapshot.dict()["tests"]
            if test["name"].startswith(prefix)
        }
        ours = detect_drift(reference, current, min_rows=1)
        assert {column.name: column.drifted for column in ours.columns} == theirs
