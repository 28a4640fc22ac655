"""Hyperparameter search: one Optuna study over every candidate, scored by k-fold CV.

The TPE sampler picks a candidate and its hyperparameters per trial; each fold's score
is reported as the trial goes, so the median pruner stops trials that fall behind. With
``hpo.workers: N`` the study lives in the metadata database and N processes (this one
and N-1 started for it) each run their share of the trials.
"""

from __future__ import annotations

import math
import os
import pickle
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.errors import InvalidInput, MissingDependency
from mlops.pipelines.training._algorithms import get_algorithm, make_estimator
from mlops.pipelines.training._config_train import (
    Candidate,
    CategoricalSpace,
    FloatSpace,
    IntSpace,
    TrainConfig,
)
from mlops.pipelines.training._metrics import LOWER_IS_BETTER, model_outputs, score
from mlops.pipelines.training._storage import StorageSpec
from mlops.pipelines.training._workers import WorkerGroup

__all__ = [
    "SearchProblem",
    "best_candidate",
    "make_folds",
    "run_search",
    "trial_records",
    "worker_main",
]

_PRUNER_STARTUP_TRIALS = 5


@dataclass(frozen=True)
class SearchProblem:
    """Everything a trial needs, picklable so worker processes get their own copy."""

    task: str
    metric: str
    candidates: tuple[Candidate, ...]
    transformer: Any
    X: Any
    y: Any
    folds: tuple[tuple[Any, Any], ...]
    seed: int
    positive: Any
    prune: bool

    @property
    def direction(self) -> str:
        return "minimize" if self.metric in LOWER_IS_BETTER else "maximize"

    def build(self, candidate: Candidate, params: dict[str, Any]) -> Any:
        """An unfitted model: the transformer and the candidate's estimator."""
        from mlops.pipelines.training._estimators import with_estimator

        algorithm = get_algorithm(self.task, candidate.algorithm)
        estimator = make_estimator(algorithm, {**candidate.params, **params}, self.seed)
        return with_estimator(self.transformer, estimator)

    def fit(self, model: Any, rows: Any = None) -> Any:
        X = self.X if rows is None else self.X.iloc[rows]  # noqa: N806
        if self.task == "anomaly_detection":
            return model.fit(X)
        y = self.y if rows is None else self.y[rows]
        return model.fit(X, y)


