"""Bearer tokens: optional by default, required with auth="required"; roles gate routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.conftest import LiveServer, assert_error, unique
from api.pymodels import Doubler
from mlops.api import api_routes


def token_for(ml: Any, role: str, models: list[str] | None = None) -> str:
    user = unique(role)
    ml.access.create_user(user, role, models=models)
    token, _ = ml.access.create_token(user, name="api-tests")
    return str(token)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def strict(ml: Any) -> Iterator[httpx.Client]:
    """A client of an API that requires a token on every request."""
    live = LiveServer(Starlette(routes=api_routes(ml, auth="required")), ready_status=401).start()
    with httpx.Client(base_url=live.url + "/api/v1") as client:
        yield client
    live.stop()


def test_required_auth_refuses_missing_and_bad_tokens(strict: httpx.Client, ml: Any) -> None:
    response = strict.get("/experiments")
    assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_error(strict.get("/experiments", headers=bearer("mlops_nope")), 401, "unauthenticated")
    basic = strict.get("/experiments", headers={"authorization": "Basic dXNlcjpwdw=="})
    assert "Bearer" in assert_error(basic, 401, "unauthenticated")["message"]
    assert strict.get("/experiments", headers=bearer(token_for(ml, "viewer"))).status_code == 200


def test_roles_gate_writes_and_stage_moves(strict: httpx.Client, ml: Any) -> None:
    viewer, editor, deployer = (token_for(ml, role) for role in ("viewer", "editor", "deployer"))
    name = unique("exp")
    refused = strict.post("/experiments", json={"name": name}, headers=bearer(viewer))
    assert "experiments.write" in assert_error(refused, 403, "permission_denied")["message"]
    assert_error(
        strict.get(f"/experiments/by-name/{name}", headers=bearer(viewer)), 404, "not_found"
    )
    assert strict.post("/runs/search", json={}, headers=bearer(viewer)).status_code == 200

    created = strict.post("/experiments", json={"name": name}, headers=bearer(editor))
    assert created.status_code == 201

    model = unique("m")
    ml.registry.register_model(model, Doubler(), flavor="python")
    url = f"/models/{model}/versions/1/stage"
    denied = strict.post(url, json={"stage": "production"}, headers=bearer(editor))
    assert_error(denied, 403, "permission_denied")
    assert ml.registry.get_version(model, 1).stage.value == "none"
    moved = strict.post(url, json={"stage": "production"}, headers=bearer(deployer))
    assert moved.status_code == 200
    history = strict.get(f"/models/{model}/history", headers=bearer(viewer)).json()
    deployer_name = ml.access.authenticate(deployer).name
    assert history["transitions"][-1]["actor"] == deployer_name


def test_model_scopes_apply_to_model_routes(strict: httpx.Client, ml: Any) -> None:
    mine, theirs = unique("team-a"), unique("team-b")
    for name in (mine, theirs):
        ml.registry.register_model(name, Doubler(), flavor="python")
    scoped = token_for(ml, "deployer", models=["team-a-*"])
    ok = strict.post(
        f"/models/{mine}/versions/1/stage", json={"stage": "staging"}, headers=bearer(scoped)
    )
    assert ok.status_code == 200
    refused = strict.post(
        f"/models/{theirs}/versions/1/stage", json={"stage": "staging"}, headers=bearer(scoped)
    )
    assert_error(refused, 403, "permission_denied")
    assert ml.registry.get_version(theirs, 1).stage.value == "none"


def test_optional_auth_checks_a_token_when_given(api: httpx.Client, ml: Any) -> None:
    assert api.get("/experiments").status_code == 200
    assert_error(api.get("/experiments", headers=bearer("mlops_nope")), 401, "unauthenticated")
    viewer = token_for(ml, "viewer")
    refused = api.post("/experiments", json={"name": unique("x")}, headers=bearer(viewer))
    assert_error(refused, 403, "permission_denied")
