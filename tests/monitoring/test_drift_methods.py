"""The drift methods against SciPy and hand-computed values, and Evidently's selection rules."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from mlops.errors import InvalidInput
from mlops.monitoring.drift import (
    DRIFT_METHODS,
    ColumnSample,
    DriftMethod,
    Score,
    check_drift_method,
    default_method,
    drift_method,
)
from mlops.monitoring.drift._sample import histogram_counts, sturges_edges


def _numeric(reference: Any, current: Any, **options: Any) -> ColumnSample:
    return ColumnSample.from_values(reference, current, kind="numeric", **options)


def _categorical(reference: Any, current: Any) -> ColumnSample:
    return ColumnSample.from_values(reference, current, kind="categorical")


def _evidently_shares(reference: np.ndarray, current: np.ndarray) -> tuple[Any, Any]:
    """Evidently's binning for numeric columns with many values, written out with NumPy."""
    edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
    return (
        np.histogram(reference, edges)[0] / reference.size,
        np.histogram(current, edges)[0] / current.size,
    )


def _fill(shares: np.ndarray) -> np.ndarray:
    shares = shares.astype(float).copy()
    smallest = shares[shares > 0].min()
    shares[shares == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return shares


GENERATOR = np.random.default_rng(20240601)
SMALL_A, SMALL_B = GENERATOR.normal(0, 1, 400), GENERATOR.normal(0.2, 1.2, 300)
LARGE_A, LARGE_B = GENERATOR.normal(0, 1, 12_000), GENERATOR.normal(0.03, 1, 11_000)


def test_registry_holds_the_evidently_names() -> None:
    assert set(DRIFT_METHODS) == {
        "ks",
        "chisquare",
        "z",
        "wasserstein",
        "jensenshannon",
        "psi",
        "kl_div",
        "hellinger",
        "anderson",
        "cramer_von_mises",
        "ed",
    }
    defaults = {name: (m.kind, m.default_threshold) for name, m in DRIFT_METHODS.items()}
    assert defaults["ks"] == ("p_value", 0.05)
    assert defaults["chisquare"] == ("p_value", 0.05)
    assert defaults["z"] == ("p_value", 0.05)
    assert defaults["anderson"] == ("p_value", 0.1)
    assert defaults["cramer_von_mises"] == ("p_value", 0.1)
    for name in ("wasserstein", "jensenshannon", "psi", "kl_div", "hellinger", "ed"):
        assert defaults[name] == ("distance", 0.1)


@pytest.mark.parametrize("method", list(DRIFT_METHODS.values()), ids=list(DRIFT_METHODS))
def test_every_method_keeps_the_contract(method: DriftMethod) -> None:
    check_drift_method(method)


def test_the_contract_check_catches_a_broken_method() -> None:
    class AlwaysDrifts(DriftMethod):
        name = "always"
        title = "always drifts"
        kind = "distance"
        default_threshold = 0.1
        column_kinds = frozenset({"numeric"})
        drift_at_threshold = True

        def score(self, sample: ColumnSample) -> Score:
            return Score(1.0, None)

    with pytest.raises(AssertionError, match="identical numeric data drifted"):
        check_drift_method(AlwaysDrifts())


def test_lookup_by_name_alias_and_typo() -> None:
    assert drift_method("KS") is DRIFT_METHODS["ks"]
    assert drift_method("energy_distance") is DRIFT_METHODS["ed"]
    with pytest.raises(InvalidInput, match=r"did you mean 'wasserstein'\?.*the methods are: ks"):
        drift_method("wasserstien")


@pytest.mark.parametrize(
    ("name", "value", "threshold", "drifted"),
    [
        ("ks", 0.05, 0.05, True),  # p <= threshold
        ("cramer_von_mises", 0.1, 0.1, True),  # p <= threshold
        ("chisquare", 0.05, 0.05, False),  # p < threshold
        ("z", 0.05, 0.05, False),
        ("anderson", 0.1, 0.1, False),
        ("wasserstein", 0.1, 0.1, True),  # distance >= threshold
        ("jensenshannon", 0.1, 0.1, True),
        ("psi", 0.1, 0.1, True),
        ("ed", 0.1, 0.1, False),  # distance > threshold
        ("ks", 0.049, 0.05, True),
        ("wasserstein", 0.099, 0.1, False),
    ],
)
def test_which_side_of_the_threshold_drifts(
    name: str, value: float, threshold: float, drifted: bool
) -> None:
    method = DRIFT_METHODS[name]
    score = Score(value, None) if method.kind == "distance" else Score(0.0, value)
    assert method.drifted(score, threshold) is drifted


@pytest.mark.parametrize(("reference", "current"), [(SMALL_A, SMALL_B), (LARGE_A, LARGE_B)])
def test_ks_matches_scipy_exact_and_asymptotic(reference: Any, current: Any) -> None:
    score = DRIFT_METHODS["ks"].score(_numeric(reference, current))
    expected = stats.ks_2samp(reference, current)
    assert score.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert score.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        (SMALL_A, SMALL_B),
        (SMALL_A, SMALL_A[::-1] + 0.5),
        (np.round(SMALL_A), np.round(SMALL_B)),
        (LARGE_A, LARGE_B),
    ],
)
def test_wasserstein_is_scipys_distance_normed_by_the_reference_std(
    reference: Any, current: Any
) -> None:
    score = DRIFT_METHODS["wasserstein"].score(_numeric(reference, current))
    expected = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert score.statistic == pytest.approx(expected, rel=1e-10)
    assert score.p_value is None


