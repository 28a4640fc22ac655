"""Live model performance over a window of the prediction log: traffic, quality, degradation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.errors import InvalidInput, NotFound
from mlops.monitoring._estimate import (
    EstimatedPerformance,
    ProbabilityCalibrator,
    estimate_performance,
    fit_calibrator,
)
from mlops.monitoring._window import (
    PredictionWindow,
    Window,
    check_endpoint_name,
    read_window,
    resolve_window,
)
from mlops.store import Store

__all__ = [
    "HIGHER_IS_BETTER",
    "Degradation",
    "PerformanceGroup",
    "PerformanceReport",
    "calibrator_from_log",
    "performance",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

TASKS = ("classification", "regression")
GROUP_BY = ("version", "route")
OK = "ok"
NOT_ENOUGH_DATA = "not_enough_data"

#: Every metric a report computes, and whether a higher value is better.
HIGHER_IS_BETTER: Mapping[str, bool] = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "mae": False,
    "rmse": False,
    "r2": True,
    "error_rate": False,
    "client_error_rate": False,
    "latency_p50_ms": False,
    "latency_p95_ms": False,
    "latency_p99_ms": False,
}
_TRAFFIC = frozenset(
    {"error_rate", "client_error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"}
)


@dataclass(frozen=True, slots=True)
class Degradation:
    """How far a metric moved from its baseline.

    ``change`` is the relative change ``(current - baseline) / |baseline|``;
    ``degradation`` is the same change signed so that positive means worse (a drop in
    accuracy, a rise in RMSE). Both are None when the baseline is 0; ``delta`` is the
    absolute difference.
    """

    metric: str
    baseline: float
    current: float
    delta: float
    change: float | None
    degradation: float | None
    higher_is_better: bool

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _json(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True)
class PerformanceGroup:
    """Traffic and model quality of one slice of a window (all of it, a version, an arm).

    ``metrics`` is None with ``status`` "not_enough_data" (and ``reason`` saying why) when
    fewer than ``min_labels`` rows have feedback. Classification metrics: accuracy,
    precision, recall, f1 (of the positive class for two classes, macro averages for more),
    roc_auc and log_loss (when probabilities were logged); regression: mae, rmse, r2.
    ``estimated`` holds label-free estimates when probabilities were logged.
    """

    key: int | str | None
    requests: int
    errors: int
    client_errors: int
    error_rate: float | None
    client_error_rate: float | None
    throughput: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    rows: int
    labelled: int
    status: str
    reason: str | None
    metrics: Mapping[str, float | None] | None
    estimated: EstimatedPerformance | None = None
    degradation: Mapping[str, Degradation] = field(default_factory=dict)

    def value(self, metric: str) -> float | None:
        """A model metric or a traffic figure (error_rate, latency_p99_ms…) by name."""
        if metric in _TRAFFIC:
            found: float | None = getattr(self, metric)
            return found
        return None if self.metrics is None else self.metrics.get(metric)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: _json(getattr(self, f.name)) for f in dataclasses.fields(self)}
        data["metrics"] = None if self.metrics is None else _json(dict(self.metrics))
        data["estimated"] = None if self.estimated is None else self.estimated.to_dict()
        data["degradation"] = {k: v.to_dict() for k, v in self.degradation.items()}
        return data


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """An endpoint's performance over a window: ``overall`` and one group per version or
    route (``by``). The overall figures are also reachable on the report itself."""

    endpoint: str
    window: Window
    version: int | None
    by: str | None
    task: str | None
    min_labels: int
    overall: PerformanceGroup
    groups: tuple[PerformanceGroup, ...]
    orphan_feedback: int
    mismatched_feedback: int
    baseline: Mapping[str, float] | None

    @property
    def requests(self) -> int:
        return self.overall.requests

    @property
    def errors(self) -> int:
        return self.overall.errors

    @property
    def error_rate(self) -> float | None:
        return self.overall.error_rate

    @property
    def labelled(self) -> int:
        return self.overall.labelled

    @property
    def status(self) -> str:
        return self.overall.status

    @property
    def reason(self) -> str | None:
        return self.overall.reason

    @property
    def metrics(self) -> Mapping[str, float | None] | None:
        return self.overall.metrics

    @property
    def estimated(self) -> EstimatedPerformance | None:
        return self.overall.estimated

    @property
    def degradation(self) -> Mapping[str, Degradation]:
        return self.overall.degradation

    def group(self, key: int | str | None) -> PerformanceGroup:
        """The group of a version number or route label."""
        for group in self.groups:
            if group.key == key:
                return group
        keys = ", ".join(repr(group.key) for group in self.groups) or "none"
        raise NotFound(f"the report has no group {key!r} (by={self.by!r}); its groups: {keys}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "window": self.window.to_dict(),
            "version": self.version,
            "by": self.by,
            "task": self.task,
            "min_labels": self.min_labels,
            "orphan_feedback": self.orphan_feedback,
            "mismatched_feedback": self.mismatched_feedback,
            "baseline": None if self.baseline is None else _json(dict(self.baseline)),
            "overall": self.overall.to_dict(),
            "groups": [group.to_dict() for group in self.groups],
        }


def performance(
    store: Store,
    endpoint: str,
    *,
    window: str | float | dt.timedelta | None = None,
    last: int | None = None,
    since: int | None = None,
    until: int | None = None,
    version: int | None = None,
    by: str | None = None,
    task: str | None = None,
    baseline: Mapping[str, float] | None = None,
    min_labels: int = 30,
    positive_label: Any = None,
    calibrator: ProbabilityCalibrator | None = None,
    now_ms: int | None = None,
) -> PerformanceReport:
    """Traffic, quality and degradation of an endpoint's live predictions in a window.

    The window is ``window`` ("1h", the default) ending at ``until`` (default ``now_ms``,
    default now), or ``since``..``until`` in epoch ms, or the ``last`` N requests (within
    the time range when one is given too). Shadow calls are left out. ``task`` is inferred
    from the outputs when None; ``positive_label`` names a binary model's positive class
    (default 1, or the greater label); ``calibrator`` calibrates the label-free estimates.
    """
    check_endpoint_name(endpoint)
    if by is not None and by not in GROUP_BY:
        raise InvalidInput(f"by={by!r} is not one of {', '.join(GROUP_BY)} (or None)")
    if task is not None and task not in TASKS:
        raise InvalidInput(f"task {task!r} is not one of {', '.join(TASKS)} (or None to infer)")
    if isinstance(min_labels, bool) or not isinstance(min_labels, int) or min_labels < 1:
        raise InvalidInput(f"min_labels must be a count >= 1, got {min_labels!r}")
    checked_baseline = _check_baseline(baseline)
    span = resolve_window(window, last=last, since=since, until=until, now_ms=now_ms)
    data = read_window(store, endpoint, span, version=version)
    task = task or _infer_task(data)
    context = _Context(data, task, min_labels, positive_label, calibrator, checked_baseline)
    overall = context.group(None, None)
    groups: list[PerformanceGroup] = []
    if by is not None:
        keys = data.version if by == "version" else data.route
        row_keys = keys[data.row_request]
        for key in sorted(set(keys.tolist()), key=lambda k: (k is None, k)):
            label = None if by == "version" and key == -1 else key
            groups.append(context.group(label, (keys == key, row_keys == key)))
    return PerformanceReport(
        endpoint=endpoint,
        window=span,
        version=version,
        by=by,
        task=task,
        min_labels=min_labels,
        overall=overall,
        groups=tuple(groups),
        orphan_feedback=data.orphan_feedback,
        mismatched_feedback=data.mismatched_feedback,
        baseline=checked_baseline,
    )


class _Context:
    """What every group of one report shares: the window, the task, the class columns."""

    def __init__(
        self,
        data: PredictionWindow,
        task: str | None,
        min_labels: int,
        positive_label: Any,
        calibrator: ProbabilityCalibrator | None,
        baseline: Mapping[str, float] | None,
    ) -> None:
        self.data = data
        self.task = task
        self.min_labels = min_labels
        self.calibrator = calibrator
        self.baseline = baseline
        self.labels = _Labels(data, positive_label) if task == "classification" else None

    def group(
        self, key: int | str | None, masks: tuple[BoolArray, BoolArray] | None
    ) -> PerformanceGroup:
        data = self.data
        status = data.status if masks is None else data.status[masks[0]]
        latency = data.latency_ms if masks is None else data.latency_ms[masks[0]]
        rows = np.ones(data.rows, dtype=bool) if masks is None else masks[1]
        requests = len(status)
        errors = int(np.count_nonzero(status >= 500))
        client_errors = int(np.count_nonzero((status >= 400) & (status < 500)))
        latency = latency[~np.isnan(latency)]
        p50 = p95 = p99 = None
        if len(latency):
            p50, p95, p99 = (float(v) for v in np.percentile(latency, [50, 95, 99]))
        span = data.span_ms
        labelled = rows & data.labelled
        count = int(np.count_nonzero(labelled))
        metrics, status_text, reason = self._quality(labelled, count)
        group = PerformanceGroup(
            key=key,
            requests=requests,
            errors=errors,
            client_errors=client_errors,
            error_rate=errors / requests if requests else None,
            client_error_rate=client_errors / requests if requests else None,
            throughput=requests / (span / 1000.0) if span else None,
            latency_p50_ms=p50,
            latency_p95_ms=p95,
            latency_p99_ms=p99,
            rows=int(np.count_nonzero(rows)),
            labelled=count,
            status=status_text,
            reason=reason,
            metrics=metrics,
            estimated=self._estimate(rows),
        )
        if self.baseline:
            degradation = _degradation(group, self.baseline)
            group = dataclasses.replace(group, degradation=degradation)
        return group

    def _quality(
        self, labelled: BoolArray, count: int
    ) -> tuple[dict[str, float | None] | None, str, str | None]:
        if self.task is None:
            return None, NOT_ENOUGH_DATA, "no predictions in the window"
        if count < self.min_labels:
            return None, NOT_ENOUGH_DATA, _too_few(count, self.min_labels, self.data.endpoint)
        if self.labels is not None:
            metrics, usable = self.labels.metrics(labelled)
        else:
            metrics, usable = _regression(self.data, labelled)
        if usable < self.min_labels:
            reason = (
                f"{count - usable} of {count} labelled rows hold values that do not fit "
                f"{self.task} (lists, nulls, text); {_too_few(usable, self.min_labels, None)}"
            )
            return None, NOT_ENOUGH_DATA, reason
        return metrics, OK, None

    def _estimate(self, rows: BoolArray) -> EstimatedPerformance | None:
        probabilities = self.data.probabilities
        if self.labels is None or probabilities is None:
            return None
        with_probabilities = rows & ~np.isnan(probabilities[:, 0])
        if not with_probabilities.any():
            return None
        matrix = probabilities[with_probabilities]
        if self.calibrator is not None and self.calibrator.classes != matrix.shape[1]:
            raise InvalidInput(
                f"the calibrator was fitted on {self.calibrator.classes} classes; the "
                f"endpoint logs {matrix.shape[1]}; fit one on this endpoint's log"
            )
        predicted = self.labels.predicted_columns(with_probabilities)
        return estimate_performance(
            matrix,
            predicted_columns=predicted,
            positive_column=self.labels.positive_column,
            calibrator=self.calibrator,
        )


def _too_few(count: int, minimum: int, endpoint: str | None) -> str:
    text = f"not enough data: {count} labelled rows, the metrics need {minimum} (min_labels)"
    if endpoint is not None:
        text += (
            f"; send actual outcomes to POST /v1/endpoints/{endpoint}/feedback or with "
            "record_feedback()"
        )
    return text


# -- labels ---------------------------------------------------------------------------------

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


class _Labels:
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


def _regression(data: PredictionWindow, labelled: BoolArray) -> tuple[dict[str, float | None], int]:
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


def _infer_task(data: PredictionWindow) -> str | None:
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


def _degradation(group: PerformanceGroup, baseline: Mapping[str, float]) -> dict[str, Degradation]:
    found = {}
    for metric, reference in baseline.items():
        current = group.value(metric)
        if current is None:
            continue
        higher = HIGHER_IS_BETTER[metric]
        delta = current - reference
        change = delta / abs(reference) if reference != 0 else None
        worse = None if change is None else (-change if higher else change)
        found[metric] = Degradation(metric, reference, current, delta, change, worse, higher)
    return found


def _check_baseline(baseline: Mapping[str, float] | None) -> dict[str, float] | None:
    if baseline is None:
        return None
    if not isinstance(baseline, Mapping):
        raise InvalidInput("baseline must map metric names to numbers, e.g. {'accuracy': 0.91}")
    checked = {}
    for name, value in baseline.items():
        if name not in HIGHER_IS_BETTER:
            raise InvalidInput(
                f"baseline metric {name!r} is not one a report computes "
                f"({', '.join(HIGHER_IS_BETTER)}); map run metrics such as 'val_accuracy' "
                "with baseline_from_metrics()"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"baseline {name!r} is {value!r}; give a number")
        if not math.isfinite(value):
            raise InvalidInput(f"baseline {name!r} is {value}; give a finite number")
        checked[name] = float(value)
    return checked


def calibrator_from_log(
    store: Store,
    endpoint: str,
    *,
    window: str | float | dt.timedelta | None = None,
    last: int | None = None,
    since: int | None = None,
    until: int | None = None,
    version: int | None = None,
    method: str = "isotonic",
    bins: int = 10,
    positive_label: Any = None,
    now_ms: int | None = None,
) -> ProbabilityCalibrator:
    """Fit a probability calibrator on a reference window's labelled predictions."""
    span = resolve_window(window, last=last, since=since, until=until, now_ms=now_ms)
    data = read_window(store, endpoint, span, version=version)
    if data.probabilities is None:
        raise InvalidInput(
            f"endpoint {endpoint!r} logged no probabilities in the window; calibration "
            "needs a classifier that answers them"
        )
    labels = _Labels(data, positive_label)
    if labels.columns is None:
        raise InvalidInput(
            f"the window's class labels {labels.classes} do not map to the "
            f"{data.probabilities.shape[1]} probability columns; widen the window so that "
            "every class appears"
        )
    rows = (labels.actual_codes >= 0) & ~np.isnan(data.probabilities[:, 0])
    if not rows.any():
        raise InvalidInput(
            f"endpoint {endpoint!r} has no labelled predictions with probabilities in the "
            "window; send feedback first, or widen the window"
        )
    true = labels.columns[labels.actual_codes[rows]]
    return fit_calibrator(
        data.probabilities[rows],
        true,
        method=method,
        bins=bins,
        positive_column=labels.positive_column,
    )


def _json(value: Any) -> Any:
    """Strict JSON: non-finite floats become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, Window):
        return value.to_dict()
    return value
