"""Import a scikit-learn model folder written by MLflow, without importing mlflow.

The model file is copied byte for byte (nothing is unpickled during the import); the
MLflow signature, requirements and input example are converted to their mlops forms.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from mlops.errors import InvalidInput, MissingDependency, NotFound
from mlops.models._infer import example_to_json, infer_signature, without_categories
from mlops.models._json import canonical_json, jsonable, require
from mlops.models._manifest import INPUT_EXAMPLE_FILE, ModelManifest
from mlops.models._package import write_package
from mlops.models._signature import (
    COLUMN_TYPES,
    ColumnSpec,
    Signature,
    TensorSpec,
    column_type_for_dtype,
)

__all__ = ["import_mlflow_model"]

_FORMATS = {"cloudpickle": "model.pkl", "pickle": "model.pkl", "skops": "model.skops"}
_PROVENANCE = ("run_id", "model_uuid", "model_id", "utc_time_created", "mlflow_version")


def import_mlflow_model(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> ModelManifest:
    """Write an mlops package at ``dst`` from the MLflow scikit-learn model folder ``src``.

    Reads ``MLmodel`` (the sklearn flavor, signature, input-example info), the pickled
    or skops model file, ``requirements.txt`` (or ``python_env.yaml``/``conda.yaml`` for
    the Python version) and ``input_example.json``. Raises ``NotFound`` when ``src`` has
    no MLmodel and ``InvalidInput`` for a model that is not scikit-learn.
    """
    source = Path(src)
    mlmodel_path = source / "MLmodel"
    if not mlmodel_path.is_file():
        raise NotFound(f"{source} is not an MLflow model folder: it has no MLmodel file")
    yaml = require("yaml", "sklearn", "Reading an MLflow MLmodel file")
    try:
        mlmodel = yaml.safe_load(mlmodel_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise InvalidInput(f"{mlmodel_path} is not valid YAML: {error}") from None
    if not isinstance(mlmodel, dict):
        raise InvalidInput(f"{mlmodel_path} does not hold a mapping")
    flavors = mlmodel.get("flavors") or {}
    sklearn_flavor = flavors.get("sklearn")
    if not isinstance(sklearn_flavor, dict):
        raise InvalidInput(
            f"{source} is not a scikit-learn MLflow model; its flavors are "
            f"{', '.join(sorted(flavors)) or 'none'} and only sklearn can be imported"
        )
    serialization = str(sklearn_flavor.get("serialization_format") or "cloudpickle")
    if serialization not in _FORMATS:
        raise InvalidInput(
            f"{source}: unknown serialization_format {serialization!r}; "
            f"expected one of {', '.join(_FORMATS)}"
        )
    model_file = _inside(source, str(sklearn_flavor.get("pickled_model") or "model.pkl"))
    signature = _signature(mlmodel.get("signature"), source)
    example = _input_example(source, mlmodel.get("saved_input_example_info"))
    if signature is None and example is not None:
        signature = without_categories(infer_signature(example))
    metadata: dict[str, Any] = dict(mlmodel.get("metadata") or {})
    metadata["mlflow"] = {key: str(mlmodel[key]) for key in _PROVENANCE if mlmodel.get(key)}
    environment = _environment(source, flavors.get("python_function") or {})

    def populate(folder: Path) -> dict[str, Any]:
        target = _FORMATS[serialization]
        shutil.copyfile(model_file, folder / target)
        options: dict[str, Any] = {
            "serialization": serialization,
            "model_file": target,
            "sklearn_version": str(sklearn_flavor.get("sklearn_version") or ""),
            "imported_from": "mlflow",
        }
        if serialization == "skops":
            options["trusted_types"] = _skops_trusted(folder / target)
        if example is not None and signature is not None:
            stored = example_to_json(example, signature)
            (folder / INPUT_EXAMPLE_FILE).write_text(canonical_json(stored), encoding="utf-8")
        return {
            "flavor": "sklearn",
            "flavor_options": options,
            "signature": signature,
            "environment": environment,
            "metadata": jsonable(metadata),
            "has_input_example": example is not None and signature is not None,
            "has_reference_profile": False,
        }

    return write_package(Path(dst), populate)


def _inside(source: Path, relative: str) -> Path:
    path = source / relative
    resolved = path.resolve()
    if path.is_symlink() or not resolved.is_relative_to(source.resolve()):
        raise InvalidInput(f"{source}: the model file {relative!r} is not a file inside the folder")
    if not resolved.is_file():
        raise NotFound(f"{source}: the model file {relative!r} named in MLmodel is missing")
    return resolved


def _signature(data: Any, source: Path) -> Signature | None:
    if not isinstance(data, dict) or not data.get("inputs"):
        return None
    try:
        inputs, input_tensor = _specs(json.loads(data["inputs"]), "input")
        outputs, output_tensor = (
            _specs(json.loads(data["outputs"]), "output") if data.get("outputs") else ((), None)
        )
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"{source}: the MLmodel signature does not parse: {error}") from None
    return Signature(inputs, outputs, input_tensor, output_tensor)


def _specs(items: Any, role: str) -> tuple[tuple[ColumnSpec, ...], TensorSpec | None]:
    if not isinstance(items, list) or not items:
        raise InvalidInput(f"the MLflow {role} schema is not a non-empty list")
    tensors = [item for item in items if item.get("type") == "tensor"]
    if tensors:
        if len(items) != 1:
            raise InvalidInput(f"MLflow {role} schemas with several tensors are not supported")
        spec = tensors[0]["tensor-spec"]
        tensor = TensorSpec(str(spec["dtype"]), tuple(spec["shape"]))
        column_type = column_type_for_dtype(tensor.dtype)
        if len(tensor.shape) == 1 and role == "output":
            return (ColumnSpec("prediction", column_type),), None
        if len(tensor.shape) != 2 or tensor.shape[1] == -1:
            return (), tensor
        return tuple(ColumnSpec(str(i), column_type) for i in range(tensor.shape[1])), tensor
    columns = []
    for index, item in enumerate(items):
        column_type = item.get("type")
        if column_type not in COLUMN_TYPES:
            raise InvalidInput(
                f"MLflow {role} column {item.get('name', index)!r} has the type "
                f"{column_type!r}, which mlops signatures do not support"
            )
        name = str(item.get("name", "prediction" if role == "output" else index))
        columns.append(ColumnSpec(name, column_type, required=bool(item.get("required", True))))
    return tuple(columns), None


def _input_example(source: Path, info: Any) -> Any:
    if not isinstance(info, dict):
        return None
    path = _inside(source, str(info.get("artifact_path") or "input_example.json"))
    try:
        example = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise InvalidInput(f"{path} is not valid JSON: {error}") from None
    if isinstance(example, dict):
        for key in ("dataframe_split", "dataframe_records", "instances", "inputs"):
            if key in example:
                example = example[key]
                break
    if isinstance(example, dict) and "columns" in example:
        example = {key: example[key] for key in ("columns", "data") if key in example}
    return example


def _environment(source: Path, pyfunc: dict[str, Any]) -> dict[str, Any]:
    requirements: list[str] = []
    requirements_file = source / "requirements.txt"
    if requirements_file.is_file():
        for line in requirements_file.read_text(encoding="utf-8").splitlines():
            text = line.split("#", 1)[0].strip()
            if text and not text.startswith("-"):
                requirements.append(text)
    return {
        "python": _python_version(source) or pyfunc.get("python_version"),
        "platform": None,
        "requirements": requirements,
        "source": "mlflow",
    }


def _python_version(source: Path) -> str | None:
    for name, pattern in (
        ("python_env.yaml", r"^python:\s*['\"]?([0-9][0-9.]*)"),
        ("conda.yaml", r"^\s*-\s*python\s*=+\s*([0-9][0-9.]*)"),
    ):
        path = source / name
        if path.is_file():
            match = re.search(pattern, path.read_text(encoding="utf-8"), re.MULTILINE)
            if match:
                return match.group(1)
    return None


def _skops_trusted(path: Path) -> list[str]:
    """Every type the skops file names beyond skops' defaults: trusted as the folder is."""
    try:
        skops_io = require("skops.io", "sklearn", "Importing a skops model")
    except MissingDependency:
        raise MissingDependency(
            "Importing an MLflow model saved with skops needs the 'skops' package, which is "
            "not installed; install it with: pip install skops"
        ) from None
    return sorted(skops_io.get_untrusted_types(file=path))
