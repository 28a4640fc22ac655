"""The background scheduler in real time: a due schedule runs; stopping requeues work."""

from __future__ import annotations

import threading
import time

import pytest

import mlops
from mlops.errors import InvalidInput
from mlops.orchestration import Execution, ExecutionState, PipelineOrchestrator, PipelineScheduler
from orchestration.flows import Control


def _wait_for(orchestrator: PipelineOrchestrator, name: str, state: str) -> list[Execution]:
    """Poll until an execution of ``name`` is in ``state`` (a real-time loop: no clock
    to move); give up after 60 s (a liveness bound for a loaded machine, not a timing)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = orchestrator.executions(name, state=state)
        if found:
            return found
        time.sleep(0.05)
    return []


def test_a_due_schedule_runs_within_moments_in_the_background(ml: mlops.MLOps) -> None:
    # A clock that runs at real speed but reads one second before a minute boundary.
    offset = (60 - time.time() % 60) - 1.0
    orchestrator = PipelineOrchestrator(ml, clock=lambda: time.time() + offset)
    registered = orchestrator.register(
        "hello", "orchestration.flows:hello", schedule="* * * * *", executor="threads"
    )
    due = registered.next_fire_at
    assert due is not None
    with PipelineScheduler(orchestrator, interval=1.0, workers=2):
        found = _wait_for(orchestrator, "hello", "succeeded")
    assert [execution.scheduled_for for execution in found] == [due]
    assert (found[0].started_at or 0) >= due  # never early


def test_stopping_the_scheduler_puts_a_running_execution_back_in_the_queue(
    ml: mlops.MLOps, control: Control
) -> None:
    orchestrator = PipelineOrchestrator(ml)
    orchestrator.register("gated", "orchestration.flows:gated", executor="threads")
    queued = orchestrator.trigger("gated")
    scheduler = PipelineScheduler(orchestrator, interval=0.2, workers=1)
    scheduler.start()
    assert control.entered.wait(20)
    stopper = threading.Thread(target=scheduler.stop)
    stopper.start()
    control.gate.set()  # the step ends; the stop is noticed before the next one starts
    stopper.join(30)
    assert not scheduler.running
    execution = orchestrator.execution(queued.id)
    assert execution.state is ExecutionState.QUEUED
    assert [attempt.state for attempt in execution.attempts] == ["interrupted"]
    assert "after_gate" not in control.calls


@pytest.mark.parametrize(
    ("options", "message"),
    [({"interval": 0}, "interval must be a positive"), ({"workers": 0}, "workers must be")],
)
def test_scheduler_options_are_checked(
    orchestrator: PipelineOrchestrator, options: dict[str, float], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        PipelineScheduler(orchestrator, **options)  # type: ignore[arg-type]
