"""`mlops audit list` and `mlops audit verify`, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import mlops
from cli.conftest import invoke, ok
from mlops.cli._audit import parse_since
from mlops.errors import InvalidInput


@pytest.fixture
def audited(ml: mlops.MLOps, database_url: str) -> list[str]:
    """Four audit entries; returns the global options that reach the same database."""
    ml.audit.record("user.created", "users/bob", after={"role": "editor"}, actor="alice")
    ml.audit.record("token.created", "users/bob/tokens/1", actor="alice")
    ml.audit.record("token.revoked", "users/bob/tokens/1", actor="carol")
    ml.audit.record(
        "user.role_changed",
        "users/bob",
        before={"role": "editor"},
        after={"role": "deployer"},
        actor="carol",
    )
    return ["--database-url", database_url]


def test_list_filters_and_prints_json(home: Path, audited: list[str]) -> None:
    entries = json.loads(ok(home, *audited, "audit", "list", "--json").stdout)
    assert [entry["id"] for entry in entries] == [4, 3, 2, 1]
    assert entries[0]["after"] == {"role": "deployer"}
    by_carol = json.loads(ok(home, *audited, "audit", "list", "--actor", "carol", "--json").stdout)
    assert [entry["action"] for entry in by_carol] == ["user.role_changed", "token.revoked"]
    tokens = json.loads(ok(home, *audited, "audit", "list", "--action", "token.*", "--json").stdout)
    assert len(tokens) == 2
    bob = ok(home, *audited, "audit", "list", "--target", "users/bob", "--json").stdout
    assert len(json.loads(bob)) == 2
    recent = ok(home, *audited, "audit", "list", "--since", "1h", "--limit", "3", "--json").stdout
    assert [entry["id"] for entry in json.loads(recent)] == [4, 3, 2]
    table = ok(home, *audited, "audit", "list", "--limit", "2").stdout
    assert "user.role_changed" in table
    assert '{"role":"editor"} → {"role":"deployer"}' in table
    assert "more with --before-id 3" in table
    older = ok(home, *audited, "audit", "list", "--before-id", "3", "--json").stdout
    assert [entry["id"] for entry in json.loads(older)] == [2, 1]


def test_verify_succeeds_then_fails_with_the_break(
    home: Path, audited: list[str], ml: mlops.MLOps
) -> None:
    assert "intact: 4 entries" in ok(home, *audited, "audit", "verify").stdout
    with ml.store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE id = 2"))
    result = invoke(home, *audited, "audit", "verify")
    assert result.exit_code == 1
    assert "entry 2 was changed" in result.stderr
    as_json = invoke(home, *audited, "audit", "verify", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["broken_at"] == 2


def test_bad_since_says_what_is_expected(home: Path, audited: list[str]) -> None:
    result = invoke(home, *audited, "audit", "list", "--since", "yesterday")
    assert result.exit_code == 1
    assert "'12h' or '7d'" in result.stderr


def test_parse_since() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_since("90m", now=now) == now - timedelta(minutes=90)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("2026-11-01T00:00+00:00") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01").tzinfo is not None
    with pytest.raises(InvalidInput):
        parse_since("soon")
