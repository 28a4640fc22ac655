"""The alert rules' signals, measured from the prediction log, drift reports and runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mlops.errors import MLOpsError
from mlops.monitoring._performance import HIGHER_IS_BETTER, PerformanceReport
from mlops.monitoring.alerts import AlertRule, Measurement
from mlops.monitoring.drift import DriftReport
from mlops.store._schema import prediction_log, run_tags, runs

if TYPE_CHECKING:
    from mlops.monitoring._monitor import ModelMonitor

__all__ = ["PIPELINE_TAG", "MonitorSignals"]

#: The run tag that names the pipeline a tracked run belongs to (set by pipeline runs).
PIPELINE_TAG = "mlops.pipeline"
_FAILED = "FAILED"
_FINISHED = "FINISHED"
_PERFORMANCE_TRAFFIC = ("error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
_DRIFT = ("drift_share", "dataset_drift", "column_drift", "prediction_drift", "multivariate_drift")


class MonitorSignals:
    """Measures rules for the AlertManager: one Measurement per endpoint (or pipeline).

    Performance signals: any report metric (``accuracy``, ``f1``, ``rmse``, ``error_rate``,
    ``latency_p95_ms``…), ``<metric>_drop`` (its relative degradation from the baseline:
    0.05 = 5% worse), ``throughput``, ``requests`` and ``estimated_accuracy``. Drift
    signals: ``drift_share``, ``dataset_drift`` / ``prediction_drift`` /
    ``multivariate_drift`` (1 or 0) and ``column_drift`` (1 or 0 for ``params["column"]``).
    ``pipeline_consecutive_failures`` counts the latest runs tagged ``mlops.pipeline`` that
    failed in a row. ``None`` (not enough data) neither starts nor resolves an alert.
    Reports are shared by the rules of one tick that ask for the same endpoint and window.
    """

    def __init__(self, monitor: ModelMonitor) -> None:
        self._monitor = monitor
        self._tick: int | None = None
        self._performance: dict[tuple[str, float], PerformanceReport | None] = {}
        self._drift: dict[tuple[str, float], DriftReport | None] = {}

    def measure(self, rule: AlertRule, now_ms: int) -> Sequence[Measurement]:
        if now_ms != self._tick:  # a new tick: forget the previous tick's reports
            self._tick = now_ms
            self._performance.clear()
            self._drift.clear()
        if rule.signal == "pipeline_consecutive_failures":
            return self._pipeline_failures(rule)
        window = float(rule.window)
        endpoints = [rule.endpoint] if rule.endpoint is not None else self._active(window, now_ms)
        found = []
        for endpoint in endpoints:
            if rule.signal in _DRIFT:
                value = self._drift_value(rule, endpoint, window, now_ms)
            else:
                value = self._performance_value(rule, endpoint, window, now_ms)
            found.append(Measurement({"endpoint": endpoint}, value))
        return found

    def _active(self, window: float, now_ms: int) -> list[str]:
        """Endpoints with logged requests in the window."""
        since = now_ms - int(window * 1000)
        query = (
            sa.select(prediction_log.c.endpoint)
            .where(prediction_log.c.ts >= since, prediction_log.c.ts <= now_ms)
            .distinct()
        )
        with self._monitor._store.read() as connection:
            return sorted(row[0] for row in connection.execute(query))

    def _report(self, endpoint: str, window: float, now_ms: int) -> PerformanceReport | None:
        key = (endpoint, window)
        if key not in self._performance:
            try:
                report: PerformanceReport | None = self._monitor.performance(
                    endpoint, window=window, now_ms=now_ms
                )
            except MLOpsError:
                report = None
            self._performance[key] = report
        return self._performance[key]

    def _performance_value(
        self, rule: AlertRule, endpoint: str, window: float, now_ms: int
    ) -> float | None:
        report = self._report(endpoint, window, now_ms)
        if report is None:
            return None
        signal = rule.signal
        overall = report.overall
        if signal == "requests":
            return float(overall.requests)
        if signal == "throughput":
            return overall.throughput
        if signal == "estimated_accuracy":
            estimated = overall.estimated
            return None if estimated is None else _number(getattr(estimated, "accuracy", None))
        if signal.endswith("_drop"):
            degradation = overall.degradation.get(signal.removesuffix("_drop"))
            return None if degradation is None else degradation.degradation
        if signal in HIGHER_IS_BETTER or signal in _PERFORMANCE_TRAFFIC:
            if signal not in _PERFORMANCE_TRAFFIC and overall.metrics is None:
                return None
            return overall.value(signal)
        return None

    def _drift_report(self, endpoint: str, window: float, now_ms: int) -> DriftReport | None:
        key = (endpoint, window)
        if key not in self._drift:
            try:
                report: DriftReport | None = self._monitor.drift(
                    endpoint, window=window, now_ms=now_ms
                )
            except MLOpsError:
                report = None
            self._drift[key] = report
        return self._drift[key]

    def _drift_value(
        self, rule: AlertRule, endpoint: str, window: float, now_ms: int
    ) -> float | None:
        report = self._drift_report(endpoint, window, now_ms)
        if report is None:
            return None
        signal = rule.signal
        if signal == "drift_share":
            return report.share if _tested(report) else None
        if signal == "dataset_drift":
            return float(report.dataset_drift) if _tested(report) else None
        if signal == "multivariate_drift":
            check = report.multivariate
            drifted = None if check is None else getattr(check, "drifted", None)
            return None if drifted is None else float(drifted)
        column = report.prediction if signal == "prediction_drift" else None
        if signal == "column_drift":
            name = str(rule.params.get("column"))
            matches = [c for c in report.columns if c.name == name]
            column = matches[0] if matches else None
        if column is None or column.drifted is None:
            return None
        return float(column.drifted)

    def _pipeline_failures(self, rule: AlertRule) -> list[Measurement]:
        """Per pipeline: how many of its latest finished runs failed in a row."""
        wanted = rule.params.get("pipeline")
        query = (
            sa.select(run_tags.c.value, runs.c.status)
            .join(runs, runs.c.id == run_tags.c.run_id)
            .where(
                run_tags.c.key == PIPELINE_TAG,
                runs.c.parent_run_id.is_(None),
                runs.c.status.in_((_FAILED, _FINISHED)),
            )
            .order_by(run_tags.c.value, runs.c.start_time.desc(), runs.c.seq.desc())
        )
        if wanted is not None:
            query = query.where(run_tags.c.value == str(wanted))
        streaks: dict[str, int] = {}
        broken: set[str] = set()
        with self._monitor._store.read() as connection:
            for pipeline, status in connection.execute(query):
                if pipeline in broken:
                    continue
                if status == _FAILED:
                    streaks[pipeline] = streaks.get(pipeline, 0) + 1
                else:
                    streaks.setdefault(pipeline, 0)
                    broken.add(pipeline)
        return [Measurement({"pipeline": name}, float(count)) for name, count in streaks.items()]


def _tested(report: DriftReport) -> bool:
    """Whether any column got a verdict (else the window had too little data)."""
    return any(column.drifted is not None for column in report.columns)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
