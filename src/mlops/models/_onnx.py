"""The onnx flavor: an ONNX graph run with onnxruntime on the CPU."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mlops.errors import InvalidInput
from mlops.models._flavor import SaveContext
from mlops.models._json import require
from mlops.models._manifest import ModelManifest, package_file
from mlops.models._payload import is_dataframe

__all__ = ["OnnxFlavor"]

_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}
_PROBABILITY_NAMES = ("probabilities", "output_probability", "probability")


class OnnxFlavor:
    """An ``onnx.ModelProto`` or a path to a ``.onnx`` file."""

    name = "onnx"
    extra = "onnx"
    requires = ("onnx", "onnxruntime")
    _FILE = "model.onnx"

    def can_handle(self, obj: Any) -> bool:
        if isinstance(obj, (str, os.PathLike)):
            return str(obj).endswith(".onnx") and Path(obj).is_file()
        onnx = sys.modules.get("onnx")
        return onnx is not None and isinstance(obj, onnx.ModelProto)

    def save(self, obj: Any, folder: Path, context: SaveContext) -> list[str]:
        onnx = require("onnx", self.extra, "Saving an ONNX model")
        if isinstance(obj, (str, os.PathLike)):
            data = Path(obj).read_bytes()
        elif isinstance(obj, onnx.ModelProto):
            data = obj.SerializeToString()
        else:
            raise InvalidInput(f"the onnx flavor takes a ModelProto or a path, not {type(obj)}")
        try:
            onnx.load_model_from_string(data)
        except Exception as error:
            raise InvalidInput(f"the ONNX model does not parse: {error}") from error
        (folder / self._FILE).write_bytes(data)
        context.options.update(model_file=self._FILE, onnx_version=onnx.__version__)
        return [self._FILE]

    def load(self, folder: Path, manifest: ModelManifest) -> Any:
        ort = require("onnxruntime", self.extra, "Loading an ONNX model")
        path = package_file(folder, manifest, manifest.flavor_options.get("model_file", self._FILE))
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def predict(self, native: Any, inputs: Any) -> dict[str, Any]:
        feed = _feed(native.get_inputs(), inputs)
        names = [output.name for output in native.get_outputs()]
        outputs = dict(zip(names, native.run(None, feed), strict=True))
        label = "label" if "label" in outputs else names[0]
        predictions = np.asarray(outputs[label])
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions.ravel()
        result: dict[str, Any] = {"predictions": predictions}
        for name in (*_PROBABILITY_NAMES, *names[1:2]):
            if name in outputs and name != label:
                result["probabilities"] = _as_matrix(outputs[name])
                break
        return result

    def libraries(self) -> list[str]:
        return ["onnx", "onnxruntime"]


def _feed(specs: list[Any], inputs: Any) -> dict[str, Any]:
    if isinstance(inputs, dict):
        return {spec.name: _cast(inputs[spec.name], spec) for spec in specs}
    if is_dataframe(inputs):
        if len(specs) == 1:
            return {specs[0].name: _cast(inputs.to_numpy(), specs[0])}
        missing = [spec.name for spec in specs if spec.name not in inputs.columns]
        if missing:
            raise InvalidInput(f"the ONNX model needs the input columns {missing}")
        return {
            spec.name: _cast(inputs[spec.name].to_numpy().reshape(-1, 1), spec) for spec in specs
        }
    array = np.asarray(inputs)
    if len(specs) == 1:
        return {specs[0].name: _cast(array, specs[0])}
    if array.ndim == 2 and array.shape[1] == len(specs):
        return {spec.name: _cast(array[:, [i]], spec) for i, spec in enumerate(specs)}
    raise InvalidInput(
        f"the ONNX model has {len(specs)} inputs ({', '.join(s.name for s in specs)}); "
        "give a DataFrame with those columns or a dict of arrays"
    )


def _cast(values: Any, spec: Any) -> Any:
    dtype = _TYPES.get(spec.type)
    array = np.asarray(values)
    if dtype is None:
        return array
    if dtype is np.object_:
        return array.astype(str).astype(object)
    return array.astype(dtype, copy=False)


def _as_matrix(values: Any) -> Any:
    if isinstance(values, list) and values and isinstance(values[0], dict):
        keys = sorted(values[0])
        return np.array([[row[key] for key in keys] for row in values])
    return np.asarray(values)
