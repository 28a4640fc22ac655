"""Metrics per task, their direction, and scoring a model's outputs against labels.

A model's outputs are gathered once (``model_outputs``): predictions, class
probabilities for classifiers, anomaly scores for detectors. Every metric is then a
function of those and the labels, so cross-validation, the hold-out, slices and the
champion are all scored the same way.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.errors import InvalidInput

__all__ = [
    "DEFAULT_METRIC",
    "LOWER_IS_BETTER",
    "TASK_METRICS",
    "Outputs",
    "all_scores",
    "improvement",
    "model_outputs",
    "positive_label",
    "score",
]

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": (
        "roc_auc", "accuracy", "balanced_accuracy", "f1", "precision", "recall", "log_loss",
    ),
    "regression": ("rmse", "mae", "r2"),
    "anomaly_detection": ("average_precision", "roc_auc", "precision_at_k", "anomaly_rate"),
}  # fmt: skip
DEFAULT_METRIC = {
    "classification": "roc_auc",
    "regression": "rmse",
    "anomaly_detection": "average_precision",
}
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})
#: Metrics that need no labels (all an unlabelled anomaly detector can report).
UNSUPERVISED = frozenset({"anomaly_rate"})


@dataclass(frozen=True, slots=True)
class Outputs:
    """What a model said about some rows: predictions, plus probabilities (with the
    class order) for classifiers, or anomaly scores (higher: more anomalous)."""

    predictions: np.ndarray[Any, Any]
    probabilities: np.ndarray[Any, Any] | None = None
    classes: np.ndarray[Any, Any] | None = None
    scores: np.ndarray[Any, Any] | None = None

    def take(self, mask: np.ndarray[Any, Any]) -> Outputs:
        """The outputs of the rows where ``mask`` holds."""
        return Outputs(
            self.predictions[mask],
            None if self.probabilities is None else self.probabilities[mask],
            self.classes,
            None if self.scores is None else self.scores[mask],
        )


def model_outputs(model: Any, X: Any, task: str) -> Outputs:  # noqa: N803
    """Call ``model`` (anything with ``predict``) on ``X`` once for every metric."""
    predictions = np.asarray(model.predict(X))
    if task == "anomaly_detection":
        scores = None
        if hasattr(model, "score_samples"):
            scores = -np.asarray(model.score_samples(X), dtype=float)
        return Outputs(predictions, scores=scores)
    if task == "classification" and hasattr(model, "predict_proba"):
        with contextlib.suppress(AttributeError, NotImplementedError):
            probabilities = np.asarray(model.predict_proba(X), dtype=float)
            classes = getattr(model, "classes_", None)
            return Outputs(
                predictions, probabilities, None if classes is None else np.asarray(classes)
            )
    return Outputs(predictions)


def positive_label(values: Sequence[Any] | np.ndarray[Any, Any], configured: Any) -> Any:
    """The class that counts as positive: the configured one, else 1, True, or the last
    class in sorted order (scikit-learn's convention)."""
    classes = [value.item() if hasattr(value, "item") else value for value in np.unique(values)]
    if configured is not None:
        if configured not in classes:
            raise InvalidInput(
                f"positive_label {configured!r} is not a value of the label; its values are "
                f"{', '.join(map(repr, classes[:10]))}"
            )
        return configured
    for candidate in (1, True):
        if candidate in classes:
            return candidate
    return classes[-1]


def score(task: str, metric: str, y: Any, outputs: Outputs, positive: Any) -> float:
    """One metric; NaN where it is undefined (one class only, no probabilities)."""
    from sklearn import metrics as m  # type: ignore[import-untyped,unused-ignore]

    y_true = np.asarray(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined-metric warnings: NaN says it better
        try:
            return float(_score(m, task, metric, y_true, outputs, positive))
        except ValueError:
            return math.nan


def _score(m: Any, task: str, metric: str, y: Any, out: Outputs, positive: Any) -> float:
    predictions = out.predictions
    if task == "regression":
        if metric == "rmse":
            return float(np.sqrt(m.mean_squared_error(y, predictions)))
        if metric == "mae":
            return float(m.mean_absolute_error(y, predictions))
        return float(m.r2_score(y, predictions)) if len(y) > 1 else math.nan
    if task == "anomaly_detection":
        flagged = predictions == -1
        if metric == "anomaly_rate":
            return float(flagged.mean()) if len(flagged) else math.nan
        actual = y == positive
        if out.scores is None or actual.all() or not actual.any():
            return math.nan
        if metric == "average_precision":
            return float(m.average_precision_score(actual, out.scores))
        if metric == "roc_auc":
            return float(m.roc_auc_score(actual, out.scores))
        k = int(actual.sum())  # precision among the k most anomalous rows, k = true anomalies
        top = np.argsort(-out.scores, kind="stable")[:k]
        return float(actual[top].mean())
    classes = out.classes if out.classes is not None else np.unique(y)
    binary = len(classes) <= 2
    average = "binary" if binary else "macro"
    options: dict[str, Any] = {"pos_label": positive} if binary else {}
    if metric == "accuracy":
        return float(m.accuracy_score(y, predictions))
    if metric == "balanced_accuracy":
        return float(m.balanced_accuracy_score(y, predictions))
    if metric in {"f1", "precision", "recall"}:
        function = getattr(m, f"{metric}_score")
        return float(function(y, predictions, average=average, zero_division=0, **options))
    if out.probabilities is None or len(np.unique(y)) < 2:
        return math.nan
    if metric == "log_loss":
        return float(m.log_loss(y, out.probabilities, labels=classes))
    if binary:
        column = list(classes).index(positive)
        return float(m.roc_auc_score(y == positive, out.probabilities[:, column]))
    return float(m.roc_auc_score(y, out.probabilities, multi_class="ovr", labels=classes))


def all_scores(
    task: str, y: Any, outputs: Outputs, positive: Any, *, labelled: bool = True
) -> dict[str, float]:
    """Every metric of the task (only the label-free ones when ``labelled`` is False)."""
    names = TASK_METRICS[task] if labelled else tuple(sorted(UNSUPERVISED))
    return {name: score(task, name, y, outputs, positive) for name in names}


def improvement(metric: str, challenger: float, champion: float) -> float:
    """How much better the challenger is, positive when better, in the metric's units."""
    return champion - challenger if metric in LOWER_IS_BETTER else challenger - champion


def finite(values: Mapping[str, float]) -> dict[str, float]:
    """The metrics that have a value (NaN means undefined here)."""
    return {key: value for key, value in values.items() if math.isfinite(value)}
