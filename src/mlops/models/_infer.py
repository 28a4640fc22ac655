"""Infer a signature from an input example (and the model's output on it)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from mlops.errors import InvalidInput
from mlops.models._json import jsonable
from mlops.models._payload import MISSING, Payload, parse_payload, to_columns
from mlops.models._signature import (
    MAX_CATEGORIES,
    TENSOR_DTYPES,
    ColumnSpec,
    Signature,
    TensorSpec,
)

__all__ = [
    "describe_output",
    "example_to_json",
    "infer_signature",
    "is_null",
    "without_categories",
]


def infer_signature(
    input_example: Any, output: Any = None, *, reference_data: Any = None
) -> Signature:
    """A signature describing ``input_example`` and, when given, the model's ``output``.

    Input columns holding a null in the example are optional. String columns record their
    categories when they have at most 50 distinct values. ``reference_data`` (a larger
    sample, such as the training data) overrides the categories and optionality of the
    columns it holds.
    """
    inputs, input_tensor = _describe(input_example, "input example", one_d_name=None)
    outputs: tuple[ColumnSpec, ...] = ()
    output_tensor = None
    if output is not None:
        outputs, output_tensor = _describe(output, "output", one_d_name="prediction")
    if reference_data is not None and inputs:
        inputs = _apply_reference(inputs, reference_data)
    return Signature(inputs, outputs, input_tensor, output_tensor)


def without_categories(signature: Signature) -> Signature:
    """``signature`` with no category lists on its inputs (any string accepted)."""
    inputs = tuple(
        ColumnSpec(c.name, c.type, c.required) if c.categories is not None else c
        for c in signature.inputs
    )
    return Signature(inputs, signature.outputs, signature.input_tensor, signature.output_tensor)


def describe_output(output: Any) -> tuple[tuple[ColumnSpec, ...], TensorSpec | None]:
    """Output columns (and tensor) describing a model's predictions."""
    return _describe(output, "output", one_d_name="prediction")


def example_to_json(example: Any, signature: Signature) -> dict[str, Any]:
    """The input example as JSON that ``Signature.converter`` accepts.

    Tabular: ``{"columns": [...], "data": [[...], ...]}``; tensors: ``{"instances": [...]}``.
    """
    payload = _parse(example)
    if signature.input_tensor is not None and payload.kind in {"array", "split"}:
        array = payload.array if payload.array is not None else np.asarray(payload.rows)
        return {"instances": jsonable(array)}
    positional = signature.input_names if payload.kind in {"array", "split"} else None
    columns = to_columns(payload, positional)
    names = [name for name in signature.input_names if name in columns] or list(columns)
    values = [_as_list(columns[name]) for name in names]
    rows = [
        [None if value is MISSING else jsonable(value) for value in row]
        for row in zip(*values, strict=True)
    ]
    return {"columns": names, "data": rows}


def _parse(data: Any) -> Payload:
    if type(data) is list and data and isinstance(data[0], (list, tuple)):
        array = np.asarray(data)
        if array.dtype.kind in "biuf":
            return Payload("array", array=array)
    return parse_payload(data)


def _describe(
    data: Any, what: str, *, one_d_name: str | None
) -> tuple[tuple[ColumnSpec, ...], TensorSpec | None]:
    if data is None:
        raise InvalidInput(f"the {what} is None; give a DataFrame, records or an array")
    if isinstance(data, (np.ndarray, list)) and not _is_records(data):
        try:
            array = np.asarray(data)
        except ValueError as error:
            raise InvalidInput(f"the {what} is not a rectangular array: {error}") from None
        if array.dtype.kind in "biufM" or array.ndim != 2:
            return _describe_array(array, what, one_d_name)
    try:
        payload = _parse(data)
    except InvalidInput as error:
        raise InvalidInput(f"cannot infer a signature from the {what}: {error}") from None
    if payload.kind == "array":
        assert payload.array is not None
        return _describe_array(payload.array, what, one_d_name)
    columns = to_columns(payload)
    return tuple(_column_spec(name, values) for name, values in columns.items()), None


def _is_records(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict)


