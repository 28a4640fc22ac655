"""The ``evaluate`` logic: hold-out metrics, slice metrics, and champion against challenger.

The champion (the registry's production version, or the configured stage or alias) is
loaded from the registry and scored on the same hold-out rows, through its signature
like a serving request, so the comparison is between the two models as they would
serve.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from mlops.errors import InvalidInput, MLOpsError, NotFound
from mlops.pipelines.training._config_sections import EvaluateConfig, SliceSpec
from mlops.pipelines.training._data import Evaluation, PreparedData, TrainedModel
from mlops.pipelines.training._metrics import (
    Outputs,
    all_scores,
    improvement,
    model_outputs,
)
from mlops.registry import ModelRegistry

__all__ = ["evaluate_model", "metric_key"]

_DEFAULT_BINS = 4
_SAFE = re.compile(r"[^\w\-. :]")


def metric_key(*parts: Any) -> str:
    """A tracking metric key from parts, with characters keys may not hold replaced."""
    return "/".join(_SAFE.sub("_", str(part)).replace("..", "_") or "_" for part in parts)


def evaluate_model(
    registry: ModelRegistry | None,
    prepared: PreparedData,
    trained: TrainedModel,
    config: EvaluateConfig,
    metric: str | None,
    model_name: str | None,
) -> Evaluation:
    """Score the challenger on the hold-out, per slice, and against the champion."""
    task = prepared.task
    holdout = prepared.holdout
    y = prepared.labels(holdout)
    labelled = y is not None
    outputs = model_outputs(trained.model, prepared.features(holdout), task)
    positive = trained.positive_label
    metrics = all_scores(task, y, outputs, positive, labelled=labelled)
    slices = tuple(
        entry
        for spec in config.slices
        for entry in _slice(prepared, spec, outputs, y, positive, labelled)
    )
    if metric is None or not labelled:
        return Evaluation(
            metric, metrics, slices, True, "no labels: the detector is reported, not compared"
        )
    if model_name is None:
        return Evaluation(
            metric, metrics, slices, True, "no register section, so no champion to compare with"
        )
    assert registry is not None, "comparing with a champion needs the registry"
    challenger = metrics[metric]
    try:
        champion = registry.get_version(model_name, config.compare_with)
    except NotFound:
        return Evaluation(
            metric,
            metrics,
            slices,
            True,
            f"model {model_name!r} has no {config.compare_with} version yet, so the "
            "challenger wins",
            compared_with=config.compare_with,
        )
    rows = holdout.drop(columns=[prepared.label]) if prepared.label else holdout
    try:
        champion_outputs = _champion_outputs(registry, model_name, champion.number, rows, task)
    except (MLOpsError, ValueError, TypeError, KeyError) as error:
        return Evaluation(
            metric,
            metrics,
            slices,
            True,
            f"the champion (version {champion.number}) cannot score the hold-out rows "
            f"({type(error).__name__}: {error}), so the challenger wins",
            champion_version=champion.number,
            compared_with=config.compare_with,
        )
    champion_metrics = all_scores(task, y, champion_outputs, positive)
    reference = champion_metrics[metric]
    if not math.isfinite(challenger):
        wins, gain = False, None
        reason = f"the challenger's hold-out {metric} is undefined, so the champion stays"
    elif not math.isfinite(reference):
        wins, gain = True, None
        reason = f"the champion's hold-out {metric} is undefined, so the challenger wins"
    else:
        gain = improvement(metric, challenger, reference)
        wins = gain > 0 and gain >= config.min_improvement
        verdict = "wins" if wins else "loses"
        needed = f" (needs {config.min_improvement:g})" if config.min_improvement else ""
        reason = (
            f"the challenger {verdict}: {metric} {challenger:.4f} against the champion's "
            f"(version {champion.number}) {reference:.4f}, a gain of {gain:+.4f}{needed}"
        )
    return Evaluation(
        metric,
        metrics,
        slices,
        wins,
        reason,
        champion_version=champion.number,
        champion_metrics=champion_metrics,
        improvement=gain,
        compared_with=config.compare_with,
    )


def _champion_outputs(
    registry: ModelRegistry, name: str, version: int, rows: Any, task: str
) -> Outputs:
    loaded = registry.load_model(name, version)
    signature = loaded.signature
    model_input = rows
    if signature is not None and signature.inputs:
        model_input = signature.converter("allow")(rows)
    native = loaded.native
    if loaded.flavor.name in {"sklearn", "xgboost", "lightgbm"} and hasattr(native, "predict"):
        return model_outputs(native, model_input, task)
    result = loaded.predict_raw(model_input)
    predictions = np.asarray(result["predictions"])
    if predictions.ndim > 1:
        predictions = predictions[:, 0]
    probabilities = result.get("probabilities")
    classes = getattr(native, "classes_", None)
    return Outputs(
        predictions,
        None if probabilities is None else np.asarray(probabilities, dtype=float),
        None if classes is None else np.asarray(classes),
    )


def _slice(
    prepared: PreparedData,
    spec: SliceSpec,
    outputs: Outputs,
    y: Any,
    positive: Any,
    labelled: bool,
) -> list[dict[str, Any]]:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    holdout = prepared.holdout
    if spec.column not in holdout.columns:
        raise InvalidInput(
            f"evaluate.slices names {spec.column!r}, which the data does not have; its "
            f"columns are {', '.join(map(str, holdout.columns))}"
        )
    values = holdout[spec.column]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and (spec.bins is not None or values.nunique() > 10):
        bins = spec.bins if spec.bins is not None else _DEFAULT_BINS
        if isinstance(bins, int):
            groups = pd.qcut(values, q=bins, duplicates="drop")
        else:
            groups = pd.cut(values, bins=bins, include_lowest=True)
        keys = groups.astype(str).where(groups.notna(), "(missing)")
    else:
        keys = values.astype(object).map(str).where(values.notna(), "(missing)")
    entries = []
    key_array = keys.to_numpy()
    for value in sorted(set(key_array.tolist()), key=str):
        mask = key_array == value
        scores = all_scores(
            prepared.task, None if y is None else y[mask], outputs.take(mask), positive,
            labelled=labelled,
        )  # fmt: skip
        entries.append(
            {
                "column": spec.column,
                "value": value,
                "rows": int(mask.sum()),
                "metrics": {k: (v if math.isfinite(v) else None) for k, v in scores.items()},
            }
        )
    return entries
