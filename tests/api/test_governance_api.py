"""/api/v1 whoami, users, tokens and audit over real servers: an admin manages users and
tokens on a server that requires auth; other roles are refused; auth off acts as the
server; the audit log lists and verifies what happened."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.conftest import LiveServer, assert_error, unique
from mlops.api import api_routes
from mlops.errors import NotFound
from mlops.governance import PERMISSIONS

DAY_MS = 86_400_000


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def user_with_token(ml: Any, role: str) -> tuple[str, dict[str, str]]:
    """A user made on the server's connection (the bootstrap), and its token header."""
    user = unique(role)
    ml.access.create_user(user, role, actor="bootstrap")
    token, _ = ml.access.create_token(user, name="governance-tests", actor="bootstrap")
    return user, bearer(token)


def start(ml: Any, auth: str, ready_status: int) -> LiveServer:
    return LiveServer(Starlette(routes=api_routes(ml, auth=auth)), ready_status=ready_status)


@pytest.fixture(scope="module")
def strict(ml: Any) -> Iterator[httpx.Client]:
    """A client of an API that requires a token on every request."""
    live = start(ml, "required", 401).start()
    with httpx.Client(base_url=live.url + "/api/v1", timeout=30.0) as client:
        yield client
    live.stop()


@pytest.fixture(scope="module")
def anonymous_read(ml: Any) -> Iterator[httpx.Client]:
    """A client of an API that answers reads without a token."""
    live = start(ml, "anonymous-read", 200).start()
    with httpx.Client(base_url=live.url + "/api/v1", timeout=30.0) as client:
        yield client
    live.stop()


@pytest.fixture(scope="module")
def admin(ml: Any) -> tuple[str, dict[str, str]]:
    return user_with_token(ml, "admin")


def test_whoami_with_and_without_a_token(
    strict: httpx.Client,
    anonymous_read: httpx.Client,
    api: httpx.Client,
    ml: Any,
    admin: tuple[str, dict[str, str]],
) -> None:
    name, headers = admin
    me = strict.get("/whoami", headers=headers).json()
    assert (me["user"], me["authenticated"], me["role"], me["acts_as"]) == (
        name,
        True,
        "admin",
        "user",
    )
    assert (me["models"], me["actor"], me["auth"]) == (None, name, "required")
    assert me["permissions"] == sorted(PERMISSIONS)
    assert me["token_id"] == ml.access.authenticate(headers["authorization"][7:]).token_id

    ml.access.create_user(scoped := unique("scoped"), "editor", models=["churn-*"], actor="boot")
    token, _ = ml.access.create_token(scoped, name="t", actor="boot")
    editor = strict.get("/whoami", headers=bearer(token)).json()
    assert (editor["role"], editor["models"]) == ("editor", ["churn-*"])
    assert "runs.write" in editor["permissions"]
    assert "models.stage" not in editor["permissions"]
    assert_error(strict.get("/whoami"), 401, "unauthenticated")

    server = api.get("/whoami").json()
    assert (server["user"], server["authenticated"], server["acts_as"]) == (None, False, "server")
    assert (server["auth"], server["permissions"]) == ("off", sorted(PERMISSIONS))
    assert server["actor"] == ml.registry.actor
    named = api.get("/whoami", headers={"x-mlops-actor": "ops-bot"}).json()
    assert named["actor"] == "ops-bot"

    anonymous = anonymous_read.get("/whoami").json()
    assert (anonymous["acts_as"], anonymous["permissions"], anonymous["actor"]) == (
        "anonymous",
        ["read"],
        None,
    )


