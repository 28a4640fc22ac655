"""/api/v1/experiments over a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from api.conftest import assert_error, unique


def test_create_get_rename_delete_restore_round_trip(api: httpx.Client) -> None:
    name = unique("churn")
    created = api.post("/experiments", json={"name": name, "description": "d", "tags": {"a": "1"}})
    assert created.status_code == 201, created.text
    experiment = created.json()
    assert experiment["name"] == name
    assert experiment["lifecycle_stage"] == "active"
    assert experiment["tags"] == {"a": "1"}
    assert experiment["description"] == "d"
    experiment_id = experiment["id"]

    assert api.get(f"/experiments/{experiment_id}").json() == experiment
    assert api.get(f"/experiments/by-name/{name}").json() == experiment

    renamed = api.patch(f"/experiments/{experiment_id}", json={"name": name + "-v2"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == name + "-v2"

    assert api.delete(f"/experiments/{experiment_id}").status_code == 204
    assert api.get(f"/experiments/{experiment_id}").json()["lifecycle_stage"] == "deleted"
    listed = [
        e["id"] for e in api.get("/experiments", params={"limit": 1000}).json()["experiments"]
    ]
    assert experiment_id not in listed
    everything = api.get("/experiments", params={"include_deleted": True, "limit": 1000})
    assert experiment_id in [e["id"] for e in everything.json()["experiments"]]

    restored = api.post(f"/experiments/{experiment_id}/restore")
    assert restored.status_code == 200
    assert restored.json()["lifecycle_stage"] == "active"


def test_duplicate_name_is_409_and_changes_nothing(api: httpx.Client) -> None:
    name = unique("dup")
    first = api.post("/experiments", json={"name": name}).json()
    error = assert_error(api.post("/experiments", json={"name": name}), 409, "already_exists")
    assert name in error["message"]
    other = api.post("/experiments", json={"name": unique("other")}).json()
    refused = api.patch(f"/experiments/{other['id']}", json={"name": name})
    assert_error(refused, 409, "already_exists")
    assert api.get(f"/experiments/{other['id']}").json()["name"] == other["name"]
    assert api.get(f"/experiments/{first['id']}").json() == first


def test_missing_experiment_is_404(api: httpx.Client) -> None:
    error = assert_error(api.get("/experiments/987654"), 404, "not_found")
    assert "987654" in error["message"]
    assert_error(api.get(f"/experiments/by-name/{unique('nope')}"), 404, "not_found")
    assert_error(api.delete("/experiments/987654"), 404, "not_found")


def test_invalid_name_and_wrong_types_are_422_naming_the_field(api: httpx.Client) -> None:
    error = assert_error(api.post("/experiments", json={"name": 42}), 422, "invalid_input")
    assert error["field"] == "body.name"
    error = assert_error(api.post("/experiments", json={}), 422, "invalid_input")
    assert error["field"] == "body.name"
    assert "required" in error["message"].lower()
    # The facade's own checks: a name with leading spaces
    assert_error(api.post("/experiments", json={"name": " padded"}), 422, "invalid_input")
    error = assert_error(api.get("/experiments/not-a-number"), 422, "invalid_input")
    assert error["field"] == "path.experiment_id"
    # Ids are 32-bit in the database: a larger one is refused, not a PostgreSQL error.
    too_big = api.get(f"/experiments/{2**31}")
    assert assert_error(too_big, 422, "invalid_input")["field"] == "path.experiment_id"
    refused = api.post("/runs", json={"experiment_id": 2**40})
    assert assert_error(refused, 422, "invalid_input")["field"] == "body.experiment_id"


def test_list_pages_through_every_experiment_once(api: httpx.Client) -> None:
    mine = {api.post("/experiments", json={"name": unique("paged")}).json()["id"] for _ in range(5)}
    seen: list[int] = []
    token = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if token:
            params["page_token"] = token
        body = api.get("/experiments", params=params).json()
        assert len(body["experiments"]) <= 2
        seen += [e["id"] for e in body["experiments"]]
        pages += 1
        token = body["next_page_token"]
        if token is None:
            break
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert mine <= set(seen)
    assert pages >= 3
    everything = api.get("/experiments", params={"limit": 1000}).json()
    assert [e["id"] for e in everything["experiments"]] == seen
    assert everything["next_page_token"] is None


def test_page_token_from_another_query_or_garbage_is_refused(api: httpx.Client) -> None:
    for _ in range(2):
        api.post("/experiments", json={"name": unique("tok")})
    token = api.get("/experiments", params={"limit": 1}).json()["next_page_token"]
    assert token
    other_query = api.get(
        "/experiments", params={"limit": 1, "include_deleted": True, "page_token": token}
    )
    assert "different query" in assert_error(other_query, 422, "invalid_input")["message"]
    garbage = api.get("/experiments", params={"page_token": "!!not-a-token"})
    assert_error(garbage, 422, "invalid_input")
    assert_error(api.get("/experiments", params={"limit": 0}), 422, "invalid_input")
    assert_error(api.get("/experiments", params={"limit": 100_000}), 422, "invalid_input")
