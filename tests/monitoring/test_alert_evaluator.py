"""The background evaluator and the leader lock it shares with the deployment controller."""

from __future__ import annotations

import time

import pytest

from http_receiver import Receiver
from mlops.deployment import LeaderLock
from mlops.errors import InvalidInput
from mlops.monitoring.alerts import AlertEvaluator, AlertManager, WebhookNotifier
from mlops.store import Store
from monitoring.alert_support import Clock, Signals, latency_rule


def test_differently_named_leader_locks_are_independent(store: Store) -> None:
    # Before the fix, every LeaderLock took one PostgreSQL advisory key, so the alert
    # evaluator and the deployment controller excluded each other there.
    controller, alerts = LeaderLock(store, "controller"), LeaderLock(store, "alerts")
    rival_controller, rival_alerts = LeaderLock(store, "controller"), LeaderLock(store, "alerts")
    try:
        assert controller.acquire()
        assert alerts.acquire()
        assert not rival_controller.acquire()
        assert not rival_alerts.acquire()
        alerts.release()
        assert rival_alerts.acquire()
        assert controller.held
    finally:
        for lock in (controller, alerts, rival_controller, rival_alerts):
            lock.release()


def test_one_evaluator_leads_per_database(store: Store) -> None:
    signals, clock = Signals(), Clock()
    alerting = AlertManager(store, signals=signals, clock=clock)
    first = AlertEvaluator(alerting, store)
    second = AlertEvaluator(AlertManager(store, signals=signals, clock=clock), store)
    assert first.run_once() == []  # nothing to evaluate yet; it takes the lead
    alerting.create_rule(latency_rule())
    signals.set("latency", 5000.0, endpoint="churn")
    try:
        assert second.run_once() is None
        assert not second.leading
        (transition,) = first.run_once(clock.ms) or []
        assert transition.to_state == "firing"
        first.stop()
        assert second.run_once(clock.advance(30)) == []
        assert second.leading
    finally:
        first.stop()
        second.stop()


def test_the_evaluator_thread_fires_a_due_rule_and_notifies(store: Store) -> None:
    receiver = Receiver()
    signals = Signals()
    alerting = AlertManager(store, signals=signals, evaluation_interval=0.05)
    try:
        alerting.create_channel("hook", WebhookNotifier(receiver.url))
        alerting.create_rule(latency_rule(channels=["hook"], evaluation_interval=None))
        signals.set("latency", 5000.0, endpoint="churn")
        evaluator = AlertEvaluator(alerting, store, interval=0.05)
        with evaluator:
            deadline = time.monotonic() + 20
            while not receiver.received() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert evaluator.leading
        assert not evaluator.leading
        (alert,) = alerting.alerts(state="firing")
        assert alert.endpoint == "churn"
        assert [request.headers["X-MLOps-Event"] for request in receiver.received()] == [
            "alert.firing"
        ]
    finally:
        alerting.close()
        receiver.close()


def test_the_evaluator_needs_a_positive_interval(store: Store) -> None:
    with pytest.raises(InvalidInput, match="positive number"):
        AlertEvaluator(AlertManager(store), store, interval=0)
