"""The alert state machine: a rule's measurements in, per-fingerprint transitions out.

Each measured series becomes one alert instance, identified by the fingerprint of its
labels (the measurement's, the rule's, ``rule`` and ``severity``). Per fingerprint:

    (none) ──condition true──▶ pending ──true for `for_`──▶ firing ──false──▶ resolved
                 (for_ = 0: straight to firing)   │ false
                                                  ▼
                                     resolved, never fired (not notified)

A value of None (not enough data) changes nothing: an alert neither starts, fires nor
resolves on it. A series that an active alert has and the measurements lack counts as
false, like a vanished series in Prometheus. ``keep_firing_for`` holds a firing alert
through short false spells. All of a rule's transitions commit in one transaction with
their ``alert.firing``/``alert.resolved`` events; the ``active_key`` unique constraint
and conditional updates keep one active episode per fingerprint under concurrent
evaluators.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mlops.errors import InvalidInput
from mlops.monitoring.alerts._rules import AlertRule
from mlops.registry._webhooks import record_event
from mlops.store import Store
from mlops.store._schema import alert_rules, alerts

__all__ = [
    "Alert",
    "AlertState",
    "AlertTransition",
    "Measurement",
    "SignalSource",
    "alert_from_row",
    "alert_labels",
    "alerts_query",
    "apply_measurements",
    "claim_rule",
    "end_alerts",
    "fingerprint",
    "labels_json",
]

_LABEL_MAX = 1000


class AlertState(enum.StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"

    @property
    def active(self) -> bool:
        return self is not AlertState.RESOLVED


@dataclass(frozen=True, slots=True)
class Measurement:
    """One series of a rule's signal: its labels (e.g. ``{"endpoint": "churn"}``) and
    value; ``value=None`` (or NaN) means not enough data to decide."""

    labels: Mapping[str, str]
    value: float | None


@runtime_checkable
class SignalSource(Protocol):
    """Measures a rule's signal at ``now_ms`` over ``rule.window``.

    Returns one Measurement per series; with ``rule.endpoint`` set, only that endpoint's.
    A series left out resolves its active alert; return ``value=None`` to hold it instead.
    Called from the evaluator thread, one rule at a time; an exception skips the rule
    for this tick (it is logged). Returned objects are not kept or changed.
    """

    def measure(self, rule: AlertRule, now_ms: int) -> Sequence[Measurement]: ...


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert episode of one fingerprint. Times are ms since the epoch."""

    id: int
    rule: str
    fingerprint: str
    state: AlertState
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    threshold: float
    started_at: int
    fired_at: int | None
    resolved_at: int | None
    evaluated_at: int
    silenced: bool = False

    @property
    def endpoint(self) -> str | None:
        return self.labels.get("endpoint")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "fingerprint": self.fingerprint,
            "state": self.state.value,
            "severity": self.severity,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": self.value,
            "threshold": self.threshold,
            "started_at": self.started_at,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "evaluated_at": self.evaluated_at,
            "silenced": self.silenced,
        }


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """An alert changed state at ``at``; ``from_state`` None means it just started."""

    alert_id: int
    rule: str
    fingerprint: str
    labels: dict[str, str]
    from_state: AlertState | None
    to_state: AlertState
    value: float | None
    at: int


