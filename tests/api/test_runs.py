"""/api/v1/runs over a real server: lifecycle, logging, batches, search and history."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.conftest import assert_error, unique


@pytest.fixture
def experiment(api: httpx.Client) -> dict[str, Any]:
    response = api.post("/experiments", json={"name": unique("runs")})
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


def start(api: httpx.Client, experiment_id: int, **fields: Any) -> dict[str, Any]:
    response = api.post("/runs", json={"experiment_id": experiment_id, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_run_lifecycle_round_trip(api: httpx.Client, experiment: dict[str, Any]) -> None:
    run = start(api, experiment["id"], name="first", tags={"team": "ds"})
    assert run["status"] == "RUNNING"
    assert run["name"] == "first"
    assert run["tags"] == {"team": "ds"}
    child = start(api, experiment["id"], parent_run_id=run["id"])
    assert child["parent_run_id"] == run["id"]
    assert api.get(f"/runs/{run['id']}").json() == run

    ended = api.patch(f"/runs/{run['id']}", json={"status": "FINISHED"})
    assert ended.status_code == 200
    assert ended.json()["status"] == "FINISHED"
    assert ended.json()["end_time"] >= run["start_time"]
    again = api.patch(f"/runs/{run['id']}", json={"status": "FAILED"})
    assert_error(again, 409, "run_not_active")
    assert api.get(f"/runs/{run['id']}").json()["status"] == "FINISHED"
    error = assert_error(
        api.patch(f"/runs/{run['id']}", json={"status": "RUNNING"}), 422, "invalid_input"
    )
    assert error["field"] == "body.status"

    assert api.delete(f"/runs/{child['id']}").status_code == 204
    assert api.get(f"/runs/{child['id']}").json()["lifecycle_stage"] == "deleted"
    assert api.post(f"/runs/{child['id']}/restore").json()["lifecycle_stage"] == "active"


def test_log_params_metrics_tags_and_history(api: httpx.Client, experiment: dict[str, Any]) -> None:
    run_id = start(api, experiment["id"])["id"]
    assert (
        api.post(f"/runs/{run_id}/params", json={"params": {"lr": 0.1, "model": "rf"}}).status_code
        == 204
    )
    points = [{"key": "val/loss", "value": 1.0 / (step + 1), "step": step} for step in range(5)]
    points.append({"key": "diverged", "value": "NaN"})
    assert api.post(f"/runs/{run_id}/metrics", json={"metrics": points}).status_code == 204
    assert api.post(f"/runs/{run_id}/tags", json={"tags": {"a": "1", "b": "2"}}).status_code == 204
    assert api.delete(f"/runs/{run_id}/tags/b").status_code == 204
    assert_error(api.delete(f"/runs/{run_id}/tags/b"), 404, "not_found")

    run = api.get(f"/runs/{run_id}").json()
    assert run["params"] == {"lr": "0.1", "model": "rf"}
    assert run["metrics"] == {"val/loss": 0.2, "diverged": "NaN"}
    assert run["tags"] == {"a": "1"}

    history = api.get(f"/runs/{run_id}/metrics/val/loss", params={"limit": 2}).json()
    steps = [p["step"] for p in history["points"]]
    token = history["next_page_token"]
    while token:
        history = api.get(
            f"/runs/{run_id}/metrics/val/loss", params={"limit": 2, "page_token": token}
        ).json()
        steps += [p["step"] for p in history["points"]]
        token = history["next_page_token"]
    assert steps == [0, 1, 2, 3, 4]
    assert api.get(f"/runs/{run_id}/metrics/never-logged").json()["points"] == []


def test_changing_a_param_is_409_and_keeps_the_first_value(
    api: httpx.Client, experiment: dict[str, Any]
) -> None:
    run_id = start(api, experiment["id"])["id"]
    api.post(f"/runs/{run_id}/params", json={"params": {"lr": 0.1}})
    error = assert_error(
        api.post(f"/runs/{run_id}/params", json={"params": {"lr": 0.2}}), 409, "conflict"
    )
    assert "immutable" in error["message"]
    assert api.get(f"/runs/{run_id}").json()["params"] == {"lr": "0.1"}


def test_log_batch_is_all_or_nothing(api: httpx.Client, experiment: dict[str, Any]) -> None:
    run_id = start(api, experiment["id"])["id"]
    batch = {
        "metrics": [{"key": "acc", "value": 0.9, "step": 1, "timestamp": 1_700_000_000_000}],
        "params": {"depth": 3},
        "tags": {"stage": "train"},
    }
    assert api.post(f"/runs/{run_id}/log-batch", json=batch).status_code == 204
    run = api.get(f"/runs/{run_id}").json()
    assert (run["metrics"], run["params"], run["tags"]) == (
        {"acc": 0.9},
        {"depth": "3"},
        {"stage": "train"},
    )
    # A conflicting param in the batch: nothing of it lands, not even the valid metric.
    refused = {"metrics": [{"key": "acc", "value": 0.1, "step": 9}], "params": {"depth": 4}}
    assert_error(api.post(f"/runs/{run_id}/log-batch", json=refused), 409, "conflict")
    # A bad key is refused before anything is written.
    bad_key = {"metrics": [{"key": "ok", "value": 1}], "tags": {"../evil": "x"}}
    assert_error(api.post(f"/runs/{run_id}/log-batch", json=bad_key), 422, "invalid_input")
    assert api.get(f"/runs/{run_id}").json() == run
    history = api.get(f"/runs/{run_id}/metrics/acc").json()["points"]
    assert [p["step"] for p in history] == [1]


def test_logging_to_an_ended_or_missing_run(api: httpx.Client, experiment: dict[str, Any]) -> None:
    run_id = start(api, experiment["id"])["id"]
    api.patch(f"/runs/{run_id}", json={"status": "KILLED"})
    refused = api.post(f"/runs/{run_id}/metrics", json={"metrics": [{"key": "x", "value": 1}]})
    assert_error(refused, 409, "run_not_active")
    assert api.get(f"/runs/{run_id}").json()["metrics"] == {}
    assert_error(api.get("/runs/" + "0" * 32), 404, "not_found")
    assert_error(api.get("/runs/not-a-run-id"), 422, "invalid_input")
    assert_error(api.post("/runs", json={"experiment_id": 987654}), 404, "not_found")


def test_wrong_types_and_unknown_fields_are_422(
    api: httpx.Client, experiment: dict[str, Any]
) -> None:
    run_id = start(api, experiment["id"])["id"]
    wrong = {"metrics": [{"key": "x", "value": "high"}]}
    error = assert_error(api.post(f"/runs/{run_id}/metrics", json=wrong), 422, "invalid_input")
    assert error["field"] == "body.metrics[0].value"
    typo = {"metrics": [{"key": "x", "value": 1, "stpe": 2}]}
    error = assert_error(api.post(f"/runs/{run_id}/metrics", json=typo), 422, "invalid_input")
    assert error["field"] == "body.metrics[0].stpe"
    assert_error(api.post(f"/runs/{run_id}/log-batch", json={"metric": []}), 422, "invalid_input")
    assert_error(api.post(f"/runs/{run_id}/params", json={"params": {}}), 422, "invalid_input")
    assert api.get(f"/runs/{run_id}").json()["metrics"] == {}


def test_search_filters_orders_and_pages(api: httpx.Client, experiment: dict[str, Any]) -> None:
    ids = []
    for index in range(5):
        run_id = start(api, experiment["id"], name=f"r{index}")["id"]
        batch = {
            "metrics": [{"key": "f1", "value": index / 10}],
            "params": {"model": "rf" if index % 2 else "lr"},
        }
        api.post(f"/runs/{run_id}/log-batch", json=batch)
        ids.append(run_id)
    query = {
        "experiment_ids": [experiment["id"]],
        "filter": "metrics.f1 >= 0.1 and params.model = 'rf'",
        "order_by": ["metrics.f1 DESC"],
    }
    found = api.post("/runs/search", json=query).json()
    assert [run["id"] for run in found["runs"]] == [ids[3], ids[1]]
    assert found["next_page_token"] is None

    ordered = {"experiment_ids": [experiment["id"]], "order_by": ["metrics.f1 ASC"], "limit": 2}
    seen: list[str] = []
    while True:
        body = api.post("/runs/search", json=ordered).json()
        seen += [run["id"] for run in body["runs"]]
        if body["next_page_token"] is None:
            break
        ordered["page_token"] = body["next_page_token"]
    assert seen == ids

    error = assert_error(
        api.post("/runs/search", json={"filter": "metrics.f1 >"}), 422, "invalid_filter"
    )
    assert "position" in error["message"]
    stale = {
        "experiment_ids": [experiment["id"]],
        "filter": "metrics.f1 > 0",
        "page_token": ordered["page_token"],
    }
    assert_error(api.post("/runs/search", json=stale), 422, "invalid_input")
