"""Live model performance over a window of the prediction log: traffic, quality, degradation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
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
from mlops.monitoring._metrics import Labels, infer_task, regression_metrics
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
    task = task or infer_task(data)
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
        self.labels = Labels(data, positive_label) if task == "classification" else None

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
            metrics, usable = regression_metrics(self.data, labelled)
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
    labels = Labels(data, positive_label)
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
