"""Dashboard pages: monitoring (endpoints' traffic, quality and drift) and alerts.

``/monitoring`` has a card per endpoint with something to monitor (a serving endpoint or
logged predictions); ``/monitoring/{endpoint}`` charts a window of it in time buckets, with
the drift of its inputs against the served version's reference; ``/alerts`` lists alert
episodes, rules and silences, and creates and expires silences (``alerts.write``, as the
REST API).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mlops._client import MLOps
from mlops.errors import InvalidInput, MLOpsError, NotFound
from mlops.monitoring import PerformanceReport
from mlops.monitoring.alerts import Alert, AlertState, Matcher
from mlops.monitoring.drift import ColumnDrift, DriftReport
from mlops.ui._common import connection, redirect_done, render, require
from mlops.ui._monitoring_charts import (
    Bucket,
    histogram_figure,
    latency_figure,
    quality_figure,
    quality_metrics,
    rate_figure,
    requests_figure,
)
from mlops.ui._session import check_csrf

__all__ = ["WINDOWS", "routes"]

_MINUTE = 60_000
_HOUR = 60 * _MINUTE
#: The windows an endpoint page offers: label → (span, bucket size), in ms. Each bucket is
#: one performance report (one read of its slice of the log): keep them few.
WINDOWS: dict[str, tuple[int, int]] = {
    "1h": (_HOUR, 5 * _MINUTE),
    "6h": (6 * _HOUR, 30 * _MINUTE),
    "24h": (24 * _HOUR, 2 * _HOUR),
    "7d": (7 * 24 * _HOUR, 12 * _HOUR),
}
_DEFAULT_WINDOW = "1h"
_REFRESH_SECONDS = 5
#: The overview's cards cover the last hour (the drift count too).
_CARD_WINDOW = "1h"
_ALERTS_SHOWN = 200
_SILENCE_PERMISSION = "alerts.write"  # what POST/DELETE /api/v1/alerts/silences require
_DONE = {"silenced": "Silence created.", "expired": "Silence expired."}


# -- /monitoring ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointCard:
    """The overview's figures of one endpoint over the last hour."""

    name: str
    requests: int | None
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    metric: str | None
    metric_value: float | None
    labelled: int
    drifted: int | None
    tested: int | None
    drift_note: str | None
    firing: int
    problem: str | None


def monitoring_index(request: Request) -> Response:
    """One card per monitored endpoint; refreshes itself."""
    ml = connection(request)
    firing = ml.monitor.alerts.alerts(state=AlertState.FIRING, limit=_ALERTS_SHOWN)
    cards = [_card(ml, name, firing) for name in ml.monitor.endpoints()]
    context = {
        "cards": cards,
        "firing_total": len(firing),
        "window": _CARD_WINDOW,
        "refresh": _REFRESH_SECONDS,
    }
    return render(request, "monitoring/index.html", context, title="Monitoring")


def _card(ml: MLOps, name: str, firing: list[Alert]) -> EndpointCard:
    alerts = sum(1 for alert in firing if alert.endpoint == name)
    try:
        report = ml.monitor.performance(name, window=_CARD_WINDOW, baseline=None)
    except MLOpsError as exc:
        return EndpointCard(
            name, None, None, None, None, None, None, 0, None, None, None, alerts, str(exc)
        )
    metric = next(iter(quality_metrics(report.task)), None)
    value = None if metric is None or report.metrics is None else report.metrics.get(metric)
    drifted = tested = None
    note = None
    try:
        drift = ml.monitor.drift(name, window=_CARD_WINDOW, multivariate=False, predictions=False)
        drifted, tested = drift.drifted_count, drift.tested_count
    except MLOpsError as exc:
        note = str(exc)
    overall = report.overall
    return EndpointCard(
        name=name,
        requests=overall.requests,
        error_rate=overall.error_rate,
        latency_p50_ms=overall.latency_p50_ms,
        latency_p95_ms=overall.latency_p95_ms,
        metric=metric,
        metric_value=value,
        labelled=overall.labelled,
        drifted=drifted,
        tested=tested,
        drift_note=note,
        firing=alerts,
        problem=None,
    )


# -- /monitoring/{endpoint} ----------------------------------------------------------------


