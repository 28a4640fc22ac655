"""Registering pipelines: sources, checks up front, updates, pause/resume, unregister."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import mlops
from mlops.errors import Conflict, InvalidInput, NotFound
from mlops.monitoring.alerts import WebhookNotifier
from mlops.orchestration import ExecutionState, PipelineOrchestrator, Trigger, resolve_source
from mlops.pipelines import Pipeline, step
from orchestration import flows
from orchestration.flows import Control

HELLO = "orchestration.flows:hello"


def test_register_stores_the_definition_and_get_list_read_it(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    registered = orchestrator.register(
        "nightly",
        HELLO,
        schedule="0 3 * * *",
        timezone="Europe/Paris",
        triggers=[Trigger.dataset("churn-data"), {"kind": "model_registered", "model": "churn"}],
        params={"rows": 4},
        retries=2,
        retry_backoff="30s",
        retry_on=["ConnectionError"],
        timeout="1h",
    )
    assert registered.source == HELLO
    assert registered.schedule == "0 3 * * *"
    assert registered.triggers == (Trigger.dataset("churn-data"), Trigger.model_registered("churn"))
    assert (registered.retries, registered.retry_backoff, registered.timeout) == (2, 30.0, 3600.0)
    assert registered.retry_on == ("ConnectionError",)
    assert (registered.next_fire_at or 0) > control.clock.ms
    assert orchestrator.get("nightly") == registered
    assert [item.name for item in orchestrator.list()] == ["nightly"]
    assert registered.to_json()["triggers"][0] == {"kind": "dataset", "dataset": "churn-data"}


@pytest.mark.parametrize(
    "source", ["orchestration.flows:make_hello", flows.hello], ids=["factory", "object"]
)
def test_a_source_may_be_a_factory_or_a_module_level_pipeline(
    orchestrator: PipelineOrchestrator, source: Any
) -> None:
    registered = orchestrator.register("hello", source)
    assert registered.source in ("orchestration.flows:make_hello", HELLO)


def test_a_pipeline_object_that_other_processes_cannot_import_is_refused(
    orchestrator: PipelineOrchestrator,
) -> None:
    @step
    def local_step() -> int:
        return 1

    with pytest.raises(InvalidInput, match=r"not a module-level name.*'package\.module:attribute'"):
        orchestrator.register("local", Pipeline("local", [local_step]))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("orchestration.nowhere:hello", "cannot import module 'orchestration.nowhere'"),
        ("orchestration.flows:missing", "module 'orchestration.flows' has no attribute 'missing'"),
        ("orchestration.flows:not_a_pipeline", "is a int, not a Pipeline"),
        ("orchestration.flows:needs_arguments", "is a callable that needs arguments"),
        ("orchestration.flows", "neither 'package.module:attribute' nor a .yaml path"),
        ("pipelines/absent.yaml", "does not exist; give the path of a YAML file"),
    ],
)
def test_a_source_that_does_not_resolve_is_refused_at_registration(
    orchestrator: PipelineOrchestrator, source: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        orchestrator.register("broken", source)
    assert orchestrator.list() == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedule": "0 25 * * *"}, "schedule '0 25 * * *' is not a valid cron expression"),
        ({"schedule": "0 3 * * *", "timezone": "Europe/Atlantis"}, "timezone 'Europe/Atlantis'"),
        ({"retries": -1}, "retries must be a whole number of 0 or more; got -1"),
        ({"max_active": 0}, "max_active must be a whole number of 1 or more"),
        ({"retry_jitter": 2}, "retry_jitter must be a fraction between 0 and 1"),
        ({"retry_backoff": "1h", "retry_max_backoff": "1m"}, "retry_max_backoff (60s) is shorter"),
        ({"retry_on": ["not a type"]}, "'not a type' is not one"),
        ({"timeout": "soon"}, "timeout 'soon' is not a duration"),
        ({"executor": "kubernetes"}, "executor 'kubernetes' is not available"),
        ({"params": {"rows": 3, "colour": "red"}}, "takes no param 'colour'; its params are rows"),
        ({"params": {"rows": float("nan")}}, "params must be JSON values"),
        ({"triggers": [{"kind": "cron"}]}, "trigger kind 'cron' is unknown"),
        ({"triggers": [{"kind": "dataset", "model": "x"}]}, "a dataset trigger takes dataset"),
        ({"triggers": Trigger.webhook()}, "triggers must be a list"),
        ({"triggers": "dataset"}, "triggers must be a list"),
        ({"triggers": [Trigger.webhook(), Trigger.webhook()]}, "triggers repeat one another"),
        ({"notify": {"channels": ["nowhere"]}}, "notify names channels that do not exist: nowhere"),
        ({"notify": {"channels": ["x"], "on": ["always"]}}, "notify 'on' takes failure"),
    ],
)
def test_invalid_registrations_say_what_is_wrong_and_store_nothing(
    orchestrator: PipelineOrchestrator, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        orchestrator.register("broken", HELLO, **options)
    assert orchestrator.list() == []


def test_registering_again_updates_and_keeps_an_unchanged_schedule_cursor(
    orchestrator: PipelineOrchestrator, control: Control
) -> None:
    first = orchestrator.register("hello", HELLO, schedule="*/10 * * * *")
    control.clock.advance(3600)  # an hour on: the cursor (due times not yet fired) stays
    again = orchestrator.register("hello", HELLO, schedule="*/10 * * * *", retries=3)
    assert again.retries == 3
    assert again.next_fire_at == first.next_fire_at
    assert again.created_at == first.created_at
    assert again.updated_at > first.updated_at
    moved = orchestrator.register("hello", HELLO, schedule="*/15 * * * *")
    assert (moved.next_fire_at or 0) > control.clock.ms
    assert orchestrator.set_schedule("hello", None).next_fire_at is None


def test_pause_and_resume(orchestrator: PipelineOrchestrator) -> None:
    orchestrator.register("hello", HELLO)
    assert orchestrator.pause("hello").paused
    assert orchestrator.list(paused=True)[0].name == "hello"
    assert not orchestrator.resume("hello").paused
    with pytest.raises(NotFound, match="no registered pipeline 'other'; see the registered"):
        orchestrator.pause("other")


def test_unregister_cancels_pending_executions_and_keeps_history(
    orchestrator: PipelineOrchestrator,
) -> None:
    orchestrator.register("hello", HELLO, executor="threads")
    done = orchestrator.trigger("hello")
    orchestrator.work()
    pending = orchestrator.trigger("hello", reason="never runs")
    orchestrator.unregister("hello")
    assert orchestrator.execution(done.id).state is ExecutionState.SUCCEEDED
    cancelled = orchestrator.execution(pending.id)
    assert cancelled.state is ExecutionState.CANCELLED
    assert cancelled.error == "Cancelled: the pipeline was unregistered"
    assert orchestrator.work() == []
    with pytest.raises(NotFound):
        orchestrator.get("hello")
    with pytest.raises(NotFound):
        orchestrator.unregister("hello")


def test_notify_takes_existing_channels(
    ml: mlops.MLOps, orchestrator: PipelineOrchestrator
) -> None:
    ml.monitor.alerts.create_channel("ops", WebhookNotifier("http://127.0.0.1:9/hook"))
    registered = orchestrator.register("hello", HELLO, notify={"channels": ["ops"]})
    assert registered.notify is not None
    assert registered.notify.get_params() == {"channels": ["ops"], "on": ["failure"]}


def test_a_webhook_trigger_is_needed_for_webhook_calls(orchestrator: PipelineOrchestrator) -> None:
    orchestrator.register("hello", HELLO)
    with pytest.raises(Conflict, match=r"does not accept webhook triggers.*Trigger.webhook\(\)"):
        orchestrator.trigger("hello", source="webhook")
    orchestrator.register("hello", HELLO, triggers=[Trigger.webhook()])
    assert orchestrator.trigger("hello", source="webhook").trigger == "webhook"


def test_manual_trigger_params_are_checked(orchestrator: PipelineOrchestrator) -> None:
    orchestrator.register("hello", HELLO, params={"rows": 2})
    with pytest.raises(InvalidInput, match="takes no param 'size'; its params are rows"):
        orchestrator.trigger("hello", {"size": 3})
    execution = orchestrator.trigger("hello", {"rows": 7}, reason="backfill")
    assert execution.params == {"rows": 7}
    assert execution.trigger_detail["reason"] == "backfill"


def test_ml_pipelines_is_the_orchestrator_of_the_connection(ml: mlops.MLOps) -> None:
    assert isinstance(ml.pipelines, PipelineOrchestrator)
    assert ml.pipelines is ml.pipelines


def test_a_yaml_config_is_a_source_stored_by_its_absolute_path(
    orchestrator: PipelineOrchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    training = pytest.importorskip("mlops.pipelines.training")
    config = Path(training.sample_config_path())
    monkeypatch.chdir(config.parent)
    registered = orchestrator.register("churn", config.name, schedule="0 4 * * 1")
    assert registered.source == str(config.resolve())
    pipeline, defaults = resolve_source(registered.source)
    assert (pipeline.name, defaults) == ("churn-training", {})


def test_params_of_a_yaml_config_are_config_keys_checked_up_front(
    orchestrator: PipelineOrchestrator,
) -> None:
    training = pytest.importorskip("mlops.pipelines.training")
    config = str(training.sample_config_path())
    with pytest.raises(InvalidInput, match=r"train\.trials: input should be a valid integer"):
        orchestrator.register("churn", config, params={"train.trials": "many"})
    with pytest.raises(InvalidInput, match="unknown key 'trialz'"):
        orchestrator.register("churn", config, params={"train": {"trialz": 3}})
    orchestrator.register("churn", config, params={"train.trials": 4})
    with pytest.raises(InvalidInput, match="'seed' in config"):
        orchestrator.trigger("churn", params={"seed.value": 1})

    pipeline, params = resolve_source(config, {"train.trials": 4, "evaluate": {"slices": []}})
    assert params == {}  # carried by the pipeline itself
    assert pipeline.params["training"]["trials"] == 4
    assert pipeline.params["training"]["folds"] == 5  # the rest of the section is kept
