"""Plotly figures of the monitoring pages: traffic and quality per time bucket, drift
histograms. Pure functions from reports to figure dicts (drawn by mlops.js)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops.monitoring import PerformanceReport
from mlops.monitoring.drift import ColumnDrift
from mlops.ui._common import finite

__all__ = [
    "Bucket",
    "histogram_figure",
    "latency_figure",
    "quality_figure",
    "quality_metrics",
    "rate_figure",
    "requests_figure",
]

#: The quality metrics drawn per task (the first is the card's headline metric).
QUALITY_METRICS: Mapping[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1"),
    "regression": ("mae", "rmse"),
}
_BASELINE_COLORS = ("#4f46e5", "#0ea5e9", "#f59e0b", "#10b981")
_REFERENCE_COLOR = "#94a3b8"
_CURRENT_COLOR = "#4f46e5"


@dataclass(frozen=True, slots=True)
class Bucket:
    """One time bucket of an endpoint page and its performance report (grouped by version)."""

    start_ms: int
    until_ms: int
    report: PerformanceReport

    @property
    def x(self) -> str:
        """The bucket's start as plotly reads a date (UTC)."""
        moment = dt.datetime.fromtimestamp(self.start_ms / 1000, tz=dt.UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S")


def _layout(title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 13}},
        "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
    }
    layout.update(extra)
    return layout


def _line(name: str, x: Sequence[str], y: Sequence[float | None], **style: Any) -> dict[str, Any]:
    trace: dict[str, Any] = {
        "type": "scatter",
        "mode": "lines+markers",
        "name": name,
        "x": list(x),
        "y": [finite(value) for value in y],
        "connectgaps": False,
    }
    trace.update(style)
    return trace


def requests_figure(buckets: Sequence[Bucket]) -> dict[str, Any]:
    """Requests per bucket, with one line per version when several versions served."""
    x = [bucket.x for bucket in buckets]
    traces = [_line("all requests", x, [float(b.report.requests) for b in buckets])]
    versions = sorted(
        {group.key for b in buckets for group in b.report.groups},
        key=lambda key: (key is None, str(key)),
    )
    if len(versions) > 1:
        for key in versions:
            counts = [float(_group_requests(b.report, key)) for b in buckets]
            label = "no version" if key is None else f"v{key}"
            traces.append(_line(label, x, counts, line={"dash": "dot"}))
    return {"data": traces, "layout": _layout("Requests per bucket", "requests")}


def _group_requests(report: PerformanceReport, key: int | str | None) -> int:
    for group in report.groups:
        if group.key == key:
            return group.requests
    return 0


def rate_figure(buckets: Sequence[Bucket]) -> dict[str, Any]:
    """Server error rate (5xx) and client error rate (4xx) per bucket."""
    x = [bucket.x for bucket in buckets]
    traces = [
        _line("error rate (5xx)", x, [b.report.overall.error_rate for b in buckets]),
        _line(
            "client errors (4xx)",
            x,
            [b.report.overall.client_error_rate for b in buckets],
            line={"dash": "dot"},
        ),
    ]
    layout = _layout("Error rate", "share of requests", yaxis={"tickformat": ".0%"})
    layout["yaxis"]["rangemode"] = "tozero"
    return {"data": traces, "layout": layout}


def latency_figure(buckets: Sequence[Bucket]) -> dict[str, Any]:
    """Latency percentiles per bucket."""
    x = [bucket.x for bucket in buckets]
    traces = [
        _line(label, x, [getattr(b.report.overall, attribute) for b in buckets])
        for label, attribute in (
            ("p50", "latency_p50_ms"),
            ("p95", "latency_p95_ms"),
            ("p99", "latency_p99_ms"),
        )
    ]
    return {"data": traces, "layout": _layout("Latency", "ms")}


def quality_metrics(task: str | None) -> tuple[str, ...]:
    """The metrics the quality chart and the cards show for a task."""
    return QUALITY_METRICS.get(task or "", ())


def quality_figure(
    buckets: Sequence[Bucket], task: str | None, baseline: Mapping[str, float] | None
) -> dict[str, Any] | None:
    """The task's metrics per bucket (from feedback), the label-free accuracy estimate, and
    the baseline of each as a dashed line; None when no bucket has metrics or estimates."""
    names = quality_metrics(task)
    x = [bucket.x for bucket in buckets]
    traces: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        values = [(b.report.metrics or {}).get(name) for b in buckets]
        color = _BASELINE_COLORS[index % len(_BASELINE_COLORS)]
        if any(value is not None for value in values):
            traces.append(_line(name, x, values, line={"color": color}))
        if baseline and name in baseline and x:
            traces.append(
                _line(
                    f"{name} baseline",
                    [x[0], x[-1]],
                    [baseline[name], baseline[name]],
                    mode="lines",
                    line={"color": color, "dash": "dash", "width": 1.5},
                )
            )
    estimated = [
        None if b.report.estimated is None else b.report.estimated.metrics.get("accuracy")
        for b in buckets
    ]
    if task == "classification" and any(value is not None for value in estimated):
        traces.append(_line("estimated accuracy (no labels)", x, estimated, line={"dash": "dot"}))
    if not any(trace["name"] in names for trace in traces) and not any(
        value is not None for value in estimated
    ):
        return None
    layout = _layout("Model quality (from feedback) vs baseline", "value")
    return {"data": traces, "layout": layout}


def histogram_figure(column: ColumnDrift) -> dict[str, Any] | None:
    """Reference vs current shares over the report's shared bins, overlaid."""
    histogram = column.histogram
    if not histogram:
        return None
    reference = [int(value) for value in histogram.get("reference", [])]
    current = [int(value) for value in histogram.get("current", [])]
    if histogram.get("kind") == "numeric":
        edges = [float(edge) for edge in histogram["edges"]]
        x: list[Any] = [(low + high) / 2 for low, high in itertools.pairwise(edges)]
        width = [high - low for low, high in itertools.pairwise(edges)]
    else:
        x = [str(value) for value in histogram.get("values", [])]
        width = None
        if histogram.get("other_reference") or histogram.get("other_current"):
            x.append("(other)")
            reference.append(int(histogram.get("other_reference", 0)))
            current.append(int(histogram.get("other_current", 0)))
    traces = []
    for label, counts, color in (
        ("reference", reference, _REFERENCE_COLOR),
        ("current", current, _CURRENT_COLOR),
    ):
        total = sum(counts) or 1
        trace: dict[str, Any] = {
            "type": "bar",
            "name": label,
            "x": x,
            "y": [count / total for count in counts],
            "customdata": counts,
            "hovertemplate": "%{x}: %{y:.1%} (%{customdata} rows)<extra>" + label + "</extra>",
            "marker": {"color": color},
            "opacity": 0.6,
        }
        if width is not None:
            trace["width"] = width
        traces.append(trace)
    layout = {
        "title": {"text": column.name, "font": {"size": 13}},
        "barmode": "overlay",
        "bargap": 0.02,
        "yaxis": {"title": {"text": "share of rows"}, "tickformat": ".0%"},
        "margin": {"l": 56, "r": 12, "t": 32, "b": 40},
    }
    return {"data": traces, "layout": layout}
