"""The demo's monitoring act: two hours of recorded traffic, a drift, and the alerts it fires.

The first hour looks like training data and the model does well; in the second, two
features shift and the churn drivers change (concept drift), so accuracy falls. The
performance report, the drift report (saved as HTML) and the alert rules all see it. The
live traffic the rollout act sent over HTTP also falls in the last hour (without outcomes),
so the drift it sees is somewhat diluted, and still plain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from mlops._client import MLOps
from mlops.monitoring import PerformanceReport, calibrator_from_log
from mlops.monitoring.alerts import Alert, AlertRule
from mlops.monitoring.drift import DriftReport

__all__ = ["DEMO_DRIFT_RULE", "DEMO_ENDPOINT", "MonitoringDemo", "run_monitoring_demo"]

DEMO_ENDPOINT = "churn-demo"
_REQUESTS_PER_HOUR = 600
_HOUR_MS = 3_600_000
# The generating model of the demo data (see _demo._make_dataset); the second hour flips
# the support-calls effect and shifts two features.
_TRUE_WEIGHTS = np.array([-1.4, 0.9, 1.2, -0.8, 0.7, 0.0, -0.5, -1.1])
_DRIFTED_WEIGHTS = np.array([-1.4, 0.9, -1.2, -0.8, 0.7, 0.0, -0.5, 1.1])
_SHIFTED = {2: 1.0, 7: -0.8}  # feature index → mean shift (in standard deviations)


DEMO_DRIFT_RULE = "demo-feature-drift"


@dataclass(frozen=True, slots=True)
class MonitoringDemo:
    """What the monitoring act found."""

    before: PerformanceReport
    after: PerformanceReport
    drift: DriftReport
    firing: list[Alert]
    html_report: Path


def run_monitoring_demo(ml: MLOps, console: Console, model: str, version: int) -> MonitoringDemo:
    """Record two hours of traffic for ``model``'s production version, then monitor it."""
    monitor = ml.monitor
    loaded = ml.registry.load_model(model, version)
    profile = loaded.reference_profile or {}
    names = [str(c) for c in profile.get("sample", {}).get("columns", range(len(_TRUE_WEIGHTS)))]
    now = int(time.time() * 1000)
    rng = np.random.default_rng(11)
    for hour, weights, shift in ((2, _TRUE_WEIGHTS, {}), (1, _DRIFTED_WEIGHTS, _SHIFTED)):
        features = rng.normal(size=(_REQUESTS_PER_HOUR, len(_TRUE_WEIGHTS)))
        for column, delta in shift.items():
            features[:, column] += delta
        logits = features @ weights - 0.6 + rng.normal(scale=0.5, size=len(features))
        labels = (rng.random(len(features)) < 1 / (1 + np.exp(-logits))).astype(int)
        output = loaded.predict(features.tolist())
        start = now - hour * _HOUR_MS
        stamps = np.sort(rng.integers(start, start + _HOUR_MS - 1000, len(features)))
        ids = monitor.record_predictions(
            DEMO_ENDPOINT,
            [dict(zip(names, row, strict=True)) for row in features.tolist()],
            [int(p) for p in output["predictions"]],
            probabilities=[[1 - p, p] for p in output["probabilities"]],
            version=version,
            latency_ms=rng.gamma(4.0, 2.0, len(features)).round(2).tolist(),
            ts=stamps.tolist(),
        )
        monitor.record_feedback_batch(DEMO_ENDPOINT, ids, labels.tolist(), ts=now)
    console.print(
        f"recorded {2 * _REQUESTS_PER_HOUR} predictions of {model} v{version} over two hours "
        f"on endpoint '{DEMO_ENDPOINT}', with their actual outcomes"
    )
    # Label-free estimates need calibrated probabilities: calibrate on the labelled hour.
    since, until = now - 2 * _HOUR_MS, now - _HOUR_MS - 1
    calibrator = calibrator_from_log(ml.store, DEMO_ENDPOINT, since=since, until=until)
    before = monitor.performance(DEMO_ENDPOINT, since=since, until=until, calibrator=calibrator)
    after = monitor.performance(DEMO_ENDPOINT, window="1h", now_ms=now, calibrator=calibrator)
    console.print(_accuracy_table(before, after))
    console.print(
        "the label-free estimate (calibrated on the first hour) sees the model as confident as "
        "ever: the churn drivers changed (concept drift), which only the actual outcomes reveal"
    )

    drift = monitor.drift(DEMO_ENDPOINT, window="1h", now_ms=now)
    html = ml.settings.home / "reports" / "churn-demo-drift.html"
    html.parent.mkdir(parents=True, exist_ok=True)
    drift.save_html(html)
    shifted = ", ".join(drift.drifted_columns) or "none"
    console.print(
        f"drift over the last hour against the training sample: {drift.drifted_count} of "
        f"{len(drift.columns)} features drifted ({shifted}); report: {html}"
    )

    alerts = monitor.alerts
    alerts.install_default_rules()
    if DEMO_DRIFT_RULE not in {rule.name for rule in alerts.rules()}:
        alerts.create_rule(
            AlertRule(
                name=DEMO_DRIFT_RULE,
                signal="drift_share",
                comparison=">=",
                threshold=0.2,
                window="1h",
                severity="warning",
                description="$value of the features of $endpoint drifted in the last hour.",
            )
        )
    alerts.evaluate(now_ms=now)
    firing = alerts.alerts(state="firing", endpoint=DEMO_ENDPOINT)
    for alert in firing:
        value = "—" if alert.value is None else f"{alert.value:.3g}"
        console.print(f"alert firing: {alert.rule} ({alert.severity}), value {value}")
    return MonitoringDemo(before, after, drift, firing, html)


def _accuracy_table(before: PerformanceReport, after: PerformanceReport) -> Table:
    table = Table(title=f"{DEMO_ENDPOINT}: live performance", show_edge=False)
    table.add_column("hour")
    for heading in ("requests", "accuracy", "f1", "est. accuracy (no labels)", "vs baseline"):
        table.add_column(heading, justify="right")
    for label, report in (("two hours ago", before), ("last hour", after)):
        metrics = report.metrics or {}
        estimated = report.estimated.metrics.get("accuracy") if report.estimated else None
        change = report.degradation.get("accuracy")
        table.add_row(
            label,
            str(report.requests),
            _fmt(metrics.get("accuracy")),
            _fmt(metrics.get("f1")),
            _fmt(estimated),
            "—" if change is None or change.change is None else f"{change.change:+.1%}",
        )
    return table


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
