"""Executions: their states and records, and admission (queued or waiting for a slot).

Every change of admission (an execution created, or one leaving the active states)
happens with the pipeline's definition row locked (``FOR UPDATE`` on PostgreSQL; SQLite
transactions are serialized anyway), so two processes can never both see a free slot.
Locks are taken pipeline row first, execution rows second, everywhere.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mlops.store import Store
from mlops.store._schema import orchestrated_pipelines as _pipelines
from mlops.store._schema import pipeline_executions as _executions

__all__ = [
    "Attempt",
    "Execution",
    "ExecutionState",
    "LogLine",
    "admit",
    "append_log",
    "dumps",
    "execution_from_row",
    "lock_pipeline",
    "promote_waiting",
]


class ExecutionState(enum.StrEnum):
    """Where an execution is.

    ``scheduled`` waits for a slot (``max_active`` executions of its pipeline are active);
    ``queued``, ``running`` and ``retrying`` are active; the rest are final. ``cached``
    is a success where every step reused an earlier output.
    """

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    CACHED = "cached"

    @property
    def active(self) -> bool:
        return self in _ACTIVE

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_ACTIVE = frozenset({ExecutionState.QUEUED, ExecutionState.RUNNING, ExecutionState.RETRYING})
_FINISHED = frozenset(
    {
        ExecutionState.SUCCEEDED,
        ExecutionState.FAILED,
        ExecutionState.CANCELLED,
        ExecutionState.TIMED_OUT,
        ExecutionState.CACHED,
    }
)
ACTIVE_STATES = tuple(sorted(state.value for state in _ACTIVE))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of an execution: a tracked pipeline run (``run_id``, once it started)."""

    number: int
    started_at: int
    run_id: str | None = None
    ended_at: int | None = None
    state: str | None = None
    error: str | None = None
    worker: str | None = None

    @property
    def duration_ms(self) -> int | None:
        return None if self.ended_at is None else self.ended_at - self.started_at

    def stored(self) -> dict[str, Any]:
        """The attempt as the ``attempt_log`` column keeps it."""
        return dataclasses.asdict(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_ms": self.duration_ms,
            "state": self.state,
            "error": self.error,
            "worker": self.worker,
        }


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of an execution's log: a step that ended (``step`` set) or an event of
    the execution itself (queued, retry scheduled, notification failed…)."""

    at: int
    state: str
    attempt: int | None = None
    step: str | None = None
    duration_ms: float | None = None
    error: str | None = None
    message: str | None = None

    def text(self) -> str:
        """E.g. ``attempt 2  train  failed  1.2s  ValueError: bad input``."""
        parts = [f"attempt {self.attempt}" if self.attempt is not None else ""]
        parts.append(self.step or "")
        parts.append(self.state)
        if self.duration_ms is not None:
            parts.append(f"{self.duration_ms / 1000:.3g}s")
        if self.message:
            parts.append(self.message)
        if self.error:
            parts.append(self.error)
        return "  ".join(part for part in parts if part)

    def to_json(self) -> dict[str, Any]:
        return {
            key: getattr(self, key)
            for key in ("at", "state", "attempt", "step", "duration_ms", "error", "message")
            if getattr(self, key) is not None
        }


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution of a registered pipeline, as read (a snapshot; times in ms)."""

    id: int
    pipeline: str
    state: ExecutionState
    trigger: str
    trigger_detail: Mapping[str, Any]
    params: Mapping[str, Any]
    created_at: int
    scheduled_for: int | None = None
    attempts: tuple[Attempt, ...] = ()
    log: tuple[LogLine, ...] = ()
    error: str | None = None
    cancel_requested: bool = False
    next_attempt_at: int | None = None
    deadline_at: int | None = None
    created_by: str | None = None
    started_at: int | None = None
    finished_at: int | None = None
    worker: str | None = field(default=None, repr=False)

    @property
    def run_ids(self) -> tuple[str, ...]:
        """The tracked pipeline run of each attempt that got as far as starting one."""
        return tuple(attempt.run_id for attempt in self.attempts if attempt.run_id)

    @property
    def duration_ms(self) -> int | None:
        """From the first attempt's start to the end (None until both are known)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "state": self.state.value,
            "trigger": self.trigger,
            "trigger_detail": dict(self.trigger_detail),
            "scheduled_for": self.scheduled_for,
            "params": dict(self.params),
            "attempts": [attempt.to_json() for attempt in self.attempts],
            "run_ids": list(self.run_ids),
            "error": self.error,
            "cancel_requested": self.cancel_requested,
            "next_attempt_at": self.next_attempt_at,
            "deadline_at": self.deadline_at,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_ms": self.duration_ms,
            "log": [line.to_json() for line in self.log],
        }


def execution_from_row(row: Row[Any] | Any) -> Execution:
    return Execution(
        id=int(row.id),
        pipeline=row.pipeline,
        state=ExecutionState(row.state),
        trigger=row.trigger,
        trigger_detail=json.loads(row.trigger_detail),
        params=json.loads(row.params),
        created_at=int(row.created_at),
        scheduled_for=row.scheduled_for,
        attempts=tuple(Attempt(**item) for item in json.loads(row.attempt_log)),
        log=tuple(LogLine(**item) for item in json.loads(row.log)),
        error=row.error,
        cancel_requested=bool(row.cancel_requested),
        next_attempt_at=row.next_attempt_at,
        deadline_at=row.deadline_at,
        created_by=row.created_by,
        started_at=row.started_at,
        finished_at=row.finished_at,
        worker=row.worker,
    )


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def lock_pipeline(store: Store, connection: Connection, name: str) -> Row[Any] | None:
    """The pipeline's definition row, locked until the transaction ends (None if gone)."""
    query = sa.select(_pipelines).where(_pipelines.c.name == name)
    if not store.is_sqlite:
        query = query.with_for_update()
    return connection.execute(query).first()