def test_admin_manages_users(strict: httpx.Client, admin: tuple[str, dict[str, str]]) -> None:
    admin_name, headers = admin
    name = unique("ana")
    created = strict.post("/users", json={"name": name, "role": "viewer"}, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["role"], body["models"], body["disabled"]) == (
        name,
        "viewer",
        None,
        False,
    )
    assert strict.get(f"/users/{name}", headers=headers).json() == body
    again = strict.post("/users", json={"name": name, "role": "viewer"}, headers=headers)
    assert_error(again, 409, "already_exists")
    bad_role = strict.post("/users", json={"name": unique("x"), "role": "boss"}, headers=headers)
    assert_error(bad_role, 422, "invalid_input")
    bad_name = strict.post("/users", json={"name": "has space", "role": "viewer"}, headers=headers)
    assert_error(bad_name, 422, "invalid_input")
    extra = strict.post(
        "/users", json={"name": unique("x"), "role": "viewer", "x": 1}, headers=headers
    )
    assert_error(extra, 422, "invalid_input")

    url = f"/users/{name}"
    changed = strict.patch(url, json={"role": "editor", "models": ["churn-*"]}, headers=headers)
    assert (changed.json()["role"], changed.json()["models"]) == ("editor", ["churn-*"])
    unchanged = strict.patch(url, json={}, headers=headers).json()
    assert (unchanged["role"], unchanged["models"]) == ("editor", ["churn-*"])
    lifted = strict.patch(url, json={"models": None}, headers=headers).json()
    assert (lifted["role"], lifted["models"]) == ("editor", None)
    assert_error(strict.patch(url, json={"models": []}, headers=headers), 422, "invalid_input")

    listed = strict.get("/users", params={"limit": 1000}, headers=headers).json()
    names = [user["name"] for user in listed["users"]]
    assert {name, admin_name} <= set(names)
    assert names == sorted(names)
    first = strict.get("/users", params={"limit": 1}, headers=headers).json()
    assert [u["name"] for u in first["users"]] == names[:1]
    second = strict.get(
        "/users", params={"limit": 1, "page_token": first["next_page_token"]}, headers=headers
    ).json()
    assert [u["name"] for u in second["users"]] == names[1:2]

    deleted = strict.delete(url, headers=headers)
    assert deleted.status_code == 204
    assert_error(strict.get(url, headers=headers), 404, "not_found")
    assert_error(strict.delete(url, headers=headers), 404, "not_found")
    assert_error(strict.patch(url, json={"role": "admin"}, headers=headers), 404, "not_found")


def test_disabling_a_user_stops_its_tokens(
    strict: httpx.Client, ml: Any, admin: tuple[str, dict[str, str]]
) -> None:
    _, headers = admin
    user, own = user_with_token(ml, "viewer")
    assert strict.get("/whoami", headers=own).status_code == 200
    disabled = strict.patch(f"/users/{user}", json={"disabled": True}, headers=headers).json()
    assert (disabled["disabled"], disabled["disabled_at"] is not None) == (True, True)
    assert (
        "disabled"
        in assert_error(strict.get("/whoami", headers=own), 401, "unauthenticated")["message"]
    )
    enabled = strict.patch(f"/users/{user}", json={"disabled": False}, headers=headers).json()
    assert enabled["disabled"] is False
    assert strict.get("/whoami", headers=own).json()["user"] == user


def test_the_last_admin_cannot_be_demoted_or_deleted(api: httpx.Client, ml: Any) -> None:
    # On the auth-off server, with the server's identity: only admins of this test exist
    # besides the module's; demoting every admin would leave none.
    admins = [u["name"] for u in api.get("/users", params={"limit": 1000}).json()["users"]]
    admins = [name for name in admins if ml.access.get_user(name).role == "admin"]
    lone = unique("lone")
    api.post("/users", json={"name": lone, "role": "admin"})
    for name in admins:
        assert api.patch(f"/users/{name}", json={"role": "viewer"}).status_code == 200
    try:
        refused = api.patch(f"/users/{lone}", json={"role": "viewer"})
        assert "last active admin" in assert_error(refused, 409, "conflict")["message"]
        assert_error(api.delete(f"/users/{lone}"), 409, "conflict")
        assert_error(api.patch(f"/users/{lone}", json={"disabled": True}), 409, "conflict")
    finally:
        for name in admins:
            api.patch(f"/users/{name}", json={"role": "admin"})


