"""Deployments and their strategies on every metadata backend, driven by a fake clock.

Traffic is written straight into the prediction log (as the serving gateway would), so
these tests judge the controller's decisions; tests/serving runs them through a server.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pytest

import mlops
from mlops.deployment import (
    ABTest,
    Analysis,
    BlueGreen,
    Canary,
    DeploymentManager,
    DeploymentState,
    Rolling,
    Shadow,
    check_strategy,
    strategy_from_params,
)
from mlops.errors import Conflict, InvalidInput, NotFound
from mlops.registry import Stage
from mlops.serving._routes import Router, RouteTable
from mlops.store._schema import prediction_feedback, prediction_log, serving_workers

sklearn = pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
from sklearn.linear_model import LogisticRegression  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def _register(ml: mlops.MLOps, columns: tuple[str, ...] = ("a", "b")) -> int:
    rng = np.random.default_rng(len(ml.registry.list_models()))
    frame = pd.DataFrame(rng.normal(size=(60, len(columns))), columns=list(columns))
    model = LogisticRegression().fit(frame, (frame.iloc[:, 0] > 0).astype(int))
    return ml.registry.register_model("churn", model, input_example=frame[:3]).number


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def manager(ml: mlops.MLOps, clock: Clock) -> DeploymentManager:
    return DeploymentManager(ml.store, ml.registry, actor="tester", clock=clock)


def _traffic(
    ml: mlops.MLOps,
    clock: Clock,
    version: int,
    count: int,
    *,
    errors: int = 0,
    latency: float = 2.0,
    route: str = "stable",
    actual: Any = None,
    prediction: Any = 1,
) -> None:
    rows, feedback = [], []
    for index in range(count):
        request_id = uuid.uuid4().hex
        rows.append(
            {
                "request_id": request_id,
                "endpoint": "churn",
                "version": version,
                "route": route,
                "ts": int(clock() * 1000),
                "latency_ms": latency,
                "status": 500 if index < errors else 200,
                "outputs": json.dumps({"predictions": [prediction]}),
            }
        )
        if actual is not None:
            value = actual(index) if callable(actual) else actual
            feedback.append(
                {
                    "request_id": request_id,
                    "endpoint": "churn",
                    "actual": json.dumps(value),
                    "ts": int(clock() * 1000),
                }
            )
    with ml.store.write() as connection:
        connection.execute(prediction_log.insert(), rows)
        if feedback:
            connection.execute(prediction_feedback.insert(), feedback)


def test_first_deployment_goes_straight_to_production(
    ml: mlops.MLOps, manager: DeploymentManager
) -> None:
    _register(ml)
    deployment = manager.deploy("churn", "churn", 1)
    assert deployment.state is DeploymentState.SUCCEEDED
    assert deployment.routes == RouteTable.single("churn", 1)
    assert ml.registry.get_version("churn", 1).stage is Stage.PRODUCTION
    assert [e.kind for e in manager.history("churn")] == ["created", "succeeded", "registry"]


def test_a_good_canary_is_promoted_step_by_step(
    ml: mlops.MLOps, manager: DeploymentManager, clock: Clock
) -> None:
    _register(ml)
    _register(ml)
    manager.deploy("churn", "churn", 1)
    gate = Analysis(min_requests=10)
    deployment = manager.deploy(
        "churn",
        "churn",
        2,
        strategy=Canary(steps_percent=(10, 50, 100), interval_seconds="1m", gate=gate),
    )
    assert deployment.state is DeploymentState.PROGRESSING
    assert [(r.version, r.weight) for r in deployment.routes.routes] == [(1, 0.9), (2, 0.1)]
    clock.tick(30)
    assert manager.advance() == []  # the step's interval has not passed
    for expected_step in (1, 2):
        _traffic(ml, clock, 1, 40)
        _traffic(ml, clock, 2, 20, route="canary")
        clock.tick(31)
        (moved,) = manager.advance()
        assert moved.step == expected_step
        clock.tick(29)
    assert [(r.version, r.weight) for r in manager.status("churn").routes.routes] == [(2, 1.0)]
    _traffic(ml, clock, 2, 20, route="canary")
    clock.tick(61)
    (done,) = manager.advance()
    assert done.state is DeploymentState.SUCCEEDED
    assert done.routes.routes == RouteTable.single("churn", 2).routes
    assert ml.registry.get_version("churn", 2).stage is Stage.PRODUCTION
    assert ml.registry.get_version("churn", 1).stage is Stage.ARCHIVED
    kinds = [e.kind for e in manager.history(done.id)]
    assert kinds == ["created", "step", "step", "succeeded", "registry"]
    assert manager.history(done.id)[1].detail["analysis"]["verdict"] == "pass"


def test_a_bad_canary_is_rolled_back(
    ml: mlops.MLOps, manager: DeploymentManager, clock: Clock
) -> None:
    _register(ml)
    _register(ml)
    manager.deploy("churn", "churn", 1)
    deployment = manager.deploy(
        "churn", "churn", 2, strategy=Canary(interval_seconds=10, gate=Analysis(min_requests=10))
    )
    _traffic(ml, clock, 1, 100, errors=1)
    _traffic(ml, clock, 2, 20, errors=8, route="canary")
    clock.tick(11)
    (moved,) = manager.advance()
    assert moved.state is DeploymentState.ROLLED_BACK
    assert moved.routes == RouteTable.single("churn", 1)
    assert "error rate 40.00% is above the limit 5.00%" in moved.reason
    assert ml.registry.get_version("churn", 1).stage is Stage.PRODUCTION
    assert ml.registry.get_version("churn", 2).stage is Stage.NONE
    assert deployment.id == moved.id


def test_too_little_traffic_holds_the_step(
    ml: mlops.MLOps, manager: DeploymentManager, clock: Clock
) -> None:
    _register(ml)
    _register(ml)
    manager.deploy("churn", "churn", 1)
    manager.deploy(
        "churn", "churn", 2, strategy=Canary(interval_seconds=10, gate=Analysis(min_requests=50))
    )
    _traffic(ml, clock, 2, 5, route="canary")
    clock.tick(11)
    manager.advance()
    held = manager.status("churn")
    assert (held.state, held.step) == (DeploymentState.PROGRESSING, 0)
    assert manager.history(held.id)[-1].detail["analysis"]["verdict"] == "inconclusive"
    clock.tick(5)
    assert manager.advance() == []  # the next check waits a full interval
    _traffic(ml, clock, 2, 60, route="canary")
    clock.tick(6)
    assert manager.advance()[0].step == 1  # the traffic of the whole step counts


def test_metric_from_feedback_gates_the_canary(
    ml: mlops.MLOps, manager: DeploymentManager, clock: Clock
) -> None:
    _register(ml)
    _register(ml)
    manager.deploy("churn", "churn", 1)
    gate = Analysis(
        min_requests=10, metric="accuracy", min_feedback=10, max_metric_degradation=0.05
    )
    manager.deploy("churn", "churn", 2, strategy=Canary(interval_seconds=10, gate=gate))
    _traffic(ml, clock, 1, 40, actual=1)  # stable always right
    _traffic(ml, clock, 2, 40, route="canary", actual=lambda i: i % 2)  # canary right half the time
    clock.tick(11)
    (moved,) = manager.advance()
    assert moved.state is DeploymentState.ROLLED_BACK
    assert "accuracy 0.5000 is worse than stable's 1.0000" in moved.reason


def test_conflicts_and_incompatible_signatures(ml: mlops.MLOps, manager: DeploymentManager) -> None:
    _register(ml)
    _register(ml)
    _register(ml, columns=("a", "c"))
    manager.deploy("churn", "churn", 1)
    manager.deploy("churn", "churn", 2, strategy=Canary())
    with pytest.raises(Conflict, match="already rolling out"):
        manager.deploy("churn", "churn", 2, strategy=Canary())
    manager.abort("churn")
    with pytest.raises(Conflict, match="missing input 'b'"):
        manager.deploy("churn", "churn", 3, strategy=Canary())
    with pytest.raises(Conflict, match="already serves version 1"):
        manager.deploy("churn", "churn", 1)
    with pytest.raises(NotFound):
        manager.deploy("churn", "churn", 9)
    with pytest.raises(NotFound):
        manager.status("nope")
    with pytest.raises(InvalidInput):
        Canary(steps_percent=(50, 20, 100))
    with pytest.raises(InvalidInput, match="batch_size"):
        strategy_from_params("rolling", {"batch_size": 0})


def test_blue_green_previews_then_switches(
    ml: mlops.MLOps, manager: DeploymentManager, clock: Clock
) -> None:
    _register(ml)
    _register(ml)
    manager.deploy("churn", "churn", 1)
    deployment = manager.deploy("churn", "churn", 2, strategy=BlueGreen(preview_seconds=30))
    assert deployment.routes.preview_version == 2
    assert [r.version for r in deployment.routes.routes] == [1]
    clock.tick(31)
    manager.advance()  # preview passed → green takes 100%
    clock.tick(1)
    manager.advance()
    done = manager.status(deployment.id)
    assert done.state is DeploymentState.SUCCEEDED
    assert [(r.version, r.role) for r in done.routes.routes] == [(2, "stable")]
    assert done.routes.extra["previous"] == 1
    rolled = manager.rollback("churn")
    assert rolled.state is DeploymentState.ROLLED_BACK
    assert rolled.routes == RouteTable.single("churn", 1)
    assert ml.registry.get_version("churn", 1).stage is Stage.PRODUCTION


def test_shadow_waits_for_a_decision(
    ml: mlops.MLOps, manager: DeploymentManager, clock: Clock
) -> None:
    _register(ml)
    _register(ml)
    manager.deploy("churn", "churn", 1)
    deployment = manager.deploy("churn", "churn", 2, strategy=Shadow(share=0.5))
    assert (deployment.routes.shadow_version, deployment.routes.shadow_share) == (2, 0.5)
    clock.tick(10_000)
    assert manager.advance() == []
    paused = manager.pause(deployment.id)
    assert paused.state is DeploymentState.PAUSED
    assert manager.resume(deployment.id).state is DeploymentState.PROGRESSING
    promoted = manager.promote(deployment.id)
    assert promoted.routes.routes == RouteTable.single("churn", 2).routes
    assert promoted.routes.shadow_version is None
    with pytest.raises(Conflict, match="cannot change"):
        manager.abort(deployment.id)


def test_ab_test_with_sticky_arms_and_a_winner(
    ml: mlops.MLOps, manager: DeploymentManager, clock: Clock
) -> None:
    _register(ml)
    _register(ml)
    manager.deploy("churn", "churn", 1)
    strategy = ABTest(
        sticky_header="x-user-id",
        auto_promote=True,
        check_seconds=60,
        minimum_detectable_effect=0.2,
    )
    deployment = manager.deploy("churn", "churn", 2, strategy=strategy)
    router = Router(deployment.routes)
    picks = {key: router.pick(key).label for key in (f"user-{i}" for i in range(200))}
    assert all(router.pick(key).label == arm for key, arm in picks.items())  # sticky
    assert 60 < list(picks.values()).count("treatment") < 140
    rng = np.random.default_rng(3)
    _traffic(ml, clock, 1, 300, route="control", actual=lambda i: int(rng.random() < 0.3))
    _traffic(ml, clock, 2, 300, route="treatment", actual=lambda i: int(rng.random() < 0.6))
    clock.tick(61)
    (done,) = manager.advance()
    assert done.state is DeploymentState.SUCCEEDED
    verdict = manager.history(done.id)[-2].detail["ab"]
    assert verdict["decision"] == "winner_b"
    assert verdict["method"] == "msprt-proportions"
    assert ml.registry.get_version("churn", 2).stage is Stage.PRODUCTION


def test_ab_test_keeps_running_without_a_difference(
    ml: mlops.MLOps, manager: DeploymentManager, clock: Clock
) -> None:
    _register(ml)
    _register(ml)
    manager.deploy("churn", "churn", 1)
    manager.deploy("churn", "churn", 2, strategy=ABTest(auto_promote=True, check_seconds=60))
    _traffic(ml, clock, 1, 50, route="control", actual=lambda i: i % 2)
    _traffic(ml, clock, 2, 50, route="treatment", actual=lambda i: i % 2)
    clock.tick(61)
    manager.advance()
    assert manager.status("churn").state is DeploymentState.PROGRESSING
    assert manager.history("churn")[-1].detail["decision"] == "keep_running"


@pytest.mark.parametrize(
    "strategy",
    [Canary(), BlueGreen(gate=Analysis()), ABTest(), Shadow(share=0.3)],
    ids=lambda s: s.name,
)
def test_every_strategy_keeps_the_contract(strategy: Any) -> None:
    check_strategy(strategy)


def test_only_one_controller_leads(ml: mlops.MLOps) -> None:
    from mlops.deployment._controller import DeploymentController

    first = DeploymentController(ml.deployments, ml.store, interval=0.05)
    second = DeploymentController(ml.deployments, ml.store, interval=0.05)
    other_store = mlops.connect(ml.store.url, artifacts=ml.artifacts.root).store
    third = DeploymentController(ml.deployments, other_store, interval=0.05)
    try:
        assert first.run_once()
        assert not second.run_once()
        assert not third.run_once()
        first.stop()
        assert third.run_once()  # leadership passes on when the leader stops
    finally:
        for controller in (first, second, third):
            controller.stop()
        other_store.dispose()


def test_the_controller_thread_advances_a_rollout(ml: mlops.MLOps) -> None:
    import time

    from mlops.deployment._controller import DeploymentController

    _register(ml)
    _register(ml)
    ml.deployments.deploy("churn", "churn", 1)
    ml.deployments.deploy("churn", "churn", 2, strategy=BlueGreen(preview_seconds=0))
    controller = DeploymentController(ml.deployments, ml.store, interval=0.05)
    controller.start()
    try:
        deadline = time.monotonic() + 10
        while ml.deployments.status("churn").state.active and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        controller.stop()
    assert ml.deployments.status("churn").state is DeploymentState.SUCCEEDED


def test_one_broken_rollout_does_not_stall_the_others(
    ml: mlops.MLOps, manager: DeploymentManager, clock: Clock
) -> None:
    import sqlalchemy as sa

    from mlops.store._schema import deployments

    _register(ml)
    _register(ml)
    for endpoint in ("first", "second"):
        manager.deploy(endpoint, "churn", 1)
    manager.deploy("first", "churn", 2, strategy=Canary(interval_seconds=1))
    manager.deploy("second", "churn", 2, strategy=BlueGreen(preview_seconds=1))
    broken = manager.status("first").id
    with ml.store.write() as connection:
        connection.execute(
            deployments.update()
            .where(deployments.c.id == broken)
            .values(params='{"steps_percent": "x"}')
        )
    clock.tick(2)
    manager.advance()
    assert manager.status("second").step == 1
    with ml.store.read() as connection:
        assert (
            connection.execute(
                sa.select(deployments.c.state).where(deployments.c.id == broken)
            ).scalar()
            == "progressing"
        )


def test_gated_rollouts_need_a_version_already_serving(
    ml: mlops.MLOps, manager: DeploymentManager
) -> None:
    _register(ml)
    with pytest.raises(InvalidInput, match="deploy the first version directly"):
        manager.deploy("churn", "churn", 1, strategy=Canary())


def test_endpoint_rollback_leaves_a_registry_it_did_not_change(
    ml: mlops.MLOps, manager: DeploymentManager
) -> None:
    from mlops.registry import PromotionPolicy

    for _ in range(3):
        _register(ml)
    manager.deploy("churn", "churn", 1)
    manager.deploy("churn", "churn", 2, strategy=BlueGreen())
    manager.promote("churn")  # v2 is production in the registry
    ml.registry.set_policy("churn", PromotionPolicy(require_signature=True))
    manager.deploy("churn", "churn", 3, strategy=BlueGreen())
    done = manager.promote("churn")  # the endpoint switches; the registry refuses
    assert "the registry refused production" in (done.reason or "")
    assert ml.registry.get_model("churn").production_version == 2
    manager.rollback("churn")
    assert manager.status("churn").routes.routes[0].version == 2
    assert ml.registry.get_model("churn").production_version == 2  # untouched


def _worker(ml: mlops.MLOps, clock: Clock, worker: str, started: int, revision: int) -> None:
    """A serving worker's heartbeat, as the gateway writes it: serving ``revision``."""
    values = {
        "last_seen": int(clock() * 1000),
        "revisions": json.dumps({"churn": revision}),
        "ready": 1,
    }
    with ml.store.write() as connection:
        updated = connection.execute(
            serving_workers.update().where(serving_workers.c.id == worker).values(**values)
        ).rowcount
        if not updated:
            connection.execute(
                serving_workers.insert().values(id=worker, started_at=started, **values)
            )


