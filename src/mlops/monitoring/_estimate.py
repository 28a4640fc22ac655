"""Label-free performance estimates for classifiers, from their logged probabilities.

Confidence-based estimation (CBPE): a calibrated probability p that a row belongs to a
class is also the expected share of such rows that do. Summing probabilities by predicted
class gives the expected confusion matrix, and from it accuracy, precision, recall and F1,
before any actual outcome arrives. Probabilities are only as good as their calibration, so a
calibrator fitted on labelled reference data (isotonic or histogram binning) can map them
first. Everything here works in column space: class k is probability column k.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.errors import InvalidInput

__all__ = [
    "CALIBRATION_METHODS",
    "EstimatedPerformance",
    "ProbabilityCalibrator",
    "estimate_performance",
    "fit_calibrator",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: How ``fit_calibrator`` maps probabilities: isotonic regression or histogram binning.
CALIBRATION_METHODS = ("isotonic", "histogram")


@dataclass(frozen=True, slots=True, eq=False)
class ProbabilityCalibrator:
    """Maps a classifier's probabilities to calibrated ones, one map per class column.

    A binary model (two columns) has one map, for ``positive_column``; the other column
    is its complement. A multiclass model has one map per column (one-vs-rest) and its
    rows are normalized to sum to 1 after mapping. ``knots[c]`` holds the map of column
    ``c``: for "isotonic", fitted values at increasing probabilities (linear in between,
    flat beyond the ends); for "histogram", each bin's share of positives (NaN for an empty
    bin, which leaves probabilities in it as they are). Immutable; thread-safe.
    """

    method: str
    classes: int
    positive_column: int
    knots: Mapping[int, tuple[FloatArray, FloatArray]]
    reference_rows: int

    def apply(self, probabilities: npt.ArrayLike) -> FloatArray:
        """Calibrated probabilities (rows x classes) for raw ones."""
        matrix = _check_probabilities(probabilities)
        if matrix.shape[1] != self.classes:
            raise InvalidInput(
                f"the calibrator was fitted on {self.classes} classes; these probabilities "
                f"have {matrix.shape[1]}"
            )
        result = matrix.copy()
        if self.classes == 2:
            positive = self._map(self.positive_column, matrix[:, self.positive_column])
            result[:, self.positive_column] = positive
            result[:, 1 - self.positive_column] = 1.0 - positive
            return result
        for column in range(self.classes):
            result[:, column] = self._map(column, matrix[:, column])
        totals = result.sum(axis=1, keepdims=True)
        usable = totals[:, 0] > 0
        result[usable] /= totals[usable]
        result[~usable] = matrix[~usable]
        return result

    def _map(self, column: int, values: FloatArray) -> FloatArray:
        knots, mapped = self.knots[column]
        if self.method == "isotonic":
            return np.interp(values, knots, mapped)
        bins = np.clip(np.searchsorted(knots, values, side="right") - 1, 0, len(mapped) - 1)
        found = mapped[bins]
        return np.where(np.isnan(found), values, found)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "classes": self.classes,
            "positive_column": self.positive_column,
            "reference_rows": self.reference_rows,
            "knots": {
                str(column): {
                    "x": knots.tolist(),
                    "y": [None if np.isnan(v) else float(v) for v in mapped],
                }
                for column, (knots, mapped) in self.knots.items()
            },
        }


def fit_calibrator(
    probabilities: npt.ArrayLike,
    true_columns: npt.ArrayLike,
    *,
    method: str = "isotonic",
    bins: int = 10,
    positive_column: int = 1,
) -> ProbabilityCalibrator:
    """Fit a calibrator on reference rows whose true class (column index) is known."""
    matrix = _check_probabilities(probabilities)
    truth = _check_columns("true_columns", true_columns, matrix.shape)
    if method not in CALIBRATION_METHODS:
        raise InvalidInput(
            f"calibration method {method!r} is not one of {', '.join(CALIBRATION_METHODS)}"
        )
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise InvalidInput(f"bins must be a count >= 1, got {bins!r}")
    classes = matrix.shape[1]
    if not 0 <= positive_column < classes:
        raise InvalidInput(f"positive_column {positive_column} is not a column of {classes}")
    if len(truth) == 0:
        raise InvalidInput("calibration needs reference rows with known outcomes; got none")
    columns = [positive_column] if classes == 2 else list(range(classes))
    knots = {}
    for column in columns:
        hits = (truth == column).astype(np.float64)
        if method == "isotonic":
            knots[column] = _isotonic(matrix[:, column], hits)
        else:
            knots[column] = _histogram(matrix[:, column], hits, bins)
    return ProbabilityCalibrator(method, classes, positive_column, knots, len(truth))


def _isotonic(scores: FloatArray, hits: FloatArray) -> tuple[FloatArray, FloatArray]:
    """A non-decreasing least-squares fit of hits on scores (pool adjacent violators)."""
    unique, inverse = np.unique(scores, return_inverse=True)
    weights = np.bincount(inverse).astype(np.float64)
    means = np.bincount(inverse, weights=hits) / weights
    values: list[float] = []
    totals: list[float] = []
    sizes: list[int] = []
    for mean, weight in zip(means.tolist(), weights.tolist(), strict=True):
        values.append(mean)
        totals.append(weight)
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:  # merge the violating blocks
            weight_b, value_b, size_b = totals.pop(), values.pop(), sizes.pop()
            merged = totals[-1] + weight_b
            values[-1] = (values[-1] * totals[-1] + value_b * weight_b) / merged
            totals[-1] = merged
            sizes[-1] += size_b
    return unique, np.repeat(np.asarray(values, dtype=np.float64), sizes)


def _histogram(scores: FloatArray, hits: FloatArray, bins: int) -> tuple[FloatArray, FloatArray]:
    """Equal-width bins over [0, 1] and each bin's share of hits (NaN when empty)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    positives = np.bincount(index, weights=hits, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(counts > 0, positives / counts, np.nan)
    return edges[:-1], shares


