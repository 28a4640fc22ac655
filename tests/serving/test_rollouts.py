"""Rollouts end to end: a real server, real HTTP traffic, the controller deciding."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx

import mlops
from mlops.deployment import (
    ABTest,
    Analysis,
    BlueGreen,
    Canary,
    DeploymentController,
    DeploymentState,
    Shadow,
)
from mlops.registry import Stage
from serving.conftest import LiveServer, log_rows, numeric_frame, register, wait_for
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


def test_blue_green_preview_then_atomic_switch(
    ml: mlops.MLOps, serve: Callable[..., LiveServer], numeric_model: Any
) -> None:
    example = numeric_frame(5)
    register(ml, "churn", numeric_model, example)
    register(ml, "churn", numeric_model, example)
    ml.deployments.deploy("churn", "churn", 1)
    server = serve(ml)
    ml.deployments.deploy("churn", "churn", 2, strategy=BlueGreen(preview_seconds=600))
    server.refresh()
    row = numeric_frame(1).to_dict(orient="records")
    with server.client() as client:
        plain = client.post("/v1/endpoints/churn/predict", json=row).json()
        preview = client.post(
            "/v1/endpoints/churn/predict", json=row, headers={"x-mlops-preview": "1"}
        ).json()
        assert (plain["version"], preview["version"]) == (1, 2)
        ml.deployments.promote("churn")
        server.refresh()
        after = client.post("/v1/endpoints/churn/predict", json=row).json()
        assert after["version"] == 2
        ml.deployments.rollback("churn")
        server.refresh()  # blue is still loaded: the switch back is immediate
        assert client.post("/v1/endpoints/churn/predict", json=row).json()["version"] == 1


def test_ab_test_over_http_is_sticky_and_declares_a_winner(
    ml: mlops.MLOps, serve: Callable[..., LiveServer], numeric_model: Any
) -> None:
    example = numeric_frame(5)
    register(ml, "churn", numeric_model, example)
    register(ml, "churn", numeric_model, example)
    ml.deployments.deploy("churn", "churn", 1)
    server = serve(ml)
    strategy = ABTest(
        sticky_header="x-user-id", auto_promote=True, check_seconds=0.2,
        minimum_detectable_effect=0.2,
    )  # fmt: skip
    ml.deployments.deploy("churn", "churn", 2, strategy=strategy)
    server.refresh()
    row = numeric_frame(1).to_dict(orient="records")
    arms: dict[str, set[str]] = {}
    feedback = []
    with server.client() as client:
        for user in range(150):
            for _ in range(2):
                answer = client.post(
                    "/v1/endpoints/churn/predict", json=row, headers={"x-user-id": f"u{user}"}
                ).json()
                arms.setdefault(f"u{user}", set()).add(answer["route"])
            converted = 1 if answer["route"] == "treatment" else int(user % 4 == 0)
            feedback.append({"request_id": answer["request_id"], "actual": converted})
        assert all(len(seen) == 1 for seen in arms.values())  # sticky
        assert client.post("/v1/endpoints/churn/feedback", json=feedback).status_code == 202
    server.state.writer.flush()
    controller = DeploymentController(ml.deployments, ml.store, interval=0.1)
    controller.start()
    try:
        wait_for(lambda: not ml.deployments.status("churn").state.active, what="a verdict")
    finally:
        controller.stop()
    assert ml.deployments.status("churn").state is DeploymentState.SUCCEEDED
    assert ml.registry.get_version("churn", 2).stage is Stage.PRODUCTION


def test_a_failing_shadow_never_changes_a_response(
    ml: mlops.MLOps, serve: Callable[..., LiveServer], numeric_model: Any
) -> None:
    register(ml, "churn", numeric_model, numeric_frame(5))
    register(ml, "churn", AlwaysFails(), None)
    ml.deployments.deploy("churn", "churn", 1)
    server = serve(ml)
    ml.deployments.deploy("churn", "churn", 2, strategy=Shadow(share=1.0))
    server.refresh()
    rows = numeric_frame(20).to_dict(orient="records")
    with server.client() as client:
        answers = [client.post("/v1/endpoints/churn/predict", json=[r]) for r in rows]
    assert {(a.status_code, a.json()["version"]) for a in answers} == {(200, 1)}
    server.state.writer.flush()
    shadows = wait_for(lambda: log_rows(ml, route="shadow"), what="shadow rows")
    assert {row.status for row in shadows} == {500}
