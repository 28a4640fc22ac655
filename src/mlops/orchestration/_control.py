"""Changes made by people: saving a definition, unregistering, pausing, cancelling."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from mlops.errors import Conflict, NotFound
from mlops.orchestration._executions import (
    ExecutionState,
    LogLine,
    append_log,
    dumps,
    lock_pipeline,
    promote_waiting,
)
from mlops.orchestration._schedules import first_due
from mlops.orchestration._spec import RegisteredPipeline, check_spec, with_state
from mlops.orchestration._triggers import reset_cursors, sync_triggers
from mlops.registry._audited import audit
from mlops.store import Store
from mlops.store._schema import orchestrated_pipelines as _pipelines
from mlops.store._schema import pipeline_executions as _executions

__all__ = [
    "HINT",
    "cancel_execution",
    "definition_from_row",
    "execution_target",
    "not_found",
    "pipeline_target",
    "save_definition",
    "set_paused",
    "unregister_pipeline",
]

HINT = "see the registered pipelines with `mlops pipeline list` or ml.pipelines.list()"
_PENDING = (ExecutionState.SCHEDULED, ExecutionState.QUEUED, ExecutionState.RETRYING)


def pipeline_target(name: str) -> str:
    """A pipeline as the audit log names it."""
    return f"pipelines/{name}"


def execution_target(pipeline: str, execution_id: int) -> str:
    """An execution as the audit log names it."""
    return f"pipelines/{pipeline}/executions/{execution_id}"


def not_found(name: str) -> NotFound:
    return NotFound(f"there is no registered pipeline {name!r}; {HINT}")


def definition_from_row(row: Any) -> RegisteredPipeline:
    return with_state(
        check_spec(json.loads(row.spec)),
        paused=bool(row.paused),
        next_fire_at=row.next_fire_at,
        row=row,
    )


def save_definition(
    store: Store, definition: RegisteredPipeline, actor: str | None, now: int
) -> None:
    """Insert or update a definition; the schedule cursor stays where the schedule and
    time zone are unchanged, trigger cursors where the triggers are."""
    spec_json = dumps(definition.get_params())
    with store.write() as connection:
        insert = store.upsert(_pipelines).on_conflict_do_nothing(index_elements=[_pipelines.c.name])
        connection.execute(
            insert.values(
                name=definition.name,
                spec=spec_json,
                paused=0,
                next_fire_at=first_due(definition, now),
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
        )
        row = lock_pipeline(store, connection, definition.name)
        assert row is not None  # inserted, or there already, in this transaction
        if row.spec != spec_json:
            before = check_spec(json.loads(row.spec))
            same = (before.schedule, before.timezone) == (definition.schedule, definition.timezone)
            connection.execute(
                _pipelines.update()
                .where(_pipelines.c.id == row.id)
                .values(
                    spec=spec_json,
                    next_fire_at=row.next_fire_at if same else first_due(definition, now),
                    updated_at=now,
                )
            )
        sync_triggers(connection, int(row.id), definition.triggers, now)
        promote_waiting(connection, definition.name, definition.max_active, now)


def unregister_pipeline(store: Store, name: str, now: int) -> None:
    """Delete a definition; pending executions are cancelled, running ones asked to stop."""
    with store.write() as connection:
        if lock_pipeline(store, connection, name) is None:
            raise not_found(name)
        mine = _executions.c.pipeline == name
        connection.execute(
            _executions.update()
            .where(mine, _executions.c.state.in_([state.value for state in _PENDING]))
            .values(
                state=ExecutionState.CANCELLED.value,
                error="Cancelled: the pipeline was unregistered",
                next_attempt_at=None,
                finished_at=now,
            )
        )
        connection.execute(
            _executions.update()
            .where(mine, _executions.c.state == ExecutionState.RUNNING.value)
            .values(cancel_requested=1)
        )
        connection.execute(_pipelines.delete().where(_pipelines.c.name == name))


def set_paused(store: Store, name: str, paused: bool, now: int, actor: str | None) -> None:
    """Pause or resume, audited as ``actor``; nothing changes (nor is audited) when the
    pipeline is already so."""
    with store.write() as connection:
        row = lock_pipeline(store, connection, name)
        if row is None:
            raise not_found(name)
        if bool(row.paused) == paused:
            return
        connection.execute(
            _pipelines.update()
            .where(_pipelines.c.id == row.id)
            .values(paused=int(paused), updated_at=now)
        )
        if not paused:
            reset_cursors(connection, int(row.id))
        audit(
            connection,
            "pipeline.paused" if paused else "pipeline.resumed",
            pipeline_target(name),
            actor=actor,
            before={"paused": not paused},
            after={"paused": paused},
        )


def cancel_execution(
    store: Store,
    execution_id: int,
    pipeline: str,
    reason: str | None,
    now: int,
    actor: str | None,
) -> None:
    """Cancel at once unless running (then ask it to stop), audited as ``actor``;
    Conflict once it has ended."""
    with store.write() as connection:
        definition = lock_pipeline(store, connection, pipeline)
        query = sa.select(_executions).where(_executions.c.id == execution_id)
        row = connection.execute(query if store.is_sqlite else query.with_for_update()).one()
        state = ExecutionState(row.state)
        if state.finished:
            raise Conflict(
                f"execution {execution_id} of pipeline {row.pipeline!r} already "
                f"{state.value.replace('_', ' ')}; there is nothing to cancel"
            )
        text = "cancelled" + (f" by {actor}" if actor else "") + (f": {reason}" if reason else "")
        values: dict[str, Any]
        if state is ExecutionState.RUNNING:
            line = LogLine(at=now, state="cancel_requested", message=text)
            values = {"cancel_requested": 1}
        else:
            line = LogLine(at=now, state=ExecutionState.CANCELLED.value, message=text)
            values = {
                "state": ExecutionState.CANCELLED.value,
                "error": f"Cancelled: {reason or 'cancelled on request'}",
                "finished_at": now,
                "next_attempt_at": None,
            }
        connection.execute(
            _executions.update()
            .where(_executions.c.id == execution_id)
            .values(log=append_log(row, [line]), **values)
        )
        if definition is not None and state is not ExecutionState.RUNNING:
            spec = check_spec(json.loads(definition.spec))
            promote_waiting(connection, pipeline, spec.max_active, now)
        after: dict[str, Any] = {"state": values.get("state", state.value), "reason": reason}
        if state is ExecutionState.RUNNING:
            after["cancel_requested"] = True
        audit(
            connection,
            "pipeline.execution_cancelled",
            execution_target(row.pipeline, execution_id),
            actor=actor,
            before={"state": state.value},
            after=after,
        )
