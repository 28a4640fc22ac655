"""Baselines for live performance: a registry version's (or run's) metrics under report names."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import sqlalchemy as sa

from mlops.errors import NotFound
from mlops.monitoring._performance import HIGHER_IS_BETTER
from mlops.registry._entities import parse_version_selector
from mlops.registry._rows import load_versions, version_row
from mlops.store import Store
from mlops.store._schema import latest_metrics

__all__ = ["METRIC_ALIASES", "baseline_from_metrics", "baseline_from_registry"]

#: Run metric names (after dropping a split prefix) and the report metric each maps to.
METRIC_ALIASES: Mapping[str, str] = {
    "accuracy": "accuracy",
    "acc": "accuracy",
    "accuracy_score": "accuracy",
    "precision": "precision",
    "precision_score": "precision",
    "recall": "recall",
    "recall_score": "recall",
    "f1": "f1",
    "f1_score": "f1",
    "roc_auc": "roc_auc",
    "auc": "roc_auc",
    "roc_auc_score": "roc_auc",
    "log_loss": "log_loss",
    "logloss": "log_loss",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "rmse": "rmse",
    "root_mean_squared_error": "rmse",
    "mse": "mse",
    "mean_squared_error": "mse",
    "r2": "r2",
    "r2_score": "r2",
}
# Held-out splits first: their numbers are what live traffic should match. Training
# metrics overstate live performance and are never used.
_SPLITS = (("test", "holdout"), ("val", "valid", "validation", "eval"), ("",))
_TRAINING = ("train", "training")
_SEPARATORS = re.compile(r"[/.\-\s]+")


def baseline_from_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """Report metric names for a run's or version's metrics (see METRIC_ALIASES).

    Names are matched case-insensitively with "/", "." and "-" read as "_", after an
    optional split prefix: "test_" or "holdout_" first, then "val_", "valid_",
    "validation_" or "eval_", then no prefix; "train_" metrics are ignored. A "_macro" or
    "_binary" suffix is dropped; an MSE becomes an RMSE (its square root).
    """
    best: dict[str, tuple[int, str, float]] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            continue
        parsed = _parse_metric_name(str(name))
        if parsed is None:
            continue
        rank, target = parsed
        number = float(value)
        if target == "mse":
            if number < 0:
                continue
            target, number = "rmse", math.sqrt(number)
        current = best.get(target)
        if current is None or (rank, str(name)) < current[:2]:
            best[target] = (rank, str(name), number)
    return {target: best[target][2] for target in HIGHER_IS_BETTER if target in best}


def _parse_metric_name(name: str) -> tuple[int, str] | None:
    words = _SEPARATORS.sub("_", name.strip().lower())
    for suffix in ("_macro", "_binary"):
        words = words.removesuffix(suffix)
    head, _, rest = words.partition("_")
    if head in _TRAINING:
        return None
    for rank, prefixes in enumerate(_SPLITS):
        if head in prefixes and rest in METRIC_ALIASES:
            return rank, METRIC_ALIASES[rest]
    if words in METRIC_ALIASES:
        return len(_SPLITS) - 1, METRIC_ALIASES[words]
    return None


def baseline_from_registry(
    store: Store, model: str, version: int | str = "production"
) -> dict[str, float]:
    """A baseline from a registry version's metrics (and its run's latest metrics).

    ``version`` is a number, a semantic version, a stage, "@alias" or "latest"; the
    version's own metrics win over its run's. Raises NotFound when none maps to a report
    metric (see ``baseline_from_metrics``).
    """
    with store.read() as connection:
        reference = parse_version_selector(model, version)
        found = load_versions(connection, model, [version_row(connection, reference)])[0]
        metrics: dict[str, float] = {}
        if found.run_id is not None:
            rows = connection.execute(
                sa.select(latest_metrics.c.key, latest_metrics.c.value).where(
                    latest_metrics.c.run_id == found.run_id
                )
            ).all()
            metrics.update({key: value for key, value in rows if value is not None})
    metrics.update(found.metrics)
    baseline = baseline_from_metrics(metrics)
    if not baseline:
        names = ", ".join(sorted(metrics)) or "none"
        raise NotFound(
            f"version {found.number} of model {model!r} has no metric a live report can "
            f"compare with (its metrics: {names}); log one such as 'val_accuracy' or 'rmse' "
            "on its run, or pass baseline={...} yourself"
        )
    return baseline
