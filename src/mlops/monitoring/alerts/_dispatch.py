"""Notification dispatch: which alerts need telling, grouped into one message per group.

Alertmanager's semantics, simplified. Once per tick, per channel of each alert's rule:

- a firing alert is told when it starts firing, then again every ``repeat_interval``;
- a resolved alert is told once, if its firing was told (within a day of resolving);
- a silenced alert is not told (its state still changes); once the silence ends, the
  next tick tells what is still firing, or a resolve that is still due;
- the alerts to tell go out grouped by channel, kind (firing or resolved) and the values
  of the rule's ``group_by`` labels: one message per group;
- every attempt is logged in ``alert_notifications``; a failed one is retried at the next
  tick, up to ``max_attempts`` times in a row (a firing alert gets another round of
  attempts every ``repeat_interval``). A failing channel never stops the others.

Notifications go out at least once: two evaluators ticking at the same moment may both
send one (the AlertEvaluator's leader lock prevents that).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from mlops.errors import InvalidInput
from mlops.monitoring.alerts._channels import (
    Notifier,
    SlackNotifier,
    WebhookNotifier,
    failure_text,
    http_client,
    notifier_from_params,
)
from mlops.monitoring.alerts._engine import Alert, AlertState, alert_from_row
from mlops.monitoring.alerts._message import Notification
from mlops.monitoring.alerts._rules import AlertRule
from mlops.monitoring.alerts._silences import is_silenced, list_silences
from mlops.store import Store
from mlops.store._schema import alert_channel_states as _states
from mlops.store._schema import alert_channels, alert_notifications, alerts

__all__ = ["Dispatcher", "NotificationRecord", "list_notifications"]

_log = logging.getLogger(__name__)

_ERROR_MAX = 500
_IN_CHUNK = 500
#: A resolve notification that could not go out within this long is dropped.
_RESOLVED_HORIZON_MS = 24 * 3600 * 1000
_STATUSES = ("sent", "failed")


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """One attempt to deliver one grouped message to one channel."""

    id: int
    channel: str
    kind: str
    status: str
    alert_ids: tuple[int, ...]
    group_labels: dict[str, str]
    error: str | None
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "kind": self.kind,
            "status": self.status,
            "alert_ids": list(self.alert_ids),
            "group_labels": self.group_labels,
            "error": self.error,
            "created_at": self.created_at,
        }


_GroupKey = tuple[str, str, tuple[tuple[str, str], ...]]


class Dispatcher:
    """Sends the notifications one tick owes; thread-safe (its only state is a pooled
    HTTP client, shared by the HTTP notifiers)."""

    def __init__(self, store: Store, *, http_timeout: float, max_attempts: int) -> None:
        self._store = store
        self._http_timeout = http_timeout
        self._max_attempts = max_attempts
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()

    def _client(self) -> httpx.Client:
        with self._http_lock:
            if self._http is None:
                self._http = http_client()
            return self._http

    def close(self) -> None:
        """Close the HTTP connections kept for the HTTP notifiers."""
        with self._http_lock:
            client, self._http = self._http, None
        if client is not None:
            client.close()

    def dispatch(self, rules: Mapping[str, AlertRule], now_ms: int) -> list[NotificationRecord]:
        channels = self._channel_configs()
        silences = list_silences(self._store, now_ms, state="active")
        groups: dict[_GroupKey, list[tuple[Alert, Mapping[str, Any] | None]]] = {}
        for alert, states in self._candidates(now_ms):
            rule = rules.get(alert.rule)
            if rule is None or is_silenced(alert.labels, silences, now_ms):
                continue
            for channel in rule.channels:
                if channel not in channels:
                    continue  # deleted since the rules were read
                state = states.get(channel)
                kind = self._owed(alert, rule, state, now_ms)
                if kind is None:
                    continue
                values = tuple((name, alert.labels.get(name, "")) for name in rule.group_by)
                groups.setdefault((channel, kind, values), []).append((alert, state))
        records = []
        for (channel, kind, values), members in sorted(groups.items(), key=lambda item: item[0]):
            notification = Notification(
                channel=channel,
                kind=kind,
                group_labels=dict(values),
                alerts=tuple(alert for alert, _ in members),
                sent_at=now_ms,
            )
            error = self._send(channels[channel], notification)
            records.append(self._record(notification, members, error, now_ms))
        return records

    def _owed(
        self, alert: Alert, rule: AlertRule, state: Mapping[str, Any] | None, now: int
    ) -> str | None:
        """The kind of notification ``alert`` is owed on a channel now, if any."""
        repeat = rule.repeat_interval_ms
        if alert.state is AlertState.FIRING:
            kind = AlertState.FIRING.value
            sent = None if state is None else state["firing_sent_at"]
            if sent is not None and now - sent < repeat:
                return None
        elif alert.state is AlertState.RESOLVED:
            kind = AlertState.RESOLVED.value
            if (
                state is None
                or state["firing_sent_at"] is None
                or state["resolved_sent_at"] is not None
            ):
                return None
        else:
            return None
        if state is None or state["failed_kind"] != kind or state["failures"] < self._max_attempts:
            return kind
        if kind == AlertState.FIRING.value and now - state["last_attempt_at"] >= repeat:
            return kind  # gave up for a while: a firing alert gets another round of attempts
        return None

    def _send(self, config: tuple[str, dict[str, Any]], notification: Notification) -> str | None:
        kind, params = config
        try:
            if params.get("timeout") is None:
                params = {**params, "timeout": self._http_timeout}
            notifier: Notifier = notifier_from_params(kind, params)
            if isinstance(notifier, SlackNotifier | WebhookNotifier):
                notifier.send(notification, client=self._client())
            else:
                notifier.send(notification)
        except Exception as error:  # any failure is logged and retried, never raised
            text = failure_text(error, params, _ERROR_MAX)
            _log.warning("alert notification to channel %r failed: %s", notification.channel, text)
            return text
        return None

    def _record(
        self,
        notification: Notification,
        members: Sequence[tuple[Alert, Mapping[str, Any] | None]],
        error: str | None,
        now: int,
    ) -> NotificationRecord:
        kind, channel = notification.kind, notification.channel
        alert_ids = tuple(alert.id for alert, _ in members)
        status = "failed" if error else "sent"
        row = {
            "channel": channel,
            "kind": kind,
            "status": status,
            "alert_ids": json.dumps(list(alert_ids)),
            "group_labels": json.dumps(notification.group_labels),
            "error": error,
            "created_at": now,
        }
        with self._store.write() as connection:
            inserted = connection.execute(alert_notifications.insert().values(**row))
            record_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
            for alert, state in members:
                values: dict[str, Any] = {"last_attempt_at": now}
                if error is None:
                    values.update({f"{kind}_sent_at": now, "failures": 0, "failed_kind": None})
                else:
                    before = state["failures"] if state and state["failed_kind"] == kind else 0
                    values.update(failures=before + 1, failed_kind=kind)
                upsert = self._store.upsert(_states).values(
                    alert_id=alert.id, channel=channel, **values
                )
                connection.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[_states.c.alert_id, _states.c.channel], set_=values
                    )
                )
        return NotificationRecord(
            id=record_id,
            channel=channel,
            kind=kind,
            status=status,
            alert_ids=alert_ids,
            group_labels=notification.group_labels,
            error=error,
            created_at=now,
        )

    def _channel_configs(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return channel_configs(self._store)

    def _candidates(self, now: int) -> Iterator[tuple[Alert, dict[str, Any]]]:
        """Firing alerts, and resolved ones whose resolve some channel still owes."""
        owed = sa.exists(
            sa.select(_states.c.alert_id).where(
                _states.c.alert_id == alerts.c.id,
                _states.c.firing_sent_at.is_not(None),
                _states.c.resolved_sent_at.is_(None),
            )
        )
        query = (
            sa.select(alerts)
            .where(
                sa.or_(
                    alerts.c.state == AlertState.FIRING.value,
                    sa.and_(
                        alerts.c.state == AlertState.RESOLVED.value,
                        alerts.c.fired_at.is_not(None),
                        alerts.c.resolved_at >= now - _RESOLVED_HORIZON_MS,
                        owed,
                    ),
                )
            )
            .order_by(alerts.c.id)
        )
        with self._store.read() as connection:
            found = [alert_from_row(row) for row in connection.execute(query)]
            states: dict[int, dict[str, Any]] = {}
            for start in range(0, len(found), _IN_CHUNK):
                ids = [alert.id for alert in found[start : start + _IN_CHUNK]]
                for row in connection.execute(
                    sa.select(_states).where(_states.c.alert_id.in_(ids))
                ):
                    states.setdefault(int(row.alert_id), {})[row.channel] = row._mapping
        for alert in found:
            yield alert, states.get(alert.id, {})


def list_notifications(
    store: Store,
    *,
    channel: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[NotificationRecord]:
    """Delivery attempts, newest first."""
    if status is not None and status not in _STATUSES:
        raise InvalidInput(f"notification status {status!r} is unknown; use sent or failed")
    if kind is not None and kind not in (AlertState.FIRING.value, AlertState.RESOLVED.value):
        raise InvalidInput(f"notification kind {kind!r} is unknown; use firing or resolved")
    query = sa.select(alert_notifications).order_by(alert_notifications.c.id.desc()).limit(limit)
    for column, value in (("channel", channel), ("status", status), ("kind", kind)):
        if value is not None:
            query = query.where(alert_notifications.c[column] == value)
    with store.read() as connection:
        rows = connection.execute(query).all()
    return [
        NotificationRecord(
            id=int(row.id),
            channel=row.channel,
            kind=row.kind,
            status=row.status,
            alert_ids=tuple(json.loads(row.alert_ids)),
            group_labels=json.loads(row.group_labels),
            error=row.error,
            created_at=int(row.created_at),
        )
        for row in rows
    ]


def channel_configs(
    store: Store, names: Iterable[str] | None = None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Notification channels by name (all, or those of ``names``): (kind, config)."""
    query = sa.select(alert_channels.c.name, alert_channels.c.kind, alert_channels.c.config)
    if names is not None:
        query = query.where(alert_channels.c.name.in_(list(names)))
    with store.read() as connection:
        rows = connection.execute(query).all()
    return {row.name: (row.kind, json.loads(row.config)) for row in rows}
