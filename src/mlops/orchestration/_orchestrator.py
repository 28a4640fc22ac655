"""``ml.pipelines``: register pipelines, fire their schedules and triggers, run, look back."""

from __future__ import annotations

import builtins
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mlops.errors import Conflict, InvalidInput, NotFound
from mlops.orchestration._control import (
    cancel_execution,
    definition_from_row,
    execution_target,
    not_found,
    save_definition,
    set_paused,
    unregister_pipeline,
)
from mlops.orchestration._executions import (
    Execution,
    ExecutionState,
    admit,
    append_log,
    execution_from_row,
    lock_pipeline,
)
from mlops.orchestration._notify import check_channels, notify_end
from mlops.orchestration._schedules import CATCHUP_LIMIT, fire_schedules
from mlops.orchestration._source import normalize_source, resolve_source
from mlops.orchestration._spec import (
    Notify,
    RegisteredPipeline,
    Trigger,
    check_params,
    check_spec,
)
from mlops.orchestration._triggers import poll_triggers
from mlops.orchestration._worker import claim_next, conclude, reap, run_claim
from mlops.pipelines import Pipeline
from mlops.registry._audited import audit
from mlops.store._schema import orchestrated_pipelines as _pipelines
from mlops.store._schema import pipeline_executions as _executions

if TYPE_CHECKING:
    from mlops._client import MLOps

__all__ = ["CATCHUP_LIMIT", "PipelineOrchestrator"]

_log = logging.getLogger(__name__)


