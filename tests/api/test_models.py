"""/api/v1/models over a real server: models, versions, stages, aliases, history, lineage."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.conftest import assert_error, unique
from api.pymodels import Doubler
from mlops.registry import PromotionPolicy


@pytest.fixture
def model(ml: Any) -> str:
    """A model with versions 1 (from a run) and 2 (child of 1); none in a stage."""
    name = unique("churn")
    with ml.tracking.start_run(ml.tracking.set_experiment(unique("exp")).id) as run:
        ml.registry.register_model(name, Doubler(), flavor="python", run=run)
    ml.registry.register_model(name, Doubler(), flavor="python", parent_version=1)
    return name


def stage(api: httpx.Client, name: str, version: str, to: str) -> httpx.Response:
    return api.post(f"/models/{name}/versions/{version}/stage", json={"stage": to})


def test_create_get_update_and_duplicate(api: httpx.Client) -> None:
    name = unique("fraud")
    created = api.post("/models", json={"name": name, "description": "d", "tags": {"k": "v"}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["tags"], body["latest_version"]) == (name, {"k": "v"}, None)
    assert api.get(f"/models/{name}").json() == body
    updated = api.patch(f"/models/{name}", json={"owner": "ana"}).json()
    assert (updated["owner"], updated["description"]) == ("ana", "d")
    assert_error(api.post("/models", json={"name": name}), 409, "already_exists")
    assert_error(api.post("/models", json={"name": "has space"}), 422, "invalid_input")
    assert_error(api.get(f"/models/{unique('missing')}"), 404, "not_found")
    assert api.get(f"/models/{unique('missing')}/versions").status_code == 404


def test_versions_by_every_selector(api: httpx.Client, model: str) -> None:
    versions = api.get(f"/models/{model}/versions").json()
    assert [(v["number"], v["semver"]) for v in versions["versions"]] == [
        (1, "1.0.0"),
        (2, "1.1.0"),
    ]
    assert versions["next_page_token"] is None
    first = api.get(f"/models/{model}/versions", params={"limit": 1}).json()
    rest = api.get(
        f"/models/{model}/versions", params={"limit": 1, "page_token": first["next_page_token"]}
    ).json()
    assert [v["number"] for v in first["versions"] + rest["versions"]] == [1, 2]
    assert api.get(f"/models/{model}/versions/1").json()["semver"] == "1.0.0"
    assert api.get(f"/models/{model}/versions/1.1.0").json()["number"] == 2
    assert api.get(f"/models/{model}/versions/latest").json()["number"] == 2
    assert_error(api.get(f"/models/{model}/versions/9"), 404, "not_found")
    assert_error(api.get(f"/models/{model}/versions/{2**40}"), 404, "not_found")
    assert_error(api.get(f"/models/{model}/versions/v-nine"), 422, "invalid_input")


def test_stage_transitions_aliases_history_and_rollback(api: httpx.Client, model: str) -> None:
    moved = stage(api, model, "1", "production")
    assert moved.status_code == 200, moved.text
    assert moved.json()["stage"] == "production"
    assert stage(api, model, "2", "production").json()["stage"] == "production"
    assert api.get(f"/models/{model}/versions/1").json()["stage"] == "archived"
    assert api.get(f"/models/{model}/versions/production").json()["number"] == 2
    error = assert_error(stage(api, model, "2", "prod"), 422, "invalid_input")
    assert error["field"] == "body.stage"

    aliased = api.put(f"/models/{model}/aliases/champion", json={"version": 1})
    assert aliased.status_code == 200
    assert aliased.json()["aliases"] == ["champion"]
    assert api.get(f"/models/{model}/versions/@champion").json()["number"] == 1
    assert api.get(f"/models/{model}").json()["aliases"] == {"champion": 1}
    assert_error(
        api.put(f"/models/{model}/aliases/staging", json={"version": 1}), 422, "invalid_input"
    )
    assert api.delete(f"/models/{model}/aliases/champion").status_code == 204
    assert_error(api.get(f"/models/{model}/versions/@champion"), 404, "not_found")

    rolled = api.post(f"/models/{model}/rollback", json={"reason": "bad canary"})
    assert rolled.status_code == 200
    assert (rolled.json()["number"], rolled.json()["stage"]) == (1, "production")

    history = api.get(f"/models/{model}/history", params={"limit": 2}).json()
    transitions = history["transitions"]
    while history["next_page_token"]:
        history = api.get(
            f"/models/{model}/history",
            params={"limit": 2, "page_token": history["next_page_token"]},
        ).json()
        transitions += history["transitions"]
    kinds = [(t["kind"], t["version"], t["to_value"]) for t in transitions]
    promotions = [(version, to) for kind, version, to in kinds if kind == "stage"]
    assert promotions == [
        (1, "production"),
        (1, "archived"),
        (2, "production"),
        (2, "archived"),
        (1, "production"),
    ]
    assert ("alias", 1, "1.0.0") in kinds
    assert transitions[-1]["reason"] == "bad canary"


def test_rollback_without_a_previous_version_is_409(api: httpx.Client, model: str) -> None:
    assert_error(api.post(f"/models/{model}/rollback", json={}), 409, "conflict")
    stage(api, model, "1", "production")
    assert_error(api.post(f"/models/{model}/rollback", json={}), 409, "conflict")
    assert api.get(f"/models/{model}/versions/production").json()["number"] == 1


def test_policy_needing_approval_answers_202(api: httpx.Client, ml: Any, model: str) -> None:
    ml.registry.set_policy(model, PromotionPolicy(require_approval=True))
    pending = stage(api, model, "2", "production")
    assert pending.status_code == 202, pending.text
    body = pending.json()
    assert (body["status"], body["version"], body["to_stage"]) == ("pending", 2, "production")
    assert api.get(f"/models/{model}/versions/2").json()["stage"] == "none"


def test_lineage_names_the_run_and_parents(api: httpx.Client, model: str) -> None:
    first = api.get(f"/models/{model}/versions/1/lineage").json()
    assert first["run"]["status"] == "FINISHED"
    assert first["parents"] == []
    second = api.get(f"/models/{model}/versions/2/lineage").json()
    assert second["parents"] == [{"version": 1, "semver": "1.0.0"}]


def test_status_active_lists_models_with_a_production_version(
    api: httpx.Client, model: str, ml: Any
) -> None:
    idle = unique("idle")
    ml.registry.register_model(idle, Doubler(), flavor="python")
    stage(api, model, "1", "production")
    names = [
        m["name"]
        for m in api.get("/models", params={"status": "active", "limit": 1000}).json()["models"]
    ]
    assert model in names
    assert idle not in names
    everything = [m["name"] for m in api.get("/models", params={"limit": 1000}).json()["models"]]
    assert {model, idle} <= set(everything)
    assert everything == sorted(everything)
    staged = api.get("/models", params={"stage": "production", "limit": 1000}).json()["models"]
    assert [m["name"] for m in staged] == names
    assert_error(
        api.get("/models", params={"status": "active", "stage": "staging"}), 422, "invalid_input"
    )
    assert_error(api.get("/models", params={"status": "retired"}), 422, "invalid_input")
