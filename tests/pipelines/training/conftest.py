"""Fixtures for the training pipeline: real stores, small configs, small generated data."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
import yaml

import mlops
from mlops.store._schema import metadata

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")
pytest.importorskip("optuna")

from mlops.pipelines.training import sample_config_path  # noqa: E402


def connect(database_url: str, tmp_path: Path) -> mlops.MLOps:
    return mlops.connect(
        database_url,
        artifacts=str(tmp_path / "artifacts"),
        home=str(tmp_path / "home"),
        upgrade_schema=True,
    )


@pytest.fixture
def ml(tmp_path: Path) -> Iterator[mlops.MLOps]:
    """A connection to a fresh SQLite file and a local artifact folder."""
    connection = connect(f"sqlite:///{tmp_path / 'mlops.db'}", tmp_path)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def pg_ml(postgres_server_url: str, tmp_path: Path) -> Iterator[mlops.MLOps]:
    """A connection to the session's PostgreSQL database, emptied first."""
    _empty_postgres(postgres_server_url)
    connection = connect(postgres_server_url, tmp_path)
    try:
        yield connection
    finally:
        connection.close()


def _empty_postgres(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            existing = set(sa.inspect(connection).get_table_names())
            names = [t.name for t in metadata.sorted_tables if t.name in existing]
            if names:
                joined = ", ".join(f'"{name}"' for name in names)
                connection.exec_driver_sql(f"TRUNCATE {joined} RESTART IDENTITY CASCADE")
    finally:
        engine.dispose()


def sample() -> dict[str, Any]:
    """The sample config as a dict (a fresh copy)."""
    return copy.deepcopy(yaml.safe_load(sample_config_path().read_text(encoding="utf-8")))


def small_churn(**changes: Any) -> dict[str, Any]:
    """The sample config cut down for tests: 3 trials x 3 folds, no deploy or monitor.

    ``changes`` replace top-level sections.
    """
    config = sample()
    config["train"].update(
        folds=3,
        trials=3,
        candidates=[
            {
                "algorithm": "logistic_regression",
                "search": {"C": {"type": "log", "low": 0.01, "high": 10}},
            }
        ],
    )
    config["name"] = "churn-test"
    del config["deploy"], config["monitor"]
    config.update(changes)
    return config


@pytest.fixture(scope="session")
def regression_frame() -> Any:
    """400 rows: price = 3 size - 2 age + a district effect + noise, with some nulls."""
    rng = np.random.default_rng(5)
    rows = 400
    size = rng.uniform(20, 200, rows)
    age = rng.uniform(0, 60, rows)
    district = rng.choice(["centre", "suburb", "rural"], rows)
    effect = pd.Series(district).map({"centre": 80.0, "suburb": 30.0, "rural": 0.0}).to_numpy()
    price = 3 * size - 2 * age + effect + rng.normal(0, 10, rows)
    frame = pd.DataFrame({"size_m2": size, "age_years": age, "district": district, "price": price})
    frame.loc[rng.choice(rows, 20, replace=False), "age_years"] = np.nan
    return frame


@pytest.fixture(scope="session")
def anomaly_frame() -> Any:
    """600 rows of two clustered numeric columns and a category; 5% are far-off anomalies
    marked in ``is_anomaly``."""
    rng = np.random.default_rng(9)
    rows = 600
    x = rng.normal(0, 1, (rows, 2))
    anomalous = rng.random(rows) < 0.05
    x[anomalous] = rng.uniform(5, 8, (anomalous.sum(), 2)) * rng.choice(
        [-1, 1], (anomalous.sum(), 2)
    )
    return pd.DataFrame(
        {
            "amount": x[:, 0],
            "latency": x[:, 1],
            "channel": rng.choice(["web", "app"], rows),
            "is_anomaly": anomalous.astype(int),
        }
    )
