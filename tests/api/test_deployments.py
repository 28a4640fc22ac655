"""/api/v1 deployments over a real server: deploy with each strategy, watch, steer, roles."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.applications import Starlette

from api.conftest import LiveServer, assert_error, unique
from mlops.api import api_routes
from mlops.api._ops_schemas import STRATEGY_BODIES, STRATEGY_CLASSES, AnalysisIn
from mlops.deployment import Analysis

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")


def register(ml: Any, versions: int = 2) -> str:
    """A model with ``versions`` small sklearn classifiers of the same signature."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"tenure": rng.normal(30, 10, 60), "charges": rng.normal(70, 15, 60)})
    labels = (frame["tenure"] < 30).astype(int)
    name = unique("churn")
    for _ in range(versions):
        model = LogisticRegression().fit(frame, labels)
        ml.registry.register_model(name, model, input_example=frame.head(3))
    return name


def deploy(api: httpx.Client, name: str, endpoint: str, version: Any, **body: Any) -> Any:
    return api.post(
        f"/models/{name}/deploy", json={"endpoint": endpoint, "version": version, **body}
    )


@pytest.fixture(scope="module")
def model(ml: Any) -> str:
    """A model with versions 1 and 2, shared by the module's tests (each has endpoints)."""
    return register(ml)


@pytest.fixture
def serving(api: httpx.Client, model: str) -> tuple[str, str, int]:
    """A new endpoint serving version 1 of ``model``."""
    name, endpoint = model, unique("ep")
    first = deploy(api, name, endpoint, 1)
    assert first.status_code == 201, first.text
    return name, endpoint, int(first.json()["id"])


def test_strategy_bodies_take_the_strategies_parameters() -> None:
    for kind, body in STRATEGY_BODIES.items():
        accepted = set(body.model_fields) - {"type"}
        assert accepted == {item.name for item in fields(STRATEGY_CLASSES[kind])}, kind
    assert set(AnalysisIn.model_fields) == {item.name for item in fields(Analysis)}


def test_first_deploy_is_direct_then_a_canary_is_watched_paused_and_promoted(
    api: httpx.Client, ml: Any, serving: tuple[str, str, int]
) -> None:
    name, endpoint, first_id = serving
    first = api.get(f"/deployments/{first_id}").json()
    assert (first["state"], first["strategy"], first["candidate_version"]) == (
        "succeeded",
        "direct",
        1,
    )
    assert (first["progress"], first["candidate_share"], first["active"]) == (1.0, 1.0, False)

    canary = {"type": "canary", "steps_percent": [10, 50, 100], "interval_seconds": "1h"}
    created = deploy(api, name, endpoint, "latest", strategy=canary)
    assert created.status_code == 201, created.text
    rollout = created.json()
    assert (rollout["state"], rollout["step"], rollout["steps"]) == ("progressing", 0, 3)
    assert (rollout["stable_version"], rollout["candidate_version"]) == (1, 2)
    assert rollout["params"]["steps_percent"] == [10, 50, 100]
    assert rollout["candidate_share"] == pytest.approx(0.1)
    assert {r["version"]: r["weight"] for r in rollout["traffic"]["routes"]} == pytest.approx(
        {1: 0.9, 2: 0.1}
    )
    rollout_id = rollout["id"]
    busy = deploy(api, name, endpoint, 1, strategy={"type": "canary"})
    assert "already rolling out" in assert_error(busy, 409, "conflict")["message"]

    status = api.get(f"/deployments/{rollout_id}/status").json()
    assert status["last_event"]["kind"] == "created"
    assert "10%" in status["summary"]
    assert not status["paused"]

    paused = api.post(f"/deployments/{rollout_id}/pause", headers={"X-MLOps-Actor": "ana"})
    assert (paused.json()["state"], paused.json()["paused"]) == ("paused", True)
    assert api.post(f"/deployments/{rollout_id}/pause").json()["state"] == "paused"
    assert api.get(f"/deployments/{rollout_id}/status").json()["last_event"]["actor"] == "ana"
    assert api.post(f"/deployments/{rollout_id}/resume").json()["state"] == "progressing"

    listed = api.get("/deployments", params={"endpoint": endpoint}).json()
    assert [d["id"] for d in listed["deployments"]] == [rollout_id, first_id]
    active = api.get("/deployments", params={"endpoint": endpoint, "active": True}).json()
    assert [d["id"] for d in active["deployments"]] == [rollout_id]
    one = api.get("/deployments", params={"endpoint": endpoint, "limit": 1}).json()
    rest = api.get(
        "/deployments",
        params={"endpoint": endpoint, "limit": 1, "page_token": one["next_page_token"]},
    ).json()
    assert [d["id"] for d in one["deployments"] + rest["deployments"]] == [rollout_id, first_id]
    assert rest["next_page_token"] is None

    promoted = api.post(f"/deployments/{rollout_id}/promote", headers={"X-MLOps-Actor": "bo"})
    assert promoted.status_code == 200, promoted.text
    assert (promoted.json()["state"], promoted.json()["candidate_share"]) == ("succeeded", 1.0)
    assert ml.registry.get_version(name, 2).stage.value == "production"
    assert_error(api.post(f"/deployments/{rollout_id}/promote"), 409, "conflict")

    events = api.get(f"/deployments/{rollout_id}/history").json()["events"]
    kinds = [event["kind"] for event in events]
    assert kinds[:4] == ["created", "paused", "resumed", "succeeded"]
    assert events[3]["actor"] == "bo"
    page = api.get(f"/deployments/{rollout_id}/history", params={"limit": 2}).json()
    assert [e["kind"] for e in page["events"]] == ["created", "paused"]
    assert page["next_page_token"]


