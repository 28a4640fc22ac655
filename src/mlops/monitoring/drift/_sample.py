"""The two sides of one column as drift methods read them, with Evidently's binning."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from mlops.errors import InvalidInput
from mlops.monitoring.drift._columns import (
    ColumnKind,
    FloatArray,
    LabelSide,
    NumericSide,
    convert_side,
    infer_kind,
    read_side,
    run_lengths,
)

__all__ = ["ColumnSample", "Counts", "histogram_counts", "sturges_edges"]

IntArray = np.ndarray[tuple[int], np.dtype[np.int64]]

#: Above this many distinct reference values a numeric column is binned (Evidently's rule);
#: at or below it, each value is its own bin.
_BINNING_MIN_DISTINCT = 20


@dataclass(frozen=True, slots=True)
class Counts:
    """Value counts on both sides, aligned on the union of values seen (``labels`` is a
    sorted float array for numeric columns, a list of labels for categorical ones)."""

    labels: Sequence[Any] | FloatArray
    reference: IntArray
    current: IntArray


class ColumnSample:
    """The non-null values of one column in the reference and current data.

    Numeric columns hold sorted float64 arrays (``reference_values``, ``current_values``);
    categorical ones hold label counts. Derived views (``counts``, ``binned``) are computed
    once. Instances are not shared between threads.
    """

    def __init__(
        self,
        name: str,
        kind: ColumnKind,
        reference: NumericSide | LabelSide,
        current: NumericSide | LabelSide,
        *,
        bins: int | None = None,
    ) -> None:
        expected = NumericSide if kind == "numeric" else LabelSide
        if not isinstance(reference, expected) or not isinstance(current, expected):
            raise InvalidInput(f"a {kind} sample needs {expected.__name__} values on both sides")
        if reference.rows == 0 or current.rows == 0:
            raise InvalidInput(f"column {name!r} needs at least one value on each side")
        self.name = name
        self.kind: ColumnKind = kind
        self.reference = reference
        self.current = current
        self.bins = bins

    @classmethod
    def from_values(
        cls,
        reference: Any,
        current: Any,
        *,
        kind: ColumnKind | None = None,
        name: str = "column",
        bins: int | None = None,
    ) -> ColumnSample:
        """A sample from two sequences (nulls dropped); ``kind`` None infers it."""
        reference_side = read_side(reference)
        current_side = read_side(current)
        resolved = kind or infer_kind(name, reference_side, current_side)
        if resolved is None:
            raise InvalidInput(f"column {name!r} holds no values on either side")
        sides = [
            convert_side(reference_side, resolved, name, "reference"),
            convert_side(current_side, resolved, name, "current"),
        ]
        if not all(isinstance(side, (NumericSide, LabelSide)) for side in sides):
            raise InvalidInput(f"column {name!r} needs comparable values on both sides")
        return cls(name, resolved, sides[0], sides[1], bins=bins)  # type: ignore[arg-type]

    @property
    def reference_rows(self) -> int:
        return self.reference.rows

    @property
    def current_rows(self) -> int:
        return self.current.rows

    @property
    def reference_values(self) -> FloatArray:
        """Sorted finite reference values (numeric samples only)."""
        if not isinstance(self.reference, NumericSide):
            raise InvalidInput(f"column {self.name!r} is categorical and has no numeric values")
        return self.reference.values

    @property
    def current_values(self) -> FloatArray:
        if not isinstance(self.current, NumericSide):
            raise InvalidInput(f"column {self.name!r} is categorical and has no numeric values")
        return self.current.values

    @property
    def integer(self) -> bool:
        """Both sides came from integer data (numpy's binning treats that differently)."""
        return (
            isinstance(self.reference, NumericSide)
            and isinstance(self.current, NumericSide)
            and self.reference.integer
            and self.current.integer
        )

    def pooled_distinct(self, cap: int) -> int:
        """Distinct values over both sides together, counted exactly up to ``cap``;
        ``cap + 1`` means more (so a million-value column is not counted value by value)."""
        if self.reference.distinct_exceeds(cap) or self.current.distinct_exceeds(cap):
            return cap + 1
        return min(len(self.counts.labels), cap + 1)

    @cached_property
    def counts(self) -> Counts:
        """How often each value occurs on each side, over the union of values."""
        if isinstance(self.reference, NumericSide) and isinstance(self.current, NumericSide):
            return _numeric_counts(self.reference.values, self.current.values)
        assert isinstance(self.reference, LabelSide)
        assert isinstance(self.current, LabelSide)
        reference, current = self.reference.counts, self.current.counts
        labels = list(reference) + [label for label in current if label not in reference]
        return Counts(
            labels,
            np.array([reference.get(label, 0) for label in labels], dtype=np.int64),
            np.array([current.get(label, 0) for label in labels], dtype=np.int64),
        )

    def binned(self, *, fill_zeros: bool) -> tuple[FloatArray, FloatArray]:
        """Shares of each side per bin, as Evidently's ``get_binned_data`` makes them.

        Numeric columns with more than 20 distinct reference values: Sturges' rule over
        both sides pooled (or ``bins`` equal-width bins when set). Otherwise one bin per
        value. ``fill_zeros`` replaces empty bins by a small share (1e-4, or a millionth of
        the smallest non-empty share when that is at most 1e-4) so logarithms stay finite.
        """
        if self.kind == "numeric" and self.reference.distinct_exceeds(_BINNING_MIN_DISTINCT):
            reference, current = self.reference_values, self.current_values
            low = min(reference[0], current[0])
            high = max(reference[-1], current[-1])
            if self.bins is not None:
                edges = _equal_edges(float(low), float(high), self.bins)
            else:
                edges = sturges_edges(low, high, reference.size + current.size, self.integer)
            reference_counts = histogram_counts(reference, edges)
            current_counts = histogram_counts(current, edges)
        else:
            reference_counts, current_counts = self.counts.reference, self.counts.current
        reference_share = reference_counts / self.reference_rows
        current_share = current_counts / self.current_rows
        if fill_zeros:
            _fill_zeros(reference_share)
            _fill_zeros(current_share)
        return reference_share, current_share


def _numeric_counts(reference: FloatArray, current: FloatArray) -> Counts:
    reference_values, reference_counts = run_lengths(reference)
    current_values, current_counts = run_lengths(current)
    values = np.union1d(reference_values, current_values)
    aligned_reference = np.zeros(values.size, dtype=np.int64)
    aligned_current = np.zeros(values.size, dtype=np.int64)
    aligned_reference[np.searchsorted(values, reference_values)] = reference_counts
    aligned_current[np.searchsorted(values, current_values)] = current_counts
    return Counts(values, aligned_reference, aligned_current)


def _fill_zeros(shares: FloatArray) -> None:
    present = shares[shares != 0]
    if present.size == 0:
        return
    smallest = float(present.min())
    shares[shares == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001


def sturges_edges(low: float, high: float, count: int, integer: bool) -> FloatArray:
    """NumPy's ``histogram_bin_edges(data, "sturges")`` from the data's range and size."""
    first, last = float(low), float(high)
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (float(high) - float(low)) / (np.log2(count) + 1.0)
    if width:
        if integer and width < 1:
            width = 1.0
        bins = int(np.ceil((last - first) / width))
    else:
        bins = 1
    return np.linspace(first, last, bins + 1, endpoint=True)


def _equal_edges(low: float, high: float, bins: int) -> FloatArray:
    if low == high:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1, endpoint=True)


def histogram_counts(values: FloatArray, edges: FloatArray) -> IntArray:
    """``numpy.histogram(values, edges)[0]`` for sorted ``values``, without sorting again:
    bins are closed on the left, the last one on both sides."""
    cumulative = np.concatenate(
        (
            np.searchsorted(values, edges[:-1], side="left"),
            np.searchsorted(values, edges[-1:], side="right"),
        )
    )
    return np.diff(cumulative).astype(np.int64)