def test_token_secret_is_shown_once_works_and_revokes(
    strict: httpx.Client, ml: Any, admin: tuple[str, dict[str, str]]
) -> None:
    _, headers = admin
    user = unique("bot")
    strict.post("/users", json={"name": user, "role": "editor"}, headers=headers)
    created = strict.post(
        f"/users/{user}/tokens", json={"name": "ci", "expires_in": "30d"}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    token = created.json()
    secret = token["token"]
    assert secret.startswith("mlops_")
    assert secret.startswith(token["prefix"])
    assert (token["user"], token["name"], token["status"]) == (user, "ci", "active")
    assert token["expires_at"] == token["created_at"] + 30 * DAY_MS

    assert strict.get("/whoami", headers=bearer(secret)).json()["user"] == user
    listed = strict.get("/tokens", params={"user": user}, headers=headers)
    assert [t["id"] for t in listed.json()["tokens"]] == [token["id"]]
    assert "token" not in listed.json()["tokens"][0]
    assert secret not in listed.text
    everyone = strict.get("/tokens", params={"limit": 1000}, headers=headers)
    assert token["id"] in [t["id"] for t in everyone.json()["tokens"]]
    assert secret not in everyone.text
    audit = strict.get("/audit", params={"limit": 1000}, headers=headers)
    assert secret not in audit.text

    revoked = strict.delete(f"/tokens/{token['id']}", headers=headers)
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["status"], "token" in revoked.json()) == ("revoked", False)
    assert (
        "revoked"
        in assert_error(strict.get("/whoami", headers=bearer(secret)), 401, "unauthenticated")[
            "message"
        ]
    )
    assert strict.delete(f"/tokens/{token['id']}", headers=headers).json() == revoked.json()
    assert_error(strict.delete("/tokens/987654321", headers=headers), 404, "not_found")
    assert_error(strict.delete(f"/tokens/{2**40}", headers=headers), 422, "invalid_input")


def test_token_input_is_checked(strict: httpx.Client, admin: tuple[str, dict[str, str]]) -> None:
    _, headers = admin
    user = unique("bot")
    strict.post("/users", json={"name": user, "role": "viewer"}, headers=headers)
    url = f"/users/{user}/tokens"
    for body in (
        {"name": "t", "expires_in": "soon"},
        {"name": "t", "expires_in": "-1d"},
        {"name": "t", "expires_in": "0s"},
        {"name": "t", "expires_in": "99999999999999d"},
        {"name": ""},
        {"name": "t\x00"},
        {},
        {"name": "t", "secret": "mine"},
    ):
        assert_error(strict.post(url, json=body, headers=headers), 422, "invalid_input")
    missing = strict.post(f"/users/{unique('ghost')}/tokens", json={"name": "t"}, headers=headers)
    assert_error(missing, 404, "not_found")
    assert_error(
        strict.get("/tokens", params={"user": unique("ghost")}, headers=headers), 404, "not_found"
    )
    never = strict.post(url, json={"name": "forever"}, headers=headers).json()
    assert never["expires_at"] is None


def test_a_deleted_users_token_is_refused(
    strict: httpx.Client, ml: Any, admin: tuple[str, dict[str, str]]
) -> None:
    _, headers = admin
    user = unique("leaver")
    strict.post("/users", json={"name": user, "role": "viewer"}, headers=headers)
    secret = strict.post(f"/users/{user}/tokens", json={"name": "t"}, headers=headers).json()
    assert strict.get("/whoami", headers=bearer(secret["token"])).status_code == 200
    assert strict.delete(f"/users/{user}", headers=headers).status_code == 204
    refused = strict.get("/whoami", headers=bearer(secret["token"]))
    assert "not known" in assert_error(refused, 401, "unauthenticated")["message"]
    assert secret["id"] not in [info.id for info in ml.access.list_tokens()]


