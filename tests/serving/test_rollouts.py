"""Rollouts end to end: a real server, real HTTP traffic, the controller deciding."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx

import mlops
from mlops.deployment import Analysis, Canary, DeploymentController, DeploymentState
from mlops.registry import Stage
from serving.conftest import LiveServer, numeric_frame, register, wait_for
from serving.models import AlwaysFails


class Traffic:
    """A client thread sending one-row requests until stopped; it records every answer."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.statuses: list[tuple[int, Any]] = []
        self.mark = 0  # where the traffic after the rollout's routing change begins
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._row = numeric_frame(1).to_dict(orient="records")

    def _run(self) -> None:
        with self.server.client() as client:
            while not self._stop.is_set():
                response = client.post(
                    "/v1/endpoints/churn/predict",
                    json=self._row,
                    headers={"X-Request-ID": uuid.uuid4().hex},
                )
                self.statuses.append((response.status_code, response.json().get("version")))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _rollout(
    ml: mlops.MLOps, serve: Callable[..., LiveServer], candidate: Any, numeric_model: Any
) -> tuple[Traffic, Any]:
    example = numeric_frame(5)
    register(ml, "churn", numeric_model, example)
    register(ml, "churn", candidate, None if isinstance(candidate, AlwaysFails) else example)
    ml.deployments.deploy("churn", "churn", 1)
    server = serve(ml)
    gate = Analysis(min_requests=15, max_p99_ratio=None)
    ml.deployments.deploy(
        "churn",
        "churn",
        2,
        strategy=Canary(steps_percent=(20, 100), interval_seconds=1.5, gate=gate),
    )
    controller = DeploymentController(ml.deployments, ml.store, interval=0.1)
    with Traffic(server) as traffic:
        controller.start()
        try:
            wait_for(
                lambda: not ml.deployments.status("churn").state.active,
                timeout=60,
                what="the rollout to finish",
            )
            server.refresh()  # the new routing table is in place from here on
            traffic.mark = len(traffic.statuses)
            wait_for(lambda: len(traffic.statuses) > traffic.mark + 50, what="later traffic")
        finally:
            controller.stop()
    return traffic, ml.deployments.status("churn")


def test_a_failing_canary_is_rolled_back_and_callers_see_at_most_its_share(
    ml: mlops.MLOps, serve: Callable[..., LiveServer], numeric_model: Any
) -> None:
    traffic, deployment = _rollout(ml, serve, AlwaysFails(), numeric_model)
    assert deployment.state is DeploymentState.ROLLED_BACK
    assert "error rate" in (deployment.reason or "")
    statuses = [status for status, _ in traffic.statuses]
    errors = statuses.count(500)
    assert errors > 0  # the canary really did get traffic
    assert errors <= 0.2 * len(statuses) + 10  # never more than the canary's share
    assert set(statuses) <= {200, 500}
    after = traffic.statuses[traffic.mark + 1 :]
    assert {(status, version) for status, version in after} == {(200, 1)}
    assert ml.registry.get_version("churn", 1).stage is Stage.PRODUCTION


def test_a_good_canary_is_promoted(
    ml: mlops.MLOps, serve: Callable[..., LiveServer], numeric_model: Any
) -> None:
    traffic, deployment = _rollout(ml, serve, numeric_model, numeric_model)
    assert deployment.state is DeploymentState.SUCCEEDED
    assert {status for status, _ in traffic.statuses} == {200}
    assert {version for _, version in traffic.statuses[traffic.mark + 1 :]} == {2}
    assert ml.registry.get_version("churn", 2).stage is Stage.PRODUCTION
    kinds = [event.kind for event in ml.deployments.history("churn")]
    assert kinds[:3] == ["created", "step", "succeeded"]
    assert httpx  # keep the import for type checkers