def test_wasserstein_norm_has_a_floor_for_constant_references() -> None:
    score = DRIFT_METHODS["wasserstein"].score(_numeric([5.0] * 50, [5.0] * 49 + [5.01]))
    assert score.statistic == pytest.approx((0.01 / 50) / 0.001)
    same = DRIFT_METHODS["wasserstein"].score(_numeric([5.0] * 50, [5.0] * 60))
    assert same.statistic == 0.0


def test_energy_distance_matches_scipy() -> None:
    score = DRIFT_METHODS["ed"].score(_numeric(SMALL_A, SMALL_B))
    assert score.statistic == pytest.approx(stats.energy_distance(SMALL_A, SMALL_B), rel=1e-10)


def test_anderson_and_cramer_von_mises_match_scipy() -> None:
    sample = _numeric(SMALL_A, SMALL_B)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        anderson = DRIFT_METHODS["anderson"].score(sample)
    assert caught == []  # SciPy's "p-value floored" warning stays inside the method
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = stats.anderson_ksamp([SMALL_A, SMALL_B], variant="midrank")
    assert anderson.p_value == pytest.approx(expected.pvalue)
    assert anderson.statistic == pytest.approx(expected.statistic)
    cramer = DRIFT_METHODS["cramer_von_mises"].score(sample)
    assert cramer.p_value == pytest.approx(stats.cramervonmises_2samp(SMALL_A, SMALL_B).pvalue)


def test_chisquare_scales_expected_counts_by_the_size_ratio() -> None:
    reference = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    current = ["a"] * 90 + ["b"] * 70 + ["c"] * 40
    score = DRIFT_METHODS["chisquare"].score(_categorical(reference, current))
    expected = stats.chisquare([90, 70, 40], [100.0, 60.0, 40.0])
    assert score.statistic == pytest.approx(expected.statistic)
    assert score.p_value == pytest.approx(expected.pvalue)


def test_chisquare_with_a_category_unseen_in_the_reference_is_certain_drift() -> None:
    score = DRIFT_METHODS["chisquare"].score(_categorical(["a", "b"] * 50, ["a", "b", "new"] * 30))
    assert score.statistic == math.inf
    assert score.p_value == 0.0


