"""Running executions: claim one, run it as a tracked pipeline run, conclude the attempt.

A claim moves one queued (or due retrying) execution to running with a conditional
UPDATE that one worker wins (``FOR UPDATE SKIP LOCKED`` on PostgreSQL lets concurrent
workers pass each other). While it runs, the worker writes a heartbeat, the run id and
a log line per step. The attempt ends in one transaction: succeeded, cached, cancelled,
retrying (exponential backoff with jitter), failed or timed out; a stale worker (its
attempt already concluded by a tick, e.g. for its timeout) changes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mlops.errors import MLOpsError
from mlops.orchestration._executions import (
    Attempt,
    Execution,
    ExecutionState,
    LogLine,
    append_log,
    dumps,
    execution_from_row,
    lock_pipeline,
    promote_waiting,
)
from mlops.orchestration._source import resolve_source
from mlops.orchestration._spec import RegisteredPipeline, check_spec
from mlops.pipelines import PipelineRun, PipelineState, StepEvent, StepState, run_pipeline
from mlops.pipelines._execute import error_summary
from mlops.store import Store
from mlops.store._schema import orchestrated_pipelines as _pipelines
from mlops.store._schema import pipeline_executions as _executions

if TYPE_CHECKING:
    from mlops._client import MLOps

__all__ = ["Claim", "Outcome", "claim_next", "conclude", "reap", "run_claim"]

_log = logging.getLogger(__name__)

# How an attempt ended, as ``conclude`` is told (``Outcome.kind``).
SUCCEEDED = "succeeded"
CACHED = "cached"
FAILED = "failed"
TIMED_OUT = "timed_out"
CANCELLED = "cancelled"
LOST = "lost"  # its worker stopped beating, or a tick concluded it first
INTERRUPTED = "interrupted"  # its worker shut down: queued again, no retry used
_FAILURES = (FAILED, TIMED_OUT, LOST)


@dataclass(frozen=True, slots=True)
class Claim:
    """An execution this worker now runs: attempt ``attempt`` of it."""

    id: int
    pipeline: str
    attempt: int
    params: dict[str, Any]
    definition: RegisteredPipeline
    started_at: int
    deadline_at: int | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended; ``error`` is "Type: message"."""

    kind: str
    error: str | None = None
    run_id: str | None = None


def claim_next(store: Store, worker: str, now: int) -> Claim | None:
    """Claim the oldest runnable execution, or None when there is none."""
    runnable = sa.or_(
        _executions.c.state == ExecutionState.QUEUED.value,
        sa.and_(
            _executions.c.state == ExecutionState.RETRYING.value,
            _executions.c.next_attempt_at <= now,
        ),
    )
    query = sa.select(_executions).where(runnable).order_by(_executions.c.id).limit(1)
    if not store.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    with store.write() as connection:
        row = connection.execute(query).first()
        if row is None:
            return None
        spec = connection.execute(
            sa.select(_pipelines.c.spec).where(_pipelines.c.name == row.pipeline)
        ).scalar()
        attempt = int(row.attempts) + 1
        if spec is None:  # unregistered in between: unregister cancels, so rarely seen
            connection.execute(
                _executions.update()
                .where(_executions.c.id == row.id, _executions.c.state == row.state)
                .values(
                    state=ExecutionState.CANCELLED.value,
                    error="the pipeline was unregistered",
                    finished_at=now,
                )
            )
            return None
        definition = check_spec(json.loads(spec))
        deadline = None if definition.timeout is None else now + round(definition.timeout * 1000)
        attempts = [*json.loads(row.attempt_log), Attempt(attempt, now, worker=worker).stored()]
        line = LogLine(at=now, attempt=attempt, state="running", message=f"on worker {worker}")
        claimed = connection.execute(
            _executions.update()
            .where(_executions.c.id == row.id, _executions.c.state == row.state)
            .values(
                state=ExecutionState.RUNNING.value,
                attempts=attempt,
                attempt_log=dumps(attempts),
                log=append_log(row, [line]),
                worker=worker,
                next_attempt_at=None,
                deadline_at=deadline,
                heartbeat_at=now,
                started_at=row.started_at if row.started_at is not None else now,
            )
        ).rowcount
        if not claimed:
            return None
    return Claim(
        id=int(row.id),
        pipeline=row.pipeline,
        attempt=attempt,
        params=json.loads(row.params),
        definition=definition,
        started_at=now,
        deadline_at=deadline,
    )


