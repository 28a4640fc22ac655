"""The training pipeline's steps, and ``build_pipeline`` that wires them from a config.

    ingest → validate → preprocess → features → train → evaluate → register → deploy → monitor

Each step takes its config section as a plain dict param (so params pickle the same in
every process and the cache keys are stable) and reaches the platform only through
``step_context()``. Steps that depend on or change the world outside their inputs are
never cached: ingest (the source may have changed), evaluate (the champion may have),
register, deploy and monitor (they write to the registry, endpoints and alert rules).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import MLOpsError
from mlops.pipelines import Pipeline, StepContext, step, step_context
from mlops.pipelines.training._config_ops import DeployConfig, MonitorConfig
from mlops.pipelines.training._config_sections import (
    DataConfig,
    DerivedFeature,
    EvaluateConfig,
    PreprocessConfig,
    RegisterConfig,
    ValidateConfig,
)
from mlops.pipelines.training._config_train import TrainConfig
from mlops.pipelines.training._data import (
    Evaluation,
    LoadedData,
    PreparedData,
    Registration,
    Rollout,
    TrainedModel,
)
from mlops.pipelines.training._evaluate import evaluate_model, metric_key
from mlops.pipelines.training._metrics import finite
from mlops.pipelines.training._prepare import add_features, prepare
from mlops.pipelines.training._publish import apply_rules, deploy_version, register_challenger
from mlops.pipelines.training._sources import read_source
from mlops.pipelines.training._storage import storage_spec
from mlops.pipelines.training._train import train_model
from mlops.pipelines.training._validation import (
    ValidationFailed,
    ValidationReport,
    validate_frame,
)
from mlops.tracking import ActiveRun, RunStatus, dataset_from_data

if TYPE_CHECKING:
    from mlops.pipelines.training._config import PipelineConfig

__all__ = ["STAGES", "TRAINING_CODE", "build_pipeline"]

#: The step names, in order; deploy and monitor exist only when configured.
STAGES = (
    "ingest", "validate", "preprocess", "features", "train", "evaluate", "register", "deploy",
    "monitor",
)  # fmt: skip


def _code_hash() -> str:
    """A digest of this package's code: a step's cache key covers only its own function,
    so every step also takes this, and a change to any helper re-runs the steps."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


TRAINING_CODE = _code_hash()
_TRIAL_STATUS = {"complete": RunStatus.FINISHED, "pruned": RunStatus.KILLED}


def _context() -> StepContext | None:
    try:
        return step_context()
    except MLOpsError:
        return None  # called as a plain function, outside a pipeline run


def _required_context(what: str) -> StepContext:
    context = _context()
    if context is None:
        raise MLOpsError(f"the {what} step reaches the platform, so it runs only in a pipeline run")
    return context


def ingest(data: dict[str, Any], training_code: str = TRAINING_CODE) -> LoadedData:
    """Read the data source and record it as a dataset version on the step's run."""
    frame, source, name = read_source(DataConfig.model_validate(data))
    dataset = dataset_from_data(name, frame, source=source)
    context = _context()
    if context is not None:
        run = context.run
        run.log_input(dataset, "training")
        run.log_metrics({"rows": float(len(frame)), "columns": float(frame.shape[1])})
    return LoadedData(frame, dataset, source)


def validate(
    ingest: LoadedData,
    validation: dict[str, Any],
    label: str | None,
    training_code: str = TRAINING_CODE,
) -> ValidationReport:
    """Check every rule; the report is the step's ``validation_report.json`` either way."""
    report = validate_frame(ingest.frame, ValidateConfig.model_validate(validation), label)
    context = _context()
    if context is not None:
        run = context.run
        run.log_dict(report.to_dict(), "validation_report.json")
        run.log_metrics(
            {
                "rules_checked": float(len(report.checks)),
                "violations": float(len(report.violations)),
            }
        )
    if not report.passed:
        raise ValidationFailed(report)
    return report


def preprocess(
    ingest: LoadedData,
    validate: ValidationReport,
    task: str,
    label: str | None,
    seed: int,
    preprocessing: dict[str, Any],
    training_code: str = TRAINING_CODE,
) -> PreparedData:
    """Split off the hold-out rows and set up imputation, scaling and encoding."""
    prepared = prepare(ingest, task, label, seed, PreprocessConfig.model_validate(preprocessing))
    context = _context()
    if context is not None:
        context.run.log_metrics(
            {
                "train_rows": float(len(prepared.train)),
                "holdout_rows": float(len(prepared.holdout)),
                "numeric_columns": float(len(prepared.numeric)),
                "categorical_columns": float(len(prepared.categorical)),
            }
        )
    return prepared


