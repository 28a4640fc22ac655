"""The audit log: an append-only, hash-chained record of who changed what.

Each entry's ``hash`` is SHA-256 over the canonical JSON of its fields and ``prev_hash``,
the hash of the entry before it; entry ids count up from 1 without gaps. Editing,
deleting, inserting or reordering an entry therefore breaks the chain at that point,
and ``AuditLog.verify()`` names it. (Cutting entries off the end cannot be detected from
the chain alone: keep ``head_id``/``head_hash`` of a verification somewhere else.)
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops.errors import InvalidInput, NotFound
from mlops.store import Store
from mlops.store._schema import KEY_LENGTH, audit_log

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditLog",
    "AuditVerification",
    "append",
    "current_request_id",
    "entry_hash",
    "request_id_scope",
]

#: The ``prev_hash`` of the first entry.
GENESIS_HASH = "0" * 64

# Arbitrary constant: the PostgreSQL advisory lock that makes appends take turns.
_PG_AUDIT_LOCK = 0x6D6C6F7073_4155
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_TARGET_LENGTH = 512
_REQUEST_ID_LENGTH = 64
# The id of the API request whose handling is running: a context variable, not state,
# because it belongs to one request's task (and the worker threads it hands work to,
# which copy the context) rather than to any object; set by ``request_id_scope``.
_REQUEST_ID: ContextVar[str | None] = ContextVar("mlops_audit_request_id", default=None)
_HASHED_FIELDS = (
    "id",
    "at",
    "actor",
    "action",
    "target",
    "before",
    "after",
    "request_id",
    "prev_hash",
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One record of the audit log; ``before``/``after`` are the decoded JSON states."""

    id: int
    at: int
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    request_id: str | None
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "request_id": self.request_id,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """The outcome of ``AuditLog.verify()``; true when the whole chain is intact.

    ``broken_at`` is the id of the first entry that fails; ``problem`` says how:
    ``"changed"`` (its contents do not match its hash) or ``"missing"`` (the entry
    before it is gone, or it does not link to the one that is there).
    """

    ok: bool
    checked: int
    head_id: int | None
    head_hash: str | None
    message: str
    broken_at: int | None = None
    problem: Literal["changed", "missing"] | None = None

    def __bool__(self) -> bool:
        return self.ok

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head_id": self.head_id,
            "head_hash": self.head_hash,
            "broken_at": self.broken_at,
            "problem": self.problem,
            "message": self.message,
        }


def append(
    connection: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    request_id: str | None = None,
) -> AuditEntry:
    """Append an entry inside the caller's transaction, so it commits with the change.

    Appends take turns: on PostgreSQL a transaction-scoped advisory lock is held from
    here until the caller commits (so append last in a transaction); on SQLite the write
    transaction of ``Store.write()`` already holds the database's write lock. Without a
    ``request_id`` the entry records the one of the API request being handled, if any
    (see ``request_id_scope``).
    """
    if request_id is None:
        request_id = _REQUEST_ID.get()
    row: dict[str, Any] = {
        "actor": _checked_text("actor", actor, KEY_LENGTH),
        "action": _checked_action(action),
        "target": _checked_text("target", target, _TARGET_LENGTH),
        "before": _canonical_state("before", before),
        "after": _canonical_state("after", after),
        "request_id": None
        if request_id is None
        else _checked_text("request_id", request_id, _REQUEST_ID_LENGTH),
    }
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_AUDIT_LOCK)))
    head = connection.execute(
        sa.select(audit_log.c.id, audit_log.c.at, audit_log.c.hash)
        .order_by(audit_log.c.id.desc())
        .limit(1)
    ).first()
    now = time.time_ns() // 1_000_000
    if head is None:
        row.update(id=1, at=now, prev_hash=GENESIS_HASH)
    else:
        # Never earlier than the entry before: the log stays ordered by time as well as id.
        row.update(id=head.id + 1, at=max(now, head.at), prev_hash=head.hash)
    row["hash"] = entry_hash(row)
    connection.execute(audit_log.insert().values(**row))
    return _entry(row)


@contextmanager
def request_id_scope(request_id: str | None) -> Iterator[None]:
    """Within this block (and the threads it starts work in with a copied context, as
    Starlette's threadpool does), audit entries record ``request_id``."""
    token = _REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        _REQUEST_ID.reset(token)


def current_request_id() -> str | None:
    """The request id that audit entries appended now would record."""
    return _REQUEST_ID.get()


