"""Running executions: outcomes, retries with backoff, retry_on, timeouts, cancel, workers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import mlops
from mlops.errors import Conflict, InvalidInput, NotFound
from mlops.orchestration import Execution, ExecutionState, PipelineOrchestrator
from mlops.tracking import RunStatus
from orchestration.flows import Control

FLAKY = "orchestration.flows:flaky"


@contextmanager
def working(orchestrator: PipelineOrchestrator) -> Iterator[list[Execution]]:
    """Run ``work()`` in a thread; the list gets what it returned once the block ends."""
    finished: list[Execution] = []
    thread = threading.Thread(target=lambda: finished.extend(orchestrator.work()))
    thread.start()
    try:
        yield finished
    finally:
        thread.join(30)
    assert not thread.is_alive()


def test_an_execution_runs_as_a_tracked_pipeline_run_with_a_step_log(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator
) -> None:
    orchestrator.register("hello", "orchestration.flows:hello")  # the default executor
    queued = orchestrator.trigger("hello", {"rows": 4})
    [done] = orchestrator.work()

    assert (done.id, done.state, done.error) == (queued.id, ExecutionState.SUCCEEDED, None)
    assert done.finished_at is not None
    assert done.duration_ms == done.finished_at - (done.started_at or 0)
    [attempt] = done.attempts
    assert (attempt.state, attempt.worker) == ("succeeded", orchestrator.worker_id)
    run = ml.tracking.get_run(done.run_ids[0])
    assert run.status is RunStatus.FINISHED
    assert (run.tags["mlops.pipeline"], run.params) == ("hello", {"rows": "4"})
    assert ml.tracking.get_experiment(run.experiment_id).name == "hello"
    steps = [(line.step, line.state) for line in done.log if line.step]
    assert steps == [("extract", "succeeded"), ("total", "succeeded")]
    assert all(line.duration_ms is not None for line in done.log if line.step)
    assert orchestrator.work() == []


def test_an_execution_whose_steps_all_come_from_the_cache_is_cached(
    orchestrator: PipelineOrchestrator,
) -> None:
    token = uuid.uuid4().hex
    orchestrator.register(
        "constant", "orchestration.flows:cached", params={"token": token}, executor="threads"
    )
    orchestrator.trigger("constant")
    orchestrator.trigger("constant")
    first, second = orchestrator.work(max_executions=5)
    assert (first.state, second.state) == (ExecutionState.SUCCEEDED, ExecutionState.CACHED)


def test_a_failure_without_retries_fails_with_the_step_error(
    orchestrator: PipelineOrchestrator,
) -> None:
    orchestrator.register("flaky", FLAKY, executor="threads")
    orchestrator.trigger("flaky")
    [done] = orchestrator.work()
    assert done.state is ExecutionState.FAILED
    assert done.error == "ValueError: call 1 failed (step 'explode')"
    assert [(line.step, line.state, line.error) for line in done.log if line.step] == [
        ("explode", "failed", "ValueError: call 1 failed")
    ]
    assert "no retries left (0 allowed)" in done.log[-1].text()


def test_retries_back_off_exponentially_with_jitter_up_to_the_maximum(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    orchestrator.register(
        "flaky",
        FLAKY,
        params={"fail_times": 3},
        retries=3,
        retry_backoff="10s",
        retry_max_backoff="15s",
        retry_jitter=0.1,
        executor="threads",
    )
    queued = orchestrator.trigger("flaky")
    delays = []
    for attempt in range(1, 4):
        [done] = orchestrator.work()
        assert (done.id, done.state) == (queued.id, ExecutionState.RETRYING)
        assert len(done.attempts) == attempt
        assert done.error == f"ValueError: call {attempt} failed (step 'explode')"
        assert done.next_attempt_at is not None
        delays.append(done.next_attempt_at - control.clock.ms)
        control.clock.set(done.next_attempt_at - 1)
        assert orchestrator.work() == []  # not due yet
        control.clock.set(done.next_attempt_at)
    [done] = orchestrator.work()

    assert 9_000 <= delays[0] <= 11_000  # 10s ± 10%
    assert 13_500 <= delays[1] <= 15_000  # 20s capped at 15s, jitter below the cap
    assert 13_500 <= delays[2] <= 15_000
    assert (done.state, done.error) == (ExecutionState.SUCCEEDED, None)
    assert [a.state for a in done.attempts] == ["failed", "failed", "failed", "succeeded"]
    assert len(set(done.run_ids)) == 4
    notes = [line.message or "" for line in done.log if line.state == "retrying"]
    assert [note.split(" in ")[0] for note in notes] == [f"retry {n} of 3" for n in (1, 2, 3)]


@pytest.mark.parametrize(
    ("error", "state"),
    [("KeyError", ExecutionState.RETRYING), ("ValueError", ExecutionState.FAILED)],
)
def test_retry_on_retries_only_the_named_exception_types(
    orchestrator: PipelineOrchestrator, error: str, state: ExecutionState
) -> None:
    orchestrator.register(
        "flaky",
        FLAKY,
        params={"error": error},
        retries=2,
        retry_on=["KeyError", "builtins.ConnectionError"],
        executor="threads",
    )
    orchestrator.trigger("flaky")
    [done] = orchestrator.work()
    assert done.state is state
    if state is ExecutionState.FAILED:
        assert done.log[-1].message == "not retried: retry_on is KeyError, builtins.ConnectionError"


def test_an_execution_past_its_timeout_stops_before_its_next_step(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    orchestrator.register(
        "slow",
        "orchestration.flows:slow",
        params={"seconds": 120},
        timeout="1m",
        executor="threads",
    )
    orchestrator.trigger("slow")
    [done] = orchestrator.work()
    assert done.state is ExecutionState.TIMED_OUT
    assert done.error == "ExecutionTimeout: attempt 1 ran past the timeout of 60s"
    assert "after_slow" not in control.calls
    assert [(line.step, line.state) for line in done.log if line.step] == [
        ("slow_step", "succeeded"),
        ("after_slow", "cancelled"),
    ]


def test_the_step_running_at_the_deadline_is_stopped_there_so_no_retry_overlaps_it(
    orchestrator: PipelineOrchestrator,
) -> None:
    orchestrator.register(
        "sleepy", "orchestration.flows:sleepy", timeout=1, retries=1, retry_backoff="10s"
    )
    orchestrator.trigger("sleepy")
    orchestrator.tick()  # a tick while it runs leaves a live worker's attempt alone

    started = time.monotonic()
    [done] = orchestrator.work()

    assert time.monotonic() - started < 20  # not the step's 30 s: its process was killed
    assert done.state is ExecutionState.RETRYING  # only now: the attempt has ended
    [attempt] = done.attempts
    assert attempt.state == "timed_out"
    assert done.error == "ExecutionTimeout: attempt 1 ran past the timeout of 1s"
    assert [(line.step, line.state) for line in done.log if line.step] == [
        ("sleep_for", "timed_out"),
        ("after_sleep", "skipped"),
    ]
    assert orchestrator.tick() == []  # nothing concluded twice, nothing queued beside it


def test_a_tick_times_out_an_attempt_stuck_in_a_step(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    orchestrator.register("gated", "orchestration.flows:gated", timeout=60, executor="threads")
    queued = orchestrator.trigger("gated")
    with working(orchestrator) as finished:
        assert control.entered.wait(10)
        control.clock.advance(61)
        orchestrator.tick()
        timed_out = orchestrator.execution(queued.id)
        assert timed_out.state is ExecutionState.TIMED_OUT
        assert timed_out.error is not None
        assert timed_out.error.startswith(
            "ExecutionTimeout: attempt 1 was still running at its deadline, and its worker "
        )
        control.gate.set()
    assert [e.state for e in finished] == [ExecutionState.TIMED_OUT]  # the late end changed nothing
    assert "after_gate" not in control.calls


def test_cancel_a_queued_or_retrying_execution_at_once(
    orchestrator: PipelineOrchestrator,
) -> None:
    orchestrator.register("flaky", FLAKY, retries=5, executor="threads")
    queued = orchestrator.trigger("flaky")
    cancelled = orchestrator.cancel(queued.id, reason="not needed")
    assert cancelled.state is ExecutionState.CANCELLED
    assert cancelled.error == "Cancelled: not needed"
    assert orchestrator.work() == []

    orchestrator.trigger("flaky")
    [retrying] = orchestrator.work()
    assert retrying.state is ExecutionState.RETRYING
    assert orchestrator.cancel(retrying.id).state is ExecutionState.CANCELLED
    with pytest.raises(Conflict, match=f"execution {retrying.id} of pipeline 'flaky' already"):
        orchestrator.cancel(retrying.id)


def test_cancel_a_running_execution_stops_it_before_its_next_step(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator, control: Control
) -> None:
    orchestrator.register("gated", "orchestration.flows:gated", executor="threads")
    queued = orchestrator.trigger("gated")
    with working(orchestrator) as finished:
        assert control.entered.wait(10)
        requested = orchestrator.cancel(queued.id)
        assert (requested.state, requested.cancel_requested) == (ExecutionState.RUNNING, True)
        control.gate.set()
    [done] = finished
    assert done.state is ExecutionState.CANCELLED
    assert "after_gate" not in control.calls
    assert ml.tracking.get_run(done.run_ids[0]).status is RunStatus.KILLED


def test_a_worker_that_stops_beating_loses_its_attempt_to_a_retry(
    ml: mlops.MLOps, control: Control
) -> None:
    gone = PipelineOrchestrator(ml, clock=control.clock, lease=60, heartbeat=30)
    ticker = PipelineOrchestrator(ml, clock=control.clock, lease=60, heartbeat=30)
    gone.register("gated", "orchestration.flows:gated", retries=1, executor="threads")
    queued = gone.trigger("gated")
    with working(gone) as late:
        assert control.entered.wait(10)
        control.clock.advance(61)  # no heartbeat from `gone` in the meantime
        ticker.tick()
        lost = ticker.execution(queued.id)
        assert lost.state is ExecutionState.RETRYING
        assert lost.attempts[0].state == "lost"
        assert (lost.error or "").startswith(f"WorkerLost: worker {gone.worker_id}")
        control.gate.set()
    assert late[0].state is ExecutionState.RETRYING  # its late end was ignored
    control.clock.advance(3600)
    [done] = ticker.work()
    assert done.state is ExecutionState.SUCCEEDED
    assert [a.worker for a in done.attempts] == [gone.worker_id, ticker.worker_id]


def test_a_worker_shutting_down_puts_its_execution_back_in_the_queue(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    orchestrator.register(
        "slow", "orchestration.flows:slow", params={"seconds": 5}, executor="threads"
    )
    queued = orchestrator.trigger("slow")
    start = control.clock.ms

    def stopping() -> bool:  # true once the first step has moved the clock
        return control.clock.ms > start

    [interrupted] = orchestrator.work(stopping=stopping)
    assert (interrupted.state, interrupted.error) == (ExecutionState.QUEUED, None)
    assert interrupted.attempts[0].state == "interrupted"
    assert "after_slow" not in control.calls
    [done] = orchestrator.work()
    assert (done.id, done.state) == (queued.id, ExecutionState.SUCCEEDED)
    assert control.calls["after_slow"] == 1
    assert len(done.attempts) == 2  # an interruption uses no retry (retries=0)


def test_history_filters_and_lookups(orchestrator: PipelineOrchestrator) -> None:
    orchestrator.register("flaky", FLAKY, executor="threads")
    orchestrator.register("hello", "orchestration.flows:hello", executor="threads")
    failed = orchestrator.trigger("flaky")
    orchestrator.trigger("hello")
    orchestrator.work(max_executions=5)
    waiting = orchestrator.trigger("hello")

    assert [e.id for e in orchestrator.executions(limit=1)] == [waiting.id]
    assert [e.id for e in orchestrator.executions("flaky")] == [failed.id]
    assert [e.id for e in orchestrator.executions(state="failed")] == [failed.id]
    assert len(orchestrator.executions("hello")) == 2
    assert orchestrator.execution(failed.id).to_json()["state"] == "failed"
    with pytest.raises(InvalidInput, match="execution state 'done' is unknown; use one of"):
        orchestrator.executions(state="done")
    with pytest.raises(NotFound, match="no pipeline execution 999999"):
        orchestrator.execution(999_999)
