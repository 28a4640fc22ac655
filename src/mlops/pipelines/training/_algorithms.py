"""The candidate algorithms a config may name, per task, and how to build each one.

Every estimator runs single-threaded (``n_jobs=1``): parallelism comes from running
trials and pipeline steps side by side, not from oversubscribing the CPUs inside one
fit. Estimators that take a ``random_state`` get the config's seed.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import InvalidInput, MissingDependency

__all__ = [
    "ALGORITHMS",
    "TASKS",
    "Algorithm",
    "get_algorithm",
    "hyperparameters",
    "make_estimator",
]

TASKS = ("classification", "regression", "anomaly_detection")


@dataclass(frozen=True, slots=True)
class Algorithm:
    """A named estimator class for one task, with the defaults the pipeline sets."""

    name: str
    task: str
    class_path: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    extra: str = "train"

    @property
    def estimator_class(self) -> Any:
        module_name, _, class_name = self.class_path.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            package = module_name.split(".")[0]
            raise MissingDependency.for_extra(
                package, self.extra, f"The {self.name!r} algorithm"
            ) from None
        return getattr(module, class_name)


def _sk(task: str, name: str, path: str, **defaults: Any) -> Algorithm:
    return Algorithm(name, task, f"sklearn.{path}", defaults)


_FOREST = {"n_estimators": 100, "n_jobs": 1}
_XGB = {"n_estimators": 200, "n_jobs": 1, "verbosity": 0, "tree_method": "hist"}
_LGBM = {"n_estimators": 200, "n_jobs": 1, "verbose": -1}

ALGORITHMS: dict[tuple[str, str], Algorithm] = {
    (a.task, a.name): a
    for a in (
        _sk("classification", "logistic_regression", "linear_model.LogisticRegression",
            max_iter=1000),
        _sk("classification", "random_forest", "ensemble.RandomForestClassifier", **_FOREST),
        _sk("classification", "extra_trees", "ensemble.ExtraTreesClassifier", **_FOREST),
        _sk("classification", "gradient_boosting", "ensemble.GradientBoostingClassifier"),
        _sk("classification", "hist_gradient_boosting",
            "ensemble.HistGradientBoostingClassifier"),
        _sk("classification", "decision_tree", "tree.DecisionTreeClassifier"),
        _sk("classification", "knn", "neighbors.KNeighborsClassifier", n_jobs=1),
        Algorithm("xgboost", "classification", "xgboost.XGBClassifier", _XGB, "xgboost"),
        Algorithm("lightgbm", "classification", "lightgbm.LGBMClassifier", _LGBM, "lightgbm"),
        _sk("regression", "linear_regression", "linear_model.LinearRegression"),
        _sk("regression", "ridge", "linear_model.Ridge"),
        _sk("regression", "lasso", "linear_model.Lasso", max_iter=5000),
        _sk("regression", "elastic_net", "linear_model.ElasticNet", max_iter=5000),
        _sk("regression", "random_forest", "ensemble.RandomForestRegressor", **_FOREST),
        _sk("regression", "extra_trees", "ensemble.ExtraTreesRegressor", **_FOREST),
        _sk("regression", "gradient_boosting", "ensemble.GradientBoostingRegressor"),
        _sk("regression", "hist_gradient_boosting", "ensemble.HistGradientBoostingRegressor"),
        _sk("regression", "decision_tree", "tree.DecisionTreeRegressor"),
        _sk("regression", "knn", "neighbors.KNeighborsRegressor", n_jobs=1),
        Algorithm("xgboost", "regression", "xgboost.XGBRegressor", _XGB, "xgboost"),
        Algorithm("lightgbm", "regression", "lightgbm.LGBMRegressor", _LGBM, "lightgbm"),
        _sk("anomaly_detection", "isolation_forest", "ensemble.IsolationForest", n_jobs=1),
    )
}  # fmt: skip


def get_algorithm(task: str, name: str) -> Algorithm:
    """The algorithm called ``name`` for ``task``; the error lists the ones there are."""
    found = ALGORITHMS.get((task, name))
    if found is None:
        names = ", ".join(sorted(n for t, n in ALGORITHMS if t == task))
        raise InvalidInput(f"{name!r} is not an algorithm for {task}; use one of {names}")
    return found


def hyperparameters(algorithm: Algorithm) -> set[str]:
    """The names the estimator's constructor takes (``get_params()``)."""
    return set(algorithm.estimator_class().get_params(deep=False))


def make_estimator(algorithm: Algorithm, params: Mapping[str, Any], seed: int) -> Any:
    """A new, unfitted estimator: defaults, then the seed, then ``params``."""
    cls = algorithm.estimator_class
    arguments = dict(algorithm.defaults)
    if "random_state" in cls().get_params(deep=False):
        arguments["random_state"] = seed
    arguments.update(params)
    estimator = cls(**arguments)
    if algorithm.name == "xgboost" and algorithm.task == "classification":
        from mlops.pipelines.training._estimators import LabelEncodedClassifier

        # XGBoost wants the classes as 0..k-1; the wrapper maps any labels to those.
        return LabelEncodedClassifier(estimator)
    return estimator
