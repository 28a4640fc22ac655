"""/api/v1/pipelines over a real server: list, execute (queued; a worker step here runs
it), status, executions, cancel, pause and resume, and the roles that gate them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.conftest import LiveServer, assert_error, unique
from mlops.api import api_routes

HELLO = "orchestration.flows:hello"  # extract -> total, param rows=3
FLAKY = "orchestration.flows:flaky"  # one step that fails


def register(ml: Any, source: str = HELLO, **options: Any) -> str:
    """A pipeline registered on the server's connection, run in threads by ``work()``."""
    name = unique("pipe")
    ml.pipelines.register(name, source, executor="threads", **options)
    return name


def run_until_finished(ml: Any, execution_id: int) -> None:
    """Run queued executions here (a worker step) until this one has ended."""
    for _ in range(20):
        if ml.pipelines.execution(execution_id).state.finished:
            return
        ml.pipelines.work()
    pytest.fail(f"execution {execution_id} did not finish")


def execute(api: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    response = api.post(f"/pipelines/{name}/execute", json=body)
    assert response.status_code == 202, response.text
    execution: dict[str, Any] = response.json()
    return execution


def test_list_and_get_pipelines(api: httpx.Client, ml: Any) -> None:
    first, second = register(ml), register(ml, schedule="0 3 * * *")
    names = [p["name"] for p in api.get("/pipelines", params={"limit": 1000}).json()["pipelines"]]
    assert {first, second} <= set(names)
    assert names == sorted(names)

    body = api.get(f"/pipelines/{second}").json()
    assert (body["source"], body["schedule"], body["params"]) == (HELLO, "0 3 * * *", {})
    assert (body["paused"], body["executor"], body["max_active"]) == (False, "threads", 1)
    assert body["next_fire_at"] is not None

    pages, token = [], None
    while True:
        listed = api.get("/pipelines", params={"limit": 1, "page_token": token}).json()
        pages += [p["name"] for p in listed["pipelines"]]
        token = listed["next_page_token"]
        if token is None:
            break
    assert pages == names
    assert_error(api.get(f"/pipelines/{unique('missing')}"), 404, "not_found")
    assert_error(api.get("/pipelines/nul%00name"), 404, "not_found")


def test_execute_queues_then_a_worker_runs_it(api: httpx.Client, ml: Any) -> None:
    name = register(ml)
    queued = execute(api, name, params={"rows": 4}, reason="from the API")
    assert (queued["pipeline"], queued["state"], queued["trigger"]) == (name, "queued", "manual")
    assert queued["params"] == {"rows": 4}
    assert queued["trigger_detail"]["reason"] == "from the API"
    assert (queued["attempts"], queued["steps"], queued["started_at"]) == ([], [], None)

    status = api.get(f"/pipelines/{name}/status").json()
    assert (status["name"], status["paused"], status["schedule"]) == (name, False, None)
    assert status["latest_execution"]["id"] == queued["id"]
    assert status["latest_execution"]["state"] == "queued"

    run_until_finished(ml, queued["id"])
    done = api.get(f"/pipelines/executions/{queued['id']}").json()
    assert (done["state"], done["error"]) == ("succeeded", None)
    assert [(s["step"], s["state"]) for s in done["steps"]] == [
        ("extract", "succeeded"),
        ("total", "succeeded"),
    ]
    assert len(done["attempts"]) == 1
    assert done["attempts"][0]["run_id"] == done["run_ids"][0]
    assert ml.tracking.get_run(done["run_ids"][0]).params == {"rows": "4"}

    latest = api.get(f"/pipelines/{name}/status").json()["latest_execution"]
    assert (latest["id"], latest["state"], latest["attempts"]) == (queued["id"], "succeeded", 1)
    assert latest["started_at"] is not None
    assert latest["finished_at"] is not None
    assert [s["step"] for s in latest["steps"]] == ["extract", "total"]


def test_a_failed_execution_shows_the_failing_step(api: httpx.Client, ml: Any) -> None:
    name = register(ml, FLAKY)
    queued = execute(api, name)
    run_until_finished(ml, queued["id"])
    latest = api.get(f"/pipelines/{name}/status").json()["latest_execution"]
    assert latest["state"] == "failed"
    assert latest["error"].startswith("ValueError")
    [step] = latest["steps"]
    assert (step["step"], step["state"]) == ("explode", "failed")
    assert step["error"].startswith("ValueError")


def test_bad_params_and_bodies_are_refused(api: httpx.Client, ml: Any) -> None:
    name = register(ml)
    error = assert_error(
        api.post(f"/pipelines/{name}/execute", json={"params": {"trials": 5}}), 422, "invalid_input"
    )
    assert "trials" in error["message"]
    assert_error(api.post(f"/pipelines/{name}/execute", json={"params": [1]}), 422, "invalid_input")
    assert_error(api.post(f"/pipelines/{name}/execute", json={"rows": 4}), 422, "invalid_input")
    assert_error(api.post(f"/pipelines/{unique('missing')}/execute", json={}), 404, "not_found")
    assert ml.pipelines.executions(name) == []
    # No body at all is an execution with the registered params.
    response = api.post(f"/pipelines/{name}/execute")
    assert response.status_code == 202, response.text
    assert response.json()["params"] == {}
    ml.pipelines.cancel(response.json()["id"])


def test_cancel(api: httpx.Client, ml: Any) -> None:
    name = register(ml)
    queued = execute(api, name)
    cancelled = api.post(
        f"/pipelines/executions/{queued['id']}/cancel", json={"reason": "not today"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["state"], cancelled.json()["error"]) == (
        "cancelled",
        "Cancelled: not today",
    )
    again = api.post(f"/pipelines/executions/{queued['id']}/cancel")
    assert "nothing to cancel" in assert_error(again, 409, "conflict")["message"]
    assert_error(api.post("/pipelines/executions/987654321/cancel"), 404, "not_found")
    assert_error(api.get("/pipelines/executions/987654321"), 404, "not_found")
    assert_error(api.get("/pipelines/executions/0"), 422, "invalid_input")
    assert_error(api.get(f"/pipelines/executions/{2**70}"), 422, "invalid_input")


def test_pause_and_resume(api: httpx.Client, ml: Any) -> None:
    name = register(ml, schedule="0 3 * * *")
    paused = api.post(f"/pipelines/{name}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    status = api.get(f"/pipelines/{name}/status").json()
    assert (status["paused"], status["next_due_at"], status["latest_execution"]) == (
        True,
        None,
        None,
    )
    assert [p["name"] for p in api.get("/pipelines", params={"paused": True}).json()["pipelines"]]
    # Executing by hand still works while paused.
    ml.pipelines.cancel(execute(api, name)["id"])

    assert api.post(f"/pipelines/{name}/resume").json()["paused"] is False
    status = api.get(f"/pipelines/{name}/status").json()
    assert status["paused"] is False
    assert status["next_due_at"] is not None
    assert status["next_due_at"] == ml.pipelines.get(name).next_fire_at
    assert_error(api.post(f"/pipelines/{unique('missing')}/pause"), 404, "not_found")
    assert_error(api.post(f"/pipelines/{unique('missing')}/resume"), 404, "not_found")


def test_executions_newest_first_in_pages_with_a_state_filter(api: httpx.Client, ml: Any) -> None:
    name = register(ml)  # max_active=1: the first is queued, the rest wait as scheduled
    ids = [execute(api, name, params={"rows": rows})["id"] for rows in (1, 2, 3)]
    try:
        listed = api.get(f"/pipelines/{name}/executions").json()
        assert [e["id"] for e in listed["executions"]] == ids[::-1]
        assert listed["next_page_token"] is None

        first = api.get(f"/pipelines/{name}/executions", params={"limit": 2}).json()
        url = f"/pipelines/{name}/executions"
        rest = api.get(url, params={"limit": 2, "page_token": first["next_page_token"]}).json()
        assert [e["id"] for e in first["executions"] + rest["executions"]] == ids[::-1]
        assert rest["next_page_token"] is None

        waiting = api.get(url, params={"state": "scheduled"}).json()["executions"]
        assert [e["id"] for e in waiting] == ids[:0:-1]
        assert_error(api.get(url, params={"state": "sleeping"}), 422, "invalid_input")
        foreign = api.get(url, params={"state": "queued", "page_token": first["next_page_token"]})
        assert "different query" in assert_error(foreign, 422, "invalid_input")["message"]
        assert_error(api.get(url, params={"page_token": "nope"}), 422, "invalid_input")
    finally:
        for execution_id in ids:
            ml.pipelines.cancel(execution_id)
    assert_error(api.get(f"/pipelines/{unique('missing')}/executions"), 404, "not_found")
    assert_error(api.get(f"/pipelines/{unique('missing')}/status"), 404, "not_found")


def test_executions_stay_listed_after_unregistering(api: httpx.Client, ml: Any) -> None:
    name = register(ml)
    queued = execute(api, name)
    ml.pipelines.unregister(name)
    assert_error(api.get(f"/pipelines/{name}"), 404, "not_found")
    [listed] = api.get(f"/pipelines/{name}/executions").json()["executions"]
    assert (listed["id"], listed["state"]) == (queued["id"], "cancelled")


# -- roles ----------------------------------------------------------------------------------


def bearer(ml: Any, role: str) -> dict[str, str]:
    user = unique(role)
    ml.access.create_user(user, role)
    token, _ = ml.access.create_token(user, name="pipeline-api-tests")
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def strict(ml: Any) -> Iterator[httpx.Client]:
    """A client of an API that requires a token on every request."""
    live = LiveServer(Starlette(routes=api_routes(ml, auth="required")), ready_status=401).start()
    with httpx.Client(base_url=live.url + "/api/v1", timeout=30.0) as client:
        yield client
    live.stop()


def test_roles_gate_running_and_pausing(strict: httpx.Client, ml: Any) -> None:
    viewer, editor, deployer = (bearer(ml, role) for role in ("viewer", "editor", "deployer"))
    name = register(ml)
    assert_error(strict.get(f"/pipelines/{name}"), 401, "unauthenticated")
    assert strict.get(f"/pipelines/{name}/status", headers=viewer).status_code == 200
    assert strict.get(f"/pipelines/{name}/executions", headers=viewer).status_code == 200

    refused = strict.post(f"/pipelines/{name}/execute", headers=viewer)
    assert "'pipelines.run'" in assert_error(refused, 403, "permission_denied")["message"]
    queued = strict.post(f"/pipelines/{name}/execute", headers=editor)
    assert queued.status_code == 202, queued.text
    cancel = f"/pipelines/executions/{queued.json()['id']}/cancel"
    refused = strict.post(cancel, headers=viewer)
    assert "'pipelines.run'" in assert_error(refused, 403, "permission_denied")["message"]
    assert strict.post(cancel, headers=editor).json()["state"] == "cancelled"

    for action in ("pause", "resume"):
        for role in (viewer, editor):
            refused = strict.post(f"/pipelines/{name}/{action}", headers=role)
            assert "'pipelines.write'" in assert_error(refused, 403, "permission_denied")["message"]
        assert strict.post(f"/pipelines/{name}/{action}", headers=deployer).status_code == 200
    assert ml.pipelines.get(name).paused is False


def test_changes_are_recorded_under_the_caller(
    strict: httpx.Client, api: httpx.Client, ml: Any
) -> None:
    editor, deployer = bearer(ml, "editor"), bearer(ml, "deployer")
    editor_name, deployer_name = (
        ml.access.authenticate(headers["authorization"].removeprefix("Bearer ")).name
        for headers in (editor, deployer)
    )
    name = register(ml)
    queued = strict.post(f"/pipelines/{name}/execute", headers=editor, json={"reason": "why"})
    assert queued.status_code == 202, queued.text
    execution = queued.json()
    assert execution["created_by"] == editor_name
    assert execution["trigger_detail"]["actor"] == editor_name
    cancel = f"/pipelines/executions/{execution['id']}/cancel"
    assert strict.post(cancel, headers=editor).status_code == 200
    for action in ("pause", "resume"):
        assert strict.post(f"/pipelines/{name}/{action}", headers=deployer).status_code == 200
    target = f"pipelines/{name}/executions/{execution['id']}"
    audited = [
        (entry.action, entry.target, entry.actor)
        for entry in reversed(ml.audit.list(action="pipeline.*", limit=1000))
        if entry.target.startswith(f"pipelines/{name}")
    ]
    assert audited == [
        ("pipeline.triggered", target, editor_name),
        ("pipeline.execution_cancelled", target, editor_name),
        ("pipeline.paused", f"pipelines/{name}", deployer_name),
        ("pipeline.resumed", f"pipelines/{name}", deployer_name),
    ]

    # Without a token, the X-MLOps-Actor header names who asked.
    asked = api.post(f"/pipelines/{name}/execute", headers={"X-MLOps-Actor": "ci-bot"})
    assert asked.json()["created_by"] == "ci-bot"
    [entry] = ml.audit.list(action="pipeline.triggered", actor="ci-bot", limit=1000)
    assert entry.target == f"pipelines/{name}/executions/{asked.json()['id']}"


#: SQLite only (see tests/conftest.py): HTTP onto the facade; both stores are covered by the
#: orchestration suites and the API fuzz.
SQLITE_ONLY = True
