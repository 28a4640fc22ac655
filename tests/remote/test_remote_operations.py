"""The remote deployments and monitoring facades against a real server, on SQLite and
PostgreSQL: every result equals what the embedded facades read from the same store."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette

from api.conftest import unique
from live_server import LiveServer
from mlops.api import api_routes
from mlops.deployment import (
    ABTest,
    BlueGreen,
    Canary,
    Deployment,
    DeploymentEvent,
    DeploymentState,
    Rolling,
    Shadow,
)
from mlops.errors import Conflict, InvalidInput, MLOpsError, NotFound
from mlops.monitoring.alerts import AlertRule, WebhookNotifier
from mlops.remote import RemoteDeploymentManager, RemoteModelMonitor, _monitor
from mlops.remote._http import ApiClient

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

ROWS = 60


@pytest.fixture(scope="module")
def api(ml: Any) -> Iterator[ApiClient]:
    live = LiveServer(Starlette(routes=api_routes(ml, auth="off"))).start()
    client = ApiClient(live.url)
    try:
        yield client
    finally:
        client.close()
        live.stop()


@pytest.fixture(scope="module")
def remote(api: ApiClient) -> RemoteDeploymentManager:
    return RemoteDeploymentManager(api, actor="remote-user")


@pytest.fixture(scope="module")
def monitor(api: ApiClient) -> Iterator[RemoteModelMonitor]:
    facade = RemoteModelMonitor(api, actor="remote-user")
    try:
        yield facade
    finally:
        facade.close()


def frame(seed: int, shift: float = 0.0, rows: int = ROWS) -> Any:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"tenure": rng.normal(30 + shift, 10, rows), "charges": rng.normal(70, 15, rows)}
    )


def register(ml: Any, reference: bool = False) -> tuple[str, Any]:
    """Versions 1 and 2 of a small classifier (with a reference sample and an accuracy)."""
    from sklearn.linear_model import LogisticRegression

    train = frame(0, rows=200)  # enough for the multivariate check
    model = LogisticRegression().fit(train, (train["tenure"] < 30).astype(int))
    name = unique("churn")
    for _ in range(2):
        ml.registry.register_model(
            name,
            model,
            input_example=train.head(3),
            reference_data=train if reference else None,
            metrics={"accuracy": 0.9},
        )
    return name, model


@pytest.fixture(scope="module")
def churn(ml: Any) -> tuple[str, Any]:
    return register(ml, reference=True)


def shape(deployment: Deployment) -> Deployment:
    """A deployment without what differs between two models running the same steps."""
    assert deployment.routes is not None
    return replace(
        deployment,
        id=0,
        endpoint="",
        model="",
        created_at=0,
        updated_at=0,
        routes=replace(deployment.routes, model=""),
    )


def steps(events: list[DeploymentEvent]) -> list[tuple[Any, ...]]:
    return [(e.kind, e.from_state, e.to_state, e.step, e.detail, e.actor) for e in events]


# -- deployments ------------------------------------------------------------------------


def test_direct_then_canary_read_as_embedded(
    ml: Any, remote: RemoteDeploymentManager, churn: tuple[str, Any]
) -> None:
    name, _ = churn
    endpoint = unique("ep")
    first = remote.deploy(endpoint, name, 1)
    assert first == ml.deployments.status(first.id)
    assert (first.strategy, first.state, first.created_by) == (
        "direct",
        DeploymentState.SUCCEEDED,
        "remote-user",
    )
    canary = Canary(steps_percent=(10, 50, 100), interval_seconds="1h")
    rollout = remote.deploy(endpoint, name, "latest", strategy=canary, actor="ana")
    assert rollout == ml.deployments.status(rollout.id)
    assert (rollout.stable_version, rollout.candidate_version, rollout.steps) == (1, 2, 3)
    assert rollout.created_by == "ana"
    assert rollout.routes is not None
    assert rollout.routes.versions == {1, 2}
    assert remote.status(endpoint) == ml.deployments.status(endpoint) == rollout
    assert (
        remote.list(endpoint)
        == ml.deployments.list(endpoint)
        == [rollout, ml.deployments.status(first.id)]
    )
    assert remote.list(endpoint, active=True) == [rollout]
    assert remote.list() == ml.deployments.list()

    assert remote.pause(rollout.id, actor="bo").state is DeploymentState.PAUSED
    assert remote.pause(endpoint) == ml.deployments.status(rollout.id)  # already paused
    assert remote.resume(endpoint).state is DeploymentState.PROGRESSING
    promoted = remote.promote(rollout.id)
    assert promoted == ml.deployments.status(rollout.id)
    assert promoted.state is DeploymentState.SUCCEEDED
    assert ml.registry.get_version(name, 2).stage.value == "production"
    history = remote.history(rollout.id)
    assert history == ml.deployments.history(rollout.id) == remote.history(endpoint)
    assert [e.kind for e in history][:4] == ["created", "paused", "resumed", "succeeded"]
    assert history[1].actor == "bo"
    with pytest.raises(InvalidInput, match="runs on the server"):
        remote.advance()


def _abort(manager: Any, endpoint: str, deployment: Deployment) -> Deployment:
    result: Deployment = manager.abort(deployment.id, reason="error rate", actor="ops")
    return result


def _rollback(manager: Any, endpoint: str, deployment: Deployment) -> Deployment:
    manager.promote(endpoint, actor="ops")
    result: Deployment = manager.rollback(endpoint, reason="worse than before", actor="ops")
    return result


def _rollback_active(manager: Any, endpoint: str, deployment: Deployment) -> Deployment:
    result: Deployment = manager.rollback(endpoint, actor="ops")
    return result


@pytest.mark.parametrize("action", [_abort, _rollback, _rollback_active])
def test_actions_have_the_embedded_effects(
    ml: Any,
    remote: RemoteDeploymentManager,
    action: Callable[[Any, str, Deployment], Deployment],
) -> None:
    """The same steps through each facade, on twin models, end the same way."""
    outcomes = []
    for manager in (remote, ml.deployments):
        name, _ = register(ml)
        endpoint = unique("twin")
        manager.deploy(endpoint, name, 1, actor="ops")
        rollout = manager.deploy(
            endpoint, name, 2, strategy=Canary(interval_seconds="1h"), actor="ops"
        )
        finished = action(manager, endpoint, rollout)
        assert finished == ml.deployments.status(rollout.id)
        assert not finished.state.active
        outcomes.append((shape(finished), steps(ml.deployments.history(rollout.id))))
    assert outcomes[0] == outcomes[1]
    if action is _rollback:  # the registry follows: version 1 is in production again
        assert ml.registry.get_model(name).production_version == 1


@pytest.mark.parametrize(
    "strategy",
    [
        BlueGreen(preview_seconds="1h", keep_old_seconds=60.0, preview_header="x-green"),
        Shadow(share=0.25),
        ABTest(treatment_share=0.3, sticky_field="user_id", check_seconds="1h"),
        Rolling(batch_size=2, interval_seconds="1h"),
        Canary(
            steps_percent=(20, 100),
            interval_seconds=90.0,
            on_inconclusive="pass",
            failure_limit=3,
        ),
    ],
    ids=lambda strategy: strategy.name,
)
def test_every_strategy_is_sent_whole(
    ml: Any, remote: RemoteDeploymentManager, churn: tuple[str, Any], strategy: Any
) -> None:
    name, _ = churn
    endpoint = unique("ep")
    remote.deploy(endpoint, name, 1)
    rollout = remote.deploy(endpoint, name, 2, strategy=strategy)
    assert rollout == ml.deployments.status(rollout.id)
    expected = strategy.get_params()
    if isinstance(strategy, Rolling):
        expected["workers"] = rollout.params["workers"]  # the server counts its workers
    assert rollout.params == expected
    assert rollout.strategy == strategy.name
    remote.abort(endpoint)


def test_bad_deployment_input_fails_as_embedded(
    ml: Any, remote: RemoteDeploymentManager, churn: tuple[str, Any]
) -> None:
    name, _ = churn
    endpoint = unique("ep")
    remote.deploy(endpoint, name, 1)
    done = remote.status(endpoint).id
    cases: list[tuple[str, tuple[Any, ...], dict[str, Any], type[MLOpsError]]] = [
        ("status", (10**6,), {}, NotFound),
        ("status", (0,), {}, NotFound),
        ("status", ("no-such-endpoint",), {}, NotFound),
        ("status", (True,), {}, InvalidInput),
        ("history", (10**6,), {}, NotFound),
        ("list", ("no-such-endpoint",), {}, NotFound),
        ("promote", (done,), {}, Conflict),
        ("abort", (endpoint,), {}, Conflict),
        ("pause", (done,), {}, Conflict),
        ("rollback", (endpoint,), {}, Conflict),
        ("deploy", (endpoint, name, 1), {}, Conflict),
        ("deploy", (endpoint, "no-such-model", 1), {}, NotFound),
        ("deploy", (endpoint, name, 7), {}, NotFound),
        ("deploy", ("has space", name, 1), {}, InvalidInput),
        ("deploy", (unique("ep"), name, 1), {"strategy": Canary()}, InvalidInput),
        ("deploy", (endpoint, name, 2), {"strategy": "canary"}, InvalidInput),
    ]
    for method, args, options, error in cases:
        for facade in (remote, ml.deployments):
            with pytest.raises(error):
                getattr(facade, method)(*args, **options)
    assert remote.status(endpoint).id == done  # nothing was started


# -- monitoring -------------------------------------------------------------------------


def record(facade: Any, endpoint: str, model: Any, start: int) -> list[str]:
    """One-row requests of drifted data through ``facade``, and feedback for most."""
    data = frame(1, shift=25.0)
    ids = [f"{endpoint}-{i}" for i in range(ROWS)]
    predictions = model.predict(data)
    probabilities = model.predict_proba(data)
    first = facade.record_prediction(
        endpoint,
        data.iloc[0],
        predictions[0],
        probabilities=probabilities[0],
        request_id=ids[0],
        version=1,
        latency_ms=3.0,
        ts=start,
    )
    assert first == ids[0]
    second = facade.record_prediction(
        endpoint, data.iloc[[1]], [predictions[1]], request_id=ids[1], version=1, ts=start + 1
    )
    assert second == ids[1]
    recorded = facade.record_predictions(
        endpoint,
        data.iloc[2:],
        predictions[2:],
        probabilities=probabilities[2:],
        request_ids=ids[2:],
        version=1,
        latency_ms=np.linspace(1.0, 9.0, ROWS - 2),
        ts=[start + i for i in range(2, ROWS)],
    )
    assert recorded == ids[2:]
    truth = (data["tenure"] < 30).astype(int).to_numpy()
    facade.record_feedback(endpoint, ids[0], truth[0], ts=start)
    assert facade.record_feedback_batch(endpoint, ids[1:50], truth[1:50]) == 49
    return ids


def test_recorded_predictions_report_as_embedded(
    ml: Any,
    monitor: RemoteModelMonitor,
    churn: tuple[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name, model = churn
    monkeypatch.setattr(_monitor, "BATCH", 7)  # many HTTP requests per call
    start = int(time.time() * 1000) - 60_000
    twin = unique("twin")
    record(monitor, name, model, start)
    record(ml.monitor, twin, model, start)
    span = {"since": start - 1, "until": start + ROWS}
    assert monitor.endpoints() == ml.monitor.endpoints()
    assert {name, twin} <= set(monitor.endpoints(since=start - 1))
    assert monitor.endpoints(since=start + 10**9) == ml.monitor.endpoints(since=start + 10**9)

    for options in (
        {"min_labels": 10, "by": "version"},
        {"min_labels": 10, "by": "route", "baseline": None},
        {"min_labels": 100, "baseline": "1"},
        {"last": 20, "until": start + ROWS, "min_labels": 5, "task": "classification"},
        {"window": dt.timedelta(minutes=5), "until": start + ROWS, "min_labels": 10},
        {"window": 299.5, "until": start + ROWS, "min_labels": 10},
    ):
        query = options if "until" in options else {**span, **options}
        report = monitor.performance(name, **query)
        assert report == ml.monitor.performance(name, **query), options
        if report.status == "ok":  # (a reason names the endpoint)
            twin_report = ml.monitor.performance(twin, model=name, **query)
            assert report == replace(twin_report, endpoint=name)
    report = monitor.performance(name, **span, min_labels=10)
    assert (report.requests, report.labelled, report.status) == (ROWS, 50, "ok")
    assert report.baseline == {"accuracy": 0.9}
    assert report.estimated is not None
    assert report.estimated.confusion
    assert set(report.degradation) == {"accuracy"}

    for drift_options in (
        {"min_rows": 10},
        {"min_rows": 10, "predictions": False, "multivariate": False},
        {"min_rows": 10, "method": "psi", "threshold": 0.2, "drift_share": 0.9},
        {"min_rows": 100},
    ):
        drift = monitor.drift(name, **span, **drift_options)
        assert drift == ml.monitor.drift(name, **span, **drift_options), drift_options
        assert drift == ml.monitor.drift(twin, model=name, **span, **drift_options)
    drift = monitor.drift(name, **span, min_rows=10)
    assert "tenure" in drift.drifted_columns
    assert drift.prediction is not None
    assert drift.multivariate is not None
    assert drift.multivariate.chunk_errors


def test_bad_monitoring_input_fails_as_embedded(
    ml: Any, monitor: RemoteModelMonitor, churn: tuple[str, Any]
) -> None:
    name, _ = churn
    cases: list[tuple[str, tuple[Any, ...], dict[str, Any], type[Exception]]] = [
        ("record_predictions", (name, None, []), {}, InvalidInput),
        ("record_predictions", ("has space", None, [1]), {}, InvalidInput),
        ("record_predictions", (name, [{"a": 1}], [1, 0]), {}, InvalidInput),
        ("record_predictions", (name, None, [1]), {"probabilities": [[1.5, -0.5]]}, InvalidInput),
        ("record_predictions", (name, None, [1]), {"version": 0}, InvalidInput),
        ("record_predictions", (name, None, [1]), {"route": "no spaces"}, InvalidInput),
        ("record_predictions", (name, None, [1]), {"colour": "red"}, TypeError),
        ("record_prediction", (name, {"a": 1}, [1, 2]), {}, InvalidInput),
        ("record_feedback", (name, "r", None), {}, InvalidInput),
        ("record_feedback_batch", (name, ["a", "b"], [1]), {}, InvalidInput),
        ("performance", (name,), {"window": "forever"}, InvalidInput),
        ("performance", (name,), {"since": 10, "until": 5}, InvalidInput),
        ("performance", (name,), {"by": "arm"}, InvalidInput),
        ("performance", ("no-such-endpoint",), {"baseline": "@nothing"}, NotFound),
        ("drift", ("no-such-endpoint",), {}, NotFound),
    ]
    for method, args, options, error in cases:
        for facade in (monitor, ml.monitor):
            with pytest.raises(error):
                getattr(facade, method)(*args, **options)
    with pytest.raises(InvalidInput, match="does not tell"):
        monitor.target(name)
    with pytest.raises(InvalidInput, match="not numbers"):
        monitor.performance(name, baseline={"accuracy": 0.5})
    with pytest.raises(InvalidInput, match="detect_drift"):
        monitor.drift(name, current=frame(3))


def test_alerting_reads_and_writes_as_embedded(
    ml: Any, monitor: RemoteModelMonitor, churn: tuple[str, Any]
) -> None:
    name, model = churn
    alerts, embedded = monitor.alerts, ml.monitor.alerts
    channel = unique("hook")
    embedded.create_channel(channel, WebhookNotifier(url="https://example.com/hook"))
    assert alerts.channels() == embedded.channels()
    assert alerts.get_channel(channel) == embedded.get_channel(channel)

    rule = AlertRule(
        name=unique("busy"),
        signal="requests",
        threshold=0,
        endpoint=name,
        window="1h",
        for_="5m",
        labels={"team": "churn"},
        channels=[channel],
    )
    assert alerts.create_rule(rule) == rule == embedded.get_rule(rule.name)
    assert alerts.get_rule(rule.name) == embedded.get_rule(rule.name)
    updated = alerts.update_rule(rule.name, threshold=5, severity="critical")
    assert (
        updated == embedded.get_rule(rule.name) == replace(rule, threshold=5.0, severity="critical")
    )
    assert alerts.rules() == embedded.rules()
    assert alerts.rules(enabled=True) == embedded.rules(enabled=True)
    created = alerts.install_default_rules()
    assert created
    assert alerts.rules() == embedded.rules()
    assert alerts.install_default_rules() == []

    monitor.record_predictions(name, None, model.predict(frame(4)))
    embedded.evaluate()
    found = alerts.alerts(rule=rule.name)
    assert found
    assert found == embedded.alerts(rule=rule.name)
    assert alerts.alerts(state="active", endpoint=name) == embedded.alerts(
        state="active", endpoint=name
    )
    assert alerts.alerts(labels={"team": "churn"}, limit=1) == embedded.alerts(
        labels={"team": "churn"}, limit=1
    )
    assert alerts.get_alert(found[0].id) == embedded.get_alert(found[0].id)

    silence = alerts.silence({"team": "churn"}, duration="2h", comment="maintenance")
    assert silence.created_by == "remote-user"
    assert alerts.silences() == embedded.silences()
    assert alerts.silences(state="active") == embedded.silences(state="active")
    assert alerts.alerts(rule=rule.name) == embedded.alerts(rule=rule.name)
    assert alerts.alerts(rule=rule.name)[0].silenced
    expired = alerts.expire_silence(silence.id)
    assert expired == embedded.silences(state="expired")[0]
    alerts.delete_rule(rule.name)
    for facade in (alerts, embedded):
        with pytest.raises(NotFound):
            facade.get_rule(rule.name)
        with pytest.raises(NotFound):
            facade.get_channel("no-such-channel")
        with pytest.raises(InvalidInput):
            facade.silence({"team": "churn"}, comment="both", duration="1h", ends_at=1)
    for call in (
        alerts.evaluate,
        alerts.notify,
        alerts.notifications,
        lambda: alerts.create_channel("x", WebhookNotifier(url="https://example.com")),
        lambda: alerts.delete_channel(channel),
    ):
        with pytest.raises(InvalidInput):
            call()


#: SQLite only (see tests/conftest.py): compared with the embedded facades; both stores are
#: covered by the deployment and monitoring suites.
SQLITE_ONLY = True