def make_folds(task: str, X: Any, y: Any, folds: int, seed: int) -> tuple[tuple[Any, Any], ...]:  # noqa: N803
    """Shuffled k-fold splits, stratified by class when there are classes."""
    from sklearn.model_selection import KFold, StratifiedKFold  # type: ignore[import-untyped,unused-ignore]

    if len(X) < folds * 2:
        raise InvalidInput(f"{len(X)} training rows are too few for {folds}-fold CV")
    if task == "regression" or y is None:
        splitter: Any = KFold(n_splits=folds, shuffle=True, random_state=seed)
        return tuple(splitter.split(X))
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < folds:
        raise InvalidInput(
            f"the rarest class has {counts.min()} training rows, fewer than the {folds} "
            "folds of stratified CV; set train.folds lower"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return tuple(splitter.split(X, y))


def _suggest(trial: Any, problem: SearchProblem) -> tuple[Candidate, dict[str, Any]]:
    candidates = problem.candidates
    if len(candidates) == 1:
        candidate = candidates[0]
    else:
        labels = [c.label for c in candidates]
        chosen = trial.suggest_categorical("candidate", labels)
        candidate = candidates[labels.index(chosen)]
    params: dict[str, Any] = {}
    for name, space in candidate.search.items():
        key = f"{candidate.label}.{name}"
        if isinstance(space, IntSpace):
            params[name] = trial.suggest_int(
                key, space.low, space.high, step=space.step, log=space.log
            )
        elif isinstance(space, FloatSpace):
            params[name] = trial.suggest_float(
                key, space.low, space.high, step=space.step, log=space.log
            )
        elif isinstance(space, CategoricalSpace):
            params[name] = trial.suggest_categorical(key, space.choices)
        else:  # LogSpace
            params[name] = trial.suggest_float(key, space.low, space.high, log=True)
    return candidate, params


def _objective(problem: SearchProblem, worker: str) -> Callable[[Any], float]:
    optuna = _optuna()

    def objective(trial: Any) -> float:
        candidate, params = _suggest(trial, problem)
        trial.set_user_attr("candidate", candidate.label)
        trial.set_user_attr("worker", worker)
        earlier = _same_settings(trial)
        if earlier is not None:  # a setting already scored: report it, fit nothing
            trial.set_user_attr("duplicate_of", earlier.number)
            for key in ("fold_scores", "cv_std"):
                if key in earlier.user_attrs:
                    trial.set_user_attr(key, earlier.user_attrs[key])
            return float(earlier.value)
        scores: list[float] = []
        try:
            for fold, (train_rows, test_rows) in enumerate(problem.folds):
                model = problem.fit(problem.build(candidate, params), train_rows)
                outputs = model_outputs(model, problem.X.iloc[test_rows], problem.task)
                value = score(
                    problem.task, problem.metric, problem.y[test_rows], outputs, problem.positive
                )
                scores.append(value)
                running = float(np.nanmean(scores)) if not np.isnan(scores).all() else math.nan
                if problem.prune and math.isfinite(running):
                    trial.report(running, fold)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"fold {fold + 1}: {running:.4g}")
        except optuna.TrialPruned:
            trial.set_user_attr("fold_scores", [_json_float(s) for s in scores])
            raise
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:1000])
            raise
        finite = [s for s in scores if math.isfinite(s)]
        if not finite:
            raise ValueError(f"{problem.metric} is undefined on every fold")
        # Written once, at the end: each storage call is a round trip to a shared database.
        trial.set_user_attr("fold_scores", [_json_float(s) for s in scores])
        trial.set_user_attr("cv_std", float(np.std(finite)))
        return float(np.mean(finite))

    return objective


def _same_settings(trial: Any) -> Any:
    """A completed trial of the study with exactly this trial's params, or None."""
    states = (_optuna().trial.TrialState.COMPLETE,)
    for other in trial.study.get_trials(deepcopy=False, states=states):
        if other.params == trial.params and other.number != trial.number:
            return other
    return None


def run_search(
    problem: SearchProblem,
    config: TrainConfig,
    *,
    study_name: str,
    storage: StorageSpec | None,
) -> Any:
    """Run the study (in this process, plus spawned workers) and return it.

    Optuna's line per trial is silenced meanwhile: each trial is a tracked child run.
    """
    optuna = _optuna()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return _run_search(optuna, problem, config, study_name=study_name, storage=storage)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _run_search(
    optuna: Any,
    problem: SearchProblem,
    config: TrainConfig,
    *,
    study_name: str,
    storage: StorageSpec | None,
) -> Any:
    workers = config.hpo.workers
    budget = config.budget
    live = storage.open() if storage is not None else optuna.storages.InMemoryStorage()
    study = optuna.create_study(
        storage=live,
        study_name=study_name,
        direction=problem.direction,
        sampler=_sampler(problem.seed),
        pruner=_pruner(problem.prune),
    )
    if len(problem.candidates) > 1 and (budget is None or budget >= len(problem.candidates)):
        for candidate in problem.candidates:  # every candidate is tried before TPE takes over
            study.enqueue_trial({"candidate": candidate.label})
    shares = _shares(budget, workers)
    if workers == 1:
        _optimize(study, problem, shares[0], config.timeout)
        return study
    assert storage is not None  # the config requires storage: database with workers
    with WorkerGroup() as group:
        for index in range(1, workers):
            work = (
                storage,
                study_name,
                problem,
                shares[index],
                config.timeout,
                problem.seed + index,
            )
            group.start(work)
        _optimize(study, problem, shares[0], config.timeout)
        group.wait()  # a worker's failure (say, no database) fails the search
    return optuna.load_study(study_name=study_name, storage=live)


