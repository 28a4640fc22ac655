"""The input converter: validate a payload against a signature and build the model input.

Compiled once per signature (casters per column, names, dtypes) so that converting a
request costs little more than one function call per value. Columns the signature does
not name are ignored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops.errors import InvalidInput
from mlops.models._casters import BadValue, ColumnCaster, compile_caster
from mlops.models._json import require
from mlops.models._payload import MISSING, Payload, parse_payload
from mlops.models._signature import Signature

__all__ = ["UNKNOWN_CATEGORY_POLICIES", "Converter"]

#: What to do with a string outside a column's categories: reject it, or pass it on.
UNKNOWN_CATEGORY_POLICIES = ("error", "allow")


class Converter:
    """Turn a payload into the model input a signature describes.

    ``convert(data)`` accepts records, ``{"columns", "data"}``, ``{"instances"}``, a dict
    of column lists, a pandas DataFrame or a 2-D list/array, and returns a DataFrame with
    the signature's columns in order and dtypes (a NumPy array for tensor signatures, or
    with ``as_numpy=True`` for numeric ones). Errors are ``InvalidInput`` naming the
    column and row. Thread-safe: it holds no per-call state.
    """

    __slots__ = ("_casters", "_names", "_numeric", "_pairs", "signature", "unknown_category")

    def __init__(self, signature: Signature, *, unknown_category: str = "error") -> None:
        if unknown_category not in UNKNOWN_CATEGORY_POLICIES:
            raise InvalidInput(
                f"unknown_category must be one of {', '.join(UNKNOWN_CATEGORY_POLICIES)}, "
                f"not {unknown_category!r}"
            )
        self.signature = signature
        self.unknown_category = unknown_category
        allow = unknown_category == "allow"
        self._casters = tuple(compile_caster(c, allow_unknown=allow) for c in signature.inputs)
        self._names = tuple(caster.spec.name for caster in self._casters)
        self._pairs = tuple((caster.spec.name, caster.cast) for caster in self._casters)
        self._numeric = signature.is_numeric

    def __repr__(self) -> str:
        return f"Converter(columns={list(self._names)}, unknown_category={self.unknown_category!r})"

    def __call__(self, data: Any, *, as_numpy: bool = False) -> Any:
        if self.signature.input_tensor is not None:
            return self._tensor(data)
        if as_numpy:
            return self._numpy(data)
        columns = self._columns(data)
        pandas = require("pandas", "sklearn", "Converting model input to a DataFrame")
        return pandas.DataFrame(dict(zip(self._names, columns, strict=True)), copy=False)

    # -- numeric fast path ---------------------------------------------------------

    def _numpy(self, data: Any) -> np.ndarray[Any, Any]:
        if not self._numeric:
            other = next(c.spec for c in self._casters if c.dtype.kind not in "iufb")
            raise InvalidInput(
                f"as_numpy=True needs numeric inputs; column {other.name!r} is {other.type}"
            )
        if type(data) is list and data and all(type(row) is dict for row in data):
            pairs = self._pairs
            missing = MISSING
            try:
                rows = [[cast(row.get(name, missing)) for name, cast in pairs] for row in data]
            except BadValue:
                pass  # the column path below names the column and row
            else:
                return np.array(rows, dtype=np.float64)
        columns = self._columns(data)
        return np.column_stack([column.astype(np.float64) for column in columns])

    # -- tabular path --------------------------------------------------------------

    def _columns(self, data: Any) -> list[np.ndarray[Any, Any]]:
        payload = parse_payload(data)
        source, size = self._source(payload)
        converted = []
        for caster in self._casters:
            name = caster.spec.name
            values = source.get(name, MISSING)
            if values is MISSING:
                if caster.spec.required:
                    raise InvalidInput(
                        f"missing required column {name!r}; the model expects the columns "
                        f"{', '.join(self._names)}"
                    )
                converted.append(caster.to_array([caster.null] * size))
                continue
            try:
                converted.append(_convert_column(caster, values))
            except BadValue as error:
                raise InvalidInput(f"column {name!r} {error}") from None
        return converted

    def _source(self, payload: Payload) -> tuple[dict[str, Any], int]:
        names = self._names
        if payload.kind == "records":
            rows = payload.rows or []
            source = {
                name: [row.get(name, MISSING) for row in rows]
                for name in names
                if any(name in row for row in rows)
            }
            return source, len(rows)
        if payload.kind == "split":
            rows = payload.rows or []
            labels = payload.names
            if labels is None:
                _check_positional(len(rows[0]), names)
                labels = list(names)
                for index, row in enumerate(rows):
                    if len(row) != len(names):
                        raise InvalidInput(
                            f"row {index} has {len(row)} values; expected {len(names)}, "
                            "one per column"
                        )
            position = {label: i for i, label in enumerate(labels)}
            source = {
                name: [row[position[name]] for row in rows] for name in names if name in position
            }
            return source, len(rows)
        if payload.kind == "columns":
            columns = payload.columns or {}
            return columns, len(next(iter(columns.values())))
        if payload.kind == "frame":
            frame = payload.frame
            labels_by_name = {str(label): label for label in frame.columns}
            source = {name: frame[labels_by_name[name]] for name in names if name in labels_by_name}
            return source, len(frame)
        array = payload.array
        assert array is not None
        if array.ndim == 1 and len(names) > 1:
            array = array.reshape(1, -1)
        if array.ndim != 2:
            raise InvalidInput(
                f"expected rows of {len(names)} values, got an array of shape {list(array.shape)}"
            )
        _check_positional(array.shape[1], names)
        return {name: array[:, i] for i, name in enumerate(names)}, array.shape[0]

    # -- tensor path ---------------------------------------------------------------

    def _tensor(self, data: Any) -> np.ndarray[Any, Any]:
        spec = self.signature.input_tensor
        assert spec is not None
        dtype = np.dtype(spec.dtype)
        payload = parse_payload(data)
        if payload.kind == "array" or (payload.kind == "split" and payload.names is None):
            array = payload.array if payload.array is not None else _as_array(payload.rows)
            if array.dtype.kind not in "biuf":
                if self._casters and array.ndim == 2:
                    self._columns(array)  # raises with the column and row of a bad value
                try:
                    array = array.astype(dtype)
                except (TypeError, ValueError) as error:
                    raise InvalidInput(f"expected a numeric tensor of {dtype}: {error}") from None
        elif self._casters:
            array = np.column_stack(self._columns(data))
        else:
            raise InvalidInput(
                f"this model takes a tensor of shape {list(spec.shape)}; send a nested list "
                'or {"instances": [...]}'
            )
        if array.dtype != dtype:
            if dtype.kind in "iu" and array.dtype.kind == "f" and not _integral(array):
                raise InvalidInput(f"expected a tensor of {dtype}, got fractional numbers")
            array = array.astype(dtype)
        if array.ndim == len(spec.shape) - 1:
            array = array[np.newaxis, ...]  # a single instance without its batch dimension
        if array.ndim != len(spec.shape) or any(
            size not in (-1, actual) for size, actual in zip(spec.shape, array.shape, strict=True)
        ):
            raise InvalidInput(
                f"expected a tensor of shape {list(spec.shape)} (-1: any size), got "
                f"{list(array.shape)}"
            )
        return array


def _check_positional(width: int, names: tuple[str, ...]) -> None:
    if width != len(names):
        raise InvalidInput(
            f"rows have {width} values; expected {len(names)}, one per column ({', '.join(names)})"
        )


def _integral(array: np.ndarray[Any, Any]) -> bool:
    return bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)))


def _as_array(rows: Any) -> np.ndarray[Any, Any]:
    try:
        return np.asarray(rows)
    except ValueError as error:
        raise InvalidInput(f"the rows do not form a rectangular array: {error}") from None


def _convert_column(caster: ColumnCaster, values: Any) -> np.ndarray[Any, Any]:
    """Vectorized for NumPy/pandas columns of a matching dtype, per value otherwise."""
    if isinstance(values, list):
        return caster.to_array(caster.cast_all(values))
    array = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
    kind = array.dtype.kind
    target = caster.dtype.kind
    spec = caster.spec
    if kind in "iuf" and target in "iuf":
        nulls = np.isnan(array) if kind == "f" else None
        if nulls is not None and spec.required and nulls.any():
            raise BadValue(f"row {int(np.argmax(nulls))}: a value is required, got null")
        if target == "f":
            return array.astype(caster.dtype, copy=False)
        if nulls is not None:
            fractional = ~nulls & (array != np.floor(np.where(nulls, 0, array)))
            if fractional.any():
                row = int(np.argmax(fractional))
                raise BadValue(f"row {row}: expected an integer, got {array[row]!r}")
            if nulls.any():
                return array.astype(np.float64, copy=False)
        bounds = np.iinfo(caster.dtype)
        if array.size == 0 or (array.min() >= bounds.min and array.max() <= bounds.max):
            return array.astype(caster.dtype)
        return caster.to_array(caster.cast_all(array.tolist()))  # names the row out of range
    if kind == "b" and target == "b":
        return array.astype(bool, copy=False)
    if kind == "M" and target == "M":
        if spec.required and np.isnat(array).any():
            row = int(np.argmax(np.isnat(array)))
            raise BadValue(f"row {row}: a value is required, got null")
        return array.astype(caster.dtype)
    return caster.to_array(caster.cast_all(array.tolist()))