def test_rollback_undoes_only_the_latest_rollout(
    api: httpx.Client, serving: tuple[str, str, int]
) -> None:
    name, endpoint, first_id = serving
    second = deploy(api, name, endpoint, 2, strategy={"type": "blue_green"}).json()
    assert second["strategy"] == "blue_green"
    assert second["traffic"]["preview_version"] == 2
    assert api.post(f"/deployments/{second['id']}/promote").json()["state"] == "succeeded"

    older = api.post(f"/deployments/{first_id}/rollback")
    assert f"roll back deployment {second['id']}" in assert_error(older, 409, "conflict")["message"]
    back = api.post(f"/deployments/{second['id']}/rollback", json={"reason": "bad numbers"})
    assert back.status_code == 200, back.text
    body = back.json()
    assert (body["state"], body["reason"]) == ("rolled_back", "bad numbers")
    assert [r["version"] for r in body["traffic"]["routes"]] == [1]
    assert_error(api.post(f"/deployments/{second['id']}/rollback"), 409, "conflict")


@pytest.mark.parametrize(
    ("strategy", "check"),
    [
        ({"type": "shadow", "share": 0.5}, lambda t: (t["shadow_version"], t["shadow_share"])),
        (
            {"type": "ab_test", "treatment_share": 0.3, "sticky_header": "x-user"},
            lambda t: sorted((r["arm"], r["weight"]) for r in t["routes"]),
        ),
        (
            {"type": "rolling", "batch_size": 2, "interval_seconds": 5, "workers": 3},
            lambda t: (t["routes"][0]["version"], t["rolling"]),
        ),
    ],
)
def test_each_strategy_starts_and_aborts_with_a_reason(
    api: httpx.Client, serving: tuple[str, str, int], strategy: dict[str, Any], check: Any
) -> None:
    name, endpoint, _ = serving
    created = deploy(api, name, endpoint, 2, strategy=strategy)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["strategy"] == strategy["type"]
    expected = {
        "shadow": (2, 0.5),
        "ab_test": [("control", pytest.approx(0.7)), ("treatment", pytest.approx(0.3))],
        "rolling": (1, {"old": 1, "new": 2, "workers_on_new": 2}),
    }[strategy["type"]]
    assert check(body["traffic"]) == expected
    aborted = api.post(f"/deployments/{body['id']}/abort", json={"reason": "enough"})
    assert (aborted.json()["state"], aborted.json()["reason"]) == ("aborted", "enough")
    assert [r["version"] for r in aborted.json()["traffic"]["routes"]] == [1]
    assert api.post(f"/deployments/{body['id']}/abort").status_code == 409


def test_bad_input_is_refused_with_the_field(
    api: httpx.Client, ml: Any, serving: tuple[str, str, int]
) -> None:
    name, endpoint, first_id = serving
    cases: list[tuple[dict[str, Any], str]] = [
        ({"strategy": {"type": "shadow", "share": 2}}, "body.strategy.shadow.share"),
        ({"strategy": {"type": "canary", "steps_percent": [50, 20]}}, "steps_percent"),
        ({"strategy": {"type": "canary", "gate": {"max_error_rate": 3}}}, "max_error_rate"),
        ({"strategy": {"type": "canary", "interval_seconds": "soon"}}, "interval_seconds"),
        ({"strategy": {"type": "canary", "steps": [5]}}, "body.strategy.canary.steps"),
        ({"strategy": {"type": "ab_test", "alpha": 1}}, "body.strategy.ab_test.alpha"),
        ({"strategy": {"type": "rolling", "batch_size": 0}}, "batch_size"),
        ({"strategy": {"type": "gradual"}}, "body.strategy"),
        ({"strategy": "canary"}, "body.strategy"),
        ({"replicas": 3}, "body.replicas"),
    ]
    for extra, field in cases:
        error = assert_error(deploy(api, name, endpoint, 2, **extra), 422, "invalid_input")
        assert field in error["field"], (extra, error)
    assert_error(deploy(api, name, endpoint, [2]), 422, "invalid_input")
    assert_error(deploy(api, name, endpoint, 2**40), 422, "invalid_input")
    assert_error(deploy(api, name, endpoint, str(2**40)), 404, "not_found")
    assert_error(deploy(api, name, endpoint, 7), 404, "not_found")
    assert_error(deploy(api, unique("missing"), endpoint, 1), 404, "not_found")
    assert_error(deploy(api, name, endpoint, 1), 409, "conflict")  # already serves 1
    fresh = deploy(api, name, unique("ep"), 1, strategy={"type": "canary"})
    assert (
        "deploy the first version directly" in assert_error(fresh, 422, "invalid_input")["message"]
    )
    assert_error(deploy(api, name, "has space", 1), 422, "invalid_input")
    broken = api.post(
        f"/models/{name}/deploy", content=b"{", headers={"content-type": "application/json"}
    )
    assert_error(broken, 400, "invalid_json")

    for path in ("", "/status", "/history"):
        assert_error(api.get(f"/deployments/987654{path}"), 404, "not_found")
    assert_error(api.get(f"/deployments/{2**40}"), 404, "not_found")
    assert_error(api.get("/deployments/first"), 422, "invalid_input")
    assert_error(api.post("/deployments/987654/abort"), 404, "not_found")
    unknown = api.post(f"/deployments/{first_id}/abort", json={"why": "x"})
    assert assert_error(unknown, 422, "invalid_input")["field"] == "body.why"
    assert_error(api.get("/deployments", params={"endpoint": unique("nope")}), 404, "not_found")
    assert_error(api.get("/deployments", params={"page_token": "garbage"}), 422, "invalid_input")
    assert_error(api.get("/deployments", params={"active": "maybe"}), 422, "invalid_input")