class _Attempt:
    """What runs beside one attempt: the stop check, step events and a heartbeat."""

    def __init__(
        self,
        store: Store,
        claim: Claim,
        clock_ms: Callable[[], int],
        stopping: Callable[[], bool],
        heartbeat_seconds: float,
    ) -> None:
        self._store = store
        self._claim = claim
        self._clock_ms = clock_ms
        self._stopping = stopping
        self._heartbeat_seconds = heartbeat_seconds
        self._done = threading.Event()
        self.stop_reason: str | None = None
        self.run_id: str | None = None

    def _mine(self) -> Any:
        return sa.and_(
            _executions.c.id == self._claim.id,
            _executions.c.state == ExecutionState.RUNNING.value,
            _executions.c.attempts == self._claim.attempt,
        )

    def should_stop(self) -> bool:
        if self._stopping():
            self.stop_reason = INTERRUPTED
        elif self._claim.deadline_at is not None and self._clock_ms() >= self._claim.deadline_at:
            self.stop_reason = TIMED_OUT
        else:
            with self._store.read() as connection:
                row = connection.execute(
                    sa.select(_executions.c.cancel_requested).where(self._mine())
                ).first()
            if row is None:
                self.stop_reason = LOST  # a tick concluded this attempt (e.g. its timeout)
            elif row.cancel_requested:
                self.stop_reason = CANCELLED
        return self.stop_reason is not None

    def on_step(self, event: StepEvent) -> None:
        record = event.record
        first = self.run_id is None
        self.run_id = event.pipeline_run_id
        if record is None and not first:
            return  # a step started: only the first start has news (the run id)
        query = sa.select(_executions).where(self._mine())
        if not self._store.is_sqlite:
            query = query.with_for_update()
        with self._store.write() as connection:
            row = connection.execute(query).first()
            if row is None:
                return
            values: dict[str, Any] = {"heartbeat_at": self._clock_ms()}
            if first:
                attempts = json.loads(row.attempt_log)
                attempts[-1]["run_id"] = event.pipeline_run_id
                values["attempt_log"] = dumps(attempts)
            if record is not None:
                line = LogLine(
                    at=record.ended_at or self._clock_ms(),
                    attempt=self._claim.attempt,
                    step=record.name,
                    state=record.state.value,
                    duration_ms=record.duration_ms,
                    error=record.error,
                )
                values["log"] = append_log(row, [line])
            connection.execute(_executions.update().where(self._mine()).values(**values))

    def __enter__(self) -> _Attempt:
        thread = threading.Thread(
            target=self._beat, name=f"mlops-execution-{self._claim.id}", daemon=True
        )
        thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()

    def _beat(self) -> None:
        while not self._done.wait(self._heartbeat_seconds):
            try:
                with self._store.write() as connection:
                    connection.execute(
                        _executions.update()
                        .where(self._mine())
                        .values(heartbeat_at=self._clock_ms())
                    )
            except MLOpsError as error:  # the next beat tries again
                _log.warning("heartbeat of execution %d failed: %s", self._claim.id, error)


def run_claim(
    ml: MLOps,
    claim: Claim,
    *,
    clock_ms: Callable[[], int],
    stopping: Callable[[], bool],
    heartbeat_seconds: float,
) -> Outcome:
    """Run the claimed attempt to its end; what it raises becomes a failed outcome."""
    with _Attempt(ml.store, claim, clock_ms, stopping, heartbeat_seconds) as attempt:
        try:
            pipeline, params = resolve_source(claim.definition.source, claim.params)
            # The timeout also bounds the step running at the deadline: the executor
            # stops it there (a worker process killed), so a retry never overlaps it.
            left = None
            if claim.deadline_at is not None:
                left = max(0.001, (claim.deadline_at - clock_ms()) / 1000)
            result = run_pipeline(
                ml,
                pipeline,
                params=params or None,
                executor=claim.definition.executor,
                # The experiment `mlops pipeline run` uses too: one place for all its runs.
                experiment=pipeline.name,
                should_stop=attempt.should_stop,
                on_step=attempt.on_step,
                time_limit=left,
            )
        except Exception as error:  # an import error, bad params, the store failing
            return Outcome(FAILED, error_summary(error), attempt.run_id)
    return _outcome(claim, result, attempt.stop_reason)


def _outcome(claim: Claim, result: PipelineRun, stop_reason: str | None) -> Outcome:
    if result.state is PipelineState.SUCCEEDED:
        cached = all(record.state is StepState.CACHED for record in result.steps)
        return Outcome(CACHED if cached else SUCCEEDED, None, result.run_id)
    if result.state is PipelineState.CANCELLED:
        reason = stop_reason or CANCELLED
        return Outcome(reason, _stop_error(claim, reason), result.run_id)
    if result.state is PipelineState.TIMED_OUT:
        return Outcome(TIMED_OUT, _stop_error(claim, TIMED_OUT), result.run_id)
    failed = result.failed_steps
    if failed:
        error = f"{failed[0].error} (step {failed[0].name!r})"
    else:
        error = f"PipelineFailed: pipeline {result.pipeline!r} ended {result.state.value}"
    return Outcome(FAILED, error, result.run_id)


def _stop_error(claim: Claim, reason: str) -> str | None:
    if reason == TIMED_OUT:
        return (
            f"ExecutionTimeout: attempt {claim.attempt} ran past the timeout of "
            f"{claim.definition.timeout:g}s"
        )
    if reason == INTERRUPTED:
        return "Interrupted: the worker shut down; the execution is queued again"
    if reason == LOST:
        return None
    return "Cancelled: cancelled on request"