def test_z_test_of_two_proportions_by_hand() -> None:
    reference = ["a"] * 60 + ["b"] * 40
    current = ["a"] * 40 + ["b"] * 60
    score = DRIFT_METHODS["z"].score(_categorical(reference, current))
    z = (0.4 - 0.6) / math.sqrt(0.5 * 0.5 * (1 / 100 + 1 / 100))
    assert score.statistic == pytest.approx(z)
    assert score.p_value == pytest.approx(2 * stats.norm.sf(abs(z)))
    constant = DRIFT_METHODS["z"].score(_categorical(["a"] * 40, ["a"] * 70))
    assert constant == Score(0.0, 1.0)


def test_jensenshannon_on_categories_and_on_sturges_bins() -> None:
    reference = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    current = ["a"] * 20 + ["b"] * 30 + ["c"] * 30 + ["d"] * 20
    score = DRIFT_METHODS["jensenshannon"].score(_categorical(reference, current))
    expected = distance.jensenshannon([0.5, 0.3, 0.2, 0.0], [0.2, 0.3, 0.3, 0.2])
    assert score.statistic == pytest.approx(expected)
    numeric = DRIFT_METHODS["jensenshannon"].score(_numeric(SMALL_A, SMALL_B))
    assert numeric.statistic == pytest.approx(
        distance.jensenshannon(*_evidently_shares(SMALL_A, SMALL_B))
    )


def test_psi_and_kl_by_hand_and_on_filled_bins() -> None:
    reference, current = ["x"] * 50 + ["y"] * 50, ["x"] * 25 + ["y"] * 75
    psi = DRIFT_METHODS["psi"].score(_categorical(reference, current)).statistic
    assert psi == pytest.approx(0.25 * math.log(2) - 0.25 * math.log(0.5 / 0.75))
    kl = DRIFT_METHODS["kl_div"].score(_categorical(reference, current)).statistic
    assert kl == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75))
    p, q = (_fill(shares) for shares in _evidently_shares(SMALL_A, SMALL_B))
    sample = _numeric(SMALL_A, SMALL_B)
    assert DRIFT_METHODS["psi"].score(sample).statistic == pytest.approx(
        np.sum((p - q) * np.log(p / q))
    )
    assert DRIFT_METHODS["kl_div"].score(sample).statistic == pytest.approx(stats.entropy(p, q))


def test_psi_stays_finite_when_a_bin_is_empty_on_one_side() -> None:
    score = DRIFT_METHODS["psi"].score(_categorical(["a", "b"] * 50, ["a", "b", "c"] * 40))
    assert math.isfinite(score.statistic)
    assert score.statistic > 0.1


def test_hellinger_by_hand_and_on_numeric_density_bins() -> None:
    reference, current = ["x"] * 50 + ["y"] * 50, ["x"] * 25 + ["y"] * 75
    score = DRIFT_METHODS["hellinger"].score(_categorical(reference, current))
    overlap = math.sqrt(0.5 * 0.25) + math.sqrt(0.5 * 0.75)
    assert score.statistic == pytest.approx(math.sqrt(1 - overlap))
    keys = np.union1d(SMALL_A, SMALL_B)
    edges = np.histogram_bin_edges(keys, bins="sturges")
    h1 = np.histogram(SMALL_A, edges, density=True)[0]
    h2 = np.histogram(SMALL_B, edges, density=True)[0]
    width = (edges.max() - edges.min()) / (len(edges) - 1)
    expected = math.sqrt(1 - min(1.0, float(np.sum(np.sqrt(h1 * h2)) * width)))
    numeric = DRIFT_METHODS["hellinger"].score(_numeric(SMALL_A, SMALL_B))
    assert numeric.statistic == pytest.approx(expected)


def test_few_valued_numeric_columns_are_counted_per_value_not_binned() -> None:
    reference = [1.0] * 60 + [2.0] * 40
    current = [1.0] * 40 + [2.0] * 50 + [3.0] * 10
    score = DRIFT_METHODS["jensenshannon"].score(_numeric(reference, current))
    assert score.statistic == pytest.approx(distance.jensenshannon([0.6, 0.4, 0], [0.4, 0.5, 0.1]))


