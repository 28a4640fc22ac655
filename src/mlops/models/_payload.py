"""Recognize the shape of a prediction payload: records, split, columns, frame or array."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.errors import InvalidInput

__all__ = [
    "ACCEPTED_SHAPES",
    "MISSING",
    "Payload",
    "is_dataframe",
    "parse_payload",
    "to_columns",
    "untyped_input",
]

ACCEPTED_SHAPES = (
    'records [{"col": value, ...}, ...], {"columns": [...], "data": [[...], ...]}, '
    '{"instances": [...]}, {"col": [values], ...}, a pandas DataFrame or a 2-D list/array'
)
_SPLIT_KEYS = frozenset({"columns", "data", "rows", "index"})
_WRAPPER_KEYS = ("instances", "inputs", "dataframe_split", "dataframe_records")


@dataclass(slots=True)
class Payload:
    """A payload in one of five kinds.

    ``records``: ``rows`` is a list of dicts. ``split``: ``rows`` is a list of sequences
    and ``names`` their column names (None: positional, in signature order).
    ``columns``: ``columns`` maps names to sequences. ``frame``: ``frame`` is a pandas
    DataFrame. ``array``: ``array`` is a NumPy array.
    """

    kind: str
    rows: list[Any] | None = None
    names: list[str] | None = None
    columns: dict[str, Any] | None = None
    frame: Any = None
    array: np.ndarray[Any, Any] | None = None


def is_dataframe(data: Any) -> bool:
    """Whether ``data`` is a pandas DataFrame, without importing pandas."""
    kind = type(data)
    return kind.__name__ == "DataFrame" and kind.__module__.startswith("pandas")


def parse_payload(data: Any) -> Payload:
    """Tell which of the accepted shapes ``data`` has; raise ``InvalidInput`` otherwise."""
    kind = type(data)
    if kind is list:
        return _parse_list(data)
    if kind is dict:
        return _parse_dict(data)
    if isinstance(data, np.ndarray):
        return Payload("array", array=data)
    if is_dataframe(data):
        return Payload("frame", frame=data)
    if kind.__name__ == "Series" and kind.__module__.startswith("pandas"):
        return Payload("frame", frame=data.to_frame())
    if isinstance(data, tuple):
        return _parse_list(list(data))
    if isinstance(data, Mapping):
        return _parse_dict(dict(data))
    raise InvalidInput(f"cannot read a {kind.__name__} as model input; send {ACCEPTED_SHAPES}")


def _parse_list(data: list[Any]) -> Payload:
    if not data:
        raise InvalidInput("the payload holds no rows; send at least one")
    first = data[0]
    if type(first) is dict or isinstance(first, Mapping):
        for index, row in enumerate(data):
            if not isinstance(row, Mapping):
                raise InvalidInput(
                    f"row {index} is a {type(row).__name__}; in a list of records every "
                    "row must be an object mapping column names to values"
                )
        return Payload("records", rows=data)
    if isinstance(first, (list, tuple)):
        return Payload("split", rows=data, names=None)
    return Payload("array", array=_as_array(data))


def _parse_dict(data: dict[str, Any]) -> Payload:
    if not data:
        raise InvalidInput(f"the payload is an empty object; send {ACCEPTED_SHAPES}")
    for key in _WRAPPER_KEYS:
        if key in data:
            if len(data) > 1 and not (key == "inputs" and set(data) <= {"inputs", "params"}):
                others = sorted(set(data) - {key})
                raise InvalidInput(f"a payload with {key!r} cannot also hold {others}")
            return parse_payload(data[key])
    if "columns" in data and set(data) <= _SPLIT_KEYS:
        return _parse_split(data)
    values = list(data.values())
    if all(isinstance(value, (list, tuple, np.ndarray)) for value in values):
        columns = {str(name): value for name, value in data.items()}
        lengths = {len(value) for value in values}
        if len(lengths) > 1:
            sizes = ", ".join(f"{name!r}: {len(value)}" for name, value in columns.items())
            raise InvalidInput(f"columns have different lengths ({sizes}); give equal lengths")
        if lengths == {0}:
            raise InvalidInput("the payload holds no rows; send at least one")
        return Payload("columns", columns=columns)
    if any(isinstance(value, (list, tuple, np.ndarray)) for value in values):
        raise InvalidInput(
            "the payload mixes lists and single values; send one record of single values "
            "or one list per column"
        )
    return Payload("records", rows=[data])


def _parse_split(data: dict[str, Any]) -> Payload:
    names = data["columns"]
    rows = data.get("data", data.get("rows"))
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise InvalidInput('"columns" must be a list of column names')
    if not isinstance(rows, (list, tuple)) or not rows:
        raise InvalidInput('"data" must be a non-empty list of rows, one list per row')
    for index, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != len(names):
            got = len(row) if isinstance(row, (list, tuple)) else type(row).__name__
            raise InvalidInput(
                f"row {index} has {got} values; expected {len(names)}, one per column"
            )
    return Payload("split", rows=list(rows), names=list(names))


def _as_array(data: Any) -> np.ndarray[Any, Any]:
    try:
        return np.asarray(data)
    except ValueError as error:
        raise InvalidInput(f"the rows do not form a rectangular array: {error}") from None


def to_columns(payload: Payload, positional: Sequence[str] | None = None) -> dict[str, Any]:
    """The payload as a mapping of column name to a sequence of values.

    Positional rows and 2-D arrays take the names in ``positional`` (default "0".."n-1").
    """
    if payload.kind == "columns":
        assert payload.columns is not None
        return payload.columns
    if payload.kind == "frame":
        frame = payload.frame
        return {str(name): frame[name] for name in frame.columns}
    if payload.kind == "records":
        assert payload.rows is not None
        names: dict[str, None] = {}
        for row in payload.rows:
            names.update(dict.fromkeys(str(key) for key in row))
        missing = MISSING
        return {name: [row.get(name, missing) for row in payload.rows] for name in names}
    if payload.kind == "split":
        assert payload.rows is not None
        width = len(payload.rows[0])
        labels = payload.names or _positional_names(width, positional)
        _check_width(payload.rows, len(labels))
        return {name: [row[i] for row in payload.rows] for i, name in enumerate(labels)}
    array = payload.array
    assert array is not None
    if array.ndim != 2:
        raise InvalidInput(
            f"expected a 2-D array of rows and columns, got {array.ndim} dimension(s) "
            f"with shape {list(array.shape)}"
        )
    labels = _positional_names(array.shape[1], positional)
    return {name: array[:, i] for i, name in enumerate(labels)}


def _positional_names(width: int, positional: Sequence[str] | None) -> list[str]:
    if positional is None:
        return [str(i) for i in range(width)]
    if width != len(positional):
        raise InvalidInput(
            f"rows have {width} values; expected {len(positional)}, one per column "
            f"({', '.join(positional)})"
        )
    return list(positional)


def _check_width(rows: list[Any], width: int) -> None:
    for index, row in enumerate(rows):
        if not isinstance(row, (list, tuple, np.ndarray)) or len(row) != width:
            got = len(row) if isinstance(row, (list, tuple, np.ndarray)) else 1
            raise InvalidInput(f"row {index} has {got} values; expected {width}, one per column")


class _Missing:
    """Marks a value absent from a record (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "<missing>"


#: The value ``to_columns`` puts where a record lacks a column.
MISSING = _Missing()


def untyped_input(data: Any) -> Any:
    """A payload as a DataFrame (named columns) or an array, without a signature to check.

    Anything that is not a recognized payload is returned as is.
    """
    try:
        payload = parse_payload(data)
    except InvalidInput:
        return data
    if payload.kind == "frame":
        return payload.frame
    if payload.kind == "array" or (payload.kind == "split" and payload.names is None):
        return payload.array if payload.array is not None else np.asarray(payload.rows)
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    if payload.kind == "records":
        return pd.DataFrame([dict(row) for row in payload.rows or []])
    if payload.kind == "split":
        return pd.DataFrame(payload.rows, columns=payload.names)
    return pd.DataFrame(payload.columns)
