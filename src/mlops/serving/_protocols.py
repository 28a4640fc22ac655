"""Request parsing and response shaping: native, MLflow scoring and Open Inference v2."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlops.errors import InvalidInput
from mlops.models import Signature
from mlops.serving._served import Prediction

__all__ = [
    "ENVELOPE_KEYS",
    "Protocol",
    "dumps",
    "dumps_text",
    "loads",
    "v2_metadata",
    "v2_tensor_datatype",
]

_orjson: Any
try:  # orjson when installed: several times faster on both sides
    import orjson as _orjson  # type: ignore[import-not-found,no-redef,unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

#: Keys of a JSON object that wraps or frames rows rather than being one record.
ENVELOPE_KEYS = frozenset(
    {"instances", "inputs", "params", "dataframe_split", "dataframe_records", "columns", "data"}
)
_WRAPPERS = ("instances", "inputs", "dataframe_records", "dataframe_split")

_V2_DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": object,
}
_COLUMN_DATATYPES = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "datetime": "BYTES",
}


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


if _orjson is not None:
    _OPTIONS = _orjson.OPT_SERIALIZE_NUMPY | _orjson.OPT_NON_STR_KEYS
    loads: Callable[[bytes], Any] = _orjson.loads

    def dumps(value: Any) -> bytes:
        """JSON bytes of a response body."""
        encoded: bytes = _orjson.dumps(value, default=_default, option=_OPTIONS)
        return encoded

else:
    _decode = json.JSONDecoder().decode
    _encode = json.JSONEncoder(separators=(",", ":"), default=_default).encode

    def loads(data: bytes) -> Any:
        """Parse a request body."""
        return _decode(data.decode("utf-8"))

    def dumps(value: Any) -> bytes:
        """JSON bytes of a response body."""
        return _encode(value).encode("utf-8")


def dumps_text(value: Any) -> str:
    """JSON text (for the prediction log)."""
    return dumps(value).decode("utf-8")


class Protocol:
    """How one API reads a request into a payload and writes the answer back.

    ``split`` returns the payload for the converter, the sticky key found in the body,
    and whether the body as sent is the payload (so the log can keep its bytes).
    """

    name = "native"

    def split(self, document: Any, sticky_field: str | None) -> tuple[Any, str | None, bool]:
        if sticky_field is None:
            return document, None, True
        if type(document) is dict:
            value = document.get(sticky_field)
            if value is None:
                return document, None, True
            if ENVELOPE_KEYS.intersection(document):
                trimmed = {k: v for k, v in document.items() if k != sticky_field}
                return trimmed, str(value), False
            return document, str(value), True  # one record: the converter skips the field
        if type(document) is list and document and type(document[0]) is dict:
            value = document[0].get(sticky_field)
            return document, None if value is None else str(value), True
        return document, None, True

    def payload(self, document: Any, signature: Signature | None) -> Any:
        """The converter's input; native and MLflow bodies already are one."""
        return document

    def render(
        self, prediction: Prediction, *, endpoint: str, version: int, route: str, request_id: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"predictions": prediction.predictions}
        if prediction.probabilities is not None:
            body["probabilities"] = prediction.probabilities
        body["version"] = version
        body["route"] = route
        body["request_id"] = request_id
        return body


class MLflowProtocol(Protocol):
    """MLflow's ``/invocations``: dataframe_split, dataframe_records, instances, inputs."""

    name = "mlflow"

    def split(self, document: Any, sticky_field: str | None) -> tuple[Any, str | None, bool]:
        if type(document) is dict and not any(key in document for key in _WRAPPERS):
            raise InvalidInput(
                "an MLflow scoring request holds one of dataframe_split, dataframe_records, "
                f"instances or inputs; got the keys {sorted(document)}"
            )
        return super().split(document, sticky_field)

    def render(
        self, prediction: Prediction, *, endpoint: str, version: int, route: str, request_id: str
    ) -> dict[str, Any]:
        return {"predictions": prediction.predictions}