def features(
    preprocess: PreparedData,
    derived_features: list[dict[str, Any]],
    training_code: str = TRAINING_CODE,
) -> PreparedData:
    """Add the derived columns to the model's transformer."""
    derived = [DerivedFeature.model_validate(item) for item in derived_features]
    prepared, stats = add_features(preprocess, derived)
    context = _context()
    if context is not None and stats:
        context.run.log_metrics(stats)
    return prepared


def train(
    features: PreparedData,
    training: dict[str, Any],
    metric: str | None,
    seed: int,
    positive_label: Any,
    training_code: str = TRAINING_CODE,
) -> TrainedModel:
    """Search the candidates with k-fold CV, then refit the best on the training rows."""
    config = TrainConfig.model_validate(training)
    context = _context()
    storage = None
    if config.hpo.storage == "database":
        storage = storage_spec(_required_context("train (with hpo.storage: database)").ml.store.url)
        storage.prepare()
    # One study per attempt of the step's run: a retry starts a study of its own.
    study_name = f"{context.pipeline}.{context.run_id}.{context.attempt}" if context else "training"
    trained = train_model(
        features,
        config,
        metric=metric,
        seed=seed,
        positive=positive_label,
        study_name=study_name,
        storage=storage,
    )
    if context is not None:
        _log_training(context.run, trained, config.log_trials)
    return trained


def _log_training(run: ActiveRun, trained: TrainedModel, log_trials: bool) -> None:
    params = {"candidate": trained.candidate, "algorithm": trained.algorithm}
    params.update({f"best.{key}": value for key, value in trained.params.items()})
    metrics: dict[str, float] = {}
    if trained.metric is not None and trained.cv_score is not None:
        metrics[f"cv_{trained.metric}"] = trained.cv_score
        if trained.cv_std is not None:
            metrics[f"cv_{trained.metric}_std"] = trained.cv_std
    for state in ("complete", "pruned", "fail"):
        metrics[f"trials_{state}"] = float(sum(t["state"] == state for t in trained.trials))
    run.log_batch(metrics=list(metrics.items()), params=params)
    if not trained.trials:
        return
    run.log_dict({"study": trained.study_name, "trials": list(trained.trials)}, "trials.json")
    if log_trials:
        for trial in trained.trials:
            _log_trial(run, trial, trained.metric or "score")


def _log_trial(run: ActiveRun, trial: dict[str, Any], metric: str) -> None:
    tags = {"mlops.trial": trial["number"], "mlops.trial.state": trial["state"]}
    if trial.get("worker"):
        tags["mlops.trial.worker"] = trial["worker"]
    if trial.get("error"):
        tags["mlops.trial.error"] = trial["error"]
    points: list[tuple[str, float, int]] = [
        (f"cv_{metric}_fold", score, fold)
        for fold, score in enumerate(trial["fold_scores"])
        if score is not None
    ]
    if trial["value"] is not None:
        points.append((f"cv_{metric}", trial["value"], 0))
    if trial.get("cv_std") is not None:
        points.append((f"cv_{metric}_std", trial["cv_std"], 0))
    params = {"candidate": trial["candidate"], **trial["params"]}
    with run.start_child(name=f"trial-{trial['number']}", tags=tags) as child:
        child.log_batch(metrics=points, params=params)
        child.end(_TRIAL_STATUS.get(trial["state"], RunStatus.FAILED))


def evaluate(
    features: PreparedData,
    train: TrainedModel,
    evaluation: dict[str, Any],
    metric: str | None,
    model_name: str | None,
    training_code: str = TRAINING_CODE,
) -> Evaluation:
    """Hold-out and slice metrics, and the verdict against the champion."""
    config = EvaluateConfig.model_validate(evaluation)
    context = _required_context("evaluate") if model_name is not None else _context()
    registry = context.ml.registry if context is not None else None
    result = evaluate_model(registry, features, train, config, metric, model_name)
    if context is not None:
        _log_evaluation(context, result)
    return result