def active_count(connection: Connection, pipeline: str) -> int:
    query = sa.select(sa.func.count()).where(
        _executions.c.pipeline == pipeline, _executions.c.state.in_(ACTIVE_STATES)
    )
    return int(connection.execute(query).scalar_one())


def admit(
    store: Store,
    connection: Connection,
    *,
    pipeline: str,
    max_active: int,
    trigger: str,
    detail: Mapping[str, Any],
    params: Mapping[str, Any],
    now: int,
    scheduled_for: int | None = None,
    actor: str | None = None,
    coalesce: bool = True,
) -> tuple[int, bool] | None:
    """Create an execution, queued if a slot is free, else waiting (``scheduled``).

    Call with the pipeline row locked (``lock_pipeline``). While an execution already
    waits, a firing with ``coalesce`` joins it (its trigger detail records the firing)
    instead of piling up. Returns (execution id, created), or None when the due time
    ``scheduled_for`` already has its execution.
    """
    free = active_count(connection, pipeline) < max_active
    if not free and coalesce:
        waiting = connection.execute(
            sa.select(_executions.c.id, _executions.c.trigger_detail)
            .where(
                _executions.c.pipeline == pipeline,
                _executions.c.state == ExecutionState.SCHEDULED.value,
            )
            .order_by(_executions.c.id)
            .limit(1)
        ).first()
        if waiting is not None:
            merged = json.loads(waiting.trigger_detail)
            joined = {"trigger": trigger, "at": now, "detail": dict(detail)}
            merged.setdefault("coalesced", []).append(joined)
            connection.execute(
                _executions.update()
                .where(_executions.c.id == waiting.id)
                .values(trigger_detail=dumps(merged))
            )
            return int(waiting.id), False
    state = ExecutionState.QUEUED if free else ExecutionState.SCHEDULED
    message = None if free else f"waiting for a slot: max_active is {max_active}"
    values = {
        "pipeline": pipeline,
        "state": state.value,
        "trigger": trigger,
        "trigger_detail": dumps(dict(detail)),
        "scheduled_for": scheduled_for,
        "params": dumps(dict(params)),
        "attempts": 0,
        "attempt_log": "[]",
        "log": dumps([LogLine(at=now, state=state.value, message=message).to_json()]),
        "created_by": actor,
        "created_at": now,
    }
    insert = (
        store.upsert(_executions)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=[_executions.c.pipeline, _executions.c.scheduled_for]
        )
        .returning(_executions.c.id)
    )
    created = connection.execute(insert).scalar()
    return None if created is None else (int(created), True)


def promote_waiting(connection: Connection, pipeline: str, max_active: int, now: int) -> list[int]:
    """Queue the oldest waiting executions that fit now; call with the pipeline locked."""
    free = max_active - active_count(connection, pipeline)
    if free <= 0:
        return []
    rows = connection.execute(
        sa.select(_executions.c.id, _executions.c.log)
        .where(
            _executions.c.pipeline == pipeline,
            _executions.c.state == ExecutionState.SCHEDULED.value,
        )
        .order_by(_executions.c.id)
        .limit(free)
    ).all()
    for row in rows:
        line = LogLine(at=now, state=ExecutionState.QUEUED.value, message="a slot freed up")
        connection.execute(
            _executions.update()
            .where(_executions.c.id == row.id)
            .values(state=ExecutionState.QUEUED.value, log=append_log(row, [line]))
        )
    return [int(row.id) for row in rows]


def append_log(row: Row[Any] | Any, lines: Sequence[LogLine]) -> str:
    return dumps([*json.loads(row.log), *(line.to_json() for line in lines)])