def conclude(
    store: Store,
    execution_id: int,
    attempt: int,
    outcome: Outcome,
    now: int,
    draw: Callable[[], float],
) -> Execution | None:
    """End attempt ``attempt`` of an execution; None if it was already concluded."""
    with store.read() as connection:
        pipeline = connection.execute(
            sa.select(_executions.c.pipeline).where(_executions.c.id == execution_id)
        ).scalar()
    if pipeline is None:
        return None
    with store.write() as connection:
        definition_row = lock_pipeline(store, connection, pipeline)
        query = sa.select(_executions).where(_executions.c.id == execution_id)
        row = connection.execute(query if store.is_sqlite else query.with_for_update()).first()
        if row is None or row.state != ExecutionState.RUNNING.value or row.attempts != attempt:
            return None
        definition = None if definition_row is None else check_spec(json.loads(definition_row.spec))
        attempts = json.loads(row.attempt_log)
        current = attempts[-1]
        current.update(ended_at=now, state=outcome.kind, error=outcome.error)
        if outcome.run_id is not None:
            current["run_id"] = outcome.run_id
        failures = sum(item.get("state") in _FAILURES for item in attempts)
        state, next_at, message = _next_state(definition, row, outcome, failures, now, draw)
        line = LogLine(at=now, attempt=attempt, state=state.value, message=message)
        values: dict[str, Any] = {
            "state": state.value,
            "attempt_log": dumps(attempts),
            "log": append_log(row, [line]),
            "error": None if outcome.kind in (SUCCEEDED, CACHED, INTERRUPTED) else outcome.error,
            "next_attempt_at": next_at,
            "deadline_at": None,
            "worker": None,
        }
        if state.finished:
            values["finished_at"] = now
        connection.execute(
            _executions.update().where(_executions.c.id == execution_id).values(**values)
        )
        if not state.active and definition is not None:
            promote_waiting(connection, pipeline, definition.max_active, now)
        updated = connection.execute(
            sa.select(_executions).where(_executions.c.id == execution_id)
        ).one()
    return execution_from_row(updated)


def _next_state(
    definition: RegisteredPipeline | None,
    row: Any,
    outcome: Outcome,
    failures: int,
    now: int,
    draw: Callable[[], float],
) -> tuple[ExecutionState, int | None, str | None]:
    """The state after an attempt, when to retry, and a note for the log."""
    if outcome.kind == SUCCEEDED:
        return ExecutionState.SUCCEEDED, None, None
    if outcome.kind == CACHED:
        return ExecutionState.CACHED, None, "every step came from the cache"
    if outcome.kind == INTERRUPTED:
        return ExecutionState.QUEUED, None, "interrupted by a worker shutdown; queued again"
    if outcome.kind == CANCELLED or (row.cancel_requested and outcome.kind == LOST):
        return ExecutionState.CANCELLED, None, None
    final = ExecutionState.TIMED_OUT if outcome.kind == TIMED_OUT else ExecutionState.FAILED
    if definition is None or row.cancel_requested:
        return final, None, None
    if failures > definition.retries:
        return final, None, f"no retries left ({definition.retries} allowed)"
    if not definition.retryable(outcome.error):
        return final, None, f"not retried: retry_on is {', '.join(definition.retry_on)}"
    delay = definition.backoff(failures, draw())
    return (
        ExecutionState.RETRYING,
        now + round(delay * 1000),
        f"retry {failures} of {definition.retries} in {delay:.3g}s",
    )


def reap(store: Store, now: int, lease_ms: int, draw: Callable[[], float]) -> list[Execution]:
    """Conclude the running attempts whose worker stopped beating for ``lease_ms``: a
    worker that is alive concludes its own attempt, its deadline included (the run's time
    limit stops the step running then), so a retry never runs beside the attempt."""
    query = sa.select(
        _executions.c.id,
        _executions.c.attempts,
        _executions.c.deadline_at,
        _executions.c.worker,
    ).where(
        _executions.c.state == ExecutionState.RUNNING.value,
        _executions.c.heartbeat_at < now - lease_ms,
    )
    with store.read() as connection:
        rows = connection.execute(query).all()
    concluded = []
    for row in rows:
        if row.deadline_at is not None and row.deadline_at <= now:
            outcome = Outcome(
                TIMED_OUT,
                f"ExecutionTimeout: attempt {row.attempts} was still running at its deadline, "
                f"and its worker {row.worker} stopped reporting for {lease_ms / 1000:g}s",
            )
        else:
            outcome = Outcome(
                LOST,
                f"WorkerLost: worker {row.worker} stopped reporting for {lease_ms / 1000:g}s",
            )
        execution = conclude(store, int(row.id), int(row.attempts), outcome, now, draw)
        if execution is not None:
            concluded.append(execution)
    return concluded
