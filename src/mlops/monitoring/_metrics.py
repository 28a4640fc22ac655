"""Labels and model-quality metrics of a prediction window (scikit-learn's definitions)."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.errors import InvalidInput
from mlops.monitoring._window import PredictionWindow

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

__all__ = ["Labels", "infer_task", "regression_metrics"]

_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def _label_key(value: Any) -> Any:
    """A class label comparable across JSON types: True == 1 == 1.0 == "1"; None if unusable."""
    kind = type(value)
    if kind is int or (kind is str and not _NUMBER.match(value)):
        return value
    if kind is bool:
        return int(value)
    if kind is str:
        value = float(value)
        kind = float
    if kind is float and math.isfinite(value):
        return int(value) if value.is_integer() else value
    return None


def _label_keys(values: list[Any]) -> list[Any]:
    if set(map(type, values)) <= {int}:
        return values  # the common case: integer classes are their own keys
    return list(map(_label_key, values))


def _order(key: Any) -> tuple[bool, Any]:
    return isinstance(key, str), key


class Labels:
    """A classification window's class labels, their codes and probability columns."""

    def __init__(self, data: PredictionWindow, positive_label: Any) -> None:
        self.data = data
        predicted = _label_keys(data.prediction.tolist())
        actual = _label_keys(data.actual[data.labelled].tolist())
        found = set(predicted)
        found.update(actual)
        found.discard(None)
        self.classes = sorted(found, key=_order)
        self.code = {label: index for index, label in enumerate(self.classes)}
        self.predicted_codes = self._codes(predicted)
        #: Each row's true class code; -1 where there is no (usable) label.
        self.actual_codes = np.full(data.rows, -1, dtype=np.int64)
        self.actual_codes[data.labelled] = self._codes(actual)
        if positive_label is not None:
            positive = _label_key(positive_label)
            if positive not in self.code:
                known = ", ".join(repr(label) for label in self.classes) or "none"
                raise InvalidInput(
                    f"positive_label {positive_label!r} is not among the logged classes ({known})"
                )
        else:
            positive = 1 if 1 in self.code or not self.classes else self.classes[-1]
        self.positive = self.code.get(positive, -1)
        width = None if data.probabilities is None else data.probabilities.shape[1]
        self.columns = _class_columns(self.classes, width)
        self.binary = len(self.classes) <= 2 and (width is None or width == 2)

    def _codes(self, keys: list[Any]) -> IntArray:
        lookup = {**self.code, None: -1}
        return np.fromiter(map(lookup.__getitem__, keys), np.int64, len(keys))

    @property
    def positive_column(self) -> int:
        if self.columns is not None and self.positive >= 0:
            return int(self.columns[self.positive])
        return 1

    def predicted_columns(self, rows: BoolArray) -> IntArray | None:
        codes = self.predicted_codes[rows]
        if self.columns is None or (codes < 0).any():
            return None  # estimate from each row's most probable class instead
        return self.columns[codes]

    def metrics(self, labelled: BoolArray) -> tuple[dict[str, float | None], int]:
        """Classification metrics over the labelled rows, and how many rows were usable."""
        true = self.actual_codes[labelled]
        predicted = self.predicted_codes[labelled]
        usable = (true >= 0) & (predicted >= 0)
        true, predicted = true[usable], predicted[usable]
        if not len(true):
            return {}, 0
        classes = len(self.classes)
        counts = np.bincount(true * classes + predicted, minlength=classes * classes)
        confusion = counts.reshape(classes, classes).astype(np.float64)
        hits = np.diag(confusion)
        by_prediction, by_truth = confusion.sum(axis=0), confusion.sum(axis=1)
        precision = _ratio(hits, by_prediction)
        recall = _ratio(hits, by_truth)
        f1 = _ratio(2.0 * hits, by_prediction + by_truth)
        metrics: dict[str, float | None] = {"accuracy": float(hits.sum() / len(true))}
        if self.binary:
            index = self.positive
            zero = index < 0
            metrics["precision"] = 0.0 if zero else float(precision[index])
            metrics["recall"] = 0.0 if zero else float(recall[index])
            metrics["f1"] = 0.0 if zero else float(f1[index])
        else:
            present = (by_prediction > 0) | (by_truth > 0)
            metrics["precision"] = float(precision[present].mean())
            metrics["recall"] = float(recall[present].mean())
            metrics["f1"] = float(f1[present].mean())
        metrics["roc_auc"], metrics["log_loss"] = self._probability_metrics(labelled, usable, true)
        return metrics, len(true)

    def _probability_metrics(
        self, labelled: BoolArray, usable: BoolArray, true: IntArray
    ) -> tuple[float | None, float | None]:
        probabilities = self.data.probabilities
        if probabilities is None or self.columns is None:
            return None, None
        matrix = probabilities[labelled][usable]
        logged = ~np.isnan(matrix[:, 0])
        if not logged.any():
            return None, None
        matrix, true = matrix[logged], true[logged]
        true_columns = self.columns[true]
        chosen = matrix[np.arange(len(true)), true_columns]
        eps = np.finfo(np.float64).eps
        log_loss = float(-np.mean(np.log(np.clip(chosen, eps, 1 - eps))))
        if self.binary:
            auc = _roc_auc(true == self.positive, matrix[:, self.positive_column])
        else:
            scores = [_roc_auc(true == c, matrix[:, self.columns[c]]) for c in np.unique(true)]
            defined = [score for score in scores if score is not None]
            auc = float(np.mean(defined)) if defined else None
        return auc, log_loss


