"""Every flavor: the Flavor contract, and save → load → predict equal to the native model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.models import (
    ModelContext,
    PythonModel,
    check_flavor,
    flavor_names,
    get_flavor,
    load_model,
    save_model,
)
from mlops.models._boosting import LightGBMClassifierModel
from mlops.models._sklearn import SklearnFlavor


def _round_trip(model: Any, path: Path, example: Any, **kwargs: Any) -> Any:
    manifest = save_model(model, path, input_example=example, **kwargs)
    loaded = load_model(path)
    assert loaded.manifest == manifest
    assert loaded.flavor.name == manifest.flavor
    return loaded


def test_flavor_names_in_detection_order() -> None:
    assert flavor_names() == ["python", "torch", "onnx", "xgboost", "lightgbm", "sklearn"]


# -- sklearn ---------------------------------------------------------------------------


def test_sklearn_logistic_regression_on_arrays(numeric_data: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    features, labels = numeric_data
    model = LogisticRegression().fit(features, labels)
    loaded = _round_trip(model, tmp_path / "m", features[:5])
    assert loaded.manifest.flavor == "sklearn"
    assert loaded.signature.input_tensor.shape == (-1, 4)
    result = loaded.predict(features.tolist())
    np.testing.assert_array_equal(result["predictions"], model.predict(features))
    np.testing.assert_allclose(result["probabilities"], model.predict_proba(features))


def test_sklearn_pipeline_on_a_dataframe(
    customers: Any, churn_pipeline: Any, tmp_path: Path
) -> None:
    features = customers.drop(columns="churn")
    loaded = _round_trip(churn_pipeline, tmp_path / "m", features.head(5), reference_data=features)
    assert [c.name for c in loaded.signature.inputs] == ["age", "income", "plan", "region"]
    records = features.to_dict(orient="records")
    result = loaded.predict(records)
    np.testing.assert_array_equal(result["predictions"], churn_pipeline.predict(features))
    np.testing.assert_allclose(result["probabilities"], churn_pipeline.predict_proba(features))
    raw = loaded.predict_raw(features)
    np.testing.assert_array_equal(raw["predictions"], result["predictions"])
    np.testing.assert_array_equal(
        loaded.predict(loaded.input_example)["predictions"],
        churn_pipeline.predict(features.head(5)),
    )


@pytest.mark.parametrize("serialization", ["skops", "pickle"])
def test_sklearn_serializations(
    serialization: str, customers: Any, churn_pipeline: Any, tmp_path: Path
) -> None:
    if serialization == "skops":
        pytest.importorskip("skops")
    features = customers.drop(columns="churn")
    flavor = SklearnFlavor(serialization=serialization)
    result = check_flavor(flavor, churn_pipeline, features, tmp_path / "check")
    np.testing.assert_array_equal(result["predictions"], churn_pipeline.predict(features))
    manifest = save_model(churn_pipeline, tmp_path / "m", flavor=flavor)
    assert manifest.flavor_options["serialization"] == serialization
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(
        loaded.predict(features)["predictions"], churn_pipeline.predict(features)
    )


def test_sklearn_regressor_has_no_probabilities(numeric_data: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import Ridge

    features, labels = numeric_data
    model = Ridge().fit(features, labels.astype(float))
    loaded = _round_trip(model, tmp_path / "m", features[:3])
    result = loaded.predict(features)
    assert "probabilities" not in result
    np.testing.assert_allclose(result["predictions"], model.predict(features))


# -- xgboost ---------------------------------------------------------------------------


def test_xgboost_classifier(customers: Any, tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    features = customers[["age", "income"]]
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(
        features, customers["churn"]
    )
    check_flavor(get_flavor("xgboost"), model, features, tmp_path / "check")
    loaded = _round_trip(model, tmp_path / "m", features.head(3))
    assert loaded.manifest.flavor_options["model_class"] == "XGBClassifier"
    assert type(loaded.native) is xgb.XGBClassifier
    result = loaded.predict(features.to_dict(orient="records"))
    np.testing.assert_array_equal(result["predictions"], model.predict(features))
    np.testing.assert_allclose(result["probabilities"], model.predict_proba(features))


def test_xgboost_booster(numeric_data: Any, tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    features, labels = numeric_data
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(features, label=labels),
        num_boost_round=5,
    )
    loaded = _round_trip(booster, tmp_path / "m", features[:3])
    np.testing.assert_allclose(
        loaded.predict(features)["predictions"], booster.predict(xgb.DMatrix(features))
    )


# -- lightgbm --------------------------------------------------------------------------


def test_lightgbm_classifier_with_string_classes(customers: Any, tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    features = customers[["age", "income"]]
    target = customers["plan"].to_numpy()
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1, n_jobs=1)
    model.fit(features, target)
    check_flavor(get_flavor("lightgbm"), model, features, tmp_path / "check")
    loaded = _round_trip(model, tmp_path / "m", features.head(3))
    assert isinstance(loaded.native, LightGBMClassifierModel)
    assert loaded.native.classes_.tolist() == ["basic", "pro", "team"]
    result = loaded.predict(features)
    np.testing.assert_array_equal(result["predictions"], model.predict(features))
    np.testing.assert_allclose(result["probabilities"], model.predict_proba(features))


def test_lightgbm_binary_classifier_and_booster(numeric_data: Any, tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    features, labels = numeric_data
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1, n_jobs=1)
    model.fit(features, labels)
    loaded = _round_trip(model, tmp_path / "clf", features[:3])
    np.testing.assert_allclose(
        loaded.predict(features)["probabilities"], model.predict_proba(features)
    )
    booster = lgb.train(
        {"objective": "regression", "num_leaves": 4, "verbose": -1, "num_threads": 1},
        lgb.Dataset(features, label=labels.astype(float)),
        num_boost_round=5,
    )
    loaded = _round_trip(booster, tmp_path / "booster", features[:3])
    np.testing.assert_allclose(loaded.predict(features)["predictions"], booster.predict(features))


# -- onnx ------------------------------------------------------------------------------


def _onnx_model(numeric_data: Any) -> tuple[Any, Any, Any]:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    features, labels = numeric_data
    features = features.astype(np.float32)
    model = LogisticRegression().fit(features, labels)
    proto = skl2onnx.to_onnx(model, features[:1], options={"zipmap": False})
    return model, proto, features


def test_onnx_model_proto(numeric_data: Any, tmp_path: Path) -> None:
    model, proto, features = _onnx_model(numeric_data)
    check_flavor(get_flavor("onnx"), proto, features, tmp_path / "check")
    loaded = _round_trip(proto, tmp_path / "m", features[:3])
    assert loaded.signature.input_tensor.dtype == "float32"
    result = loaded.predict(features.tolist())
    np.testing.assert_array_equal(result["predictions"], model.predict(features))
    np.testing.assert_allclose(result["probabilities"], model.predict_proba(features), atol=1e-5)


def test_onnx_file_path(numeric_data: Any, tmp_path: Path) -> None:
    model, proto, features = _onnx_model(numeric_data)
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(proto.SerializeToString())
    loaded = _round_trip(str(onnx_file), tmp_path / "m", features[:3])
    assert loaded.manifest.flavor == "onnx"
    np.testing.assert_array_equal(loaded.predict(features)["predictions"], model.predict(features))


# -- python ----------------------------------------------------------------------------


class ScaledSum(PythonModel):
    """Sums the features and multiplies by a factor read from an artifact."""

    def __init__(self) -> None:
        self.factor: float | None = None

    def load(self, context: ModelContext) -> None:
        self.factor = float(context.artifacts["factor"].read_text())

    def predict(self, inputs: Any) -> Any:
        assert self.factor is not None
        return inputs.sum(axis=1).to_numpy() * self.factor


class DuckModel:
    """Not a PythonModel subclass, but has load and predict."""

    def load(self, context: ModelContext) -> None:
        self.loaded = True

    def predict(self, inputs: Any) -> dict[str, Any]:
        return {"predictions": [len(row) for row in inputs], "probabilities": [[1.0]] * len(inputs)}


def test_python_model_with_artifacts(tmp_path: Path) -> None:
    import pandas as pd

    factor = tmp_path / "factor.txt"
    factor.write_text("2.5")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    manifest = save_model(
        ScaledSum(), tmp_path / "m", input_example=frame, artifacts={"factor": factor}
    )
    assert manifest.flavor == "python"
    assert "artifacts/factor/factor.txt" in manifest.files
    factor.write_text("100")  # the package holds its own copy
    loaded = load_model(tmp_path / "m")
    assert loaded.native.factor == 2.5
    assert loaded.predict([{"a": 1, "b": 1}])["predictions"].tolist() == [5.0]


def test_python_duck_typed_model(tmp_path: Path) -> None:
    result = check_flavor(get_flavor("python"), DuckModel(), [[1], [2]], tmp_path / "check")
    assert result == {"predictions": [1, 1], "probabilities": [[1.0], [1.0]]}
    save_model(DuckModel(), tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.native.loaded is True
    assert loaded.signature is None
    assert loaded.predict(["ab", "c"])["predictions"] == [2, 1]


# -- torch -----------------------------------------------------------------------------


def test_torch_scripted_and_traced(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    class VarArgs(torch.nn.Module):  # *args: torch.jit.script refuses it, tracing works
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, *inputs: Any) -> Any:
            return torch.softmax(self.linear(inputs[0]), dim=1)

    features = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    sequential = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    for name, module, method in (("seq", sequential, "script"), ("var", VarArgs(), "trace")):
        check_flavor(get_flavor("torch"), module, features, tmp_path / f"check-{name}")
        loaded = _round_trip(module, tmp_path / name, features[:2])
        assert loaded.manifest.flavor_options["method"] == method
        with torch.no_grad():
            expected = module(torch.from_numpy(features)).numpy()
        np.testing.assert_allclose(
            loaded.predict(features.tolist())["predictions"], expected, rtol=1e-5
        )