def _describe_array(
    array: np.ndarray[Any, Any], what: str, one_d_name: str | None
) -> tuple[tuple[ColumnSpec, ...], TensorSpec | None]:
    if array.ndim == 0 or array.size == 0:
        raise InvalidInput(f"the {what} is empty or a single value; give at least one row")
    dtype = str(array.dtype)
    if array.ndim == 1 and one_d_name is not None:
        return (_column_spec(one_d_name, array),), None
    if dtype not in TENSOR_DTYPES:
        if array.ndim == 2:
            width = array.shape[1]
            return tuple(_column_spec(str(i), array[:, i]) for i in range(width)), None
        raise InvalidInput(
            f"the {what} is an array of {dtype}; use one of {', '.join(TENSOR_DTYPES)}"
        )
    tensor = TensorSpec(dtype, (-1, *array.shape[1:]))
    if array.ndim != 2:
        return (), tensor
    column_type = TENSOR_DTYPES[dtype]
    columns = tuple(ColumnSpec(str(i), column_type) for i in range(array.shape[1]))
    return columns, tensor


def _column_spec(name: str, values: Any) -> ColumnSpec:
    dtype = getattr(values, "dtype", None)
    kind = getattr(dtype, "kind", "O")
    if kind in "biufM":
        column_type = _type_for_kind(kind, getattr(dtype, "itemsize", 8))
        return ColumnSpec(name, column_type, required=not _has_null(values))
    items = _as_list(values)
    column_type, has_null = _infer_values_type(name, items)
    categories = _categories(items) if column_type == "string" else None
    return ColumnSpec(name, column_type, required=not has_null, categories=categories)


def _type_for_kind(kind: str, itemsize: int) -> str:
    if kind == "b":
        return "boolean"
    if kind == "M":
        return "datetime"
    if kind == "f":
        return "double" if itemsize >= 8 else "float"
    if kind == "u":
        return "long" if itemsize >= 4 else "integer"
    return "long" if itemsize >= 8 else "integer"


def _has_null(values: Any) -> bool:
    isna = getattr(values, "isna", None)
    if isna is not None:
        return bool(isna().any())
    array = np.asarray(values)
    if array.dtype.kind == "f":
        return bool(np.isnan(array).any())
    if array.dtype.kind == "M":
        return bool(np.isnat(array).any())
    return False


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, list):
        return values
    tolist = getattr(values, "tolist", None)
    return list(tolist()) if tolist is not None else list(values)


def is_null(value: Any) -> bool:
    """None, NaN, NaT, pandas.NA or a missing record entry."""
    if value is None or value is MISSING:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in {"NAType", "NaTType"} or (
        isinstance(value, np.datetime64) and bool(np.isnat(value))
    )


def _value_type(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if isinstance(value, (int, np.integer)):
        return "long"
    if isinstance(value, (float, np.floating)):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (dt.date, np.datetime64)):
        return "datetime"
    raise InvalidInput(f"a {type(value).__name__}")


def _infer_values_type(name: str, values: Iterable[Any]) -> tuple[str, bool]:
    seen: set[str] = set()
    has_null = False
    for value in values:
        if is_null(value):
            has_null = True
            continue
        try:
            seen.add(_value_type(value))
        except InvalidInput as error:
            raise InvalidInput(
                f"column {name!r} holds {error}; signatures describe numbers, strings, "
                "booleans and date-times"
            ) from None
    if not seen:
        return "double", True
    if len(seen) == 1:
        return seen.pop(), has_null
    if seen == {"long", "double"}:
        return "double", has_null
    raise InvalidInput(
        f"column {name!r} mixes {', '.join(sorted(seen))} values; give one type per column"
    )


def _categories(values: Sequence[Any]) -> tuple[str, ...] | None:
    distinct: set[str] = set()
    for value in values:
        if isinstance(value, str):
            distinct.add(value)
            if len(distinct) > MAX_CATEGORIES:
                return None
    return tuple(sorted(distinct)) if distinct else None


def _apply_reference(columns: tuple[ColumnSpec, ...], reference: Any) -> tuple[ColumnSpec, ...]:
    names = [column.name for column in columns]
    try:
        reference_columns = to_columns(_parse(reference), names)
    except InvalidInput as error:
        raise InvalidInput(f"cannot read the reference data: {error}") from None
    updated = []
    for column in columns:
        values = reference_columns.get(column.name)
        if values is None:
            updated.append(column)
            continue
        items = _as_list(values)
        required = column.required and not any(is_null(value) for value in items)
        categories = _categories(items) if column.type == "string" else None
        updated.append(ColumnSpec(column.name, column.type, required, categories))
    return tuple(updated)
