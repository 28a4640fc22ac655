"""Users, roles, API tokens and permission checks, each change audited with it."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

import mlops
from mlops.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from mlops.governance import PERMISSIONS, ROLES, Principal, authorize, parse_expiry


def _principal(role: str, models: tuple[str, ...] | None = None) -> Principal:
    return Principal(user_id=1, name="bob", role=role, models=models)


def test_every_permission_belongs_to_a_role() -> None:
    assert set(PERMISSIONS.values()) <= set(ROLES)
    assert ROLES == ("viewer", "editor", "deployer", "admin")


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("viewer", {"read"}),
        ("editor", {"read", "runs.write", "models.register"}),
        ("deployer", {"read", "runs.write", "models.register", "models.stage"}),
        ("admin", {"read", "runs.write", "models.register", "models.stage", "users.admin"}),
    ],
)
def test_roles_hold_the_permissions_of_the_roles_below(role: str, allowed: set[str]) -> None:
    checked = {"read", "runs.write", "models.register", "models.stage", "users.admin"}
    assert {name for name in checked if _principal(role).can(name)} == allowed


def test_denial_names_the_permission_and_the_role_that_has_it() -> None:
    with pytest.raises(PermissionDenied) as caught:
        authorize(_principal("editor"), "models.stage")
    message = str(caught.value)
    assert "lacks permission 'models.stage'" in message
    assert "needs role deployer or higher" in message
    assert isinstance(caught.value, PermissionError)
    with pytest.raises(InvalidInput, match=r"unknown permission 'models\.fly'"):
        authorize(_principal("admin"), "models.fly")


def test_model_scopes_apply_to_model_targeted_checks_only() -> None:
    scoped = _principal("deployer", models=("fraud-*", "churn"))
    authorize(scoped, "models.stage", model="fraud-eu")
    authorize(scoped, "models.stage", model="churn")
    authorize(scoped, "runs.write")  # not model-targeted: the scope does not apply
    with pytest.raises(PermissionDenied, match="only on models matching 'fraud-\\*', 'churn'"):
        authorize(scoped, "models.stage", model="churn-v2")
    # The role check comes first even for a model in scope.
    with pytest.raises(PermissionDenied, match=r"users\.admin"):
        authorize(scoped, "users.admin", model="churn")


def test_users_are_created_listed_changed_and_deleted(ml: mlops.MLOps) -> None:
    access = ml.access
    alice = access.create_user("alice", "admin", actor="root")
    bob = access.create_user("bob", "editor", models=["churn-*"], actor="root")
    assert (alice.role, alice.models, alice.disabled) == ("admin", None, False)
    assert bob.models == ("churn-*",)
    assert access.get_user("bob") == bob
    assert [user.name for user in access.list_users()] == ["alice", "bob"]
    assert access.set_role("bob", "deployer", actor="alice").role == "deployer"
    assert access.get_user("bob").role == "deployer"
    access.delete_user("bob", actor="alice")
    with pytest.raises(NotFound, match="no user 'bob'"):
        access.get_user("bob")
    with pytest.raises(AlreadyExists, match="'alice' already exists"):
        access.create_user("alice", "viewer", actor="root")
    with pytest.raises(InvalidInput, match="role 'owner' is not one of"):
        access.create_user("carol", "owner", actor="root")
    with pytest.raises(InvalidInput, match="user name"):
        access.create_user("no spaces", "viewer", actor="root")
    with pytest.raises(InvalidInput, match="at least one pattern"):
        access.create_user("carol", "viewer", models=[], actor="root")
    actions = [(entry.actor, entry.action, entry.target) for entry in ml.audit.list()]
    assert actions == [
        ("alice", "user.deleted", "users/bob"),
        ("alice", "user.role_changed", "users/bob"),
        ("root", "user.created", "users/bob"),
        ("root", "user.created", "users/alice"),
    ]
    changed = ml.audit.list(action="user.role_changed")[0]
    assert (changed.before["role"], changed.after["role"]) == ("editor", "deployer")
    assert ml.audit.verify().ok


def test_the_last_active_admin_cannot_be_removed(ml: mlops.MLOps) -> None:
    access = ml.access
    access.create_user("root", "admin", actor="setup")
    for change in (
        lambda: access.set_role("root", "viewer", actor="x"),
        lambda: access.delete_user("root", actor="x"),
        lambda: access.disable_user("root", actor="x"),
    ):
        with pytest.raises(Conflict, match="last active admin"):
            change()
    access.create_user("second", "admin", actor="root")
    access.set_role("root", "viewer", actor="second")
    assert access.get_user("root").role == "viewer"


def test_a_token_authenticates_its_user_and_is_stored_hashed(ml: mlops.MLOps) -> None:
    ml.access.create_user("bob", "deployer", models=["churn"], actor="root")
    token, info = ml.access.create_token("bob", name="ci", actor="root")
    assert token.startswith("mlops_")
    assert len(token) > 40
    assert info.prefix == token[:14]
    assert info.user == "bob"
    assert info.status() == "active"
    principal = ml.access.authenticate(token)
    assert (principal.name, principal.role, principal.models) == ("bob", "deployer", ("churn",))
    assert principal.token_id == info.id
    ml.access.authorize(principal, "models.stage", model="churn")
    with pytest.raises(PermissionDenied):
        ml.access.authorize(principal, "models.stage", model="fraud")
    with ml.store.read() as connection:
        stored = connection.execute(sa.text("SELECT * FROM api_tokens")).mappings().one()
    assert token not in [str(value) for value in stored.values()]
    assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert ml.access.list_tokens("bob")[0].last_used_at is not None
    created = ml.audit.list(action="token.created")[0]
    assert created.target == f"users/bob/tokens/{info.id}"
    assert token not in str(created.to_json())


def test_refused_tokens_say_why(ml: mlops.MLOps) -> None:
    access = ml.access
    access.create_user("admin", "admin", actor="root")
    access.create_user("bob", "editor", actor="admin")
    with pytest.raises(Unauthenticated, match="no API token was given"):
        access.authenticate("")
    with pytest.raises(Unauthenticated, match="malformed"):
        access.authenticate("Bearer abc")
    with pytest.raises(Unauthenticated, match="not known"):
        access.authenticate("mlops_" + "x" * 43)

    revoked, info = access.create_token("bob", name="old", actor="admin")
    assert access.revoke_token(info.id, actor="admin").status() == "revoked"
    assert access.revoke_token(info.id, actor="admin").revoked_at is not None  # idempotent
    with pytest.raises(Unauthenticated, match="was revoked"):
        access.authenticate(revoked)
    with pytest.raises(NotFound, match="no API token 999"):
        access.revoke_token(999, actor="admin")

    expiring, _ = access.create_token("bob", name="short", expires_in=0.05, actor="admin")
    access.authenticate(expiring)
    time.sleep(0.1)
    with pytest.raises(Unauthenticated, match="has expired"):
        access.authenticate(expiring)

    disabled, _ = access.create_token("bob", name="ci", actor="admin")
    access.disable_user("bob", actor="admin")
    with pytest.raises(Unauthenticated, match="user 'bob' is disabled"):
        access.authenticate(disabled)
    access.enable_user("bob", actor="admin")
    assert access.authenticate(disabled).name == "bob"

    access.delete_user("bob", actor="admin")
    with pytest.raises(Unauthenticated, match="not known"):
        access.authenticate(disabled)
    assert access.list_tokens() == []  # the user's tokens died with it
    actions = [entry.action for entry in ml.audit.list(action="token.*", limit=10)]
    assert actions.count("token.revoked") == 1
    assert actions.count("token.created") == 3
    assert ml.audit.verify().ok


def test_tokens_are_listed_per_user_with_status(ml: mlops.MLOps) -> None:
    ml.access.create_user("a", "viewer", actor="root")
    ml.access.create_user("b", "viewer", actor="root")
    _, first = ml.access.create_token("a", name="one", expires_in="30d", actor="root")
    ml.access.create_token("b", name="two", actor="root")
    ml.access.revoke_token(first.id, actor="root")
    assert [(t.user, t.name, t.status()) for t in ml.access.list_tokens()] == [
        ("a", "one", "revoked"),
        ("b", "two", "active"),
    ]
    assert [t.name for t in ml.access.list_tokens("b")] == ["two"]
    assert first.expires_at is not None
    assert first.expires_at - first.created_at == 30 * 86_400_000
    with pytest.raises(NotFound, match="no user 'c'"):
        ml.access.list_tokens("c")
    with pytest.raises(NotFound, match="no user 'c'"):
        ml.access.create_token("c", name="x", actor="root")


def test_a_failed_change_leaves_no_audit_entry(ml: mlops.MLOps) -> None:
    ml.access.create_user("root", "admin", actor="setup")
    with pytest.raises(Conflict):
        ml.access.delete_user("root", actor="x")
    assert [entry.action for entry in ml.audit.list()] == ["user.created"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", timedelta(seconds=90)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2))],
)
def test_parse_expiry(text: str, expected: timedelta) -> None:
    assert parse_expiry(text) == expected


@pytest.mark.parametrize("bad", ["30", "soon", "-1d", 0, True])
def test_parse_expiry_refuses_what_is_not_a_positive_duration(bad: object) -> None:
    with pytest.raises(InvalidInput):
        parse_expiry(bad)  # type: ignore[arg-type]


def test_concurrent_demotions_keep_one_admin(ml: mlops.MLOps) -> None:
    """Two admins demoting themselves at once: exactly one of them succeeds, every round."""
    ml.access.create_user("a", "admin", actor="setup")
    ml.access.create_user("b", "admin", actor="setup")
    for _ in range(5):
        start = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def demote(name: str, start: threading.Barrier, outcomes: dict[str, str]) -> None:
            start.wait()
            try:
                ml.access.set_role(name, "viewer", actor=name)
                outcomes[name] = "demoted"
            except Conflict:
                outcomes[name] = "refused"

        threads = [
            threading.Thread(target=demote, args=(name, start, outcomes)) for name in ("a", "b")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes.values()) == ["demoted", "refused"]
        assert [user.role for user in ml.access.list_users()].count("admin") == 1
        demoted = next(name for name, outcome in outcomes.items() if outcome == "demoted")
        ml.access.set_role(demoted, "admin", actor="setup")
    assert ml.audit.verify().ok


def test_model_scopes_can_be_changed_and_lifted(ml: mlops.MLOps) -> None:
    ml.access.create_user("bob", "deployer", models=["churn"], actor="root")
    token, _ = ml.access.create_token("bob", name="ci", actor="root")
    assert ml.access.set_models("bob", ["fraud-*"], actor="root").models == ("fraud-*",)
    principal = ml.access.authenticate(token)
    assert principal.can("models.stage", model="fraud-eu")
    assert not principal.can("models.stage", model="churn")
    assert ml.access.set_models("bob", None, actor="root").models is None
    assert ml.access.authenticate(token).can("models.stage", model="churn")
    changes = ml.audit.list(action="user.models_changed")
    assert [(entry.before["models"], entry.after["models"]) for entry in changes] == [
        (["fraud-*"], None),
        (["churn"], ["fraud-*"]),
    ]
