"""Per-column casters compiled once from a ``ColumnSpec``: one fast function per value.

A caster returns the converted value or raises ``BadValue`` with the problem; the
converter adds the column name and row number to the message.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.models._payload import MISSING
from mlops.models._signature import ColumnSpec

__all__ = ["BadValue", "ColumnCaster", "compile_caster"]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_TRUE = frozenset({"true", "1", "t", "yes"})
_FALSE = frozenset({"false", "0", "f", "no"})
_OUTPUT_DTYPES: dict[str, np.dtype[Any]] = {
    "double": np.dtype(np.float64),
    "float": np.dtype(np.float32),
    "long": np.dtype(np.int64),
    "integer": np.dtype(np.int32),
    "boolean": np.dtype(bool),
    "string": np.dtype(object),
    "datetime": np.dtype("datetime64[us]"),
}


class BadValue(Exception):
    """One value does not fit its column; the message says why."""


@dataclass(frozen=True, slots=True)
class ColumnCaster:
    """How to convert one column: a per-value function and the output dtype."""

    spec: ColumnSpec
    cast: Callable[[Any], Any]
    dtype: np.dtype[Any]
    null: Any

    def cast_all(self, values: list[Any]) -> list[Any]:
        """Cast every value; the first failure raises ``BadValue`` with its row."""
        cast = self.cast
        try:
            return [cast(value) for value in values]
        except BadValue:
            for row, value in enumerate(values):
                try:
                    cast(value)
                except BadValue as error:
                    raise BadValue(f"row {row}: {error}") from None
            raise

    def to_array(self, values: list[Any]) -> np.ndarray[Any, Any]:
        """Cast values already checked by ``cast_all`` into the column's output dtype."""
        dtype = self.dtype
        if dtype.kind in "iub" and any(_is_null(value) for value in values):
            # Nulls in an optional integer or boolean column: floats with NaN, or objects.
            dtype = np.dtype(np.float64) if dtype.kind in "iu" else np.dtype(object)
        return np.array(values, dtype=dtype)


def compile_caster(spec: ColumnSpec, *, allow_unknown: bool) -> ColumnCaster:
    """The caster for one column."""
    null = _null_for(spec)
    factory = _FACTORIES[spec.type]
    cast = factory(spec, null, allow_unknown)
    dtype: np.dtype[Any] = _OUTPUT_DTYPES[spec.type]
    return ColumnCaster(spec, cast, dtype, null)


def _null_for(spec: ColumnSpec) -> Any:
    if spec.type in {"double", "float", "long", "integer"}:
        return math.nan
    if spec.type == "datetime":
        return np.datetime64("NaT", "us")
    return None


def _is_null(value: Any) -> bool:
    if value is None or value is MISSING:
        return True
    if type(value) is float:
        return value != value
    if isinstance(value, np.floating):
        return bool(np.isnan(value))
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return type(value).__name__ in {"NAType", "NaTType"}


def _null_or_raise(value: Any, spec: ColumnSpec, null: Any) -> Any:
    if spec.required:
        if value is MISSING:
            raise BadValue("the value is missing, and the column is required")
        raise BadValue("a value is required, got null")
    return null


def _describe(value: Any) -> str:
    if isinstance(value, (str, bool, int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def _number(spec: ColumnSpec, null: Any, allow_unknown: bool) -> Callable[[Any], Any]:
    required = spec.required

    def slow(value: Any) -> Any:
        if _is_null(value):
            return _null_or_raise(value, spec, null)
        if isinstance(value, (np.integer, np.floating)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise BadValue(f"expected a number, got {_describe(value)}")

    def cast(value: Any) -> Any:
        kind = type(value)
        if kind is int or (kind is float and (value == value or not required)):
            return value
        return slow(value)

    return cast


def _integer(spec: ColumnSpec, null: Any, allow_unknown: bool) -> Callable[[Any], Any]:
    low, high = _INT32 if spec.type == "integer" else _INT64

    def slow(value: Any) -> Any:
        if _is_null(value):
            return _null_or_raise(value, spec, null)
        number: Any = value
        if isinstance(value, str):
            text = value.strip()
            try:
                number = int(text)
            except ValueError:
                try:
                    number = float(text)
                except ValueError:
                    raise BadValue(f"expected an integer, got {value!r}") from None
        if isinstance(number, (bool, np.bool_)):
            raise BadValue(f"expected an integer, got {_describe(value)}")
        if isinstance(number, (float, np.floating)):
            if not float(number).is_integer():
                raise BadValue(f"expected an integer, got {_describe(value)}")
            number = int(number)
        if not isinstance(number, (int, np.integer)):
            raise BadValue(f"expected an integer, got {_describe(value)}")
        if not low <= int(number) <= high:
            raise BadValue(f"{number} is out of range for {spec.type} ({low}..{high})")
        return int(number)

    def cast(value: Any) -> Any:
        if type(value) is int and low <= value <= high:
            return value
        return slow(value)

    return cast


def _boolean(spec: ColumnSpec, null: Any, allow_unknown: bool) -> Callable[[Any], Any]:
    def slow(value: Any) -> Any:
        if _is_null(value):
            return _null_or_raise(value, spec, null)
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, (int, np.integer)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        raise BadValue(f"expected true or false, got {_describe(value)}")

    def cast(value: Any) -> Any:
        return value if type(value) is bool else slow(value)

    return cast


def _string(spec: ColumnSpec, null: Any, allow_unknown: bool) -> Callable[[Any], Any]:
    allowed = None if spec.categories is None or allow_unknown else frozenset(spec.categories)
    listing = ", ".join(repr(c) for c in spec.categories or ())

    def slow(value: Any) -> Any:
        if _is_null(value):
            return _null_or_raise(value, spec, null)
        if isinstance(value, str):
            text = str(value)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            text = str(int(value))
        else:
            raise BadValue(f"expected a string, got {_describe(value)}")
        if allowed is not None and text not in allowed:
            raise BadValue(f"unknown category {text!r}; allowed: {listing}")
        return text

    def cast(value: Any) -> Any:
        if type(value) is str and (allowed is None or value in allowed):
            return value
        return slow(value)

    return cast


def _datetime(spec: ColumnSpec, null: Any, allow_unknown: bool) -> Callable[[Any], Any]:
    def cast(value: Any) -> Any:
        if _is_null(value):
            return _null_or_raise(value, spec, null)
        if isinstance(value, np.datetime64):
            return value
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise BadValue(
                    f"expected an ISO 8601 date-time such as '2024-05-01T12:30:00', got {value!r}"
                ) from None
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            return np.datetime64(value.replace(tzinfo=None), "us")
        if isinstance(value, dt.date):
            return np.datetime64(value, "us")
        raise BadValue(f"expected an ISO 8601 date-time, got {_describe(value)}")

    return cast


_FACTORIES: dict[str, Callable[[ColumnSpec, Any, bool], Callable[[Any], Any]]] = {
    "double": _number,
    "float": _number,
    "long": _integer,
    "integer": _integer,
    "boolean": _boolean,
    "string": _string,
    "datetime": _datetime,
}
