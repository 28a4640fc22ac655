"""Event triggers: a real firing alert, a new model version, a new dataset; cursors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import mlops
from mlops.orchestration import Execution, ExecutionState, PipelineOrchestrator, Trigger
from mlops.registry._webhooks import record_event
from mlops.tracking import Dataset
from orchestration import flows
from orchestration.flows import Control

HELLO = "orchestration.flows:hello"
MINUTE = 60_000


def _events(execution: Execution) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = execution.trigger_detail["events"]
    return events


def test_a_firing_alert_triggers_a_retraining_pipeline(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator
) -> None:
    """The loop closes: a pipeline failing twice fires monitoring's pipeline-failures rule,
    whose alert queues the pipeline registered to react to it."""
    alerts = ml.monitor.alerts
    alerts.install_default_rules()
    orchestrator.register("etl", "orchestration.flows:flaky", executor="threads")
    orchestrator.register(
        "repair",
        HELLO,
        executor="threads",
        triggers=[Trigger.alert(rule="pipeline-failures", labels={"pipeline": "flaky"})],
    )
    orchestrator.register(
        "unrelated", HELLO, triggers=[Trigger.alert(rule="latency-p95", severity="critical")]
    )
    for _ in range(2):
        orchestrator.trigger("etl")
        [failed] = orchestrator.work()
        assert failed.state is ExecutionState.FAILED
    assert orchestrator.tick() == []  # failures alone trigger nothing: the alert does
    # (On PostgreSQL, failed runs of "flaky" from earlier tests stay: it may fire at once.)
    for minute in range(2):
        alerts.evaluate(alerts.now_ms() + minute * MINUTE)
    [firing] = alerts.alerts(state="firing")

    [queued] = orchestrator.tick()
    assert (queued.pipeline, queued.trigger, queued.state) == (
        "repair",
        "alert",
        ExecutionState.QUEUED,
    )
    assert queued.trigger_detail["count"] == 1
    [event] = _events(queued)
    assert (event["rule"], event["alert_id"]) == ("pipeline-failures", firing.id)
    assert event["labels"]["pipeline"] == "flaky"
    assert orchestrator.tick() == []  # the cursor moved past it
    assert orchestrator.executions("unrelated") == []
    [done] = orchestrator.work()
    assert (done.pipeline, done.state) == ("repair", ExecutionState.SUCCEEDED)


def test_a_new_model_version_triggers_and_several_coalesce_into_one_execution(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator
) -> None:
    # A fresh name: the session's PostgreSQL database keeps other modules' models.
    churn = f"churn-{uuid.uuid4().hex[:8]}"
    ml.registry.register_model(churn, flows.Doubler(), flavor="python")  # before: not replayed
    orchestrator.register("evaluate", HELLO, triggers=[Trigger.model_registered(churn)])
    orchestrator.register("any-model", HELLO, triggers=[Trigger.model_registered()])
    assert orchestrator.tick() == []

    ml.registry.register_model("fraud", flows.Doubler(), flavor="python")
    for _ in range(3):
        ml.registry.register_model(churn, flows.Doubler(), flavor="python")
    fired = {execution.pipeline: execution for execution in orchestrator.tick()}
    assert set(fired) == {"evaluate", "any-model"}
    evaluate = fired["evaluate"]
    assert evaluate.trigger == "model_registered"
    assert evaluate.trigger_detail["count"] == 3
    assert [(e["model"], e["version"]) for e in _events(evaluate)] == [
        (churn, 2),
        (churn, 3),
        (churn, 4),
    ]
    assert fired["any-model"].trigger_detail["count"] == 4
    assert orchestrator.tick() == []


def test_a_new_dataset_version_triggers(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator
) -> None:
    orchestrator.register("refresh", HELLO, triggers=[Trigger.dataset("churn-data")])
    with ml.tracking.start_run(name="ingest") as run:
        run.log_input(Dataset(name="churn-data", digest="a" * 64))
        run.log_input(Dataset(name="other-data", digest="b" * 64))
    [fired] = orchestrator.tick()
    assert fired.trigger == "dataset"
    assert [(e["dataset"], e["digest"]) for e in _events(fired)] == [("churn-data", "a" * 64)]

    with ml.tracking.start_run(name="ingest again") as run:
        run.log_input(Dataset(name="churn-data", digest="a" * 64))  # the same version
    assert orchestrator.tick() == []
    with ml.tracking.start_run(name="ingest new") as run:
        run.log_input(Dataset(name="churn-data", digest="c" * 64))
    assert orchestrator.tick() != []


def test_events_while_paused_are_not_replayed(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator
) -> None:
    orchestrator.register("evaluate", HELLO, triggers=[Trigger.model_registered("churn")])
    orchestrator.pause("evaluate")
    ml.registry.register_model("churn", flows.Doubler(), flavor="python")
    assert orchestrator.tick() == []
    orchestrator.resume("evaluate")
    assert orchestrator.tick() == []
    ml.registry.register_model("churn", flows.Doubler(), flavor="python")
    assert len(orchestrator.tick()) == 1


def test_a_trigger_firing_while_max_active_runs_joins_the_waiting_execution(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator, control: Control
) -> None:
    orchestrator.register("evaluate", HELLO, triggers=[Trigger.model_registered("churn")])
    first = orchestrator.trigger("evaluate")
    for _ in range(2):
        ml.registry.register_model("churn", flows.Doubler(), flavor="python")
        orchestrator.tick()
    [waiting] = orchestrator.executions("evaluate", state="scheduled")
    [joined] = waiting.trigger_detail["coalesced"]
    assert joined["trigger"] == "model_registered"
    assert joined["detail"]["count"] == 1
    assert orchestrator.execution(first.id).state is ExecutionState.QUEUED


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_an_event_committed_after_a_newer_one_is_not_missed(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator
) -> None:
    """PostgreSQL hands out ids when rows are inserted, not when they commit: id N may
    become visible after id N+1 has been polled. The cursor keeps N as a gap."""
    orchestrator.register("evaluate", HELLO, triggers=[Trigger.model_registered("churn")])
    payload = {"model": "churn", "version": 1}
    with ml.store.engine.connect() as slow:
        transaction = slow.begin()
        early = record_event(
            slow, kind="model.version_created", subject="m", payload=payload, actor=None
        )
        with ml.store.write() as connection:
            late = record_event(
                connection, kind="model.version_created", subject="m", payload=payload, actor=None
            )
        assert early < late
        [first] = orchestrator.tick()
        assert [e["event_id"] for e in _events(first)] == [late]
        transaction.commit()
    [second] = orchestrator.tick()
    assert [e["event_id"] for e in _events(second)] == [early]
    assert orchestrator.tick() == []
