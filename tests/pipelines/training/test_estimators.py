"""The scikit-learn pieces a trained model carries: typed input, derived features, labels."""

from __future__ import annotations

import numpy as np
import pytest

from mlops.pipelines.training._config_sections import PreprocessConfig
from mlops.pipelines.training._estimators import (
    LabelEncodedClassifier,
    TabularInput,
    build_transformer,
)

pd = pytest.importorskip("pandas")


def test_rows_from_json_and_from_a_csv_come_out_typed_alike() -> None:
    step = TabularInput(
        numeric=("tenure", "charges"),
        categorical=("plan", "active"),
        derived=(("per_month", "charges / tenure"), ("big", "(charges > 50) & (tenure > 1)")),
    )
    from_json = pd.DataFrame(
        {
            "tenure": np.array([2, 0, None], dtype=object),
            "charges": np.array([100.0, 50.0, 10.0], dtype=object),
            "plan": np.array(["pro", None, "basic"], dtype=object),
            "active": np.array([True, False, None], dtype=object),
            "ignored": ["x", "y", "z"],
        }
    )
    from_csv = pd.DataFrame(
        {
            "tenure": [2.0, 0.0, np.nan],
            "charges": [100.0, 50.0, 10.0],
            "plan": pd.Series(["pro", None, "basic"], dtype="str"),
            "active": [True, False, None],
        }
    )

    left = step.fit(from_csv).transform(from_json)
    right = step.transform(from_csv)

    pd.testing.assert_frame_equal(left, right)
    assert list(left.columns) == ["tenure", "charges", "per_month", "big", "plan", "active"]
    assert left["per_month"].tolist()[0] == 50.0
    assert np.isnan(left["per_month"].tolist()[1])  # 50 / 0 is infinite: imputed later
    assert left["big"].tolist() == [1.0, 0.0, 0.0]
    assert left["plan"].tolist()[0::2] == ["pro", "basic"]
    assert left["active"].tolist()[:2] == ["True", "False"]


def test_the_transformer_imputes_scales_and_encodes_unseen_categories() -> None:
    config = PreprocessConfig.model_validate({"numeric": {"scale": "minmax"}})
    transformer = build_transformer(["x"], ["color"], config, [("double_x", "x * 2")])
    train = pd.DataFrame({"x": [0.0, 5.0, 10.0, np.nan], "color": ["red", "blue", None, "red"]})

    out = transformer.fit_transform(train)
    served = transformer.transform(pd.DataFrame({"x": [None], "color": ["green"]}))

    assert out.shape == (4, 2 + 3)  # x, double_x; blue, missing, red
    assert served.tolist() == [[0.5, 0.5, 0.0, 0.0, 0.0]]  # median, unseen color: all zero


def test_expressions_are_checked_again_when_a_model_is_fit() -> None:
    step = TabularInput(numeric=("x",), derived=(("y", "x.__class__"),))
    with pytest.raises(ValueError, match="attribute access"):
        step.fit(pd.DataFrame({"x": [1.0]}))


def test_label_encoding_lets_xgboost_learn_string_labels() -> None:
    xgboost = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    features = rng.normal(size=(80, 2))
    labels = np.where(features[:, 0] > 0, "stay", "leave")

    model = LabelEncodedClassifier(xgboost.XGBClassifier(n_estimators=10, n_jobs=1))
    model.fit(features, labels)

    assert list(model.classes_) == ["leave", "stay"]
    assert (model.predict(features) == labels).mean() > 0.9
    assert model.predict_proba(features).shape == (80, 2)


@pytest.mark.parametrize(
    "expr",
    [
        "a / (b + 1)",
        "a ** 2 - 3 * b // 2 + a % 3",
        "-a + abs(b) + sqrt(abs(a)) + log1p(abs(b)) + arctan2(a, b)",
        "(a > 0) & (b <= 1) | ~(a == b)",
        "1 < a < 3",
        "a / 0",
    ],
)
def test_expressions_compute_what_dataframe_eval_computes(expr: str) -> None:
    from mlops.pipelines.training._expressions import evaluate_expression

    frame = pd.DataFrame({"a": [-2.0, 0.0, 1.5, 2.5, np.nan], "b": [1.0, -1.0, 0.0, 4.0, 2.0]})
    arrays = {name: frame[name].to_numpy() for name in frame}

    ours = evaluate_expression(expr, arrays, len(frame))

    with np.errstate(all="ignore"):
        expected = frame.eval(expr, engine="python").to_numpy(dtype=float)
    np.testing.assert_array_equal(ours, expected)
