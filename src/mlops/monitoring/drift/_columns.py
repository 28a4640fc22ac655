"""Read drift inputs: tables of many shapes to named columns, columns to typed samples.

A column side (reference or current) becomes one of four things: numbers (sorted,
finite float64), labels (a value → count mapping), nothing (every value null) or an
unsupported type (dates, times). Nulls, NaN and ±inf are dropped and counted.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mlops.errors import InvalidInput
from mlops.models._infer import is_null
from mlops.models._payload import is_dataframe, parse_payload, to_columns

__all__ = [
    "ColumnKind",
    "EmptySide",
    "FloatArray",
    "LabelSide",
    "NumericSide",
    "Side",
    "Table",
    "UnsupportedSide",
    "read_side",
    "read_table",
    "read_tables",
]

ColumnKind = Literal["numeric", "categorical"]
FloatArray = np.ndarray[tuple[int], np.dtype[np.float64]]
Role = Literal["reference", "current"]

_NUMBER_TYPES = (int, float, np.integer, np.floating)
_NULL_TYPE_NAMES = frozenset({"NoneType", "NAType", "NaTType", "_Missing"})
_TEMPORAL_TYPES = (dt.date, dt.time, dt.timedelta, np.datetime64, np.timedelta64)
#: Counting object columns by identity (see ``_count_by_identity``): the smallest column
#: worth it, the rows sampled first, and the limits beyond which plain hashing is used.
_IDENTITY_MIN_ROWS = 4096
_IDENTITY_HEAD = 4096
_IDENTITY_MAX_DISTINCT = 4096
_IDENTITY_MAX_LOOKUPS = 16


@dataclass(frozen=True, slots=True)
class NumericSide:
    """Finite numbers, sorted ascending; ``integer`` when the source had an integer dtype."""

    values: FloatArray
    integer: bool
    nulls: int

    @property
    def rows(self) -> int:
        return int(self.values.size)

    def distinct(self) -> int:
        """How many distinct values (the array is sorted, so one pass)."""
        if self.values.size == 0:
            return 0
        return int(np.count_nonzero(self.values[1:] != self.values[:-1])) + 1

    def distinct_exceeds(self, cap: int) -> bool:
        """Whether there are more than ``cap`` distinct values; a few evenly spaced probes
        of the sorted array usually answer without a full pass."""
        size = self.values.size
        if size <= cap:
            return False
        probes = self.values[np.linspace(0, size - 1, min(size, 4 * cap + 4)).astype(np.intp)]
        if int(np.count_nonzero(probes[1:] != probes[:-1])) + 1 > cap:
            return True
        return self.distinct() > cap

    def as_labels(self) -> LabelSide:
        """The same values counted as categories (integers stay integers)."""
        values, counts = run_lengths(self.values)
        keys: list[Any] = values.astype(np.int64).tolist() if self.integer else values.tolist()
        return LabelSide(dict(zip(keys, counts.tolist(), strict=True)), self.nulls)


@dataclass(frozen=True, slots=True)
class LabelSide:
    """Category labels and how often each occurs."""

    counts: dict[Any, int]
    nulls: int

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def distinct(self) -> int:
        return len(self.counts)

    def distinct_exceeds(self, cap: int) -> bool:
        return len(self.counts) > cap

    @property
    def numeric_labels(self) -> bool:
        """Every label is a number (not a boolean): the column may be compared as numbers."""
        return all(_is_number(key) for key in self.counts)

    @property
    def boolean(self) -> bool:
        return all(isinstance(key, (bool, np.bool_)) for key in self.counts)

    def as_numbers(self) -> NumericSide:
        keys = np.array([float(key) for key in self.counts], dtype=np.float64)
        counts = np.fromiter(self.counts.values(), dtype=np.int64, count=len(self.counts))
        order = np.argsort(keys, kind="stable")
        values = np.repeat(keys[order], counts[order])
        integer = all(isinstance(key, (int, np.integer, bool, np.bool_)) for key in self.counts)
        return NumericSide(values, integer, self.nulls)


@dataclass(frozen=True, slots=True)
class EmptySide:
    """No non-null value at all."""

    nulls: int
    rows: int = 0


@dataclass(frozen=True, slots=True)
class UnsupportedSide:
    """Values drift tests cannot compare (dates, times, durations, complex numbers)."""

    type_name: str
    nulls: int = 0
    rows: int = 0


Side = NumericSide | LabelSide | EmptySide | UnsupportedSide


@dataclass(frozen=True, slots=True)
class Table:
    """Named columns of one input; each column is whatever the input holds (a pandas
    Series, a NumPy array, a list) and is read lazily by ``read_side``."""

    names: tuple[str, ...]
    columns: Mapping[str, Any]
    rows: int


def read_table(
    data: Any, role: Role, *, names: Sequence[str] | None, fallback: Sequence[str] | None
) -> Table:
    """Name the columns of ``data``: a DataFrame, a dict of columns, records, a 2-D array
    (named by ``names``, else by ``fallback`` when the widths match) or a model's reference
    profile (its ``sample`` is used)."""
    if isinstance(data, Mapping) and "format_version" in data and "sample" in data:
        sample = data["sample"]
        if not isinstance(sample, Mapping) or not sample.get("data"):
            raise InvalidInput(
                f"the {role} profile holds no sample rows; rebuild it with "
                "build_reference_profile(data, sample_size=1000)"
            )
        data = {"columns": sample["columns"], "data": sample["data"]}
    if is_dataframe(data):
        if len(set(map(str, data.columns))) != len(data.columns):
            raise InvalidInput(f"the {role} DataFrame has duplicate column names; rename them")
        if len(data) == 0 or len(data.columns) == 0:
            raise InvalidInput(f"the {role} data is empty; give at least one row and column")
    try:
        payload = parse_payload(data)
    except InvalidInput as error:
        raise InvalidInput(f"cannot read the {role} data: {error}") from None
    if payload.kind == "records":
        assert payload.rows is not None
        keys: dict[str, None] = {}
        for row in payload.rows:
            keys.update(dict.fromkeys(map(str, row)))
        table: dict[str, Any] = {name: [row.get(name) for row in payload.rows] for name in keys}
    else:
        positional = _array_names(payload.array, names, fallback, role)
        try:
            table = to_columns(payload, positional)
        except InvalidInput as error:
            raise InvalidInput(f"cannot read the {role} data: {error}") from None
    if not table:
        raise InvalidInput(f"the {role} data has no columns")
    rows = len(next(iter(table.values())))
    if rows == 0:
        raise InvalidInput(f"the {role} data has no rows; give at least one")
    return Table(tuple(table), table, rows)


def _array_names(
    array: Any, names: Sequence[str] | None, fallback: Sequence[str] | None, role: Role
) -> Sequence[str] | None:
    if array is None or getattr(array, "ndim", 0) != 2:
        return names
    width = array.shape[1]
    if names is not None and len(names) == width:
        return names
    if fallback is not None and len(fallback) == width:
        return fallback
    if names is None and fallback is None:
        return None
    given = names if names is not None else fallback
    raise InvalidInput(
        f"the {role} array has {width} columns but {len(given or ())} names were given; "
        "pass columns=[...] with one name per array column"
    )


def read_side(values: Any) -> Side:
    """Read one side of one column without per-row Python for numeric and pandas data."""
    if hasattr(values, "to_numpy") and hasattr(values, "dtype"):
        return _read_series(values)
    if isinstance(values, np.ndarray):
        return _read_array(values.reshape(-1))
    items = list(values)
    if not items:
        return EmptySide(0)
    array = np.asarray(items) if _plain_numbers(items) else None
    if array is not None and array.dtype.kind in "iuf":
        return _read_array(array)
    return _read_objects(items)


def _plain_numbers(items: list[Any]) -> bool:
    kinds = set(map(type, items))
    return all(issubclass(kind, _NUMBER_TYPES) and kind is not bool for kind in kinds)


def _read_series(series: Any) -> Side:
    dtype = series.dtype
    name = str(getattr(dtype, "name", ""))
    if name == "category":
        return _read_categorical_series(series)
    kind = getattr(dtype, "kind", "O")
    if not isinstance(dtype, np.dtype) and kind in "iuf":
        # pandas nullable Int64/Float64: missing values become NaN on the way out
        array = np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
        side = _read_array(array)
        if isinstance(side, NumericSide) and kind in "iu":
            return NumericSide(side.values, True, side.nulls)
        return side
    array = np.asarray(series.to_numpy())
    if array.dtype.kind == "O" and name in {"str", "string"}:
        return _count_objects(array)
    return _read_array(array)


def _read_categorical_series(series: Any) -> Side:
    codes = np.asarray(series.cat.codes.to_numpy())
    categories = list(series.cat.categories.tolist())
    present = codes[codes >= 0]
    counts = np.bincount(present, minlength=len(categories)).tolist()
    nulls = int(codes.size - present.size)
    found = {category: count for category, count in zip(categories, counts, strict=True) if count}
    if not found:
        return EmptySide(nulls)
    return LabelSide(found, nulls)


def _read_array(array: np.ndarray[Any, Any]) -> Side:
    kind = array.dtype.kind
    if kind == "f":
        finite = np.isfinite(array)
        if finite.all():
            values = np.sort(array.astype(np.float64, copy=False))
        else:
            values = array[finite].astype(np.float64, copy=False)
            values.sort()
        nulls = int(array.size - values.size)
        return NumericSide(values, False, nulls) if values.size else EmptySide(nulls)
    if kind in "iu":
        values = array.astype(np.float64)
        values.sort()
        return NumericSide(values, True, 0) if values.size else EmptySide(0)
    if kind == "b":
        true = int(np.count_nonzero(array))
        found = {key: count for key, count in ((False, array.size - true), (True, true)) if count}
        return LabelSide(found, 0) if found else EmptySide(0)
    if kind in "US":
        return _count_labels(array.tolist())
    if kind in "Mm":
        return UnsupportedSide("datetime" if kind == "M" else "timedelta")
    if kind == "O":
        try:
            by_identity = _count_by_identity(array)
        except TypeError:
            return _unhashable(array.tolist())
        if by_identity is None:
            return _read_objects(array.tolist())
        return _from_counts(by_identity)
    return UnsupportedSide(str(array.dtype))


def _read_objects(items: list[Any]) -> Side:
    kinds = set(map(type, items))
    null_kinds = {kind for kind in kinds if kind.__name__ in _NULL_TYPE_NAMES}
    value_kinds = kinds - null_kinds
    numbers = all(issubclass(kind, _NUMBER_TYPES) and kind is not bool for kind in value_kinds)
    if numbers and value_kinds:
        if null_kinds - {type(None)}:
            items = [None if is_null(item) else item for item in items]
        array = np.array(items, dtype=np.float64)
        side = _read_array(array)
        integer = all(issubclass(kind, (int, np.integer)) for kind in value_kinds)
        if isinstance(side, NumericSide) and integer and not null_kinds:
            return NumericSide(side.values, True, side.nulls)
        return side
    return _count_labels(items)


def _count_labels(items: list[Any]) -> Side:
    try:
        return _from_counts(Counter(items))
    except TypeError:  # unhashable values: lists, dicts, arrays
        return _unhashable(items)


def _count_objects(array: np.ndarray[Any, Any]) -> Side:
    try:
        counts = _count_by_identity(array)
        return _from_counts(Counter(array.tolist()) if counts is None else counts)
    except TypeError:
        return _unhashable(array.tolist())


def _unhashable(items: list[Any]) -> Side:
    example = next((item for item in items if not is_null(item)), None)
    return UnsupportedSide(type(example).__name__)


def _count_by_identity(array: np.ndarray[Any, Any]) -> Counter[Any] | None:
    """Count an object array's values by object identity first, or None when that does
    not pay off.

    Columns of repeated labels (pandas object and string columns) mostly hold a few
    distinct objects. Their addresses, read as integers from the array's buffer, sort
    without the GIL and in a fraction of the time hashing every row takes; values are only
    read back through the array, which keeps every object alive. Equal values held by
    different objects are merged by the final Counter.
    """
    if array.size < _IDENTITY_MIN_ROWS:
        return None
    try:
        addresses = np.frombuffer(np.ascontiguousarray(array), dtype=np.intp)
    except (TypeError, ValueError, BufferError):
        return None
    head = min(array.size, _IDENTITY_HEAD)
    if np.unique(addresses[:head]).size > head // 4:
        return None  # mostly distinct objects: identity saves nothing
    distinct, counts = run_lengths(np.sort(addresses))
    if distinct.size > _IDENTITY_MAX_DISTINCT:
        return None
    objects = dict(zip(addresses[:head].tolist(), array[:head].tolist(), strict=True))
    missing = [address for address in distinct.tolist() if address not in objects]
    if len(missing) > _IDENTITY_MAX_LOOKUPS:
        return None
    for address in missing:
        objects[address] = array[int(np.argmax(addresses == address))]
    merged: Counter[Any] = Counter()
    for address, count in zip(distinct.tolist(), counts.tolist(), strict=True):
        merged[objects[address]] += count
    return merged


def _from_counts(counts: Counter[Any]) -> Side:
    nulls = 0
    for key in [key for key in counts if _is_missing(key)]:
        nulls += counts.pop(key)
    for key in counts:
        if isinstance(key, _TEMPORAL_TYPES):
            return UnsupportedSide(type(key).__name__, nulls)
    if not counts:
        return EmptySide(nulls)
    side = LabelSide(dict(counts), nulls)
    if side.numeric_labels:
        # numbers stored as Python objects (an object column): compare them as numbers
        return side.as_numbers()
    return side


def _is_missing(value: Any) -> bool:
    """Null, NaN or ±inf: dropped before testing, as Evidently drops them."""
    return is_null(value) or (isinstance(value, (float, np.floating)) and math.isinf(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, (bool, np.bool_))


def run_lengths(
    values: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, np.dtype[np.int64]]]:
    """The distinct values of a sorted array and how often each occurs."""
    if values.size == 0:
        return values, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(values[1:] != values[:-1]) + 1
    bounds = np.concatenate(([0], starts, [values.size]))
    return values[bounds[:-1]], np.diff(bounds).astype(np.int64)


def infer_kind(name: str, reference: Side, current: Side) -> ColumnKind | None:
    """Evidently's typing: numbers are numeric, except integers with at most 10 distinct
    values in the current data; labels (text, booleans, pandas categories) are categorical.
    None when neither side holds a value."""
    sides = [side for side in (reference, current) if isinstance(side, (NumericSide, LabelSide))]
    if not sides:
        return None
    if all(isinstance(side, NumericSide) for side in sides):
        if (
            isinstance(current, NumericSide)
            and current.integer
            and not current.distinct_exceeds(10)
        ):
            return "categorical"
        return "numeric"
    if all(isinstance(side, LabelSide) for side in sides):
        return "categorical"
    labels = next(side for side in sides if isinstance(side, LabelSide))
    if labels.numeric_labels:  # a pandas category of numbers against plain numbers
        return "categorical"
    role = "reference" if labels is reference else "current"
    other = "current" if role == "reference" else "reference"
    example = next(iter(labels.counts))
    raise InvalidInput(
        f"column {name!r} holds numbers in the {other} data but labels in the {role} data "
        f"(for example {example!r}); convert the {role} column to numbers (for instance "
        f"with pandas.to_numeric) or pass column_types={{{name!r}: 'categorical'}} to "
        "compare the values as labels"
    )


def convert_side(side: Side, kind: ColumnKind, name: str, role: Role) -> Side:
    """``side`` in the representation ``kind`` needs: numbers as labels, or labels as numbers
    when they are numbers or booleans; text cannot become numbers."""
    if kind == "categorical" and isinstance(side, NumericSide):
        return side.as_labels()
    if kind == "numeric" and isinstance(side, LabelSide):
        if side.numeric_labels or side.boolean:
            return side.as_numbers()
        example = next(iter(side.counts))
        raise InvalidInput(
            f"column {name!r} is declared numeric but holds text in the {role} data (for "
            f"example {example!r}); convert it to numbers or declare it 'categorical'"
        )
    return side


def numeric_column(values: Any) -> FloatArray | None:
    """``values`` as float64 in row order, NaN for nulls and infinities; None when they are
    not numbers (labels, booleans, dates)."""
    if hasattr(values, "to_numpy") and hasattr(values, "dtype"):
        if getattr(values.dtype, "kind", "O") not in "iuf":
            return None
        array = np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan))
    elif isinstance(values, np.ndarray):
        if values.dtype.kind not in "iuf":
            return None
        array = values.reshape(-1).astype(np.float64, copy=False)
    else:
        items = list(values)
        kinds = {kind for kind in map(type, items) if kind.__name__ not in _NULL_TYPE_NAMES}
        if not kinds or not all(issubclass(k, _NUMBER_TYPES) and k is not bool for k in kinds):
            return None
        array = np.array([None if is_null(item) else item for item in items], dtype=np.float64)
    if not np.isfinite(array).all():
        array = np.where(np.isfinite(array), array, np.nan)
    return array


def read_tables(reference: Any, current: Any, columns: Sequence[str] | None) -> tuple[Table, Table]:
    """Read both inputs; an unnamed 2-D array borrows the other side's column names."""
    if isinstance(columns, str):
        raise InvalidInput(f"columns must be a list of names, not the string {columns!r}")
    names = list(columns) if columns is not None else None
    if _is_matrix(reference) and names is None and not _is_matrix(current):
        # an unnamed reference array takes the names of the current data
        current_table = read_table(current, "current", names=None, fallback=None)
        reference_table = read_table(
            reference, "reference", names=None, fallback=current_table.names
        )
        return reference_table, current_table
    reference_table = read_table(reference, "reference", names=names, fallback=None)
    current_table = read_table(current, "current", names=names, fallback=reference_table.names)
    return reference_table, current_table


def _is_matrix(data: Any) -> bool:
    return isinstance(data, np.ndarray) and data.ndim == 2