def test_bins_option_sets_equal_width_bins() -> None:
    sample = _numeric(SMALL_A, SMALL_B, bins=10)
    edges = np.linspace(min(SMALL_A.min(), SMALL_B.min()), max(SMALL_A.max(), SMALL_B.max()), 11)
    p = np.histogram(SMALL_A, edges)[0] / SMALL_A.size
    q = np.histogram(SMALL_B, edges)[0] / SMALL_B.size
    assert DRIFT_METHODS["jensenshannon"].score(sample).statistic == pytest.approx(
        distance.jensenshannon(p, q)
    )


@pytest.mark.parametrize("seed", range(6))
def test_sturges_edges_and_counts_match_numpy(seed: int) -> None:
    generator = np.random.default_rng(seed)
    floats = generator.normal(0, 10 ** generator.uniform(-3, 3), int(generator.integers(2, 5000)))
    integers = generator.integers(-20, int(generator.integers(1, 60)), 3000)
    for values, integer in ((floats, False), (integers, True)):
        expected = np.histogram_bin_edges(values, bins="sturges")
        edges = sturges_edges(values.min(), values.max(), values.size, integer)
        np.testing.assert_array_equal(edges, expected)
        np.testing.assert_array_equal(
            histogram_counts(np.sort(values.astype(float)), edges), np.histogram(values, edges)[0]
        )


def test_numeric_only_methods_refuse_categorical_samples() -> None:
    with pytest.raises(InvalidInput, match="categorical"):
        DRIFT_METHODS["ks"].score(_categorical(["a", "b"], ["a", "b"]))


def test_threshold_validation_says_what_fits() -> None:
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        DRIFT_METHODS["ks"].check_threshold(1.5)
    with pytest.raises(InvalidInput, match="distance"):
        DRIFT_METHODS["wasserstein"].check_threshold(-0.1)


# Evidently's _get_default_stattest (evidently/legacy/calculations/stattests/registry.py)


def _values(count: int, distinct: int) -> list[float]:
    return [float(i % distinct) for i in range(count)]


@pytest.mark.parametrize(
    ("rows", "distinct", "kind", "expected"),
    [
        (1000, 50, "numeric", "ks"),
        (1000, 5, "numeric", "chisquare"),
        (1000, 3, "numeric", "chisquare"),
        (1000, 2, "numeric", "z"),
        (1000, 1, "numeric", "z"),
        (1000, 3, "categorical", "chisquare"),
        (1000, 2, "categorical", "z"),
        (1001, 50, "numeric", "wasserstein"),
        (1001, 6, "numeric", "wasserstein"),
        (1001, 5, "numeric", "jensenshannon"),
        (1001, 2, "numeric", "jensenshannon"),
        (1001, 30, "categorical", "jensenshannon"),
        (1001, 2, "categorical", "jensenshannon"),
    ],
)
def test_default_method_follows_evidently(
    rows: int, distinct: int, kind: str, expected: str
) -> None:
    values = _values(rows, distinct)
    if kind == "categorical":
        values = [f"v{int(value)}" for value in values]  # type: ignore[misc]
    sample = ColumnSample.from_values(values, values, kind=kind)  # type: ignore[arg-type]
    assert default_method(sample).name == expected


def test_default_method_counts_distinct_values_over_both_sides() -> None:
    reference = ["a", "b"] * 100
    assert default_method(_categorical(reference, reference)).name == "z"
    assert default_method(_categorical(reference, ["a", "b", "c"] * 10)).name == "chisquare"
    numbers = _values(2000, 5)
    assert default_method(_numeric(numbers, numbers)).name == "jensenshannon"
    assert default_method(_numeric(numbers, _values(50, 7))).name == "wasserstein"


def test_default_method_looks_at_non_null_reference_rows() -> None:
    reference = [*np.linspace(0, 1, 1000).tolist(), *[None] * 500]
    sample = ColumnSample.from_values(reference, np.linspace(0, 1, 3000).tolist())
    assert sample.reference_rows == 1000
    assert default_method(sample).name == "ks"