def _log_evaluation(context: StepContext, result: Evaluation) -> None:
    run = context.run
    metrics = finite(result.metrics)
    if result.champion_metrics is not None:
        metrics.update({f"champion_{k}": v for k, v in finite(result.champion_metrics).items()})
    primary = result.metric or "anomaly_rate"
    for entry in result.slices:
        metrics[metric_key("slice", entry["column"], entry["value"], "rows")] = entry["rows"]
        value = entry["metrics"].get(primary)
        if value is not None:
            metrics[metric_key("slice", entry["column"], entry["value"], primary)] = value
    run.log_batch(
        metrics=list(metrics.items()),
        tags={
            "mlops.training.verdict": "challenger" if result.challenger_wins else "champion",
            "mlops.training.reason": result.reason,
        },
    )
    run.log_dict(
        {
            "metric": result.metric,
            "metrics": dict(result.metrics),
            "slices": list(result.slices),
            "champion_version": result.champion_version,
            "champion_metrics": result.champion_metrics,
            "improvement": result.improvement,
            "challenger_wins": result.challenger_wins,
            "reason": result.reason,
        },
        "evaluation.json",
    )
    holdout = {f"holdout_{k}": v for k, v in finite(result.metrics).items()}
    context.ml.tracking.log_metrics(context.pipeline_run_id, holdout)


def register(
    features: PreparedData,
    train: TrainedModel,
    evaluate: Evaluation,
    registration: dict[str, Any],
    training_code: str = TRAINING_CODE,
) -> Registration:
    """Register the challenger if it won, with lineage, reference profile and metrics."""
    context = _required_context("register")
    result = register_challenger(
        context.ml,
        features,
        train,
        evaluate,
        RegisterConfig.model_validate(registration),
        pipeline=context.pipeline,
        run_id=context.pipeline_run_id,
    )
    tags: dict[str, Any] = {"mlops.training.registered": str(result.registered).lower()}
    if result.version is not None:
        tags.update(
            {"mlops.training.model": result.model, "mlops.training.version": result.version}
        )
    context.run.set_tags(tags)
    return result


def deploy(
    register: Registration, deployment: dict[str, Any], training_code: str = TRAINING_CODE
) -> Rollout:
    """Roll the new version out to the endpoint with the configured strategy."""
    context = _required_context("deploy")
    rollout = deploy_version(context.ml, register, DeployConfig.model_validate(deployment))
    if rollout.deployment_id is not None:
        context.run.set_tags({"mlops.training.deployment": rollout.deployment_id})
    return rollout


def monitor(
    deploy: Rollout,
    monitoring: dict[str, Any],
    endpoint: str | None,
    training_code: str = TRAINING_CODE,
) -> dict[str, str]:
    """Create or update the alert rules that watch the endpoint (once it is deployed)."""
    return monitor_endpoint(monitoring, endpoint, training_code)


def monitor_endpoint(
    monitoring: dict[str, Any], endpoint: str | None, training_code: str = TRAINING_CODE
) -> dict[str, str]:
    """``monitor`` for a pipeline without a deploy stage (the endpoint is configured)."""
    context = _required_context("monitor")
    return apply_rules(context.ml, MonitorConfig.model_validate(monitoring), endpoint)


def build_pipeline(config: PipelineConfig) -> Pipeline:
    """The steps and params of ``config`` as a ``Pipeline`` named ``config.name``."""
    labelled = config.label is not None
    workers = config.train.hpo.workers
    steps = [
        # Volatile: the data may have changed since the last run, or since a failed run
        # that is resumed (the fix for data that failed validation is new data).
        step(name="ingest", volatile=True)(ingest),
        step(name="validate")(validate),
        step(name="preprocess")(preprocess),
        step(name="features")(features),
        step(name="train", cpu=float(workers))(train),
        step(name="evaluate", cache=False)(evaluate),
    ]
    params: dict[str, Any] = {
        "data": config.data.model_dump(mode="json"),
        "validation": config.validation.model_dump(mode="json"),
        "task": config.task,
        "label": config.label,
        "seed": config.seed,
        "preprocessing": config.preprocess.model_dump(mode="json"),
        "derived_features": [feature.model_dump(mode="json") for feature in config.features],
        "training": config.train.model_dump(mode="json"),
        "metric": config.primary_metric if labelled else None,
        "positive_label": config.positive_label,
        "evaluation": config.evaluate.model_dump(mode="json"),
        "model_name": None if config.registration is None else config.registration.model,
    }
    if config.registration is not None:
        steps.append(step(name="register", cache=False)(register))
        params["registration"] = config.registration.model_dump(mode="json")
    if config.deploy is not None:
        steps.append(step(name="deploy", cache=False)(deploy))
        params["deployment"] = config.deploy.model_dump(mode="json")
    if config.monitor is not None:
        function = monitor if config.deploy is not None else monitor_endpoint
        steps.append(step(name="monitor", cache=False)(function))
        params["monitoring"] = config.monitor.model_dump(mode="json")
        params["endpoint"] = config.monitor.endpoint or (
            config.deploy.endpoint if config.deploy is not None else None
        )
    return Pipeline(config.name, steps, params)
