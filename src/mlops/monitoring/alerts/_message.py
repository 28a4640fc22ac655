"""The message a channel delivers: the alerts of one group, rendered as text or JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlops.monitoring.alerts._engine import Alert, AlertState
from mlops.monitoring.alerts._rules import Severity

__all__ = ["Notification", "sample_notification", "utc_time"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one channel: the alerts of one group that need telling now, all
    firing or all resolved (``kind``)."""

    channel: str
    kind: str
    group_labels: dict[str, str]
    alerts: tuple[Alert, ...]
    sent_at: int

    @property
    def severity(self) -> str:
        return max((Severity(alert.severity) for alert in self.alerts), key=lambda s: s.rank)

    @property
    def common_labels(self) -> dict[str, str]:
        first, *rest = [alert.labels for alert in self.alerts]
        return {k: v for k, v in first.items() if all(other.get(k) == v for other in rest)}

    @property
    def title(self) -> str:
        """E.g. ``[FIRING:2] critical latency-p95 (endpoint=churn)``."""
        rules = ", ".join(sorted({alert.rule for alert in self.alerts}))
        where = ", ".join(f"{k}={v}" for k, v in self.group_labels.items() if k != "rule" and v)
        tail = f" ({where})" if where else ""
        return f"[{self.kind.upper()}:{len(self.alerts)}] {self.severity} {rules}{tail}"

    def text(self) -> str:
        """A plain-text body: the title, then one paragraph per alert."""
        lines = [self.title, ""]
        for alert in self.alerts:
            lines += _alert_lines(alert)
        return "\n".join(lines).rstrip() + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "kind": self.kind,
            "channel": self.channel,
            "title": self.title,
            "severity": self.severity,
            "group_labels": dict(self.group_labels),
            "common_labels": self.common_labels,
            "alerts": [alert.to_json() for alert in self.alerts],
            "sent_at": self.sent_at,
        }


def utc_time(epoch_ms: int | None) -> str:
    """``2026-11-22 15:04:05 UTC`` (a dash for None)."""
    if epoch_ms is None:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _alert_lines(alert: Alert) -> list[str]:
    labels = ", ".join(f"{k}={v}" for k, v in alert.labels.items() if k not in ("rule", "severity"))
    lines = [f"- {alert.severity} {alert.rule} {labels}: {alert.annotations.get('summary', '')}"]
    if description := alert.annotations.get("description"):
        lines.append(f"  {description}")
    lines.append(f"  started {utc_time(alert.started_at)}, fired {utc_time(alert.fired_at)}")
    if alert.state is AlertState.RESOLVED:
        lines.append(f"  resolved {utc_time(alert.resolved_at)}")
    return [*lines, ""]


def sample_notification(kind: str = "firing", channel: str = "sample") -> Notification:
    """A notification with one alert, to test channels and render previews."""
    labels = {"endpoint": "churn", "rule": "latency-p95", "severity": "warning"}
    alert = Alert(
        id=0,
        rule="latency-p95",
        fingerprint="0" * 64,
        state=AlertState(kind),
        severity="warning",
        labels=labels,
        annotations={
            "summary": "latency_p95_ms is 1500 (> 1000)",
            "description": "p95 latency on churn is 1500 ms (a test notification).",
        },
        value=1500.0,
        threshold=1000.0,
        started_at=0,
        fired_at=0,
        resolved_at=0 if kind == "resolved" else None,
        evaluated_at=0,
    )
    group = {"rule": "latency-p95", "endpoint": "churn"}
    return Notification(channel=channel, kind=kind, group_labels=group, alerts=(alert,), sent_at=0)