@dataclass(frozen=True, slots=True)
class EstimatedPerformance:
    """Metrics expected from probabilities alone (no labels), over ``rows`` rows.

    ``metrics``: accuracy, precision, recall and f1 (of ``positive_column`` for a binary
    model, macro averages over classes for a multiclass one). ``confusion[t][p]`` is the
    expected count of rows of true class t predicted as p.
    """

    rows: int
    classes: int
    calibrated: bool
    metrics: Mapping[str, float | None]
    confusion: tuple[tuple[float, ...], ...] = field(default=())

    @property
    def accuracy(self) -> float | None:
        return self.metrics.get("accuracy")

    @property
    def precision(self) -> float | None:
        return self.metrics.get("precision")

    @property
    def recall(self) -> float | None:
        return self.metrics.get("recall")

    @property
    def f1(self) -> float | None:
        return self.metrics.get("f1")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "classes": self.classes,
            "calibrated": self.calibrated,
            "metrics": {name: _finite(value) for name, value in self.metrics.items()},
            "confusion": [[round(value, 6) for value in row] for row in self.confusion],
        }


def estimate_performance(
    probabilities: npt.ArrayLike,
    *,
    predicted_columns: npt.ArrayLike | None = None,
    positive_column: int = 1,
    calibrator: ProbabilityCalibrator | None = None,
) -> EstimatedPerformance:
    """Expected accuracy, precision, recall and F1 from probabilities (CBPE).

    ``predicted_columns`` are the classes the model answered (default: each row's most
    probable class); ``calibrator`` maps the probabilities first.
    """
    raw = _check_probabilities(probabilities)
    rows, classes = raw.shape
    if not 0 <= positive_column < classes:
        raise InvalidInput(f"positive_column {positive_column} is not a column of {classes}")
    if predicted_columns is None:
        predicted = np.argmax(raw, axis=1).astype(np.int64)
    else:
        predicted = _check_columns("predicted_columns", predicted_columns, raw.shape)
    calibrated = raw if calibrator is None else calibrator.apply(raw)
    # confusion[t, p]: the expected number of rows of true class t predicted as p.
    confusion = np.stack(
        [
            np.bincount(predicted, weights=calibrated[:, t], minlength=classes)
            for t in range(classes)
        ]
    ).astype(np.float64)
    metrics = _confusion_metrics(confusion, rows, positive_column)
    return EstimatedPerformance(
        rows=rows,
        classes=classes,
        calibrated=calibrator is not None,
        metrics=metrics,
        confusion=tuple(tuple(float(v) for v in row) for row in confusion),
    )


def _confusion_metrics(
    confusion: FloatArray, rows: int, positive_column: int
) -> dict[str, float | None]:
    if rows == 0:
        return {"accuracy": None, "precision": None, "recall": None, "f1": None}
    true_positive = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = _ratio(true_positive, predicted)
    recall = _ratio(true_positive, actual)
    f1 = _ratio(2.0 * true_positive, predicted + actual)
    accuracy = float(true_positive.sum() / rows)
    if confusion.shape[0] == 2:
        column = positive_column
        return {
            "accuracy": accuracy,
            "precision": float(precision[column]),
            "recall": float(recall[column]),
            "f1": float(f1[column]),
        }
    present = (predicted > 0) | (actual > 0)
    return {
        "accuracy": accuracy,
        "precision": float(precision[present].mean()),
        "recall": float(recall[present].mean()),
        "f1": float(f1[present].mean()),
    }


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """Element-wise ratio, 0 where the denominator is 0 (scikit-learn's zero_division)."""
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, 0.0)


def _check_probabilities(probabilities: npt.ArrayLike) -> FloatArray:
    try:
        matrix = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"probabilities are not a matrix of numbers: {error}") from None
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise InvalidInput(
            f"probabilities have shape {list(matrix.shape)}; give one row per prediction "
            "and one column per class (at least two)"
        )
    if (
        not np.all(np.isfinite(matrix))
        or matrix.min(initial=0.0) < 0
        or matrix.max(initial=0.0) > 1
    ):
        raise InvalidInput("probabilities must be finite numbers in [0, 1]")
    return matrix


def _check_columns(name: str, values: npt.ArrayLike, shape: tuple[int, ...]) -> IntArray:
    array = np.asarray(values)
    if array.shape != (shape[0],) or (array.size and array.dtype.kind not in "iu"):
        raise InvalidInput(
            f"{name} must hold one class column index (an int) per probability row "
            f"({shape[0]} of them)"
        )
    columns = array.astype(np.int64)
    if columns.size and (columns.min() < 0 or columns.max() >= shape[1]):
        raise InvalidInput(f"{name} holds indices outside 0..{shape[1] - 1}")
    return columns


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