class V2Protocol(Protocol):
    """Open Inference Protocol v2: named tensors in, named tensors out."""

    name = "v2"

    def split(self, document: Any, sticky_field: str | None) -> tuple[Any, str | None, bool]:
        if type(document) is not dict or not isinstance(document.get("inputs"), list):
            raise InvalidInput(
                'an inference request is an object with "inputs": a list of '
                '{"name", "shape", "datatype", "data"} tensors'
            )
        sticky = None
        parameters = document.get("parameters")
        if sticky_field is not None and isinstance(parameters, dict):
            value = parameters.get(sticky_field)
            sticky = None if value is None else str(value)
        return document, sticky, False

    def payload(self, document: Any, signature: Signature | None) -> Any:
        tensors = [_tensor(item, index) for index, item in enumerate(document["inputs"])]
        if not tensors:
            raise InvalidInput('"inputs" holds no tensors; send at least one')
        names = set() if signature is None else set(signature.input_names)
        if names and all(name in names for name, _ in tensors):
            columns: dict[str, Any] = {}
            for name, array in tensors:
                if array.ndim == 2 and array.shape[1] == 1:
                    array = array[:, 0]
                if array.ndim != 1:
                    raise InvalidInput(
                        f"input {name!r} has shape {list(array.shape)}; a named column is "
                        "a tensor of shape [rows] or [rows, 1]"
                    )
                columns[name] = array.tolist() if array.dtype == object else array
            return columns
        if len(tensors) == 1:
            return tensors[0][1]
        unknown = sorted(name for name, _ in tensors if name not in names)
        raise InvalidInput(
            f"inputs {unknown} are not columns of the model; send one tensor of rows, or one "
            f"tensor per column named {sorted(names)}"
        )

    def render(
        self, prediction: Prediction, *, endpoint: str, version: int, route: str, request_id: str
    ) -> dict[str, Any]:
        outputs = [_output("predict", prediction.predictions)]
        if prediction.probabilities is not None:
            outputs.append(_output("predict_proba", prediction.probabilities))
        return {
            "model_name": endpoint,
            "model_version": str(version),
            "id": request_id,
            "outputs": outputs,
        }


def _tensor(item: Any, index: int) -> tuple[str, np.ndarray[Any, Any]]:
    if not isinstance(item, dict):
        raise InvalidInput(f"input {index} is not an object with name, shape, datatype, data")
    name, shape, datatype, data = (item.get(k) for k in ("name", "shape", "datatype", "data"))
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"input {index} has no name")
    dtype = _V2_DTYPES.get(str(datatype).upper())
    if dtype is None:
        raise InvalidInput(
            f"input {name!r} has the datatype {datatype!r}; use one of {', '.join(_V2_DTYPES)}"
        )
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise InvalidInput(f"input {name!r} needs a shape: a list of sizes such as [2, 4]")
    try:
        array = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"input {name!r}: its data are not {datatype}: {error}") from None
    size = int(np.prod(shape)) if shape else 1
    if array.size != size:
        raise InvalidInput(
            f"input {name!r} holds {array.size} values; its shape {shape} needs {size}"
        )
    return name, array.reshape(shape)


def _output(name: str, values: Any) -> dict[str, Any]:
    array = np.asarray(values)
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": v2_tensor_datatype(array.dtype),
        "data": array.reshape(-1).tolist(),
    }


def v2_tensor_datatype(dtype: np.dtype[Any]) -> str:
    """The Open Inference Protocol datatype of a NumPy dtype."""
    if dtype.kind == "b":
        return "BOOL"
    if dtype.kind in "iuf":
        prefix = {"i": "INT", "u": "UINT", "f": "FP"}[dtype.kind]
        return f"{prefix}{dtype.itemsize * 8}"
    return "BYTES"


def v2_metadata(name: str, versions: Sequence[int], signature: Signature | None) -> dict[str, Any]:
    """A model's metadata: its versions and its input and output tensors."""
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    if signature is not None:
        tensor = signature.input_tensor
        if tensor is not None and not signature.inputs:
            inputs.append(_spec("input", v2_tensor_datatype(np.dtype(tensor.dtype)), tensor.shape))
        inputs.extend(_spec(c.name, _COLUMN_DATATYPES[c.type], (-1,)) for c in signature.inputs)
        outputs.extend(_spec(c.name, _COLUMN_DATATYPES[c.type], (-1,)) for c in signature.outputs)
        if signature.output_tensor is not None and not outputs:
            out = signature.output_tensor
            outputs.append(_spec("predict", v2_tensor_datatype(np.dtype(out.dtype)), out.shape))
    if not outputs:
        outputs.append(_spec("predict", "BYTES", (-1,)))
    return {
        "name": name,
        "versions": [str(version) for version in versions],
        "platform": "mlops",
        "inputs": inputs,
        "outputs": outputs,
    }


def _spec(name: str, datatype: str, shape: Sequence[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": list(shape)}


NATIVE = Protocol()
MLFLOW = MLflowProtocol()
V2 = V2Protocol()
