"""Importing MLflow scikit-learn model folders, written by our own code and by mlflow."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.errors import InvalidInput, NotFound
from mlops.models import import_mlflow_model, load_model

yaml = pytest.importorskip("yaml")


def _write_mlflow_folder(
    folder: Path,
    model: Any,
    *,
    signature: dict[str, Any] | None,
    example: Any,
    serialization: str = "cloudpickle",
) -> None:
    """The layout mlflow.sklearn.save_model writes, built without mlflow."""
    folder.mkdir()
    if serialization == "cloudpickle":
        import cloudpickle

        (folder / "model.pkl").write_bytes(cloudpickle.dumps(model))
    else:
        (folder / "model.pkl").write_bytes(pickle.dumps(model))
    mlmodel: dict[str, Any] = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn",
                "model_path": "model.pkl",
                "predict_fn": "predict",
                "python_version": "3.11.7",
            },
            "sklearn": {
                "code": None,
                "pickled_model": "model.pkl",
                "serialization_format": serialization,
                "sklearn_version": "1.5.0",
            },
        },
        "mlflow_version": "2.14.1",
        "model_uuid": "0f6c1d1e2b7b4f0f9d7c0f2f0e9d1a2b",
        "run_id": "1234abcd",
        "utc_time_created": "2024-06-01 12:00:00.000000",
    }
    if signature is not None:
        mlmodel["signature"] = {
            "inputs": json.dumps(signature["inputs"]),
            "outputs": json.dumps(signature["outputs"]),
            "params": None,
        }
    if example is not None:
        mlmodel["saved_input_example_info"] = {
            "artifact_path": "input_example.json",
            "pandas_orient": "split",
            "type": "dataframe",
        }
        (folder / "input_example.json").write_text(json.dumps(example))
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    (folder / "requirements.txt").write_text(
        "mlflow==2.14.1\n# comment\nscikit-learn==1.5.0\n\ncloudpickle==3.0.0\n"
    )
    (folder / "python_env.yaml").write_text("python: 3.11.7\nbuild_dependencies:\n- pip\n")
    (folder / "conda.yaml").write_text("dependencies:\n- python=3.11.7\n- pip\n")


COLUMN_SIGNATURE = {
    "inputs": [
        {"type": "long", "name": "age", "required": True},
        {"type": "double", "name": "income", "required": True},
        {"type": "string", "name": "plan", "required": True},
        {"type": "string", "name": "region", "required": False},
    ],
    "outputs": [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}],
}


@pytest.mark.parametrize("serialization", ["cloudpickle", "pickle"])
def test_import_a_handwritten_mlflow_folder(
    serialization: str, customers: Any, churn_pipeline: Any, tmp_path: Path
) -> None:
    if serialization == "cloudpickle":
        pytest.importorskip("cloudpickle")
    features = customers.drop(columns="churn")
    head = features.head(3)
    example = {"columns": list(head.columns), "data": head.to_numpy().tolist()}
    source = tmp_path / "mlflow-model"
    _write_mlflow_folder(
        source,
        churn_pipeline,
        signature=COLUMN_SIGNATURE,
        example=example,
        serialization=serialization,
    )
    manifest = import_mlflow_model(source, tmp_path / "imported")
    assert manifest.flavor == "sklearn"
    assert manifest.flavor_options["serialization"] == serialization
    assert manifest.flavor_options["imported_from"] == "mlflow"
    assert (tmp_path / "imported" / "model.pkl").read_bytes() == (source / "model.pkl").read_bytes()
    signature = manifest.signature
    assert signature is not None
    assert [(c.name, c.type, c.required) for c in signature.inputs] == [
        ("age", "long", True),
        ("income", "double", True),
        ("plan", "string", True),
        ("region", "string", False),
    ]
    assert signature.outputs[0].name == "prediction"
    assert signature.outputs[0].type == "long"
    assert manifest.environment["python"] == "3.11.7"
    assert manifest.environment["requirements"] == [
        "mlflow==2.14.1",
        "scikit-learn==1.5.0",
        "cloudpickle==3.0.0",
    ]
    assert manifest.metadata["mlflow"]["run_id"] == "1234abcd"
    loaded = load_model(tmp_path / "imported")
    assert loaded.input_example == example
    result = loaded.predict(features.to_dict(orient="records"))
    np.testing.assert_array_equal(result["predictions"], churn_pipeline.predict(features))


def test_import_tensor_signature_and_records_example(numeric_data: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    features, labels = numeric_data
    model = LogisticRegression().fit(features, labels)
    signature = {
        "inputs": [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}],
        "outputs": [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}],
    }
    source = tmp_path / "src"
    _write_mlflow_folder(
        source,
        model,
        signature=signature,
        example={"inputs": features[:2].tolist()},
        serialization="pickle",
    )
    manifest = import_mlflow_model(source, tmp_path / "dst")
    assert manifest.signature is not None
    assert manifest.signature.input_tensor is not None
    assert manifest.signature.input_names == ["0", "1", "2", "3"]
    loaded = load_model(tmp_path / "dst")
    assert loaded.input_example == {"instances": features[:2].tolist()}
    np.testing.assert_array_equal(loaded.predict(features)["predictions"], model.predict(features))


def test_import_without_signature_infers_it_from_the_example(
    customers: Any, churn_pipeline: Any, tmp_path: Path
) -> None:
    features = customers.drop(columns="churn")
    records = features.head(2).to_dict(orient="records")
    source = tmp_path / "src"
    _write_mlflow_folder(
        source, churn_pipeline, signature=None, example=records, serialization="pickle"
    )
    manifest = import_mlflow_model(source, tmp_path / "dst")
    assert manifest.signature is not None
    assert manifest.signature.input_names == list(features.columns)


def test_import_without_signature_or_example(
    customers: Any, churn_pipeline: Any, tmp_path: Path
) -> None:
    features = customers.drop(columns="churn")
    source = tmp_path / "src"
    _write_mlflow_folder(
        source, churn_pipeline, signature=None, example=None, serialization="pickle"
    )
    manifest = import_mlflow_model(source, tmp_path / "dst")
    assert manifest.signature is None
    assert not manifest.has_input_example
    loaded = load_model(tmp_path / "dst")
    result = loaded.predict(features.to_dict(orient="records"))  # a DataFrame, unchecked
    np.testing.assert_array_equal(result["predictions"], churn_pipeline.predict(features))


def test_import_errors(customers: Any, churn_pipeline: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no MLmodel"):
        import_mlflow_model(tmp_path, tmp_path / "dst")
    source = tmp_path / "src"
    _write_mlflow_folder(
        source, churn_pipeline, signature=None, example=None, serialization="pickle"
    )
    mlmodel = yaml.safe_load((source / "MLmodel").read_text())
    del mlmodel["flavors"]["sklearn"]
    (source / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(InvalidInput, match="flavors are python_function and only sklearn"):
        import_mlflow_model(source, tmp_path / "dst")
    mlmodel["flavors"]["sklearn"] = {"pickled_model": "../outside.pkl"}
    (source / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(InvalidInput, match="not a file inside the folder"):
        import_mlflow_model(source, tmp_path / "dst")
    mlmodel["flavors"]["sklearn"] = {"pickled_model": "model.pkl"}
    mlmodel["signature"] = {"inputs": json.dumps([{"type": "binary", "name": "b"}])}
    (source / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(InvalidInput, match="column 'b' has the type 'binary'"):
        import_mlflow_model(source, tmp_path / "dst")
    assert not (tmp_path / "dst").exists()


def test_import_a_folder_written_by_mlflow(
    customers: Any, churn_pipeline: Any, tmp_path: Path
) -> None:
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    features = customers.drop(columns="churn")
    source = tmp_path / "by-mlflow"
    mlflow_sklearn.save_model(churn_pipeline, str(source), input_example=features.head(3))
    manifest = import_mlflow_model(source, tmp_path / "imported")
    assert manifest.signature is not None
    assert manifest.signature.input_names == list(features.columns)
    loaded = load_model(tmp_path / "imported")
    assert loaded.input_example is not None
    result = loaded.predict(features)
    np.testing.assert_array_equal(result["predictions"], churn_pipeline.predict(features))
