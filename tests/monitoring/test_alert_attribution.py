"""Who changed alerting: rules, silences and channels are recorded under the caller and
appended to the audit log in the change's own transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mlops.errors import AlreadyExists, InvalidInput, NotFound
from mlops.governance import AuditEntry, AuditLog
from mlops.monitoring.alerts import AlertManager, SlackNotifier
from mlops.store import Store
from mlops.store._schema import alert_channels, alert_rules
from monitoring.alert_support import Clock, Signals, latency_rule, manager

SLACK_URL = "https://hooks.slack.com/services/T0/B0/very-secret-path"


class Trail:
    """The audit entries appended since the last look (PostgreSQL keeps older ones)."""

    def __init__(self, store: Store) -> None:
        self._log = AuditLog(store)
        newest = self._log.list(limit=1)
        self._seen = newest[0].id if newest else 0

    def new(self) -> list[AuditEntry]:
        entries = [e for e in self._log.list(limit=100) if e.id > self._seen]
        entries.reverse()
        if entries:
            self._seen = entries[-1].id
        return entries


@pytest.fixture
def alerting(store: Store, signals: Signals, clock: Clock) -> AlertManager:
    return manager(store, signals, clock, actor="server")


def created_by(store: Store, table: sa.Table, name: str) -> str | None:
    with store.read() as connection:
        query = sa.select(table.c.created_by).where(table.c.name == name)
        value: str | None = connection.execute(query).scalar_one()
    return value


def test_rule_changes_are_recorded_under_the_caller(alerting: AlertManager, store: Store) -> None:
    trail = Trail(store)
    rule = alerting.create_rule(latency_rule(), actor="alice")
    assert created_by(store, alert_rules, "latency") == "alice"
    [entry] = trail.new()
    assert (entry.action, entry.target, entry.actor) == (
        "alert_rule.created",
        "alert_rules/latency",
        "alice",
    )
    assert (entry.before, entry.after) == (None, rule.get_params())

    updated = alerting.update_rule("latency", threshold=800, actor="bob")
    [entry] = trail.new()
    assert (entry.action, entry.target, entry.actor) == (
        "alert_rule.updated",
        "alert_rules/latency",
        "bob",
    )
    assert (entry.before["threshold"], entry.after) == (1000.0, updated.get_params())

    alerting.delete_rule("latency", actor="carol")
    [entry] = trail.new()
    assert (entry.action, entry.actor, entry.before, entry.after) == (
        "alert_rule.deleted",
        "carol",
        updated.get_params(),
        None,
    )


def test_without_an_actor_the_manager_s_actor_is_recorded(
    alerting: AlertManager, store: Store
) -> None:
    trail = Trail(store)
    alerting.create_rule(latency_rule())
    alerting.update_rule("latency", enabled=False)
    alerting.delete_rule("latency")
    assert [(e.action, e.actor) for e in trail.new()] == [
        ("alert_rule.created", "server"),
        ("alert_rule.updated", "server"),
        ("alert_rule.deleted", "server"),
    ]


def test_refused_rule_changes_leave_no_entry(alerting: AlertManager, store: Store) -> None:
    alerting.create_rule(latency_rule())
    trail = Trail(store)
    with pytest.raises(AlreadyExists):
        alerting.create_rule(latency_rule(), actor="alice")
    with pytest.raises(InvalidInput):
        alerting.update_rule("latency", channels=["nowhere"], actor="alice")
    with pytest.raises(NotFound):
        alerting.delete_rule("missing", actor="alice")
    assert trail.new() == []


def test_silences_are_audited_when_made_and_when_ended(
    alerting: AlertManager, store: Store, clock: Clock
) -> None:
    trail = Trail(store)
    silence = alerting.silence(
        {"endpoint": "churn"}, duration="2h", comment="maintenance", created_by="dave"
    )
    [entry] = trail.new()
    assert (entry.action, entry.target, entry.actor) == (
        "alert_silence.created",
        f"alert_silences/{silence.id}",
        "dave",
    )
    expected = {
        "matchers": [{"name": "endpoint", "op": "=", "value": "churn"}],
        "starts_at": silence.starts_at,
        "ends_at": silence.ends_at,
        "comment": "maintenance",
    }
    assert entry.after == expected

    clock.advance(60)
    ended = alerting.expire_silence(silence.id, actor="erin")
    [entry] = trail.new()
    assert (entry.action, entry.actor) == ("alert_silence.expired", "erin")
    assert (entry.before, entry.after) == (expected, {**expected, "ends_at": ended.ends_at})

    alerting.expire_silence(silence.id, actor="erin")  # already over: nothing changes
    with pytest.raises(NotFound):
        alerting.expire_silence(silence.id + 1000, actor="erin")
    assert trail.new() == []


def test_channels_are_audited_without_their_credentials(
    alerting: AlertManager, store: Store
) -> None:
    trail = Trail(store)
    alerting.create_channel("ops", SlackNotifier(SLACK_URL), actor="frank")
    assert created_by(store, alert_channels, "ops") == "frank"
    alerting.create_rule(latency_rule(channels=["ops"]))
    alerting.delete_channel("ops", force=True, actor="grace")
    entries = trail.new()
    assert [(e.action, e.target, e.actor) for e in entries] == [
        ("alert_channel.created", "alert_channels/ops", "frank"),
        ("alert_rule.created", "alert_rules/latency", "server"),
        ("alert_channel.deleted", "alert_channels/ops", "grace"),
    ]
    masked = {"kind": "slack", "params": {"url": "https://hooks.slack.com/…", "timeout": None}}
    assert entries[0].after == masked
    assert (entries[2].before, entries[2].after) == (masked, {"removed_from_rules": ["latency"]})
    assert all("very-secret-path" not in repr((e.before, e.after)) for e in entries)
