"""An end-to-end demo: a seeded synthetic churn dataset, a small NumPy sweep, the registry,
a canary rollout on a real server, the training pipeline, drift, an alert and retraining.

Logistic regression trained by full-batch gradient descent for a grid of learning rates
and L2 strengths; each setting is a child run of one "sweep" run, with params, per-epoch
losses, final validation scores, the learned weights and a JSON report. The best run's
model is registered as version 1 (with lineage to its run and datasets), promoted through
staging to production under a promotion policy, and loaded back by its URI to predict. A
"challenger" run tunes the winner's decision threshold for F1 and becomes version 2, in
staging. With a server, v1 is deployed and v2 rolled out as a canary under live traffic
(``_demo_rollout``); the pipeline and monitoring acts follow. Run again on the same store,
the demo trains anew but registers and rolls out nothing twice.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from mlops._client import MLOps
from mlops._demo_monitoring import (
    DEMO_DRIFT_RULE,
    DEMO_ENDPOINT,
    MonitoringDemo,
    run_monitoring_demo,
)
from mlops._demo_pipelines import PipelineDemo, retrain_on_alerts, run_training_pipeline
from mlops._demo_rollout import DemoServer, RolloutDemo, run_rollout_demo
from mlops.models import PythonModel
from mlops.registry import ModelVersion, PromotionPolicy
from mlops.tracking import ActiveRun, Run, dataset_from_data

__all__ = [
    "DEMO_EXPERIMENT",
    "DEMO_MODEL",
    "MAX_DEMO_RUNS",
    "ChurnLogit",
    "DemoResult",
    "run_demo",
]

DEMO_EXPERIMENT = "demo-churn"
DEMO_MODEL = "churn-demo"
_LEARNING_RATES = (0.03, 0.1, 0.3, 1.0)
_L2_STRENGTHS = (0.0, 0.01, 0.1)
MAX_DEMO_RUNS = len(_LEARNING_RATES) * len(_L2_STRENGTHS)
_FEATURES = (
    "tenure_months",
    "monthly_charges",
    "support_calls",
    "contract_length",
    "late_payments",
    "data_usage_gb",
    "num_products",
    "satisfaction",
)
_SEED = 7
_SAMPLES = 1500
_EPOCHS = 40
_VALIDATION_FRACTION = 0.25
_THRESHOLDS = np.round(np.arange(0.30, 0.701, 0.02), 2)
#: Which version is which, in the versions' metadata, so a second demo finds them.
_ROLE = "demo_role"

Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo made: its experiment, the sweep run, and children ranked by val_f1."""

    experiment_name: str
    sweep_run_id: str
    ranked_runs: list[Run]
    model_version: ModelVersion  # v1, the sweep's winner
    challenger: ModelVersion  # v2, the winner with a tuned decision threshold
    sample_predictions: list[int]
    rollout: RolloutDemo | None  # None without a server
    monitoring: MonitoringDemo
    pipeline: PipelineDemo | None  # None without the training extra


class ChurnLogit(PythonModel):
    """The demo's model as a registry package: weights and bias of a logistic regression."""

    def __init__(self, weights: Array, bias: float, threshold: float = 0.5) -> None:
        self.weights = weights
        self.bias = bias
        self.threshold = threshold

    def predict(self, inputs: Any) -> Any:
        features = np.asarray(inputs, dtype=np.float64)
        probability = _sigmoid(features @ self.weights + self.bias)
        return {
            "predictions": (probability >= self.threshold).astype(int).tolist(),
            "probabilities": probability.tolist(),
        }


@dataclass(frozen=True, slots=True)
class _Split:
    x_train: Array
    y_train: Array
    x_val: Array
    y_val: Array


