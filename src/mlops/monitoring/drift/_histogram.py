"""Histograms for reports: shared bins for reference and current, robust to outliers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlops.errors import InvalidInput
from mlops.models._json import jsonable
from mlops.monitoring.drift._columns import FloatArray, LabelSide, NumericSide, Side

__all__ = ["HISTOGRAM_BINS", "HISTOGRAM_TOP_VALUES", "histogram", "json_label"]

HISTOGRAM_BINS = 20
HISTOGRAM_TOP_VALUES = 20
#: The bins span these quantiles of both sides; values beyond count in the outer bins.
_ROBUST_QUANTILES = (0.005, 0.995)


def histogram(reference: Side, current: Side) -> dict[str, Any] | None:
    """Counts of both sides over shared bins, or None when a side has no values.

    Numeric: 20 equal bins over the 0.5th-99.5th percentiles of both sides (outliers land
    in the first or last bin). Categorical: the 20 values most frequent over both sides,
    plus the counts of all other values.
    """
    if isinstance(reference, NumericSide) and isinstance(current, NumericSide):
        if reference.rows == 0 or current.rows == 0:
            return None
        return _numeric(reference.values, current.values)
    if isinstance(reference, LabelSide) and isinstance(current, LabelSide):
        return _categorical(reference, current)
    return None


def _numeric(reference: FloatArray, current: FloatArray) -> dict[str, Any]:
    low = min(_quantile(reference, _ROBUST_QUANTILES[0]), _quantile(current, _ROBUST_QUANTILES[0]))
    high = max(_quantile(reference, _ROBUST_QUANTILES[1]), _quantile(current, _ROBUST_QUANTILES[1]))
    if low == high:
        low, high = min(reference[0], current[0]), max(reference[-1], current[-1])
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    return {
        "kind": "numeric",
        "edges": [float(edge) for edge in edges],
        "reference": _clipped_counts(reference, edges),
        "current": _clipped_counts(current, edges),
    }


def _quantile(values: FloatArray, q: float) -> float:
    # nearest rank on a sorted array: no copy, no interpolation needed for display
    return float(values[min(values.size - 1, max(0, math.floor(q * (values.size - 1))))])


def _clipped_counts(values: FloatArray, edges: FloatArray) -> list[int]:
    cuts = np.searchsorted(values, edges[1:-1], side="left")
    return [int(count) for count in np.diff(np.concatenate(([0], cuts, [values.size])))]


def _categorical(reference: LabelSide, current: LabelSide) -> dict[str, Any]:
    reference_total, current_total = max(reference.rows, 1), max(current.rows, 1)
    labels = list(reference.counts) + [k for k in current.counts if k not in reference.counts]

    def weight(label: Any) -> float:
        return (
            reference.counts.get(label, 0) / reference_total
            + current.counts.get(label, 0) / current_total
        )

    top = sorted(labels, key=weight, reverse=True)[:HISTOGRAM_TOP_VALUES]
    reference_counts = [reference.counts.get(label, 0) for label in top]
    current_counts = [current.counts.get(label, 0) for label in top]
    return {
        "kind": "categorical",
        "values": [json_label(label) for label in top],
        "reference": reference_counts,
        "current": current_counts,
        "other_reference": reference.rows - sum(reference_counts),
        "other_current": current.rows - sum(current_counts),
    }


def json_label(value: Any) -> Any:
    """A category label as a JSON value (its text when it has no JSON form)."""
    try:
        return jsonable(value)
    except InvalidInput:
        return str(value)