def endpoint_page(request: Request) -> Response:
    """Traffic, quality and drift of one endpoint over a window, in buckets; refreshes."""
    name = request.path_params["endpoint"]
    window = request.query_params.get("window", _DEFAULT_WINDOW)
    if window not in WINDOWS:
        raise InvalidInput(
            f"window {window!r} is not offered; use one of {', '.join(WINDOWS)} "
            f"(e.g. ?window={_DEFAULT_WINDOW})"
        )
    ml = connection(request)
    monitor = ml.monitor
    if name not in monitor.endpoints():
        raise NotFound(
            f"there is no monitored endpoint {name!r}: no serving endpoint has that name and "
            "no prediction was logged for it; the monitoring page lists the endpoints"
        )
    span, size = WINDOWS[window]
    until = (monitor.alerts.now_ms() // size + 1) * size - 1
    since = until + 1 - span
    buckets = [
        Bucket(start, start + size - 1, _bucket_report(ml, name, start, start + size - 1))
        for start in range(since, until, size)
    ]
    summary = monitor.performance(name, window=None, since=since, until=until, by="version")
    drift, drift_problem = _drift(ml, name, since, until)
    alerts = monitor.alerts.alerts(endpoint=name, limit=_ALERTS_SHOWN)
    charts = {
        "requests": requests_figure(buckets),
        "errors": rate_figure(buckets),
        "latency": latency_figure(buckets),
        "quality": quality_figure(buckets, summary.task, summary.baseline),
    }
    context = {
        "endpoint": name,
        "window": window,
        "windows": list(WINDOWS),
        "bucket_minutes": size // _MINUTE,
        "since": since,
        "until": until,
        "summary": summary,
        "metrics": quality_metrics(summary.task),
        "charts": charts,
        "drift": drift,
        "drift_rows": _drift_rows(drift),
        "drift_problem": drift_problem,
        "active": [a for a in alerts if a.state is not AlertState.RESOLVED],
        "resolved": [a for a in alerts if a.state is AlertState.RESOLVED],
        "refresh": _REFRESH_SECONDS,
        "breadcrumbs": [("Monitoring", "/monitoring"), (name, None)],
    }
    return render(request, "monitoring/endpoint.html", context, title=f"Monitoring · {name}")


def _bucket_report(ml: MLOps, name: str, since: int, until: int) -> PerformanceReport:
    """One bucket, per version; its baseline is the page's (drawn once), not looked up again."""
    return ml.monitor.performance(
        name, window=None, since=since, until=until, by="version", baseline=None
    )


def _drift(ml: MLOps, name: str, since: int, until: int) -> tuple[DriftReport | None, str | None]:
    """The window's drift report, or why there is none (no reference, no inputs)."""
    try:
        return ml.monitor.drift(name, window=None, since=since, until=until), None
    except MLOpsError as exc:
        return None, str(exc)


@dataclass(frozen=True, slots=True)
class DriftRow:
    """A drift table row: a column (or the predictions) and its histogram chart."""

    column: ColumnDrift
    label: str
    chart_id: str
    figure: dict[str, Any] | None


def _drift_rows(report: DriftReport | None) -> list[DriftRow]:
    if report is None:
        return []
    columns = list(report.columns)
    labels = [column.name for column in columns]
    if report.prediction is not None:
        columns.append(report.prediction)
        labels.append(f"{report.prediction.name} (model output)")
    return [
        DriftRow(column, label, f"drift-hist-{index}", histogram_figure(column))
        for index, (column, label) in enumerate(zip(columns, labels, strict=True))
    ]


# -- /alerts -------------------------------------------------------------------------------


def alerts_page(request: Request) -> Response:
    """Alert episodes, rules and silences; create and expire silences."""
    ml = connection(request)
    manager = ml.monitor.alerts
    episodes = manager.alerts(limit=_ALERTS_SHOWN)
    now = manager.now_ms()
    silences = manager.silences()
    done = request.query_params.get("done")
    context = {
        "firing": [a for a in episodes if a.state is AlertState.FIRING],
        "pending": [a for a in episodes if a.state is AlertState.PENDING],
        "resolved": [a for a in episodes if a.state is AlertState.RESOLVED],
        "rules": manager.rules(),
        "silences": [(silence, silence.state(now).value) for silence in silences],
        "done": _DONE.get(done or ""),
        "prefill": request.query_params.get("match", ""),
        "permission": _SILENCE_PERMISSION,
        "breadcrumbs": [("Monitoring", "/monitoring"), ("Alerts", None)],
    }
    return render(request, "monitoring/alerts.html", context, title="Alerts")


async def create_silence(request: Request) -> Response:
    """POST: a silence from an alert's labels (``alert``) or from ``matchers`` (one per line)."""
    form = await check_csrf(request)
    actor = require(request, _SILENCE_PERMISSION)
    ml = connection(request)
    duration = (form.get("duration") or "2h").strip()
    comment = (form.get("comment") or "").strip()
    alert_id = (form.get("alert") or "").strip()
    matchers: list[Matcher] | list[str]
    if alert_id:
        if not alert_id.isdigit():
            raise InvalidInput(f"alert must be an alert id, got {alert_id!r}")
        alert = await run_in_threadpool(ml.monitor.alerts.get_alert, int(alert_id))
        matchers = [Matcher(name=key, value=value) for key, value in sorted(alert.labels.items())]
        comment = comment or f"silenced from the dashboard (alert #{alert.id})"
    else:
        matchers = [line.strip() for line in (form.get("matchers") or "").splitlines()]
        matchers = [line for line in matchers if line]
        if not matchers:
            raise InvalidInput(
                "give at least one matcher, one per line, such as endpoint=churn or "
                "severity=~warning|critical"
            )
        if not comment:
            raise InvalidInput("say why in the comment (who reads the silence later needs it)")
    await run_in_threadpool(
        ml.monitor.alerts.silence, matchers, duration=duration, comment=comment, created_by=actor
    )
    return redirect_done(request, "/alerts", "silenced")


async def expire_silence(request: Request) -> Response:
    """POST: end a silence now."""
    await check_csrf(request)
    actor = require(request, _SILENCE_PERMISSION)
    silence_id: int = request.path_params["silence_id"]
    ml = connection(request)
    await run_in_threadpool(ml.monitor.alerts.expire_silence, silence_id, actor=actor)
    return redirect_done(request, "/alerts", "expired")


routes: list[BaseRoute] = [
    Route("/monitoring", monitoring_index, methods=["GET"], name="monitoring"),
    Route("/monitoring/{endpoint}", endpoint_page, methods=["GET"], name="monitoring_endpoint"),
    Route("/alerts", alerts_page, methods=["GET"], name="alerts"),
    Route("/alerts/silences", create_silence, methods=["POST"], name="create_silence"),
    Route(
        "/alerts/silences/{silence_id:int}/expire",
        expire_silence,
        methods=["POST"],
        name="expire_silence",
    ),
]
