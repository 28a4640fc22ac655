"""`mlops users …` and `mlops tokens …`, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlops
from cli.conftest import invoke, ok


@pytest.fixture
def db(ml: mlops.MLOps, database_url: str) -> list[str]:
    """Global options reaching the (migrated) database of the ``ml`` fixture."""
    return ["--database-url", database_url]


def test_users_lifecycle(home: Path, db: list[str], ml: mlops.MLOps) -> None:
    env = {"MLOPS_USER": "root"}
    created = ok(home, *db, "users", "create", "alice", "--role", "admin", env=env).stdout
    assert "created user alice (role admin, every model)" in created
    ok(home, *db, "users", "create", "bob", "--role", "editor", "-m", "churn-*", "-m", "fraud")
    listed = json.loads(ok(home, *db, "users", "list", "--json").stdout)
    assert [(user["name"], user["role"], user["models"]) for user in listed] == [
        ("alice", "admin", None),
        ("bob", "editor", ["churn-*", "fraud"]),
    ]
    table = ok(home, *db, "users", "list").stdout
    assert "churn-*, fraud" in table
    assert "now has role deployer" in ok(home, *db, "users", "set-role", "bob", "deployer").stdout
    scoped = ok(home, *db, "users", "set-models", "bob", "-m", "churn-*").stdout
    assert "may now act on models churn-*" in scoped
    assert "every model" in ok(home, *db, "users", "set-models", "bob", "--all").stdout
    neither = invoke(home, *db, "users", "set-models", "bob")
    assert neither.exit_code == 1
    assert "either --model PATTERN (repeatable) or --all" in neither.stderr
    ok(home, *db, "users", "disable", "bob")
    assert "disabled" in ok(home, *db, "users", "list").stdout
    ok(home, *db, "users", "enable", "bob")
    ok(home, *db, "users", "delete", "bob")
    assert [user.name for user in ml.access.list_users()] == ["alice"]
    assert ml.audit.list(action="user.created")[-1].actor == "root"

    refused = invoke(home, *db, "users", "delete", "alice")
    assert refused.exit_code == 1
    assert "last active admin" in refused.stderr
    unknown_role = invoke(home, *db, "users", "create", "carol", "--role", "owner")
    assert unknown_role.exit_code == 1
    assert "role 'owner' is not one of viewer, editor, deployer, admin" in unknown_role.stderr


def test_tokens_are_shown_once_listed_and_revoked(
    home: Path, db: list[str], ml: mlops.MLOps
) -> None:
    ok(home, *db, "users", "create", "bob", "--role", "editor")
    created = ok(home, *db, "tokens", "create", "bob", "--name", "ci", "--expires", "30d")
    token = created.stdout.strip()
    assert token.startswith("mlops_")
    assert "will not be shown again" in created.stderr
    assert ml.access.authenticate(token).name == "bob"

    listed = ok(home, *db, "tokens", "list", "--user", "bob").stdout
    assert token[:14] + "…" in listed
    assert token not in listed
    assert "active" in listed
    entries = json.loads(ok(home, *db, "tokens", "list", "--json").stdout)
    assert [(entry["name"], entry["status"]) for entry in entries] == [("ci", "active")]

    revoked = ok(home, *db, "tokens", "revoke", str(entries[0]["id"])).stdout
    assert "revoked token" in revoked
    assert "revoked" in ok(home, *db, "tokens", "list").stdout
    missing = invoke(home, *db, "tokens", "revoke", "999")
    assert missing.exit_code == 1
    assert "no API token 999" in missing.stderr
    bad_expiry = invoke(home, *db, "tokens", "create", "bob", "--expires", "soon")
    assert bad_expiry.exit_code == 1
    assert "not a duration" in bad_expiry.stderr
    assert len(ml.access.list_tokens()) == 1  # the refused one was not created
