"""Who did it: triggering, cancelling, pausing and resuming are recorded under the caller
and appended to the audit log in the change's own transaction."""

from __future__ import annotations

import pytest

import mlops
from mlops.errors import Conflict, NotFound
from mlops.governance import AuditEntry
from mlops.orchestration import ExecutionState, PipelineOrchestrator
from mlops.store._schema import pipeline_executions

HELLO = "orchestration.flows:hello"


class Trail:
    """The audit entries appended since the last look (PostgreSQL keeps older ones)."""

    def __init__(self, ml: mlops.MLOps) -> None:
        self._ml = ml
        newest = ml.audit.list(limit=1)
        self._seen = newest[0].id if newest else 0

    def new(self) -> list[AuditEntry]:
        entries = [e for e in self._ml.audit.list(limit=100) if e.id > self._seen]
        entries.reverse()
        if entries:
            self._seen = entries[-1].id
        return entries


def test_trigger_and_cancel_record_the_caller(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator
) -> None:
    orchestrator.register("hello", HELLO)
    trail = Trail(ml)

    queued = orchestrator.trigger("hello", {"rows": 4}, reason="new data", actor="alice")
    assert queued.created_by == "alice"
    assert queued.trigger_detail["actor"] == "alice"
    [entry] = trail.new()
    target = f"pipelines/hello/executions/{queued.id}"
    assert (entry.action, entry.target, entry.actor) == ("pipeline.triggered", target, "alice")
    assert entry.before is None
    assert entry.after == {"trigger": "manual", "reason": "new data", "params": {"rows": 4}}

    cancelled = orchestrator.cancel(queued.id, reason="wrong data", actor="bob")
    assert cancelled.state is ExecutionState.CANCELLED
    assert "cancelled by bob: wrong data" in [line.message for line in cancelled.log]
    [entry] = trail.new()
    assert (entry.action, entry.target, entry.actor) == (
        "pipeline.execution_cancelled",
        target,
        "bob",
    )
    assert entry.before == {"state": "queued"}
    assert entry.after == {"state": "cancelled", "reason": "wrong data"}

    with pytest.raises(Conflict):  # already ended: nothing changes, nothing is audited
        orchestrator.cancel(queued.id, actor="bob")
    assert trail.new() == []


def test_without_an_actor_the_connection_s_user_is_recorded(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator
) -> None:
    orchestrator.register("hello", HELLO)
    trail = Trail(ml)
    queued = orchestrator.trigger("hello")
    assert queued.created_by == ml.registry.actor
    assert queued.trigger_detail["actor"] == ml.registry.actor
    orchestrator.cancel(queued.id)
    assert [(e.action, e.actor) for e in trail.new()] == [
        ("pipeline.triggered", ml.registry.actor),
        ("pipeline.execution_cancelled", ml.registry.actor),
    ]


def test_pause_and_resume_are_audited_once_per_change(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator
) -> None:
    orchestrator.register("hello", HELLO, schedule="0 3 * * *")
    trail = Trail(ml)

    assert orchestrator.pause("hello", actor="carol").paused is True
    assert orchestrator.pause("hello", actor="carol").paused is True  # no change: no entry
    assert orchestrator.resume("hello", actor="dave").paused is False
    entries = [(e.action, e.target, e.actor, e.before, e.after) for e in trail.new()]
    assert entries == [
        ("pipeline.paused", "pipelines/hello", "carol", {"paused": False}, {"paused": True}),
        ("pipeline.resumed", "pipelines/hello", "dave", {"paused": True}, {"paused": False}),
    ]

    with pytest.raises(NotFound):
        orchestrator.pause("missing", actor="carol")
    assert trail.new() == []


def test_cancelling_a_running_execution_is_audited_as_a_request(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator
) -> None:
    """A running execution only gets a stop request; the audit entry says so."""
    orchestrator.register("hello", HELLO)
    queued = orchestrator.trigger("hello", actor="alice")
    with ml.store.write() as connection:  # as a worker that claimed it
        connection.execute(
            pipeline_executions.update()
            .where(pipeline_executions.c.id == queued.id)
            .values(state=ExecutionState.RUNNING.value)
        )
    trail = Trail(ml)
    asked = orchestrator.cancel(queued.id, actor="erin")
    assert asked.cancel_requested is True
    [entry] = trail.new()
    assert (entry.action, entry.actor, entry.before) == (
        "pipeline.execution_cancelled",
        "erin",
        {"state": "running"},
    )
    assert entry.after == {"state": "running", "reason": None, "cancel_requested": True}
