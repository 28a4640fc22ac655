"""The alert state machine, with an injected clock and signal source, on both databases."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from mlops.errors import Conflict, InvalidInput
from mlops.monitoring.alerts import AlertManager, AlertState, Measurement
from mlops.monitoring.alerts._engine import fingerprint
from mlops.store import Store
from mlops.store._schema import alerts
from monitoring.alert_support import (
    Clock,
    Signals,
    latency_rule,
    manager,
    recorded_events,
)


@pytest.fixture
def alerting(store: Store, signals: Signals, clock: Clock) -> AlertManager:
    return manager(store, signals, clock)


def states(transitions: list) -> list[tuple[str | None, str]]:  # type: ignore[type-arg]
    return [
        (None if t.from_state is None else t.from_state.value, t.to_state.value)
        for t in transitions
    ]


def test_pending_fires_after_for_then_resolves_with_events(
    alerting: AlertManager, signals: Signals, clock: Clock, store: Store
) -> None:
    alerting.create_rule(latency_rule(for_="1m", labels={"team": "ml"}))
    signals.set("latency", 1500.0, endpoint="churn")
    assert states(alerting.evaluate()) == [(None, "pending")]
    started = clock.ms
    clock.advance(30)
    assert alerting.evaluate() == []  # still pending: 30 s < 1 min
    assert recorded_events(store) == []
    clock.advance(30)
    assert states(alerting.evaluate()) == [("pending", "firing")]
    fired = clock.ms
    (alert,) = alerting.alerts(state="firing")
    assert alert.labels == {
        "endpoint": "churn",
        "rule": "latency",
        "severity": "warning",
        "team": "ml",
    }
    assert alert.fingerprint == fingerprint(alert.labels)
    assert (alert.started_at, alert.fired_at, alert.resolved_at) == (started, fired, None)
    assert alert.value == 1500.0
    assert alert.annotations["summary"] == "latency_p95_ms is 1500 (> 1000)"
    signals.set("latency", 900.0, endpoint="churn")
    clock.advance(30)
    assert states(alerting.evaluate()) == [("firing", "resolved")]
    (alert,) = alerting.alerts()
    assert (alert.state, alert.fired_at, alert.resolved_at) == ("resolved", fired, clock.ms)
    assert alert.value == 900.0
    firing, resolved = recorded_events(store)
    assert (firing["kind"], firing["subject"], firing["actor"]) == ("alert.firing", "latency", None)
    assert firing["payload"]["alert_id"] == alert.id
    assert firing["payload"]["labels"]["endpoint"] == "churn"
    assert (firing["payload"]["state"], firing["payload"]["fired_at"]) == ("firing", fired)
    assert (resolved["kind"], resolved["payload"]["state"]) == ("alert.resolved", "resolved")
    assert resolved["payload"]["resolved_at"] == clock.ms


def test_for_zero_fires_at_once(alerting: AlertManager, signals: Signals, store: Store) -> None:
    alerting.create_rule(latency_rule())
    signals.set("latency", 2000.0, endpoint="churn")
    assert states(alerting.evaluate()) == [(None, "firing")]
    assert [event["kind"] for event in recorded_events(store)] == ["alert.firing"]


def test_a_pending_alert_that_clears_ends_without_firing(
    alerting: AlertManager, signals: Signals, clock: Clock, store: Store
) -> None:
    alerting.create_rule(latency_rule(for_="5m"))
    signals.set("latency", 2000.0, endpoint="churn")
    alerting.evaluate()
    signals.set("latency", 10.0, endpoint="churn")
    clock.advance(60)
    assert states(alerting.evaluate()) == [("pending", "resolved")]
    (alert,) = alerting.alerts()
    assert (alert.state, alert.fired_at, alert.resolved_at) == ("resolved", None, clock.ms)
    assert recorded_events(store) == []


def test_no_data_neither_starts_nor_resolves(
    alerting: AlertManager, signals: Signals, clock: Clock
) -> None:
    alerting.create_rule(latency_rule())
    signals.set("latency", None, endpoint="churn")
    assert alerting.evaluate() == []
    assert alerting.alerts() == []
    signals.set("latency", 5000.0, endpoint="churn")
    clock.advance(30)
    alerting.evaluate()
    signals.set("latency", None, endpoint="churn")
    signals.set("latency", float("nan"), endpoint="fraud")
    clock.advance(30)
    assert alerting.evaluate() == []
    (alert,) = alerting.alerts()
    assert (alert.state, alert.value, alert.evaluated_at) == ("firing", 5000.0, clock.ms)


def test_a_vanished_series_resolves_its_alert(
    alerting: AlertManager, signals: Signals, clock: Clock
) -> None:
    alerting.create_rule(latency_rule())
    signals.set("latency", 5000.0, endpoint="churn")
    signals.set("latency", 5000.0, endpoint="fraud")
    assert len(alerting.evaluate()) == 2
    signals.drop("latency", endpoint="fraud")
    clock.advance(30)
    (transition,) = alerting.evaluate()
    assert (transition.labels["endpoint"], transition.to_state) == ("fraud", "resolved")
    assert [a.endpoint for a in alerting.alerts(state="firing")] == ["churn"]


def test_keep_firing_for_holds_an_alert_through_short_dips(
    alerting: AlertManager, signals: Signals, clock: Clock
) -> None:
    alerting.create_rule(latency_rule(keep_firing_for="2m"))
    signals.set("latency", 5000.0, endpoint="churn")
    alerting.evaluate()
    signals.set("latency", 10.0, endpoint="churn")
    clock.advance(60)
    assert alerting.evaluate() == []
    clock.advance(60)
    assert states(alerting.evaluate()) == [("firing", "resolved")]


def test_one_alert_per_series_and_queries(
    alerting: AlertManager, signals: Signals, clock: Clock
) -> None:
    alerting.create_rule(latency_rule())
    alerting.create_rule(
        latency_rule("errors", signal="error_rate", threshold=0.1, labels={"team": "fraud"})
    )
    first = clock.ms
    signals.set("latency", 5000.0, endpoint="churn")
    signals.set("errors", 0.5, endpoint="fraud")
    alerting.evaluate()
    clock.advance(60)
    signals.set("latency", 10.0, endpoint="churn")
    signals.set("latency", 5000.0, endpoint="ads")
    alerting.evaluate()
    second = clock.ms
    by_state = {(a.rule, a.endpoint): a.state.value for a in alerting.alerts()}
    assert by_state == {
        ("latency", "churn"): "resolved",
        ("latency", "ads"): "firing",
        ("errors", "fraud"): "firing",
    }
    assert {a.endpoint for a in alerting.alerts(state="active")} == {"ads", "fraud"}
    assert [a.endpoint for a in alerting.alerts(rule="errors")] == ["fraud"]
    assert [a.rule for a in alerting.alerts(endpoint="churn")] == ["latency"]
    assert [a.rule for a in alerting.alerts(labels={"team": "fraud"})] == ["errors"]
    assert alerting.alerts(labels={"team": "Fraud"}) == []
    assert alerting.alerts(labels={"endpoint": "chur"}) == []
    assert [
        a.endpoint for a in alerting.alerts(labels={"severity": "warning", "endpoint": "ads"})
    ] == ["ads"]
    assert {a.endpoint for a in alerting.alerts(until=first)} == {"churn", "fraud"}
    assert {a.endpoint for a in alerting.alerts(since=second)} == {"ads", "churn", "fraud"}
    assert {a.endpoint for a in alerting.alerts(since=second + 1)} == {"ads", "fraud"}
    assert len(alerting.alerts(limit=1)) == 1
    with pytest.raises(InvalidInput, match="use one of pending, firing, resolved, active"):
        alerting.alerts(state="open")


def test_a_rule_is_measured_once_per_evaluation_interval(
    store: Store, signals: Signals, clock: Clock
) -> None:
    alerting = manager(store, signals, clock, evaluation_interval="1m")
    alerting.create_rule(latency_rule("hourly", evaluation_interval=None, window="1h"))
    alerting.create_rule(latency_rule("fast", evaluation_interval="10s"))
    for _ in range(7):
        alerting.evaluate()
        clock.advance(10)
    assert signals.calls == {"hourly": 2, "fast": 7}


def test_disabled_rules_are_not_measured_and_disabling_ends_alerts(
    alerting: AlertManager, signals: Signals, clock: Clock, store: Store
) -> None:
    alerting.create_rule(latency_rule())
    alerting.create_rule(latency_rule("off", enabled=False))
    signals.set("latency", 5000.0, endpoint="churn")
    signals.set("off", 5000.0, endpoint="churn")
    alerting.evaluate()
    assert "off" not in signals.calls
    clock.advance(30)
    alerting.update_rule("latency", enabled=False)
    (alert,) = alerting.alerts()
    assert (alert.state, alert.resolved_at) == ("resolved", clock.ms)
    assert [event["kind"] for event in recorded_events(store)] == ["alert.firing", "alert.resolved"]
    alerting.update_rule("latency", enabled=True)
    alerting.delete_rule("latency")  # nothing active: deleting just removes it
    assert len(alerting.alerts()) == 1  # the history stays


def test_deleting_a_rule_ends_its_alerts(
    alerting: AlertManager, signals: Signals, store: Store
) -> None:
    alerting.create_rule(latency_rule(for_="1h"))
    signals.set("latency", 5000.0, endpoint="churn")
    alerting.evaluate()
    alerting.delete_rule("latency")
    (alert,) = alerting.alerts()
    assert (alert.state, alert.fired_at) == ("resolved", None)


def test_a_failing_signal_skips_only_its_rule(alerting: AlertManager, signals: Signals) -> None:
    alerting.create_rule(latency_rule("broken"))
    alerting.create_rule(latency_rule("bad-output"))
    alerting.create_rule(latency_rule())
    signals.failing.add("broken")
    signals.set("bad-output", "high", endpoint="churn")  # type: ignore[arg-type]
    signals.set("latency", 5000.0, endpoint="churn")
    assert [t.rule for t in alerting.evaluate()] == ["latency"]


def test_evaluating_needs_a_signal_source(store: Store) -> None:
    with pytest.raises(InvalidInput, match="no signal source"):
        AlertManager(store).evaluate()
    with pytest.raises(InvalidInput, match="measure"):
        AlertManager(store, signals=object())  # type: ignore[arg-type]


def test_the_database_allows_one_active_alert_per_fingerprint(
    alerting: AlertManager, signals: Signals, store: Store
) -> None:
    alerting.create_rule(latency_rule())
    signals.set("latency", 5000.0, endpoint="churn")
    alerting.evaluate()
    with store.read() as connection:
        row = dict(connection.execute(sa.select(alerts)).one()._mapping)
    row.pop("id")
    with pytest.raises(Conflict), store.write() as connection:
        connection.execute(alerts.insert().values(**row))
    with store.write() as connection:  # ended episodes do not count
        connection.execute(
            alerts.insert().values(**{**row, "active_key": None, "state": "resolved"})
        )


def test_concurrent_evaluators_keep_one_active_alert_per_fingerprint(
    store: Store, signals: Signals, clock: Clock
) -> None:
    managers = [manager(store, signals, clock) for _ in range(2)]
    managers[0].create_rule(latency_rule(for_="1m"))
    for index in range(8):
        signals.set("latency", 5000.0, endpoint=f"e{index}")
    errors: list[BaseException] = []

    def tick(alerting: AlertManager, barrier: threading.Barrier, now: int) -> None:
        try:
            barrier.wait()
            alerting.evaluate(now)
        except BaseException as error:
            errors.append(error)

    for _ in range(3):  # start pending, then fire, then hold: every tick raced by both
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=tick, args=(m, barrier, clock.ms)) for m in managers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        clock.advance(60)
    assert errors == []
    assert signals.calls == {"latency": 6}  # both evaluators measured at every tick
    found = managers[0].alerts()
    assert len(found) == 8
    assert {alert.state for alert in found} == {AlertState.FIRING}
    kinds = [event["kind"] for event in recorded_events(store)]
    assert kinds == ["alert.firing"] * 8


def test_a_source_breaking_the_protocol_is_skipped(store: Store, clock: Clock) -> None:
    class Source:
        def measure(self, rule: object, now_ms: int) -> list[Measurement]:
            return [Measurement(labels={"endpoint": 7}, value=1.0)]  # type: ignore[dict-item]

    alerting = AlertManager(store, signals=Source(), clock=clock)
    alerting.create_rule(latency_rule())
    assert alerting.evaluate() == []
    assert alerting.alerts() == []