def labels_json(labels: Mapping[str, str]) -> str:
    """Canonical JSON of labels: sorted, compact, ASCII (what is stored and searched)."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def fingerprint(labels: Mapping[str, str]) -> str:
    return hashlib.sha256(labels_json(labels).encode("ascii")).hexdigest()


def alert_labels(rule: AlertRule, measured: Mapping[str, str]) -> dict[str, str]:
    """The labels of the alert a measurement makes: the series', the rule's, and
    ``rule``/``severity`` (the rule's labels win over the series')."""
    labels = dict(measured)
    if rule.endpoint is not None:
        labels.setdefault("endpoint", rule.endpoint)
    labels.update(rule.labels)
    labels["rule"] = rule.name
    labels["severity"] = rule.severity
    return dict(sorted(labels.items()))


def _annotations(rule: AlertRule, labels: Mapping[str, str], value: float | None) -> dict[str, str]:
    shown = "n/a" if value is None else f"{value:.4g}"
    names = {**labels, "value": shown, "threshold": f"{rule.threshold:g}"}
    texts = {
        "summary": f"{rule.signal} is {shown} ({rule.comparison} {rule.threshold:g})",
        **rule.annotations,
    }
    if rule.description:
        texts["description"] = rule.description
    return {key: string.Template(text).safe_substitute(names) for key, text in texts.items()}


@dataclass(frozen=True, slots=True)
class _Series:
    labels: dict[str, str]
    value: float | None


def _series(rule: AlertRule, measurements: object) -> dict[str, _Series]:
    """The measurements by fingerprint, checked; the last one wins for repeated labels."""
    if not isinstance(measurements, Sequence) or isinstance(measurements, str | bytes):
        raise InvalidInput(
            f"the signal source returned {type(measurements).__name__} for rule {rule.name!r}; "
            "it must return a list of Measurement"
        )
    series: dict[str, _Series] = {}
    for item in measurements:
        if not isinstance(item, Measurement):
            raise InvalidInput(
                f"the signal source returned {item!r} for rule {rule.name!r}; "
                "return Measurement(labels=..., value=...) objects"
            )
        if not isinstance(item.labels, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) and len(value) <= _LABEL_MAX
            for key, value in item.labels.items()
        ):
            raise InvalidInput(
                f"measurement labels {item.labels!r} for rule {rule.name!r} must map strings "
                f"to strings of at most {_LABEL_MAX} characters"
            )
        value = item.value
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InvalidInput(
                f"measurement value {value!r} for rule {rule.name!r} must be a number or None"
            )
        if rule.endpoint is not None and item.labels.get("endpoint", rule.endpoint) != (
            rule.endpoint
        ):
            continue  # the source measured more than the rule watches
        labels = alert_labels(rule, item.labels)
        finite = None if value is None or not math.isfinite(value) else float(value)
        series[fingerprint(labels)] = _Series(labels, finite)
    return series


def claim_rule(store: Store, rule_id: int, now_ms: int, interval_ms: int) -> bool:
    """Mark a rule as evaluated at ``now_ms`` if it is due; False if it is not (or
    another evaluator claimed it first)."""
    due = sa.or_(
        alert_rules.c.evaluated_at.is_(None),
        alert_rules.c.evaluated_at <= now_ms - interval_ms,
    )
    with store.write() as connection:
        updated = connection.execute(
            alert_rules.update().where(alert_rules.c.id == rule_id, due).values(evaluated_at=now_ms)
        ).rowcount
    return bool(updated)


def apply_measurements(
    store: Store, rule: AlertRule, measurements: Sequence[Measurement], now_ms: int
) -> list[AlertTransition]:
    """Move the rule's alerts along for one evaluation; one transaction, events included."""
    series = _series(rule, measurements)
    with store.write() as connection:
        return _transition(store, connection, rule, series, now_ms)


def end_alerts(
    store: Store, connection: Connection, rule: AlertRule, now_ms: int
) -> list[AlertTransition]:
    """End the rule's active alerts now, in the caller's transaction (a rule disabled or
    deleted): pending ones end unfired, firing ones resolve with their event."""
    return _transition(store, connection, replace(rule, keep_firing_for=0), {}, now_ms)


def _transition(
    store: Store,
    connection: Connection,
    rule: AlertRule,
    series: Mapping[str, _Series],
    now_ms: int,
) -> list[AlertTransition]:
    query = sa.select(alerts).where(alerts.c.rule == rule.name, alerts.c.active_key.is_not(None))
    active = {row.fingerprint: row for row in connection.execute(query)}
    transitions: list[AlertTransition] = []
    # Sorted, so concurrent evaluators lock rows in the same order (no deadlock).
    for key in sorted(set(series) | set(active)):
        step = _Step(store, connection, rule, now_ms)
        transition = step.run(key, series.get(key), active.get(key))
        if transition is not None:
            transitions.append(transition)
    return transitions