def _shares(budget: int | None, workers: int) -> list[int | None]:
    """Each worker's number of trials (None: until the timeout), summing to ``budget``."""
    if budget is None:
        return [None] * workers
    return [budget // workers + (1 if i < budget % workers else 0) for i in range(workers)]


def _optimize(
    study: Any,
    problem: SearchProblem,
    trials: int | None,
    timeout: float | None,
    callbacks: list[Any] | None = None,
) -> None:
    if trials == 0:
        return
    worker = f"{socket.gethostname()}:{os.getpid()}"
    study.optimize(
        _objective(problem, worker),
        n_trials=trials,
        timeout=timeout,
        catch=(Exception,),
        callbacks=callbacks,
    )


def worker_main(payload: bytes) -> None:
    """A worker process (see ``_workers``): load the shared study, run its share."""
    storage, study_name, problem, trials, timeout, seed = pickle.loads(payload)
    optuna = _optuna()
    study = optuna.load_study(
        study_name=study_name,
        storage=storage.open(),
        sampler=_sampler(seed),
        pruner=_pruner(problem.prune),
    )
    parent = os.getppid()

    def stop_if_orphaned(study: Any, _trial: Any) -> None:
        if os.getppid() != parent:  # the pipeline that started us is gone
            study.stop()

    _optimize(study, problem, trials, timeout, [stop_if_orphaned])


def _sampler(seed: int) -> Any:
    return _optuna().samplers.TPESampler(seed=seed)


def _pruner(prune: bool) -> Any:
    pruners = _optuna().pruners
    if not prune:
        return pruners.NopPruner()
    return pruners.MedianPruner(n_startup_trials=_PRUNER_STARTUP_TRIALS, n_warmup_steps=1)


def best_candidate(study: Any, problem: SearchProblem) -> tuple[Candidate, dict[str, Any], Any]:
    """The best trial's candidate, its searched params and the trial itself."""
    optuna = _optuna()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        errors = [t.user_attrs.get("error") for t in study.trials if t.user_attrs.get("error")]
        hint = f"; the first error: {errors[0]}" if errors else ""
        raise InvalidInput(f"no trial of the search completed ({len(study.trials)} ran){hint}")
    best = study.best_trial
    labels = [c.label for c in problem.candidates]
    label = best.params.get("candidate", labels[0])
    candidate = problem.candidates[labels.index(label)]
    prefix = f"{label}."
    params = {k[len(prefix) :]: v for k, v in best.params.items() if k.startswith(prefix)}
    return candidate, params, best


def trial_records(study: Any) -> tuple[dict[str, Any], ...]:
    """Each trial as plain data: number, state, candidate, params, score, fold scores."""
    records = []
    for trial in study.get_trials(deepcopy=False):
        label = trial.user_attrs.get("candidate") or trial.params.get("candidate")
        prefix = f"{label}."
        records.append(
            {
                "number": trial.number,
                "state": trial.state.name.lower(),
                "candidate": label,
                "params": {
                    k[len(prefix) :]: v for k, v in trial.params.items() if k.startswith(prefix)
                },
                "value": _json_float(trial.value),
                "cv_std": trial.user_attrs.get("cv_std"),
                "fold_scores": list(trial.user_attrs.get("fold_scores", [])),
                "worker": trial.user_attrs.get("worker"),
                "error": trial.user_attrs.get("error"),
                "duration_s": _duration(trial.datetime_start, trial.datetime_complete),
            }
        )
    return tuple(records)


def _duration(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return round(float((end - start).total_seconds()), 3)


def _json_float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingDependency.for_extra("optuna", "train", "Hyperparameter search") from None
    return optuna
