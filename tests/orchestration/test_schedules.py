"""Cron schedules on the injected clock: due times, downtime, catch-up, max_active, DST."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

import mlops
from mlops.orchestration import CATCHUP_LIMIT, ExecutionState, PipelineOrchestrator
from mlops.store._schema import orchestrated_pipelines
from orchestration.flows import Control

HELLO = "orchestration.flows:hello"
MINUTE = 60_000


def _at(control: Control, iso: str) -> int:
    """Set the test clock to an ISO time (with offset); return it in ms."""
    control.clock.set(round(datetime.fromisoformat(iso).timestamp() * 1000))
    return control.clock.ms


def _due_times(orchestrator: PipelineOrchestrator, name: str = "hello") -> list[int | None]:
    return sorted(e.scheduled_for for e in orchestrator.executions(name, limit=500))  # type: ignore[type-var]


def test_a_schedule_fires_once_when_due(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    _at(control, "2025-06-01T10:07:00+00:00")
    registered = orchestrator.register("hello", HELLO, schedule="*/10 * * * *", executor="threads")
    due = registered.next_fire_at
    assert due == _at(control, "2025-06-01T10:10:00+00:00")

    control.clock.set(due - 1)
    assert orchestrator.tick() == []
    control.clock.set(due)
    [fired] = orchestrator.tick()
    assert (fired.state, fired.trigger, fired.scheduled_for) == (
        ExecutionState.QUEUED,
        "schedule",
        due,
    )
    assert fired.trigger_detail == {"schedule": "*/10 * * * *", "timezone": "UTC", "due": due}
    assert orchestrator.tick() == []  # the same due time never fires twice
    assert orchestrator.get("hello").next_fire_at == due + 10 * MINUTE
    [ran] = orchestrator.work()
    assert ran.state is ExecutionState.SUCCEEDED


def test_after_downtime_only_the_latest_missed_due_time_fires(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    _at(control, "2025-06-01T10:07:00+00:00")
    orchestrator.register("hello", HELLO, schedule="*/10 * * * *")
    now = _at(control, "2025-06-01T11:15:00+00:00")  # 10:10 … 11:10 were missed

    [fired] = orchestrator.tick()
    assert fired.scheduled_for == _at(control, "2025-06-01T11:10:00+00:00")
    assert fired.trigger_detail["skipped_from"] == _at(control, "2025-06-01T10:10:00+00:00")
    assert orchestrator.get("hello").next_fire_at == now + 5 * MINUTE
    control.clock.set(now)
    assert orchestrator.tick() == []


def test_catchup_fires_every_missed_due_time_in_order_each_its_own_execution(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    _at(control, "2025-06-01T10:07:00+00:00")
    orchestrator.register("hello", HELLO, schedule="*/10 * * * *", catchup=True, executor="threads")
    _at(control, "2025-06-01T11:15:00+00:00")

    fired = orchestrator.tick()
    times = ["10:10", "10:20", "10:30", "10:40", "10:50", "11:00", "11:10"]
    assert [e.scheduled_for for e in fired] == [
        _at(control, f"2025-06-01T{time}:00+00:00") for time in times
    ]
    # max_active=1: the first is queued, the others wait for their turn (no coalescing).
    assert [e.state.value for e in fired] == ["queued"] + ["scheduled"] * 6
    finished = orchestrator.work(max_executions=10)
    assert [e.state for e in finished] == [ExecutionState.SUCCEEDED] * 7
    assert [e.id for e in finished] == [e.id for e in fired]


def test_catchup_is_capped_to_the_latest_due_times(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    _at(control, "2025-06-01T00:00:30+00:00")
    orchestrator.register("hello", HELLO, schedule="* * * * *", catchup=True, max_active=500)
    now = control.clock.advance(6 * 3600)  # 360 missed minutes
    fired = orchestrator.tick()
    assert len(fired) == CATCHUP_LIMIT
    assert fired[-1].scheduled_for == now - 30_000
    assert fired[0].scheduled_for == now - 30_000 - (CATCHUP_LIMIT - 1) * MINUTE


def test_a_due_time_that_finds_max_active_waits_and_later_ones_join_it(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    _at(control, "2025-06-01T10:00:30+00:00")
    orchestrator.register("hello", HELLO, schedule="* * * * *", executor="threads")
    control.clock.advance(60)
    [first] = orchestrator.tick()
    control.clock.advance(60)
    [waiting] = orchestrator.tick()
    assert (first.state, waiting.state) == (ExecutionState.QUEUED, ExecutionState.SCHEDULED)
    control.clock.advance(60)
    assert orchestrator.tick() == []  # joined the waiting execution
    joined = orchestrator.execution(waiting.id).trigger_detail["coalesced"]
    assert [(item["trigger"], item["detail"]["due"]) for item in joined] == [
        ("schedule", control.clock.ms - 30_000)
    ]

    [done] = orchestrator.work()
    assert done.id == first.id
    assert orchestrator.execution(waiting.id).state is ExecutionState.QUEUED  # promoted
    [done] = orchestrator.work()
    assert (done.id, done.state) == (waiting.id, ExecutionState.SUCCEEDED)


@pytest.mark.parametrize(
    ("schedule", "start", "expected"),
    [
        (
            "30 2 * * *",
            "2025-03-08T12:00:00-05:00",
            [
                "2025-03-09T03:30:00-04:00",  # 02:30 does not exist that night
                "2025-03-10T02:30:00-04:00",
                "2025-03-11T02:30:00-04:00",
            ],
        ),
        (
            "30 1 * * *",
            "2025-11-01T12:00:00-04:00",
            [
                "2025-11-02T01:30:00-04:00",  # 01:30 happens twice: the first one fires
                "2025-11-03T01:30:00-05:00",
                "2025-11-04T01:30:00-05:00",
            ],
        ),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_a_daily_schedule_across_daylight_saving_changes(
    orchestrator: PipelineOrchestrator,
    control: Control,
    schedule: str,
    start: str,
    expected: list[str],
) -> None:
    zone = ZoneInfo("America/New_York")
    _at(control, start)
    orchestrator.register(
        "hello", HELLO, schedule=schedule, timezone="America/New_York", max_active=100
    )
    fired = []
    for _ in range(3 * 24 * 2):  # three days, one tick every 30 minutes
        control.clock.advance(1800)
        fired += orchestrator.tick()
    local = [datetime.fromtimestamp((e.scheduled_for or 0) / 1000, zone) for e in fired]
    assert [moment.isoformat() for moment in local] == expected
    assert all(0 <= e.created_at - (e.scheduled_for or 0) < 1_800_000 for e in fired)


def test_a_paused_schedule_does_not_fire_and_resuming_fires_the_latest_missed(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    _at(control, "2025-06-01T10:07:00+00:00")
    orchestrator.register("hello", HELLO, schedule="*/10 * * * *")
    orchestrator.pause("hello")
    _at(control, "2025-06-01T12:05:00+00:00")
    assert orchestrator.tick() == []
    orchestrator.resume("hello")
    [fired] = orchestrator.tick()
    assert fired.scheduled_for == _at(control, "2025-06-01T12:00:00+00:00")


def test_a_due_time_fires_once_even_if_the_cursor_is_set_back(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator, control: Control
) -> None:
    """The unique (pipeline, scheduled_for) constraint, beside the cursor's compare-and-set."""
    _at(control, "2025-06-01T10:07:00+00:00")
    orchestrator.register("hello", HELLO, schedule="*/10 * * * *")
    now = _at(control, "2025-06-01T10:10:00+00:00")
    [fired] = orchestrator.tick()
    with ml.store.write() as connection:
        connection.execute(
            sa.update(orchestrated_pipelines)
            .where(orchestrated_pipelines.c.name == "hello")
            .values(next_fire_at=now)
        )
    assert orchestrator.tick() == []
    assert _due_times(orchestrator) == [fired.scheduled_for]
    assert orchestrator.get("hello").next_fire_at == now + 10 * MINUTE


def test_orchestrators_ticking_at_once_fire_each_due_time_once(
    ml: mlops.MLOps, control: Control
) -> None:
    _at(control, "2025-06-01T00:00:30+00:00")
    orchestrators = [PipelineOrchestrator(ml, clock=control.clock) for _ in range(4)]
    for index in range(3):
        orchestrators[0].register(
            f"p{index}", HELLO, schedule="* * * * *", catchup=True, max_active=1000
        )
    barrier = threading.Barrier(len(orchestrators))
    errors: list[BaseException] = []

    def hammer(orchestrator: PipelineOrchestrator, start: int) -> None:
        try:
            barrier.wait()
            for minute in range(1, 21):
                orchestrator.tick(start + minute * MINUTE)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    start = control.clock.ms
    threads = [threading.Thread(target=hammer, args=(o, start)) for o in orchestrators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected = [start - 30_000 + minute * MINUTE for minute in range(1, 21)]
    for index in range(3):
        assert _due_times(orchestrators[0], f"p{index}") == expected