class _Step:
    """One fingerprint's evaluation inside the rule's transaction."""

    def __init__(self, store: Store, connection: Connection, rule: AlertRule, now: int) -> None:
        self._store = store
        self._connection = connection
        self._rule = rule
        self._now = now

    def run(self, key: str, series: _Series | None, row: Row[Any] | None) -> AlertTransition | None:
        rule, now = self._rule, self._now
        if row is None:
            if series is None or series.value is None or not rule.holds(series.value):
                return None
            return self._start(key, series)
        if series is not None and series.value is None:
            self._update(row, AlertState(row.state), {"evaluated_at": now})
            return None
        state = AlertState(row.state)
        if series is not None and series.value is not None and rule.holds(series.value):
            if state is AlertState.PENDING and now - row.started_at >= rule.for_ms:
                return self._move(
                    row, series.value, AlertState.FIRING, fired_at=now, last_true_at=now
                )
            self._update(
                row, state, {"value": series.value, "last_true_at": now, "evaluated_at": now}
            )
            return None
        value = row.value if series is None else series.value
        if state is AlertState.PENDING:
            return self._move(row, value, AlertState.RESOLVED, resolved_at=now, active_key=None)
        last_true = row.last_true_at if row.last_true_at is not None else row.started_at
        if now - last_true >= rule.keep_firing_for_ms:
            return self._move(row, value, AlertState.RESOLVED, resolved_at=now, active_key=None)
        self._update(row, state, {"value": value, "evaluated_at": now})
        return None

    def _start(self, key: str, series: _Series) -> AlertTransition | None:
        rule, now = self._rule, self._now
        firing = rule.for_ms == 0
        state = AlertState.FIRING if firing else AlertState.PENDING
        values: dict[str, Any] = {
            "rule": rule.name,
            "fingerprint": key,
            "active_key": key,
            "state": state.value,
            "severity": rule.severity,
            "endpoint": series.labels.get("endpoint"),
            "labels": labels_json(series.labels),
            "annotations": json.dumps(_annotations(rule, series.labels, series.value)),
            "value": series.value,
            "threshold": rule.threshold,
            "started_at": now,
            "fired_at": now if firing else None,
            "resolved_at": None,
            "last_true_at": now,
            "evaluated_at": now,
        }
        insert = (
            self._store.upsert(alerts)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[alerts.c.active_key])
            .returning(alerts.c.id)
        )
        alert_id = self._connection.execute(insert).scalar()
        if alert_id is None:
            return None  # another evaluator started this episode a moment ago
        if firing:
            self._event("alert.firing", {**values, "id": int(alert_id)})
        return AlertTransition(
            alert_id=int(alert_id),
            rule=rule.name,
            fingerprint=key,
            labels=series.labels,
            from_state=None,
            to_state=state,
            value=series.value,
            at=now,
        )

    def _move(
        self, row: Row[Any], value: float | None, to: AlertState, **values: Any
    ) -> AlertTransition | None:
        source = AlertState(row.state)
        values.update(value=value, state=to.value, evaluated_at=self._now)
        if not self._update(row, source, values):
            return None  # another evaluator moved it first
        if AlertState.FIRING in (source, to):
            kind = "alert.firing" if to is AlertState.FIRING else "alert.resolved"
            self._event(kind, {**row._mapping, **values})
        labels: dict[str, str] = json.loads(row.labels)
        return AlertTransition(
            alert_id=int(row.id),
            rule=row.rule,
            fingerprint=row.fingerprint,
            labels=labels,
            from_state=source,
            to_state=to,
            value=value,
            at=self._now,
        )

    def _update(self, row: Row[Any], expected: AlertState, values: dict[str, Any]) -> bool:
        """Update the row if it is still in ``expected`` state (annotations follow the
        value); ``values`` gets the annotations too."""
        if "value" in values:
            labels = json.loads(row.labels)
            values["annotations"] = json.dumps(_annotations(self._rule, labels, values["value"]))
        statement = (
            alerts.update()
            .where(alerts.c.id == row.id, alerts.c.state == expected.value)
            .values(**values)
        )
        return bool(self._connection.execute(statement).rowcount)

    def _event(self, kind: str, stored: Mapping[str, Any]) -> None:
        payload = {
            "alert_id": int(stored["id"]),
            "rule": stored["rule"],
            "state": stored["state"],
            "severity": stored["severity"],
            "fingerprint": stored["fingerprint"],
            "labels": json.loads(stored["labels"]),
            "annotations": json.loads(stored["annotations"]),
            "value": stored["value"],
            "threshold": stored["threshold"],
            "started_at": stored["started_at"],
            "fired_at": stored["fired_at"],
            "resolved_at": stored["resolved_at"],
        }
        record_event(
            self._connection, kind=kind, subject=stored["rule"], payload=payload, actor=None
        )


#: ``alerts_query(state="active")``: pending or firing.
ACTIVE = "active"


def alerts_query(
    store: Store,
    *,
    state: AlertState | str | None,
    rule: str | None,
    endpoint: str | None,
    labels: Mapping[str, str] | None,
    since: int | None,
    until: int | None,
) -> sa.Select[Any]:
    """Alert episodes, newest first, filtered; ``since``/``until`` keep the episodes that
    overlap that time."""
    query = sa.select(alerts).order_by(alerts.c.started_at.desc(), alerts.c.id.desc())
    if state == ACTIVE:
        query = query.where(alerts.c.active_key.is_not(None))
    elif state is not None:
        if state not in set(AlertState):
            choices = ", ".join([*(item.value for item in AlertState), ACTIVE])
            raise InvalidInput(f"alert state {state!r} is unknown; use one of {choices}")
        query = query.where(alerts.c.state == AlertState(state).value)
    if rule is not None:
        query = query.where(alerts.c.rule == rule)
    if endpoint is not None:
        query = query.where(alerts.c.endpoint == endpoint)
    if since is not None:
        query = query.where(sa.or_(alerts.c.resolved_at.is_(None), alerts.c.resolved_at >= since))
    if until is not None:
        query = query.where(alerts.c.started_at <= until)
    # Case-sensitive substring tests, without LIKE wildcards: labels are canonical JSON,
    # so '"name":"value"' matches exactly that label (quotes inside values are escaped).
    contains = sa.func.instr if store.is_sqlite else sa.func.strpos
    for name, value in dict(labels or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidInput(f"label filters map strings to strings; got {name!r}: {value!r}")
        query = query.where(contains(alerts.c.labels, labels_json({name: value})[1:-1]) > 0)
    return query


def alert_from_row(row: Row[Any], *, silenced: bool = False) -> Alert:
    return Alert(
        id=int(row.id),
        rule=row.rule,
        fingerprint=row.fingerprint,
        state=AlertState(row.state),
        severity=row.severity,
        labels=json.loads(row.labels),
        annotations=json.loads(row.annotations),
        value=row.value,
        threshold=row.threshold,
        started_at=int(row.started_at),
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
        evaluated_at=int(row.evaluated_at),
        silenced=silenced,
    )