def run_demo(
    ml: MLOps,
    console: Console,
    *,
    runs: int = 6,
    server: DemoServer | None = None,
    step_seconds: float = 4.0,
) -> DemoResult:
    """Train ``runs`` hyperparameter settings as child runs of one sweep, register the
    winner and a challenger; with a ``server``, roll the challenger out as a canary
    (``step_seconds`` per step); then the pipeline and monitoring acts."""
    if not 1 <= runs <= MAX_DEMO_RUNS:
        raise ValueError(f"runs must be from 1 to {MAX_DEMO_RUNS}, got {runs}")
    rng = np.random.default_rng(_SEED)
    features, labels = _make_dataset(rng)
    split = _split(features, labels, rng)
    grid = list(itertools.product(_LEARNING_RATES, _L2_STRENGTHS))
    chosen = sorted(grid[int(index)] for index in rng.permutation(len(grid))[:runs])
    table = np.column_stack([features, labels])
    dataset = dataset_from_data("churn-synthetic", table, source=f"numpy synthetic, seed {_SEED}")

    tracking = ml.tracking
    experiment = tracking.set_experiment(DEMO_EXPERIMENT)
    console.print(
        f"training {runs} logistic regressions on {len(labels)} synthetic customers "
        f"({len(_FEATURES)} features) in experiment '{experiment.name}'"
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with (
        tracking.start_run(experiment.id, name="sweep", tags={"demo": "true"}) as sweep,
        tempfile.TemporaryDirectory(prefix="mlops-demo-") as scratch,
        Progress(*columns, console=console) as progress,
    ):
        sweep.log_params({"grid_size": runs, "epochs": _EPOCHS, "model": "logistic_regression"})
        sweep.log_input(dataset, context="training")
        task = progress.add_task("sweep", total=runs * _EPOCHS)
        best_f1, best_run = -1.0, ""
        for learning_rate, l2 in chosen:
            name = f"lr={learning_rate} l2={l2}"
            progress.update(task, description=name)
            with sweep.start_child(name=name, tags={"demo": "true"}) as child:
                f1 = _train(child, split, learning_rate, l2, Path(scratch), progress, task)
            if f1 > best_f1:
                best_f1, best_run = f1, child.id
        sweep.log_metric("best_val_f1", best_f1)
        sweep.set_tag("best_run_id", best_run)
        progress.update(task, description="done")

    ranked = tracking.search_runs(
        experiment.id,
        f"attributes.parent_run_id = '{sweep.id}'",
        order_by=["metrics.val_f1 DESC", "metrics.val_loss ASC"],
    )
    best_model = _load_weights(ml, ranked[0].id)
    challenger_run, challenger_model = _tune_threshold(
        ml, experiment.id, ranked[0], best_model, split
    )
    version, challenger, predictions = _register(
        ml, console, ranked[0], best_model, challenger_run, challenger_model, split
    )
    rollout = None
    serving = version.number
    if server is not None:
        rollout = run_rollout_demo(
            ml, console, server, DEMO_ENDPOINT, version, challenger, step_seconds=step_seconds
        )
        serving = rollout.serving_version
    pipeline = run_training_pipeline(ml, console, alert_rule=DEMO_DRIFT_RULE)
    monitoring = run_monitoring_demo(ml, console, DEMO_MODEL, serving)
    if pipeline is not None:
        retrain_on_alerts(ml, console)
    return DemoResult(
        experiment.name,
        sweep.id,
        list(ranked),
        version,
        challenger,
        predictions,
        rollout,
        monitoring,
        pipeline,
    )


def _load_weights(ml: MLOps, run_id: str) -> ChurnLogit:
    with tempfile.TemporaryDirectory(prefix="mlops-demo-") as scratch:
        weights_file = ml.tracking.download_artifacts(run_id, "model/weights.npz", scratch)
        with np.load(weights_file) as saved:
            return ChurnLogit(saved["weights"], float(saved["bias"]))


def _tune_threshold(
    ml: MLOps, experiment_id: int, best: Run, model: ChurnLogit, split: _Split
) -> tuple[Run, ChurnLogit]:
    """The challenger: the winner's decision threshold chosen for F1 on the training data."""
    train_probability = np.asarray(model.predict(split.x_train)["probabilities"])
    val_probability = np.asarray(model.predict(split.x_val)["probabilities"])
    with ml.tracking.start_run(
        experiment_id, name="challenger", tags={"demo": "true", "base_run_id": best.id}
    ) as run:
        run.log_params(
            {**best.params, "base_run": best.name or best.id, "tuned": "decision threshold"}
        )
        train_f1 = []
        for step, threshold in enumerate(_THRESHOLDS):
            predicted = (train_probability >= threshold).astype(np.float64)
            f1 = _scores(predicted, split.y_train)["f1"]
            train_f1.append(f1)
            run.log_metrics({"threshold": float(threshold), "train_f1": f1}, step=step)
        threshold = float(_THRESHOLDS[int(np.argmax(train_f1))])
        predicted = (val_probability >= threshold).astype(np.float64)
        scores = _scores(predicted, split.y_val)
        run.log_param("threshold", threshold)
        run.log_metrics({"val_accuracy": scores["accuracy"], "val_f1": scores["f1"]})
        run.log_dict({"threshold": threshold, "validation": scores}, "report.json")
    return ml.tracking.get_run(run.id), ChurnLogit(model.weights, model.bias, threshold)


def _register(
    ml: MLOps,
    console: Console,
    best: Run,
    model: ChurnLogit,
    challenger_run: Run,
    challenger_model: ChurnLogit,
    split: _Split,
) -> tuple[ModelVersion, ModelVersion, list[int]]:
    """Register v1 (production) and v2 (staging) unless an earlier demo did; load v1 back."""
    registry = ml.registry
    found = _demo_versions(ml)
    champion = found.get("champion")
    if champion is None:
        champion = _register_version(ml, "champion", best, model, split)
        registry.set_policy(DEMO_MODEL, PromotionPolicy(thresholds={"f1": 0.5}))
        registry.promote_to_stage(DEMO_MODEL, champion.number, "staging", reason="sweep winner")
        registry.promote_to_stage(
            DEMO_MODEL, champion.number, "production", reason="passed the f1 ≥ 0.5 policy"
        )
        console.print(
            f"registered {champion.uri} (version {champion.number}, val_f1 "
            f"{best.metrics['val_f1']:.3f}) and promoted it through staging to production"
        )
    challenger = found.get("challenger")
    if challenger is None:
        challenger = _register_version(ml, "challenger", challenger_run, challenger_model, split)
        registry.promote_to_stage(
            DEMO_MODEL, challenger.number, "staging", reason="challenger: tuned threshold"
        )
        console.print(
            f"registered {challenger.uri} (version {challenger.number}, threshold "
            f"{challenger_model.threshold:.2f}, val_f1 {challenger_run.metrics['val_f1']:.3f}) "
            "in staging: the challenger"
        )
    if "champion" in found and "challenger" in found:
        console.print(
            f"{DEMO_MODEL} already has versions {champion.number} and {challenger.number} from "
            "an earlier demo; the new runs are tracked, nothing is registered twice"
        )
    loaded = registry.load_model(DEMO_MODEL, champion.number)
    predictions = [int(p) for p in loaded.predict(split.x_val[:5].tolist())["predictions"]]
    console.print(f"models:/{DEMO_MODEL}/{champion.number} predicts {predictions} for 5 customers")
    return (
        registry.get_version(DEMO_MODEL, champion.number),
        registry.get_version(DEMO_MODEL, challenger.number),
        predictions,
    )


def _demo_versions(ml: MLOps) -> dict[str, ModelVersion]:
    """The versions an earlier demo registered, by role."""
    if DEMO_MODEL not in {model.name for model in ml.registry.list_models()}:
        return {}
    found: dict[str, ModelVersion] = {}
    for version in ml.registry.list_versions(DEMO_MODEL):
        role = version.metadata.get(_ROLE)
        if isinstance(role, str) and role not in found:
            found[role] = version
    return found


def _register_version(
    ml: MLOps, role: str, run: Run, model: ChurnLogit, split: _Split
) -> ModelVersion:
    metrics: Mapping[str, float] = {
        "f1": run.metrics["val_f1"],
        "accuracy": run.metrics["val_accuracy"],
        "threshold": model.threshold,
    }
    return ml.registry.register_model(
        DEMO_MODEL,
        model,
        metrics=dict(metrics),
        metadata={"features": list(_FEATURES), "trained_by": "mlops demo", _ROLE: role},
        input_example=split.x_val[:5],
        reference_data=split.x_train,
        run=run.id,
        description=f"logistic regression from run {run.name}"
        + ("" if role == "champion" else f", decision threshold {model.threshold:.2f}"),
    )


def _make_dataset(rng: np.random.Generator) -> tuple[Array, Array]:
    """Features with a known linear signal; labels drawn from its logistic probability."""
    features = rng.normal(size=(_SAMPLES, len(_FEATURES)))
    true_weights = np.array([-1.4, 0.9, 1.2, -0.8, 0.7, 0.0, -0.5, -1.1])
    logits = features @ true_weights - 0.6 + rng.normal(scale=0.5, size=_SAMPLES)
    labels = (rng.random(_SAMPLES) < _sigmoid(logits)).astype(np.float64)
    return features, labels


def _split(features: Array, labels: Array, rng: np.random.Generator) -> _Split:
    order = rng.permutation(len(labels))
    cut = int(len(labels) * (1 - _VALIDATION_FRACTION))
    train, val = order[:cut], order[cut:]
    mean = features[train].mean(axis=0)
    std = features[train].std(axis=0)
    scaled = (features - mean) / std
    return _Split(scaled[train], labels[train], scaled[val], labels[val])


def _sigmoid(z: Array) -> Array:
    result: Array = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return result


def _log_loss(weights: Array, bias: float, x: Array, y: Array, l2: float) -> float:
    p = np.clip(_sigmoid(x @ weights + bias), 1e-12, 1 - 1e-12)
    data_loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float(data_loss + 0.5 * l2 * float(weights @ weights))


def _train(
    run: ActiveRun,
    split: _Split,
    learning_rate: float,
    l2: float,
    scratch: Path,
    progress: Progress,
    task: TaskID,
) -> float:
    """Fit one setting, logging as it goes; returns the validation F1."""
    run.log_params({"learning_rate": learning_rate, "l2": l2, "epochs": _EPOCHS})
    run.log_input(dataset_from_data("churn-train", split.x_train), context="training")
    run.log_input(dataset_from_data("churn-validation", split.x_val), context="validation")
    weights = np.zeros(split.x_train.shape[1])
    bias = 0.0
    for epoch in range(_EPOCHS):
        error = _sigmoid(split.x_train @ weights + bias) - split.y_train
        weights -= learning_rate * (split.x_train.T @ error / len(error) + l2 * weights)
        bias -= learning_rate * float(error.mean())
        run.log_metrics(
            {
                "train_loss": _log_loss(weights, bias, split.x_train, split.y_train, l2),
                "val_loss": _log_loss(weights, bias, split.x_val, split.y_val, 0.0),
            },
            step=epoch,
        )
        progress.advance(task)
    predicted = (_sigmoid(split.x_val @ weights + bias) >= 0.5).astype(np.float64)
    scores = _scores(predicted, split.y_val)
    run.log_metrics({"val_accuracy": scores["accuracy"], "val_f1": scores["f1"]}, step=_EPOCHS)
    weights_file = scratch / run.id / "weights.npz"
    weights_file.parent.mkdir()
    np.savez(weights_file, weights=weights, bias=np.array(bias), features=np.array(_FEATURES))
    run.log_artifact(weights_file, artifact_path="model")
    report: dict[str, Any] = {
        "model": "logistic_regression",
        "learning_rate": learning_rate,
        "l2": l2,
        "epochs": _EPOCHS,
        "validation": scores,
        "weights": dict(zip(_FEATURES, (round(float(w), 6) for w in weights), strict=True)),
        "bias": round(bias, 6),
    }
    run.log_dict(report, "report.json")
    return scores["f1"]


def _scores(predicted: Array, actual: Array) -> dict[str, float]:
    true_positive = float(np.sum((predicted == 1) & (actual == 1)))
    false_positive = float(np.sum((predicted == 1) & (actual == 0)))
    false_negative = float(np.sum((predicted == 0) & (actual == 1)))
    precision = true_positive / max(true_positive + false_positive, 1.0)
    recall = true_positive / max(true_positive + false_negative, 1.0)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {
        "accuracy": float(np.mean(predicted == actual)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
