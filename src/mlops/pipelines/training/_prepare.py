"""The ``preprocess`` and ``features`` logic: column roles, the hold-out split, and the
transformer that the trained model carries."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from mlops.errors import InvalidInput
from mlops.pipelines.training._config_sections import DerivedFeature, PreprocessConfig
from mlops.pipelines.training._data import LoadedData, PreparedData

__all__ = ["add_features", "prepare"]


def prepare(
    loaded: LoadedData, task: str, label: str | None, seed: int, config: PreprocessConfig
) -> PreparedData:
    """Split ``loaded`` into training and hold-out rows and decide each column's role."""
    from mlops.pipelines.training._estimators import build_transformer

    frame = loaded.frame
    columns = [str(column) for column in frame.columns]
    unknown = [name for name in config.drop if name not in columns]
    if unknown:
        raise InvalidInput(
            f"preprocess.drop names {unknown}, which the data does not have; its columns "
            f"are {', '.join(columns)}"
        )
    if label is not None and label in config.drop:
        raise InvalidInput(f"preprocess.drop names the label {label!r}; the model needs it")
    features = [c for c in columns if c != label and c not in config.drop]
    if not features:
        raise InvalidInput("no feature columns are left once the label and drop are taken out")
    numeric, categorical = _roles(frame, features, config)
    train, holdout = _split(frame, task, label, seed, config)
    transformer = build_transformer(numeric, categorical, config)
    try:
        transformer.fit(train[features])
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"preprocessing failed on the training rows: {error}") from None
    return PreparedData(
        task=task,
        label=label,
        train=train,
        holdout=holdout,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        transformer=transformer,
        dataset=loaded.dataset,
        preprocessing=config.model_dump(mode="json"),
    )


def _roles(frame: Any, features: list[str], config: PreprocessConfig) -> tuple[list[str], ...]:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    types = pd.api.types
    listed_numeric = list(config.numeric.columns or ())
    listed_categorical = list(config.categorical.columns or ())
    for section, listed in (("numeric", listed_numeric), ("categorical", listed_categorical)):
        unknown = [name for name in listed if name not in features]
        if unknown:
            raise InvalidInput(
                f"preprocess.{section}.columns names {unknown}, which are not feature "
                f"columns of the data; they are {', '.join(features)}"
            )
    numeric: list[str] = []
    categorical: list[str] = []
    for name in features:
        series = frame[name]
        if name in listed_numeric:
            if not types.is_numeric_dtype(series) and not types.is_bool_dtype(series):
                converted = pd.to_numeric(series, errors="coerce")
                if int(converted.isna().sum()) > int(series.isna().sum()):
                    raise InvalidInput(
                        f"column {name!r} is listed as numeric but holds text such as "
                        f"{series[converted.isna() & series.notna()].iloc[0]!r}"
                    )
            numeric.append(name)
        elif name in listed_categorical:
            categorical.append(name)
        elif types.is_datetime64_any_dtype(series):
            raise InvalidInput(
                f"column {name!r} holds date-times, which the model cannot take as they are; "
                "drop it (preprocess.drop) or turn it into numbers before ingest"
            )
        elif types.is_numeric_dtype(series) and not types.is_bool_dtype(series):
            numeric.append(name)
        else:
            categorical.append(name)
    return numeric, categorical


def _split(
    frame: Any, task: str, label: str | None, seed: int, config: PreprocessConfig
) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped,unused-ignore]

    stratify = config.stratify
    if stratify is None:
        stratify = task != "regression" and label is not None
    if stratify and (label is None or task == "regression"):
        raise InvalidInput(
            "preprocess.stratify needs classes to stratify by: a classification label, or "
            "an anomaly detector's label; set stratify: false"
        )
    if len(frame) < 4:
        raise InvalidInput(f"{len(frame)} rows are too few to split into training and hold-out")
    try:
        train, holdout = train_test_split(
            frame,
            test_size=config.holdout,
            random_state=seed,
            stratify=frame[label] if stratify and label is not None else None,
        )
    except ValueError as error:
        raise InvalidInput(
            f"cannot split the data with a stratified hold-out of {config.holdout:g}: {error}; "
            "every class needs at least 2 rows (or set preprocess.stratify: false)"
        ) from None
    return train, holdout


def add_features(
    prepared: PreparedData, derived: Sequence[DerivedFeature]
) -> tuple[PreparedData, dict[str, float]]:
    """``prepared`` with the derived columns in its transformer, and their null shares
    on the training rows."""
    from mlops.pipelines.training._estimators import build_transformer

    if not derived:
        return prepared, {}
    defined: list[str] = []
    for index, feature in enumerate(derived):
        where = f"features[{index}] ({feature.name})"
        if feature.name in prepared.inputs:
            raise InvalidInput(
                f"{where}: the data already has a column {feature.name!r}; pick another name"
            )
        for column in feature.columns:
            if column in prepared.categorical:
                raise InvalidInput(
                    f"{where} uses the categorical column {column!r}; expressions compute on "
                    f"numeric columns: {', '.join([*prepared.numeric, *defined])}"
                )
            if column not in prepared.numeric and column not in defined:
                raise InvalidInput(
                    f"{where} uses {column!r}, which is not a numeric feature column (or a "
                    f"feature defined before it); those are: "
                    f"{', '.join([*prepared.numeric, *defined]) or 'none'}"
                )
        defined.append(feature.name)
    pairs = tuple((feature.name, feature.expr) for feature in derived)
    config = PreprocessConfig.model_validate(prepared.preprocessing)
    transformer = build_transformer(prepared.numeric, prepared.categorical, config, pairs)
    try:
        typed = transformer.steps[0][1].fit_transform(prepared.features(prepared.train))
        transformer.fit(prepared.features(prepared.train))
    except Exception as error:
        raise InvalidInput(f"computing the derived features failed: {error}") from None
    nulls = {f"{name}_null_fraction": float(typed[name].isna().mean()) for name, _ in pairs}
    return dataclasses.replace(prepared, transformer=transformer, derived=pairs), nulls
