"""The demo's pipeline act: the bundled training pipeline, then retraining on an alert.

Before the monitoring act: the sample YAML pipeline (ingest → validate → preprocess →
features → train with Optuna and CV → evaluate → register → deploy → monitor) runs on the
bundled churn data, and is registered with the orchestrator on a nightly schedule and on
the monitoring act's drift alert. After it: one scheduler tick sees the alert that fired,
queues a retraining, and a worker runs it. The challenger is trained on the same data,
so the champion stays: the registry is not touched twice for nothing.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mlops._client import MLOps
from mlops.pipelines import PipelineRun, StepEvent, run_pipeline

__all__ = ["DEMO_PIPELINE", "PipelineDemo", "retrain_on_alerts", "run_training_pipeline"]

DEMO_PIPELINE = "churn-training"
#: A lighter search than the sample's 20 trials x 5 folds, so the demo takes seconds.
_TRIALS, _FOLDS = 4, 3
_SCHEDULE = "0 3 * * *"
_TRAINING_MODULES = ("sklearn", "optuna", "pandas")


@dataclass(frozen=True, slots=True)
class PipelineDemo:
    """What the pipeline act did: the training run and the config it registered."""

    run: PipelineRun
    config_path: Path


def run_training_pipeline(ml: MLOps, console: Console, *, alert_rule: str) -> PipelineDemo | None:
    """Run the bundled training pipeline, then register it for nightly and alert runs
    (None, with an install hint, where the training extra is missing)."""
    missing = [name for name in _TRAINING_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        console.print(
            f"skipping the training pipeline: {', '.join(missing)} not installed; "
            "pip install 'mlops[train]' to run it"
        )
        return None
    import yaml

    from mlops.orchestration import Trigger
    from mlops.pipelines.training import PipelineConfig, sample_config_path

    raw = yaml.safe_load(sample_config_path().read_text())
    raw["name"] = DEMO_PIPELINE
    raw["train"].update(trials=_TRIALS, folds=_FOLDS)
    config_path = ml.settings.home / "demo" / f"{DEMO_PIPELINE}.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    pipeline = PipelineConfig.from_file(config_path).pipeline()
    console.print(
        f"running the bundled training pipeline '{DEMO_PIPELINE}' ({len(pipeline.order)} "
        f"steps, {_TRIALS} Optuna trials x {_FOLDS}-fold CV) on the bundled churn data"
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("starting", total=len(pipeline.order))

        def on_step(event: StepEvent) -> None:
            if event.record is None:
                progress.update(task, description=event.step)
            else:
                progress.advance(task)

        result = run_pipeline(ml, pipeline, experiment=DEMO_PIPELINE, on_step=on_step)
        progress.update(task, description=result.state.value)
    _print_outcome(console, result)
    ml.pipelines.register(
        DEMO_PIPELINE,
        str(config_path),
        schedule=_SCHEDULE,
        triggers=[Trigger.alert(rule=alert_rule)],
        retries=1,
        timeout="30m",
    )
    console.print(
        f"registered '{DEMO_PIPELINE}' with the orchestrator: nightly ({_SCHEDULE} UTC) and "
        f"whenever alert '{alert_rule}' starts firing"
    )
    return PipelineDemo(result, config_path)


def retrain_on_alerts(ml: MLOps, console: Console) -> list[Any]:
    """One scheduler tick and one worker pass: run what the alerts queued."""
    queued = [e for e in ml.pipelines.tick() if e.pipeline == DEMO_PIPELINE]
    if not queued:
        console.print(
            f"no new alert since the last demo, so no retraining of '{DEMO_PIPELINE}' was queued"
        )
        return []
    console.print(
        f"the alert queued a retraining of '{DEMO_PIPELINE}' (execution {queued[0].id}); running it"
    )
    done = ml.pipelines.work(max_executions=len(queued))
    for execution in done:
        if execution.pipeline != DEMO_PIPELINE:
            continue
        console.print(
            f"retraining execution {execution.id} {execution.state.value} in "
            f"{(execution.duration_ms or 0) / 1000:.1f}s"
        )
        for line in execution.log:
            if line.step is not None:
                console.print(f"  {line.text()}")
    return done


def _print_outcome(console: Console, result: PipelineRun) -> None:
    if not result.succeeded:
        failed = result.failed_steps
        detail = f": {failed[0].name}: {failed[0].error}" if failed else ""
        console.print(f"[red]the training pipeline {result.state.value}{detail}[/red]")
        return
    evaluation = result.output("evaluate")
    registration = result.output("register")
    metric = evaluation.metric
    console.print(f"hold-out {metric} {evaluation.metrics[metric]:.3f}; {registration.reason}")
