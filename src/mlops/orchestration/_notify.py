"""Tell monitoring's alert channels (Slack, webhook, email) how an execution ended.

The message goes out through the channels' own notifiers, as a one-alert notification
whose ``kind`` is "failure" or "success": a Slack attachment, a signed webhook JSON body
(``X-MLOps-Event: alert.failure``) or an email. Delivery is at most once per execution
end; a channel that fails is written in the execution's log and nothing else changes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import sqlalchemy as sa

from mlops.errors import InvalidInput
from mlops.monitoring.alerts import Alert, AlertState, Notification, notifier_from_params
from mlops.monitoring.alerts._channels import failure_text
from mlops.monitoring.alerts._dispatch import channel_configs
from mlops.orchestration._executions import Execution, ExecutionState, LogLine
from mlops.orchestration._spec import Notify
from mlops.store import Store
from mlops.store._schema import alert_channels

__all__ = ["check_channels", "notify_end"]

_log = logging.getLogger(__name__)

_HTTP_TIMEOUT = 10.0
_ERROR_MAX = 500
_FAILURE = (ExecutionState.FAILED, ExecutionState.TIMED_OUT)
_SUCCESS = (ExecutionState.SUCCEEDED, ExecutionState.CACHED)


def check_channels(store: Store, notify: Notify | None) -> None:
    """InvalidInput naming the channels of ``notify`` that do not exist."""
    if notify is None:
        return
    with store.read() as connection:
        known = set(connection.execute(sa.select(alert_channels.c.name)).scalars())
    missing = [name for name in notify.channels if name not in known]
    if missing:
        raise InvalidInput(
            f"notify names channels that do not exist: {', '.join(missing)}; create them with "
            "ml.monitor.alerts.create_channel(...) or `mlops alerts channels add`"
        )


def notify_end(
    store: Store, notify: Notify | None, execution: Execution, now: int
) -> list[LogLine]:
    """Send the end of ``execution`` to the channels that want it; one log line each."""
    if notify is None:
        return []
    if execution.state in _FAILURE:
        kind = "failure"
    elif execution.state in _SUCCESS:
        kind = "success"
    else:
        return []
    if kind not in notify.on:
        return []
    configs = channel_configs(store, notify.channels)
    lines = []
    for channel in notify.channels:
        error = _send(channel, configs.get(channel), _notification(channel, kind, execution, now))
        lines.append(
            LogLine(
                at=now,
                state="notified" if error is None else "notify_failed",
                message=f"{kind} notification to channel {channel!r}",
                error=error,
            )
        )
    return lines


def _send(
    channel: str, config: tuple[str, dict[str, object]] | None, notification: Notification
) -> str | None:
    """Deliver; the error as "Type: message" instead of raising."""
    if config is None:
        return f"NotFound: channel {channel!r} was removed"
    kind, params = config
    try:
        if params.get("timeout") is None and kind in ("slack", "webhook"):
            params = {**params, "timeout": _HTTP_TIMEOUT}
        notifier_from_params(kind, params).send(notification)
    except Exception as error:  # a failing channel must never fail the execution
        text = failure_text(error, params, _ERROR_MAX)
        _log.warning("pipeline notification to channel %r failed: %s", channel, text)
        return text
    return None


def _notification(channel: str, kind: str, execution: Execution, now: int) -> Notification:
    attempts = len(execution.attempts)
    what = execution.state.value.replace("_", " ")
    summary = f"pipeline {execution.pipeline!r} {what} after {attempts} attempt(s)"
    description = _description(execution)
    labels = {
        "pipeline": execution.pipeline,
        "execution": str(execution.id),
        "trigger": execution.trigger,
        "state": execution.state.value,
    }
    alert = Alert(
        id=execution.id,
        rule=f"pipeline:{execution.pipeline}",
        fingerprint=hashlib.sha256(f"pipeline:{execution.pipeline}".encode()).hexdigest(),
        state=AlertState.FIRING if kind == "failure" else AlertState.RESOLVED,
        severity="critical" if kind == "failure" else "info",
        labels=labels,
        annotations={"summary": summary, "description": description},
        value=None,
        threshold=0.0,
        started_at=execution.started_at or execution.created_at,
        fired_at=execution.finished_at,
        resolved_at=execution.finished_at if kind == "success" else None,
        evaluated_at=now,
    )
    return Notification(
        channel=channel,
        kind=kind,
        group_labels={"pipeline": execution.pipeline},
        alerts=(alert,),
        sent_at=now,
    )


def _description(execution: Execution) -> str:
    lines: Sequence[str] = [
        line.text()
        for line in execution.log
        if line.step is not None and line.attempt == len(execution.attempts)
    ]
    text = "\n".join(lines)
    if execution.error:
        text = f"{execution.error}\n{text}" if text else execution.error
    if execution.run_ids:
        text += f"\nrun {execution.run_ids[-1]}"
    return text.strip()