def _class_columns(classes: list[Any], width: int | None) -> IntArray | None:
    """Each class's probability column: integer labels 0..k-1 are their own column; else
    the sorted labels are the columns, as scikit-learn orders ``classes_``."""
    if width is None:
        return None
    if classes and all(type(c) is int and 0 <= c < width for c in classes):
        return np.array(classes, dtype=np.int64)
    if len(classes) == width:
        return np.arange(width, dtype=np.int64)
    return None


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """Element-wise ratio, 0 where the denominator is 0 (scikit-learn's zero_division)."""
    return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)


def _roc_auc(positive: BoolArray, scores: FloatArray) -> float | None:
    """The area under the ROC curve (Mann-Whitney U with tied scores sharing ranks)."""
    positives = int(np.count_nonzero(positive))
    negatives = len(positive) - positives
    if positives == 0 or negatives == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    rank_sum = float(ranks[positive].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def regression_metrics(
    data: PredictionWindow, labelled: BoolArray
) -> tuple[dict[str, float | None], int]:
    pairs = [
        (p, a)
        for p, a in zip(
            data.prediction[labelled].tolist(), data.actual[labelled].tolist(), strict=True
        )
        if type(p) in (int, float) and type(a) in (int, float)
    ]
    if not pairs:
        return {}, 0
    values = np.array(pairs, dtype=np.float64)
    predicted, actual = values[:, 0], values[:, 1]
    residual = actual - predicted
    total = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(residual))),
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "r2": 1.0 - float(np.sum(residual**2)) / total if total > 0 else None,
    }, len(pairs)


def infer_task(data: PredictionWindow) -> str | None:
    """Classification when probabilities were logged or predictions are labels (int, str,
    bool); regression when any prediction or actual is a fractional number."""
    if not data.rows:
        return None
    if data.probabilities is not None and not np.isnan(data.probabilities[:, 0]).all():
        return "classification"
    kinds = {type(value) for value in data.prediction.tolist()}
    if float in kinds:
        return "regression"
    actual = data.actual[data.labelled].tolist()
    if any(type(value) is float and not value.is_integer() for value in actual):
        return "regression"
    return "classification"


# -- baselines ------------------------------------------------------------------------------