def _revision(ml: mlops.MLOps) -> int:
    from mlops.serving import EndpointStore

    return EndpointStore(ml.store).get("churn").revision


def test_rolling_moves_a_batch_only_after_every_live_worker_swapped_in(
    ml: mlops.MLOps, manager: DeploymentManager, clock: Clock
) -> None:
    check_strategy(Rolling(batch_size=2, workers=5))
    assert Rolling(batch_size=2, workers=5).steps() == 3
    _register(ml)
    _register(ml)
    manager.deploy("churn", "churn", 1)
    workers = ["a" * 32, "b" * 32, "c" * 32]
    for index, worker in enumerate(workers):
        _worker(ml, clock, worker, index, _revision(ml))
    # A worker silent for longer than 5 s is not live: it neither counts nor holds back.
    _worker(ml, clock, "d" * 32, 99, _revision(ml))
    clock.tick(6)
    for index, worker in enumerate(workers):
        _worker(ml, clock, worker, index, _revision(ml))

    deployment = manager.deploy(
        "churn", "churn", 2, strategy=Rolling(batch_size=2, interval_seconds=10)
    )
    assert deployment.params["workers"] == 3
    assert deployment.steps == 2
    assert deployment.routes is not None
    assert deployment.routes.rolling == (1, 2, 2)
    assert deployment.routes.versions == {1, 2}
    for expected_step in (1, 2):
        clock.tick(11)
        # Two of three workers have the batch's revision; the third still lags behind.
        for worker in workers[:2]:
            _worker(ml, clock, worker, 0, _revision(ml))
        _worker(ml, clock, workers[2], 2, _revision(ml) - 1)
        manager.advance()
        held = manager.status("churn")
        assert held.step == expected_step - 1
        assert held.state is DeploymentState.PROGRESSING
        assert manager.history("churn")[-1].kind == "rolling_wait"
        assert manager.history("churn")[-1].detail["behind"] == {workers[2]: _revision(ml) - 1}
        clock.tick(11)
        for index, worker in enumerate(workers):
            _worker(ml, clock, worker, index, _revision(ml))
        manager.advance()
        moved = manager.status("churn")
        if expected_step == 1:
            assert moved.step == 1
            assert moved.routes is not None
            assert moved.routes.rolling == (1, 2, 3)
    assert moved.state is DeploymentState.SUCCEEDED
    assert moved.routes == RouteTable.single("churn", 2)
    assert ml.registry.get_version("churn", 2).stage is Stage.PRODUCTION
    assert ml.registry.get_version("churn", 1).stage is Stage.ARCHIVED


def test_rolling_without_a_server_advances_on_time(
    ml: mlops.MLOps, manager: DeploymentManager, clock: Clock
) -> None:
    _register(ml)
    _register(ml)
    manager.deploy("churn", "churn", 1)
    deployment = manager.deploy("churn", "churn", 2, strategy=Rolling(interval_seconds="5s"))
    assert (deployment.params["workers"], deployment.steps) == (1, 1)
    clock.tick(3)
    assert manager.advance() == []
    clock.tick(3)
    [done] = manager.advance()
    assert done.state is DeploymentState.SUCCEEDED
    assert done.routes == RouteTable.single("churn", 2)
    assert ml.registry.get_version("churn", 2).stage is Stage.PRODUCTION
