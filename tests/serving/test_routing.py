"""Weighted, sticky, preview and shadow routing, and routing changes under traffic."""

from __future__ import annotations

import collections
import json
import threading
from typing import Any

import pytest

import mlops
from mlops.serving import Route, RouteTable
from serving.conftest import log_rows, numeric_frame, put, register, single, wait_for
from serving.models import AlwaysFails

PATH = "/v1/endpoints/churn/predict"


@pytest.fixture
def two_versions(ml: mlops.MLOps, numeric_model: Any, flipped_model: Any) -> Any:
    """Model "churn" v1 and v2 (v2 answers the opposite of v1); rows to send."""
    example = numeric_frame().head(5)
    register(ml, "churn", numeric_model, example)
    register(ml, "churn", flipped_model, example)
    return numeric_frame(rows=1, seed=9).to_dict("records")


def test_weighted_routes_split_traffic_by_weight(
    ml: mlops.MLOps, two_versions: Any, serve: Any
) -> None:
    table = RouteTable("churn", (Route(1, 0.8, "stable"), Route(2, 0.2, "canary")))
    put(ml, "churn", table)
    server = serve(ml)
    seen: collections.Counter[str] = collections.Counter()
    with server.client() as client:
        for index in range(500):
            request_id = f"req-{index}"
            response = client.post(PATH, json=two_versions, headers={"x-request-id": request_id})
            answer = response.json()
            assert answer["request_id"] == request_id
            assert (answer["route"], answer["version"]) in {("stable", 1), ("canary", 2)}
            seen[answer["route"]] += 1
    assert 0.12 <= seen["canary"] / 500 <= 0.28
    server.stop()
    routes = collections.Counter((row.route, row.version) for row in log_rows(ml))
    assert routes == {("stable", 1): seen["stable"], ("canary", 2): seen["canary"]}


def test_a_sticky_header_keeps_a_caller_on_one_route(
    ml: mlops.MLOps, two_versions: Any, serve: Any
) -> None:
    arms = (Route(1, 0.5, "arm", "a"), Route(2, 0.5, "arm", "b"))
    put(ml, "churn", RouteTable("churn", arms, sticky_header="X-User", sticky_field="user"))
    server = serve(ml)
    by_user: dict[str, set[tuple[str, int]]] = collections.defaultdict(set)
    with server.client() as client:
        for user in range(20):
            for _ in range(4):
                answer = client.post(PATH, json=two_versions, headers={"x-user": f"u{user}"})
                by_user[f"u{user}"].add((answer.json()["route"], answer.json()["version"]))
            for _ in range(2):  # the same key given as a JSON field lands the same
                records = [dict(two_versions[0], user=f"u{user}")]
                answer = client.post(PATH, json=records)
                by_user[f"u{user}"].add((answer.json()["route"], answer.json()["version"]))
                framed = {"instances": two_versions, "user": f"u{user}"}
                answer = client.post(PATH, json=framed)
                by_user[f"u{user}"].add((answer.json()["route"], answer.json()["version"]))
    assert all(len(routes) == 1 for routes in by_user.values())
    assert {next(iter(routes)) for routes in by_user.values()} == {("a", 1), ("b", 2)}


def test_the_preview_header_reaches_the_preview_version(
    ml: mlops.MLOps, two_versions: Any, serve: Any
) -> None:
    table = RouteTable("churn", (Route(1, 1.0, "stable"),), preview_version=2)
    put(ml, "churn", table)
    server = serve(ml)
    with server.client() as client:
        for _ in range(5):
            plain = client.post(PATH, json=two_versions).json()
            assert (plain["version"], plain["route"]) == (1, "stable")
            preview = client.post(PATH, json=two_versions, headers={"x-mlops-preview": "1"})
            assert (preview.json()["version"], preview.json()["route"]) == (2, "preview")
            assert preview.json()["predictions"] != plain["predictions"]


