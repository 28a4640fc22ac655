"""The hash-chained audit log: append, list, and verify that catches every kind of tampering."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

import mlops
from mlops.errors import Conflict, InvalidInput, NotFound
from mlops.governance import GENESIS_HASH, AuditLog, append
from mlops.governance._audit import entry_hash
from mlops.store import Store


def _fill(audit: AuditLog, count: int) -> None:
    for index in range(1, count + 1):
        audit.record(
            "model.stage_changed",
            f"models/churn/{index}",
            before={"stage": "Staging"},
            after={"stage": "Production"},
            actor="alice",
        )


def _execute(ml: mlops.MLOps, sql: str, **values: object) -> None:
    with ml.store.engine.begin() as connection:
        connection.execute(sa.text(sql), values)


def test_entries_chain_from_genesis_and_decode(ml: mlops.MLOps) -> None:
    first = ml.audit.record(
        "model.stage_changed",
        "models/churn/3",
        before={"stage": "Staging"},
        after={"stage": "Production", "note": "ünïcode"},
        actor="alice",
        request_id="req-1",
    )
    second = ml.audit.record("token.created", "users/bob/tokens/1", actor="admin")
    assert (first.id, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.id, second.prev_hash) == (2, first.hash)
    assert second.at >= first.at
    stored = ml.audit.get(1)
    assert stored == first
    assert stored.after == {"stage": "Production", "note": "ünïcode"}
    assert stored.request_id == "req-1"
    assert ml.audit.get(2).before is None
    with pytest.raises(NotFound, match="no entry 3"):
        ml.audit.get(3)
    assert ml.audit.verify().ok


def test_default_actor_is_the_connection_user(ml: mlops.MLOps) -> None:
    entry = ml.audit.record("settings.changed", "settings")
    assert entry.actor == ml.registry.actor


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"action": "Stage Changed"}, "dotted lowercase"),
        ({"action": "model"}, "dotted lowercase"),
        ({"target": ""}, "target must be a non-empty"),
        ({"actor": ""}, "actor must be a non-empty"),
        ({"after": {"x": float("nan")}}, "not JSON-serializable"),
        ({"after": {"x": object()}}, "not JSON-serializable"),
        ({"request_id": "r" * 65}, "longer than 64"),
    ],
)
def test_invalid_entries_are_refused_and_nothing_is_written(
    ml: mlops.MLOps, arguments: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"action": "model.deleted", "target": "models/x", "actor": "a"}
    values.update(arguments)
    with pytest.raises(InvalidInput, match=message):
        ml.audit.record(**values)  # type: ignore[arg-type]
    assert ml.audit.list() == []


def test_append_commits_and_rolls_back_with_the_callers_transaction(ml: mlops.MLOps) -> None:
    def failing_change() -> None:
        with ml.store.write() as connection:
            append(connection, actor="alice", action="user.created", target="users/x")
            raise RuntimeError("the audited change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert ml.audit.list() == []
    with ml.store.write() as connection:
        append(connection, actor="alice", action="user.created", target="users/x")
    assert [entry.target for entry in ml.audit.list()] == ["users/x"]
    assert ml.audit.verify().ok


def test_list_filters_newest_first_with_keyset_pages(ml: mlops.MLOps) -> None:
    for index in range(5):
        ml.audit.record("token.created", f"tokens/{index}", actor="alice")
        ml.audit.record("model.stage_changed", f"models/m/{index}", actor="bob")
    assert [entry.id for entry in ml.audit.list()] == list(range(10, 0, -1))
    assert {entry.actor for entry in ml.audit.list(actor="bob")} == {"bob"}
    assert len(ml.audit.list(action="token.created")) == 5
    assert len(ml.audit.list(action="token.*")) == 5
    assert len(ml.audit.list(action="token_*")) == 0  # '_' is not a LIKE wildcard here
    assert [entry.id for entry in ml.audit.list(target="models/m/2")] == [6]
    page = ml.audit.list(limit=4)
    following = ml.audit.list(limit=4, after_id=page[-1].id)
    assert [entry.id for entry in page + following] == list(range(10, 2, -1))
    now = datetime.now(UTC)
    assert len(ml.audit.list(since=now - timedelta(minutes=5))) == 10
    assert ml.audit.list(until=now - timedelta(minutes=5)) == []
    assert len(ml.audit.list(since=ml.audit.get(4).at)) >= 7
    with pytest.raises(InvalidInput, match="limit"):
        ml.audit.list(limit=0)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        ml.audit.list(since=datetime(2026, 1, 1))


def test_empty_log_verifies(ml: mlops.MLOps) -> None:
    result = ml.audit.verify()
    assert result.ok
    assert result.checked == 0
    assert result.head_id is None


def test_intact_log_verifies_across_batches(ml: mlops.MLOps) -> None:
    _fill(ml.audit, 7)
    result = ml.audit.verify(batch_size=3)
    assert result.ok
    assert bool(result)
    assert (result.checked, result.head_id) == (7, 7)
    assert result.head_hash == ml.audit.get(7).hash


def test_an_edited_entry_is_named(ml: mlops.MLOps) -> None:
    _fill(ml.audit, 6)
    _execute(ml, "UPDATE audit_log SET after = :after WHERE id = 4", after='{"stage":"Archived"}')
    result = ml.audit.verify(batch_size=2)
    assert not result.ok
    assert (result.broken_at, result.problem, result.head_id) == (4, "changed", 3)
    assert result.message == "entry 4 was changed: its contents do not match its hash"


def test_a_deleted_entry_is_found(ml: mlops.MLOps) -> None:
    _fill(ml.audit, 6)
    _execute(ml, "DELETE FROM audit_log WHERE id = 3")
    result = ml.audit.verify()
    assert (result.ok, result.broken_at, result.problem) == (False, 4, "missing")
    assert "entry after 2 is missing or was replaced" in result.message


def test_a_deleted_first_entry_is_found(ml: mlops.MLOps) -> None:
    _fill(ml.audit, 3)
    _execute(ml, "DELETE FROM audit_log WHERE id = 1")
    result = ml.audit.verify()
    assert (result.ok, result.broken_at, result.problem) == (False, 2, "missing")
    assert "before 2 are missing" in result.message


def test_an_edit_covered_by_a_new_hash_breaks_the_next_link(ml: mlops.MLOps) -> None:
    _fill(ml.audit, 6)
    with ml.store.engine.begin() as connection:
        row = dict(
            connection.execute(sa.text("SELECT * FROM audit_log WHERE id = 4")).mappings().one()
        )
        row["after"] = '{"stage":"Archived"}'
        connection.execute(
            sa.text("UPDATE audit_log SET after = :after, hash = :hash WHERE id = 4"),
            {"after": row["after"], "hash": entry_hash(row)},
        )
    result = ml.audit.verify()
    assert (result.ok, result.broken_at, result.problem) == (False, 5, "missing")
    assert "entry 5 does not link to entry 4" in result.message


def test_swapped_entries_are_found(ml: mlops.MLOps) -> None:
    _fill(ml.audit, 5)
    with ml.store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_log SET id = 100 WHERE id = 2"))
        connection.execute(sa.text("UPDATE audit_log SET id = 2 WHERE id = 3"))
        connection.execute(sa.text("UPDATE audit_log SET id = 3 WHERE id = 100"))
    result = ml.audit.verify()
    assert (result.ok, result.broken_at, result.problem) == (False, 2, "changed")


def test_a_forked_append_cannot_commit(ml: mlops.MLOps) -> None:
    """Two entries claiming the same place in the chain: the second is refused."""
    ml.audit.record("user.created", "users/a", actor="a")
    head = ml.audit.get(1)
    forged = {
        "id": 1,
        "at": head.at,
        "actor": "mallory",
        "action": "user.created",
        "target": "users/m",
        "before": None,
        "after": None,
        "request_id": None,
        "prev_hash": GENESIS_HASH,
    }
    forged["hash"] = entry_hash(forged)
    with pytest.raises(Conflict), ml.store.write() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO audit_log (id, at, actor, action, target, prev_hash, hash) "
                "VALUES (:id, :at, :actor, :action, :target, :prev_hash, :hash)"
            ),
            forged,
        )
    assert ml.audit.verify().ok


def _append_many(database_url: str, worker: int, count: int) -> None:
    store = Store(database_url)
    audit = AuditLog(store, actor=f"worker{worker}")
    for index in range(count):
        audit.record("run.logged", f"runs/{worker}/{index}")
    store.dispose()


@pytest.mark.slow
def test_four_processes_append_one_linear_chain(ml: mlops.MLOps, database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_many, args=(database_url, worker, 50)) for worker in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * 4
    result = ml.audit.verify()
    assert result.ok, result.message
    assert (result.checked, result.head_id) == (200, 200)
    for worker in range(4):
        assert len(ml.audit.list(actor=f"worker{worker}", limit=1000)) == 50