def test_audit_lists_with_filters_and_verifies(
    strict: httpx.Client, ml: Any, admin: tuple[str, dict[str, str]]
) -> None:
    admin_name, headers = admin
    user = unique("audited")
    strict.post("/users", json={"name": user, "role": "viewer"}, headers=headers)
    strict.patch(f"/users/{user}", json={"role": "editor"}, headers=headers)
    token = strict.post(f"/users/{user}/tokens", json={"name": "t"}, headers=headers).json()
    strict.delete(f"/tokens/{token['id']}", headers=headers)

    def audit(**params: Any) -> dict[str, Any]:
        response = strict.get("/audit", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    mine = audit(actor=admin_name)["entries"]
    assert [(e["action"], e["target"]) for e in mine[:4]] == [
        ("token.revoked", f"users/{user}/tokens/{token['id']}"),
        ("token.created", f"users/{user}/tokens/{token['id']}"),
        ("user.role_changed", f"users/{user}"),
        ("user.created", f"users/{user}"),
    ]
    assert all(e["actor"] == admin_name for e in mine)
    ids = [e["id"] for e in mine]
    assert ids == sorted(ids, reverse=True)
    changed = mine[2]
    assert (changed["before"]["role"], changed["after"]["role"]) == ("viewer", "editor")

    assert [e["action"] for e in audit(target=f"users/{user}")["entries"]] == [
        "user.role_changed",
        "user.created",
    ]
    tokens = audit(actor=admin_name, action="token.*")["entries"]
    assert {e["action"] for e in tokens} == {"token.created", "token.revoked"}
    created = audit(action="user.created", actor=admin_name)["entries"]
    assert created[0]["id"] == ids[3]
    since = audit(since=mine[1]["at"], actor=admin_name)["entries"]
    assert {e["id"] for e in since} >= {ids[0], ids[1]}
    assert all(e["at"] >= mine[1]["at"] for e in since)
    assert audit(until=mine[3]["at"], target=f"users/{user}")["entries"] == []
    assert audit(actor=unique("nobody"))["entries"] == []

    paged, page_token = [], None
    while True:
        body = audit(
            actor=admin_name, limit=2, **({"page_token": page_token} if page_token else {})
        )
        paged += [e["id"] for e in body["entries"]]
        page_token = body["next_page_token"]
        if page_token is None:
            break
    assert paged == ids
    first = audit(actor=admin_name, limit=1)
    other = strict.get(
        "/audit", params={"limit": 1, "page_token": first["next_page_token"]}, headers=headers
    )
    assert "different query" in assert_error(other, 422, "invalid_input")["message"]
    garbage = strict.get("/audit", params={"page_token": "x"}, headers=headers)
    assert_error(garbage, 422, "invalid_input")
    bad_since = strict.get("/audit", params={"since": "yesterday"}, headers=headers)
    assert_error(bad_since, 422, "invalid_input")

    verified = strict.get("/audit/verify", headers=headers).json()
    assert (verified["ok"], verified["broken_at"], verified["problem"]) == (True, None, None)
    assert verified["checked"] >= len(ids)
    assert verified["head_id"] == ml.audit.list(limit=1)[0].id
    assert "intact" in verified["message"]


def test_auth_off_acts_as_the_server_or_the_named_actor(api: httpx.Client, ml: Any) -> None:
    name = unique("offline")
    created = api.post(
        "/users", json={"name": name, "role": "viewer"}, headers={"x-mlops-actor": "ops-bot"}
    )
    assert created.status_code == 201, created.text
    [entry] = ml.audit.list(target=f"users/{name}")
    assert (entry.actor, entry.action) == ("ops-bot", "user.created")
    assert api.get(f"/users/{name}").json()["name"] == name
    assert api.get("/audit/verify").json()["ok"] is True
    _, viewer = user_with_token(ml, "viewer")
    refused = api.get("/users", headers=viewer)
    assert "'users.admin'" in assert_error(refused, 403, "permission_denied")["message"]


def test_anonymous_reads_do_not_open_admin_routes(anonymous_read: httpx.Client) -> None:
    for path in ("/users", "/tokens", "/audit", "/audit/verify", f"/users/{unique('x')}"):
        assert_error(anonymous_read.get(path), 401, "unauthenticated")
    assert anonymous_read.get("/pipelines").status_code == 200


ADMIN_ROUTES = [
    ("GET", "/users", None, "users.admin"),
    ("POST", "/users", {"name": "intruder", "role": "admin"}, "users.admin"),
    ("GET", "/users/{user}", None, "users.admin"),
    ("PATCH", "/users/{user}", {"role": "admin"}, "users.admin"),
    ("DELETE", "/users/{user}", None, "users.admin"),
    ("GET", "/tokens", None, "tokens.admin"),
    ("POST", "/users/{user}/tokens", {"name": "mine"}, "tokens.admin"),
    ("DELETE", "/tokens/1", None, "tokens.admin"),
    ("GET", "/audit", None, "audit.read"),
    ("GET", "/audit/verify", None, "audit.read"),
]


@pytest.mark.parametrize("role", ["viewer", "editor", "deployer"])
def test_other_roles_are_refused_every_admin_route(
    strict: httpx.Client, ml: Any, role: str
) -> None:
    user, headers = user_with_token(ml, role)
    for method, path, body, permission in ADMIN_ROUTES:
        response = strict.request(method, path.format(user=user), json=body, headers=headers)
        message = assert_error(response, 403, "permission_denied")["message"]
        assert f"'{permission}'" in message, (method, path)
    assert ml.access.get_user(user).role == role
    assert [t.status() for t in ml.access.list_tokens(user)] == ["active"]
    with pytest.raises(NotFound):
        ml.access.get_user("intruder")


#: SQLite only (see tests/conftest.py): HTTP onto the facade; both stores are covered by the
#: governance suites and the API fuzz.
SQLITE_ONLY = True
