"""The scikit-learn pieces inside every model the pipeline trains.

A trained model is one scikit-learn ``Pipeline``:

    TabularInput        raw columns → typed columns (+ derived features)
    ColumnTransformer   impute, scale, encode
    estimator           the winning candidate

so the registered package serves raw rows (nulls, category strings) exactly as the
training data looked. These classes are imported when a model is loaded; their module
path is part of the saved model, so keep them here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from sklearn.base import (  # type: ignore[import-untyped,unused-ignore]
    BaseEstimator,
    ClassifierMixin,
    TransformerMixin,
    clone,
)
from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped,unused-ignore]
from sklearn.impute import SimpleImputer  # type: ignore[import-untyped,unused-ignore]
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped,unused-ignore]
from sklearn.preprocessing import (  # type: ignore[import-untyped,unused-ignore]
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from mlops.pipelines.training._config_sections import PreprocessConfig
from mlops.pipelines.training._expressions import evaluate_expression, expression_columns

__all__ = ["LabelEncodedClassifier", "TabularInput", "build_transformer", "with_estimator"]


class TabularInput(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Select and type the raw columns, then add derived features.

    Numeric columns become float64 (None → NaN), categorical ones strings (missing →
    NaN), so rows from a CSV, a Parquet file or a JSON request all look the same.
    ``derived`` holds ``(name, expression)`` pairs evaluated in order (see
    ``_expressions``); an infinite result (a division by zero) becomes NaN, which the
    imputer then fills.
    """

    def __init__(
        self,
        numeric: Sequence[str] = (),
        categorical: Sequence[str] = (),
        derived: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.derived = derived

    def fit(self, X: Any, y: Any = None) -> TabularInput:  # noqa: N803
        for _, expr in self.derived:
            expression_columns(expr)  # raises on anything but column arithmetic
        frame = self._typed(X)
        self.feature_names_out_ = np.asarray(list(frame.columns), dtype=object)
        self.n_features_in_ = len(self.numeric) + len(self.categorical)
        return self

    def transform(self, X: Any) -> Any:  # noqa: N803
        return self._typed(X)

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        return np.asarray([*self.numeric, *(n for n, _ in self.derived), *self.categorical])

    def _typed(self, X: Any) -> Any:  # noqa: N803
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(X, columns=[*self.numeric, *self.categorical])  # noqa: N806
        missing = [c for c in (*self.numeric, *self.categorical) if c not in X.columns]
        if missing:
            raise ValueError(f"the input lacks the columns {missing}")
        columns: dict[str, Any] = {
            name: pd.to_numeric(X[name], errors="coerce").astype("float64") for name in self.numeric
        }
        arrays = {name: column.to_numpy() for name, column in columns.items()}
        for name, expr in self.derived:
            value = evaluate_expression(expr, arrays, len(X))
            value[~np.isfinite(value)] = np.nan
            arrays[name] = value
            columns[name] = pd.Series(value, index=X.index)
        for name in self.categorical:
            columns[name] = _as_categories(X[name])
        return pd.DataFrame(columns, index=X.index)


def _as_categories(series: Any) -> Any:
    """Strings, with NaN for missing values: ``"True"`` for True, ``"2"`` for 2."""
    values = series.to_numpy(dtype=object, na_value=np.nan).copy()
    present = pd.notna(values)
    for index in np.flatnonzero(present):
        if type(values[index]) is not str:
            values[index] = str(values[index])
    values[~present] = np.nan
    return pd.Series(values, index=series.index, dtype=object)


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A classifier trained on the codes 0..k-1 of the labels that predicts the labels
    themselves (XGBoost accepts only the codes)."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any) -> LabelEncodedClassifier:  # noqa: N803
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.estimator_ = clone(self.estimator).fit(X, codes)
        return self

    def predict(self, X: Any) -> Any:  # noqa: N803
        return self.classes_[np.asarray(self.estimator_.predict(X)).astype(int)]

    def predict_proba(self, X: Any) -> Any:  # noqa: N803
        return self.estimator_.predict_proba(X)


def build_transformer(
    numeric: Sequence[str],
    categorical: Sequence[str],
    config: PreprocessConfig,
    derived: Sequence[tuple[str, str]] = (),
) -> Any:
    """The unfitted raw-rows-to-model-input pipeline for these columns and settings."""
    numeric_out = [*numeric, *(name for name, _ in derived)]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric_out:
        parts.append(("numeric", _numeric_steps(config), numeric_out))
    if categorical:
        parts.append(("categorical", _categorical_steps(config), list(categorical)))
    encode = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
    return Pipeline(
        [("input", TabularInput(tuple(numeric), tuple(categorical), tuple(derived))),
         ("encode", encode)]
    )  # fmt: skip


def _numeric_steps(config: PreprocessConfig) -> Any:
    settings = config.numeric
    steps: list[tuple[str, Any]] = []
    if settings.impute != "none":
        steps.append(
            ("impute", SimpleImputer(strategy=settings.impute, fill_value=settings.fill_value))
        )
    scalers = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}
    if settings.scale != "none":
        steps.append(("scale", scalers[settings.scale]()))
    return Pipeline(steps) if steps else "passthrough"


def _categorical_steps(config: PreprocessConfig) -> Any:
    settings = config.categorical
    steps: list[tuple[str, Any]] = []
    if settings.impute != "none":
        steps.append(
            ("impute", SimpleImputer(strategy=settings.impute, fill_value=settings.fill_value))
        )
    if settings.encode == "onehot":
        encoder: Any = OneHotEncoder(
            handle_unknown="infrequent_if_exist" if settings.max_categories else "ignore",
            max_categories=settings.max_categories,
            sparse_output=False,
        )
    else:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
        )
    steps.append(("encode", encoder))
    return Pipeline(steps)


def with_estimator(transformer: Any, estimator: Any) -> Any:
    """A fresh model: a copy of the transformer followed by ``estimator``."""
    steps = clone(transformer).steps
    return Pipeline([*steps, ("model", estimator)])