# -- roles ------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def token_for(ml: Any, role: str, models: list[str] | None = None) -> str:
    user = unique(role)
    ml.access.create_user(user, role, models=models)
    token, _ = ml.access.create_token(user, name="deployment-tests")
    return str(token)


@pytest.fixture(scope="module")
def strict(ml: Any) -> Iterator[httpx.Client]:
    """A client of an API that requires a token on every request."""
    live = LiveServer(Starlette(routes=api_routes(ml, auth="required")), ready_status=401).start()
    with httpx.Client(base_url=live.url + "/api/v1", timeout=30.0) as client:
        yield client
    live.stop()


def test_roles_gate_every_change(strict: httpx.Client, ml: Any, model: str) -> None:
    viewer, editor, deployer = (token_for(ml, r) for r in ("viewer", "editor", "deployer"))
    name, endpoint = model, unique("ep")
    body = {"endpoint": endpoint, "version": 1}
    for token in (viewer, editor):
        refused = strict.post(f"/models/{name}/deploy", json=body, headers=bearer(token))
        assert "'deployments.write'" in assert_error(refused, 403, "permission_denied")["message"]
    created = strict.post(f"/models/{name}/deploy", json=body, headers=bearer(deployer))
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == ml.access.authenticate(deployer).name
    canary = {"endpoint": endpoint, "version": 2, "strategy": {"type": "canary"}}
    rollout = strict.post(f"/models/{name}/deploy", json=canary, headers=bearer(deployer)).json()

    for action in ("pause", "resume", "abort", "promote", "rollback"):
        url = f"/deployments/{rollout['id']}/{action}"
        for token in (viewer, editor):
            error = assert_error(strict.post(url, headers=bearer(token)), 403, "permission_denied")
            assert "'deployments.write'" in error["message"]
    for path in ("", "/status", "/history"):
        assert strict.get(f"/deployments/{rollout['id']}{path}", headers=bearer(viewer)).is_success
    assert strict.get("/deployments", headers=bearer(viewer)).status_code == 200
    for action in ("pause", "resume", "promote", "rollback"):
        moved = strict.post(f"/deployments/{rollout['id']}/{action}", headers=bearer(deployer))
        assert moved.status_code == 200, (action, moved.text)
    assert_error(strict.get("/deployments"), 401, "unauthenticated")


def test_model_scopes_apply_to_deployments(strict: httpx.Client, ml: Any, model: str) -> None:
    name, endpoint = model, unique("ep")
    scoped = token_for(ml, "deployer", models=["elsewhere-*"])
    refused = strict.post(
        f"/models/{name}/deploy",
        json={"endpoint": endpoint, "version": 1},
        headers=bearer(scoped),
    )
    assert "may act only on models" in assert_error(refused, 403, "permission_denied")["message"]
    deployed = ml.deployments.deploy(endpoint, name, 2)
    for action in ("pause", "abort"):
        url = f"/deployments/{deployed.id}/{action}"
        assert_error(strict.post(url, headers=bearer(scoped)), 403, "permission_denied")
    assert_error(
        strict.get(f"/deployments/{deployed.id}", headers=bearer(scoped)), 403, "permission_denied"
    )
    listed = strict.get("/deployments", headers=bearer(scoped)).json()
    assert deployed.id not in [d["id"] for d in listed["deployments"]]


#: SQLite only (see tests/conftest.py): HTTP onto the facade; both stores are covered by the
#: deployment suites and the API fuzz.
SQLITE_ONLY = True