class PipelineOrchestrator:
    """The pipelines of one mlops installation (``ml.pipelines``); thread-safe.

    ``tick()`` fires due schedules and triggers; ``work()`` runs queued executions in the
    calling thread; ``PipelineScheduler`` does both in the background. Any number of
    processes may tick and work on one database: each due time and each trigger event
    queues one execution, and each execution attempt runs on one worker.

    ``clock`` (seconds since the epoch) is the default "now"; ``lease`` is how long a
    running execution may go without a heartbeat (sent every ``heartbeat``) before a
    tick concludes its worker is gone.
    """

    def __init__(
        self,
        ml: MLOps,
        *,
        clock: Callable[[], float] = time.time,
        lease: float = 60.0,
        heartbeat: float = 10.0,
        rng: random.Random | None = None,
        worker_id: str | None = None,
    ) -> None:
        if not 0 < heartbeat < lease:
            raise InvalidInput(
                f"heartbeat ({heartbeat}s) must be positive and shorter than lease ({lease}s)"
            )
        self._ml = ml
        self._store = ml.store
        self._clock = clock
        self._lease_ms = round(lease * 1000)
        self._heartbeat = heartbeat
        self._rng = rng or random.Random()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def now_ms(self) -> int:
        """The orchestrator's clock, in ms since the epoch."""
        return self._now()

    def _now(self, now: int | None = None) -> int:
        # Rounded, not floored: a clock set to a due time in ms must read as that time.
        return round(self._clock() * 1000) if now is None else int(now)

    @property
    def _actor(self) -> str | None:
        return self._ml.registry.actor

    # -- registration -------------------------------------------------------------------

    def register(
        self,
        name: str,
        source: str | Pipeline,
        *,
        schedule: str | None = None,
        timezone: str = "UTC",
        catchup: bool = False,
        max_active: int = 1,
        triggers: Sequence[Trigger | Mapping[str, Any]] = (),
        params: Mapping[str, Any] | None = None,
        retries: int = 0,
        retry_backoff: float | str = "10s",
        retry_max_backoff: float | str = "10m",
        retry_jitter: float = 0.1,
        retry_on: Sequence[str] = (),
        timeout: float | str | None = None,
        executor: str = "local",
        notify: Notify | Mapping[str, Any] | None = None,
    ) -> RegisteredPipeline:
        """Register a pipeline, or update it (schedule cursor and trigger cursors are kept
        where the schedule and triggers are unchanged).

        Args:
            source: "package.module:attribute" naming a Pipeline (or a function of no
                arguments returning one), a YAML config path, or a Pipeline bound to a
                module-level name. It is imported now, to fail early.
            schedule: a cron expression read in ``timezone``; after downtime, only the
                latest missed due time fires unless ``catchup`` (then up to
                ``CATCHUP_LIMIT`` of the latest).
            max_active: executions active (queued, running, retrying) at once; a firing
                beyond it waits as ``scheduled`` (later firings join the one waiting).
            triggers: ``Trigger`` objects (or their dicts) that queue executions.
            params: the pipeline params every execution runs with.
            retries: attempts after a failure; each waits ``retry_backoff`` doubled per
                attempt up to ``retry_max_backoff``, ± ``retry_jitter`` of it.
            retry_on: retry only failures of these exception type names (default: any).
            timeout: per attempt, seconds or "30m"; checked before each step starts.
            notify: e.g. ``{"channels": ["ops-slack"], "on": ["failure", "success"]}``.
        """
        stored_source = normalize_source(source)
        definition = check_spec(
            {
                "name": name,
                "source": stored_source,
                "schedule": schedule,
                "timezone": timezone,
                "catchup": catchup,
                "max_active": max_active,
                "triggers": triggers,
                "params": params,
                "retries": retries,
                "retry_backoff": retry_backoff,
                "retry_max_backoff": retry_max_backoff,
                "retry_jitter": retry_jitter,
                "retry_on": retry_on,
                "timeout": timeout,
                "executor": executor,
                "notify": notify,
            }
        )
        self._check_params(definition, definition.params)
        check_channels(self._store, definition.notify)
        save_definition(self._store, definition, self._actor, self._now())
        return self.get(name)

    def set_schedule(
        self, name: str, schedule: str | None, *, timezone: str | None = None
    ) -> RegisteredPipeline:
        """Set, replace or (with None) clear the schedule of a registered pipeline."""
        current = self.get(name)
        params = current.get_params()
        del params["name"], params["source"]
        params.update(schedule=schedule, timezone=timezone or current.timezone)
        params["triggers"] = current.triggers
        return self.register(name, current.source, **params)

    def get(self, name: str) -> RegisteredPipeline:
        with self._store.read() as connection:
            row = connection.execute(sa.select(_pipelines).where(_pipelines.c.name == name)).first()
        if row is None:
            raise not_found(name)
        return definition_from_row(row)

    def list(self, *, paused: bool | None = None) -> builtins.list[RegisteredPipeline]:
        """Every registered pipeline, by name; ``paused`` filters."""
        query = sa.select(_pipelines).order_by(_pipelines.c.name)
        if paused is not None:
            query = query.where(_pipelines.c.paused == int(paused))
        with self._store.read() as connection:
            return [definition_from_row(row) for row in connection.execute(query)]

    def unregister(self, name: str) -> None:
        """Forget a pipeline: its waiting and queued executions are cancelled, running
        ones are asked to stop; the history of its executions stays."""
        unregister_pipeline(self._store, name, self._now())

    def pause(self, name: str, *, actor: str | None = None) -> RegisteredPipeline:
        """Stop firing the schedule and triggers (manual triggers still run).

        ``actor`` is who the audit log records (default: the connection's user).
        """
        return self._set_paused(name, True, actor)

    def resume(self, name: str, *, actor: str | None = None) -> RegisteredPipeline:
        """Fire again: a missed due time fires as after downtime (see ``catchup``); events
        recorded while paused are not replayed. ``actor`` as for ``pause``."""
        return self._set_paused(name, False, actor)

    def _set_paused(self, name: str, paused: bool, actor: str | None) -> RegisteredPipeline:
        set_paused(self._store, name, paused, self._now(), actor or self._actor)
        return self.get(name)

    # -- executions ---------------------------------------------------------------------

    def trigger(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
        source: str = "manual",
        actor: str | None = None,
    ) -> Execution:
        """Queue an execution now (it waits as ``scheduled`` if ``max_active`` are active).

        ``params`` override the registered ones for this execution. ``source="webhook"``
        (an outside system asking) needs a ``Trigger.webhook()`` among the triggers.
        ``actor`` is who the execution and the audit log record (default: the
        connection's user).
        """
        if source not in ("manual", Trigger.WEBHOOK):
            raise InvalidInput(f"source must be 'manual' or 'webhook'; got {source!r}")
        if reason is not None and not isinstance(reason, str):
            raise InvalidInput(f"reason must be text; got {reason!r}")
        definition = self.get(name)
        if source == Trigger.WEBHOOK and not any(
            trigger.kind == Trigger.WEBHOOK for trigger in definition.triggers
        ):
            raise Conflict(
                f"pipeline {name!r} does not accept webhook triggers; register it with "
                "triggers=[Trigger.webhook()]"
            )
        overrides = check_params(params)
        self._check_params(definition, overrides)
        now = self._now()
        who = actor or self._actor
        detail = {"reason": reason, "actor": who}
        with self._store.write() as connection:
            row = lock_pipeline(self._store, connection, name)
            if row is None:
                raise not_found(name)
            spec = check_spec(json.loads(row.spec))
            admitted = admit(
                self._store,
                connection,
                pipeline=name,
                max_active=spec.max_active,
                trigger=source,
                detail=detail,
                params={**spec.params, **overrides},
                now=now,
                actor=who,
                coalesce=False,
            )
            assert admitted is not None  # no scheduled_for: nothing to conflict with
            audit(
                connection,
                "pipeline.triggered",
                execution_target(name, admitted[0]),
                actor=who,
                after={"trigger": source, "reason": reason, "params": overrides},
            )
        return self.execution(admitted[0])

    def cancel(
        self, execution_id: int, *, reason: str | None = None, actor: str | None = None
    ) -> Execution:
        """Cancel an execution: at once if it waits, is queued or is retrying; a running
        one stops before its next step starts. Conflict if it has already ended.

        ``actor`` is who the execution's log and the audit log record (default: the
        connection's user).
        """
        current = self.execution(execution_id)
        cancel_execution(
            self._store, execution_id, current.pipeline, reason, self._now(), actor or self._actor
        )
        return self.execution(execution_id)

    def execution(self, execution_id: int) -> Execution:
        """One execution, with its attempts and its log."""
        if isinstance(execution_id, bool) or not isinstance(execution_id, int):
            raise InvalidInput(f"an execution id is an integer; got {execution_id!r}")
        with self._store.read() as connection:
            row = connection.execute(
                sa.select(_executions).where(_executions.c.id == execution_id)
            ).first()
        if row is None:
            raise NotFound(
                f"there is no pipeline execution {execution_id}; see `mlops pipeline runs`"
            )
        return execution_from_row(row)

    def executions(
        self,
        name: str | None = None,
        *,
        state: ExecutionState | str | None = None,
        limit: int = 50,
    ) -> builtins.list[Execution]:
        """Executions, newest first; of pipeline ``name``, in ``state``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive integer; got {limit!r}")
        query = sa.select(_executions).order_by(_executions.c.id.desc()).limit(limit)
        if name is not None:
            query = query.where(_executions.c.pipeline == name)
        if state is not None:
            try:
                wanted = ExecutionState(state)
            except ValueError:
                raise InvalidInput(
                    f"execution state {state!r} is unknown; use one of "
                    f"{', '.join(item.value for item in ExecutionState)}"
                ) from None
            query = query.where(_executions.c.state == wanted.value)
        with self._store.read() as connection:
            return [execution_from_row(row) for row in connection.execute(query)]

    # -- loops --------------------------------------------------------------------------

    def tick(self, now: int | None = None) -> builtins.list[Execution]:
        """Fire due schedules, poll triggers and conclude timed-out or orphaned attempts;
        returns the executions this tick created (queued, or waiting for a slot)."""
        at = self._now(now)
        created = fire_schedules(self._store, at)
        created += poll_triggers(self._store, at)
        for execution in reap(self._store, at, self._lease_ms, self._rng.random):
            if execution.state.finished:
                try:
                    notify = self.get(execution.pipeline).notify
                except NotFound:
                    continue
                self._notify(notify, execution)
        return [self.execution(execution_id) for execution_id in created]

    def work(
        self,
        now: int | None = None,
        *,
        max_executions: int = 1,
        stopping: Callable[[], bool] | None = None,
    ) -> builtins.list[Execution]:
        """Claim and run up to ``max_executions`` runnable executions here, one after
        another; returns each as its attempt ended (succeeded, retrying, failed…).

        ``now`` is when the claim is made (what is due); ``stopping`` returning True makes
        a running execution stop at its next step and go back to the queue.
        """
        if isinstance(max_executions, bool) or not isinstance(max_executions, int):
            raise InvalidInput(f"max_executions must be an integer; got {max_executions!r}")
        finished = []
        for _ in range(max_executions):
            claim = claim_next(self._store, self.worker_id, self._now(now))
            if claim is None:
                break
            outcome = run_claim(
                self._ml,
                claim,
                clock_ms=self._now,
                stopping=stopping or (lambda: False),
                heartbeat_seconds=self._heartbeat,
            )
            execution = conclude(
                self._store, claim.id, claim.attempt, outcome, self._now(), self._rng.random
            )
            if execution is None:
                _log.warning(
                    "execution %d attempt %d ended %s after it was concluded elsewhere",
                    claim.id,
                    claim.attempt,
                    outcome.kind,
                )
                execution = self.execution(claim.id)
            elif execution.state.finished:
                execution = self._notify(claim.definition.notify, execution)
            finished.append(execution)
        return finished

    def next_due(self) -> int | None:
        """The earliest due time of any schedule not paused (ms), if there is one."""
        query = sa.select(sa.func.min(_pipelines.c.next_fire_at)).where(_pipelines.c.paused == 0)
        with self._store.read() as connection:
            value = connection.execute(query).scalar()
        return None if value is None else int(value)

    # -- internals ----------------------------------------------------------------------

    def _notify(self, notify: Notify | None, execution: Execution) -> Execution:
        lines = notify_end(self._store, notify, execution, self._now())
        if not lines:
            return execution
        with self._store.write() as connection:
            query = sa.select(_executions.c.log).where(_executions.c.id == execution.id)
            row = connection.execute(query).one()
            connection.execute(
                _executions.update()
                .where(_executions.c.id == execution.id)
                .values(log=append_log(row, lines))
            )
        return self.execution(execution.id)

    def _check_params(self, definition: RegisteredPipeline, params: Mapping[str, Any]) -> None:
        """Resolve the source with ``params`` (and the registered ones): every mistake is
        an error now rather than a failed execution later."""
        resolve_source(definition.source, {**definition.params, **params})
