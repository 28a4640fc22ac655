"""The ``train`` logic: search over the candidates, then refit the best on all training rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops.pipelines.training._config_train import TrainConfig
from mlops.pipelines.training._data import PreparedData, TrainedModel
from mlops.pipelines.training._metrics import positive_label
from mlops.pipelines.training._search import (
    SearchProblem,
    best_candidate,
    make_folds,
    run_search,
    trial_records,
)
from mlops.pipelines.training._storage import StorageSpec

__all__ = ["train_model"]


def train_model(
    prepared: PreparedData,
    config: TrainConfig,
    *,
    metric: str | None,
    seed: int,
    positive: Any,
    study_name: str,
    storage: StorageSpec | None,
) -> TrainedModel:
    """The best candidate by cross-validated ``metric``, refit on the training rows.

    An anomaly detector without labels has nothing to be scored by: its one candidate is
    fit as configured.
    """
    X = prepared.features(prepared.train)  # noqa: N806
    y = prepared.labels(prepared.train)
    task = prepared.task
    chosen_positive = None
    if y is not None and task != "regression":
        chosen_positive = positive_label(y, positive)
    candidates = tuple(config.candidates)
    if metric is None or y is None:
        problem = SearchProblem(
            task, "", candidates, prepared.transformer, X, y, (), seed, chosen_positive, False
        )
        candidate = candidates[0]
        model = problem.fit(problem.build(candidate, {}))
        return TrainedModel(
            model, candidate.label, candidate.algorithm, dict(candidate.params), None, None,
            None, chosen_positive, None,
        )  # fmt: skip
    labels = np.asarray(y)
    folds = make_folds(task, X, labels, config.folds, seed)
    problem = SearchProblem(
        task=task,
        metric=metric,
        candidates=candidates,
        transformer=prepared.transformer,
        X=X,
        y=labels,
        folds=folds,
        seed=seed,
        positive=chosen_positive,
        prune=config.prune,
    )
    study = run_search(problem, config, study_name=study_name, storage=storage)
    candidate, params, best = best_candidate(study, problem)
    model = problem.fit(problem.build(candidate, params))
    std = best.user_attrs.get("cv_std")
    return TrainedModel(
        model=model,
        candidate=candidate.label,
        algorithm=candidate.algorithm,
        params={**candidate.params, **params},
        metric=metric,
        cv_score=float(best.value),
        cv_std=None if std is None else float(std),
        positive_label=chosen_positive,
        study_name=study_name,
        trials=trial_records(study),
    )