def entry_hash(row: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry's hashed fields."""
    fields = {name: row[name] for name in _HASHED_FIELDS}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditLog:
    """The audit log of one metadata store.

    Thread-safe; every method runs in its own transaction. Returned entries are frozen.
    """

    def __init__(self, store: Store, *, actor: str | None = None) -> None:
        self._store = store
        self._actor = actor

    def record(
        self,
        action: str,
        target: str,
        *,
        before: Any = None,
        after: Any = None,
        actor: str | None = None,
        request_id: str | None = None,
    ) -> AuditEntry:
        """Append one entry in a transaction of its own."""
        who = actor if actor is not None else self._actor
        if who is None:
            raise InvalidInput("an audit entry needs an actor; pass actor='name'")
        with self._store.write() as connection:
            return append(
                connection,
                actor=who,
                action=action,
                target=target,
                before=before,
                after=after,
                request_id=request_id,
            )

    def get(self, entry_id: int) -> AuditEntry:
        with self._store.read() as connection:
            row = connection.execute(sa.select(audit_log).where(audit_log.c.id == entry_id)).first()
        if row is None:
            raise NotFound(f"the audit log has no entry {entry_id} (see `mlops audit list`)")
        return _entry(row._mapping)

    def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: int | datetime | None = None,
        until: int | datetime | None = None,
        limit: int = 100,
        after_id: int | None = None,
    ) -> list[AuditEntry]:
        """Entries newest first; ``since``/``until`` bound ``at`` (epoch ms or datetime,
        ``until`` exclusive). For the next page pass the last id seen as ``after_id``.

        ``action`` ending in ``.*`` matches a prefix: ``"token.*"``.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive integer, got {limit!r}")
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if actor is not None:
            query = query.where(audit_log.c.actor == actor)
        if action is not None:
            if action.endswith(".*"):
                prefix = action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                query = query.where(audit_log.c.action.like(prefix + "%", escape="\\"))
            else:
                query = query.where(audit_log.c.action == action)
        if target is not None:
            query = query.where(audit_log.c.target == target)
        if since is not None:
            query = query.where(audit_log.c.at >= _epoch_ms("since", since))
        if until is not None:
            query = query.where(audit_log.c.at < _epoch_ms("until", until))
        if after_id is not None:
            query = query.where(audit_log.c.id < after_id)
        with self._store.read() as connection:
            rows = connection.execute(query).all()
        return [_entry(row._mapping) for row in rows]

    def verify(self, *, batch_size: int = 1000) -> AuditVerification:
        """Recompute every hash and link, oldest first; report the first break."""
        checked = 0
        previous: Any = None
        for row in self._rows(batch_size):
            if entry_hash(row) != row["hash"]:
                return _broken(
                    checked,
                    previous,
                    row["id"],
                    "changed",
                    f"entry {row['id']} was changed: its contents do not match its hash",
                )
            if previous is None and (row["id"] != 1 or row["prev_hash"] != GENESIS_HASH):
                return _broken(
                    checked,
                    previous,
                    row["id"],
                    "missing",
                    f"the entries before {row['id']} are missing or were replaced: "
                    "the chain does not start at entry 1",
                )
            if previous is not None and row["id"] != previous["id"] + 1:
                return _broken(
                    checked,
                    previous,
                    row["id"],
                    "missing",
                    f"entry after {previous['id']} is missing or was replaced: the chain "
                    f"jumps from entry {previous['id']} to entry {row['id']}",
                )
            if previous is not None and row["prev_hash"] != previous["hash"]:
                return _broken(
                    checked,
                    previous,
                    row["id"],
                    "missing",
                    f"entry after {previous['id']} is missing or was replaced: entry "
                    f"{row['id']} does not link to entry {previous['id']} (or entry "
                    f"{previous['id']} was rewritten together with its hash)",
                )
            checked += 1
            previous = row
        head_id = None if previous is None else previous["id"]
        head_hash = None if previous is None else previous["hash"]
        message = (
            "the audit log is empty"
            if previous is None
            else f"the audit log is intact: {checked} entries, head {head_id} {head_hash}"
        )
        return AuditVerification(
            ok=True, checked=checked, head_id=head_id, head_hash=head_hash, message=message
        )

    def _rows(self, batch_size: int) -> Iterator[Any]:
        # Ids start at 1, but a tampered table may hold lower ones: start below any.
        with self._store.read() as connection:
            lowest = connection.execute(sa.select(sa.func.min(audit_log.c.id))).scalar()
        if lowest is None:
            return
        last = min(lowest, 1) - 1
        while True:
            with self._store.read() as connection:
                rows = connection.execute(
                    sa.select(audit_log)
                    .where(audit_log.c.id > last)
                    .order_by(audit_log.c.id)
                    .limit(batch_size)
                ).all()
            for row in rows:
                yield row._mapping
            if len(rows) < batch_size:
                return
            last = rows[-1].id


def _broken(
    checked: int,
    previous: Any,
    broken_at: int,
    problem: Literal["changed", "missing"],
    message: str,
) -> AuditVerification:
    return AuditVerification(
        ok=False,
        checked=checked,
        head_id=None if previous is None else previous["id"],
        head_hash=None if previous is None else previous["hash"],
        message=message,
        broken_at=broken_at,
        problem=problem,
    )


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        before=_decoded(row["before"]),
        after=_decoded(row["after"]),
        request_id=row["request_id"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def _decoded(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a tampered entry still lists; verify() reports it


def _checked_text(what: str, value: object, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"audit {what} must be a non-empty string, got {value!r}")
    if len(value) > max_length:
        raise InvalidInput(f"audit {what} is longer than {max_length} characters: {value!r}")
    return value


def _checked_action(action: object) -> str:
    if not isinstance(action, str) or len(action) > 64 or not _ACTION.match(action):
        raise InvalidInput(
            f"audit action {action!r} is not a dotted lowercase name such as "
            "'model.stage_changed' (at most 64 characters)"
        )
    return action


def _canonical_state(what: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"audit {what} state is not JSON-serializable: {error}") from error


def _epoch_ms(what: str, value: int | datetime) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(f"{what} must be a timezone-aware datetime, got {value!r}")
        return int(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be epoch milliseconds or a datetime, got {value!r}")
    return value