def test_a_failing_shadow_never_changes_a_response(
    ml: mlops.MLOps, two_versions: Any, numeric_model: Any, serve: Any
) -> None:
    register(ml, "churn", AlwaysFails())  # v3: no example, so no warm-up to fail
    register(ml, "churn", numeric_model, numeric_frame().head(5))  # v4: agrees with v1
    table = RouteTable("churn", (Route(1, 1.0, "stable"),), shadow_version=3, shadow_share=1.0)
    put(ml, "churn", table)
    server = serve(ml)
    expected = numeric_model.predict(numeric_frame(rows=1, seed=9)).tolist()
    with server.client() as client:
        for index in range(10):
            response = client.post(PATH, json=two_versions, headers={"x-request-id": f"s{index}"})
            assert response.status_code == 200
            assert response.json()["predictions"] == expected
            assert response.json()["version"] == 1
        wait_for(lambda: len(log_rows(ml, route="shadow")) == 10 or server.state.writer.flush())
        put(ml, "churn", RouteTable("churn", table.routes, shadow_version=4, shadow_share=1.0))
        wait_for(lambda: server.state.endpoints["churn"].table.shadow_version == 4)
        for index in range(5):
            client.post(PATH, json=two_versions, headers={"x-request-id": f"t{index}"})
    server.stop()
    failing = [row for row in log_rows(ml, route="shadow") if row.version == 3]
    assert sorted(row.request_id for row in failing) == [f"s{i}" for i in range(10)]
    assert all(row.status == 500 and "broken" in row.error for row in failing)
    assert all(row.inputs is None for row in failing)
    agreeing = log_rows(ml, route="shadow", version=4)
    assert len(agreeing) == 5
    assert all(
        json.loads(row.outputs) == {"predictions": expected, "agree": True} for row in agreeing
    )
    live = log_rows(ml, route="stable")
    assert len(live) == 15
    assert all(row.status == 200 and row.inputs for row in live)


def test_a_routing_change_is_picked_up_without_failing_a_request(
    ml: mlops.MLOps, two_versions: Any, serve: Any
) -> None:
    single(ml, "churn", 1)
    server = serve(ml, poll_interval=0.1)
    statuses: collections.Counter[int] = collections.Counter()
    versions: list[int] = []
    stop = threading.Event()

    def send() -> None:
        with server.client() as client:
            while not stop.is_set():
                response = client.post(PATH, json=two_versions)
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    versions.append(response.json()["version"])

    sender = threading.Thread(target=send)
    sender.start()
    try:
        wait_for(lambda: len(versions) >= 20, what="traffic on version 1")
        single(ml, "churn", 2)
        wait_for(lambda: versions[-1] == 2, what="the new routing table")
        seen = len(versions)
        wait_for(lambda: len(versions) >= seen + 20, what="traffic on version 2")
    finally:
        stop.set()
        sender.join()
    assert set(statuses) == {200}
    switch = versions.index(2)
    assert set(versions[:switch]) == {1}
    assert set(versions[switch:]) == {2}
    with server.client() as client:
        ready = client.get("/health/ready").json()
    assert ready["endpoints"]["churn"] == {"revision": 2, "versions": [2]}


def test_refresh_can_be_forced_and_readiness_reports_failures(
    ml: mlops.MLOps, two_versions: Any, serve: Any
) -> None:
    single(ml, "churn", 1)
    server = serve(ml, poll_interval=60)
    put(ml, "broken", RouteTable.single("churn", 7))  # no version 7: never loads
    server.refresh()
    with server.client() as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert "broken" in ready.json()["failed"]
        assert "churn" in ready.json()["endpoints"]
        unavailable = client.post("/v1/endpoints/broken/predict", json=two_versions)
        assert unavailable.status_code == 503
        assert "failed to load" in unavailable.json()["error"]
        assert client.post(PATH, json=two_versions).status_code == 200
