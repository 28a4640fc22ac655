"""Helpers for the performance-monitoring tests: write prediction log rows as a server would."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mlops.store import Store
from mlops.store._schema import prediction_feedback, prediction_log
from monitoring.alert_support import BACKENDS, Clock, Signals, backend_store

#: A fixed "now" (epoch ms) that the tests inject, so windows never depend on the clock.
NOW = 1_750_000_000_000


def log_requests(store: Store, rows: Sequence[dict[str, Any]], endpoint: str = "churn") -> None:
    """Insert prediction log rows; each dict may set any column, outputs/inputs as objects."""
    records = []
    for index, row in enumerate(rows):
        outputs = row.get("outputs")
        inputs = row.get("inputs")
        records.append(
            {
                "request_id": row.get("request_id", f"r{index}"),
                "endpoint": row.get("endpoint", endpoint),
                "version": row.get("version", 1),
                "route": row.get("route", "stable"),
                "ts": row.get("ts", NOW - 1_000),
                "latency_ms": row.get("latency_ms", 5.0),
                "status": row.get("status", 200),
                "inputs": inputs
                if inputs is None or isinstance(inputs, str)
                else json.dumps(inputs),
                "outputs": outputs
                if outputs is None or isinstance(outputs, str)
                else json.dumps(outputs),
                "error": row.get("error"),
            }
        )
    with store.write() as connection:
        connection.execute(prediction_log.insert(), records)


def give_feedback(
    store: Store, items: Sequence[tuple[str, Any]], *, ts: int = NOW, endpoint: str = "churn"
) -> None:
    """Insert feedback rows (request id, actual) as the serving feedback route does."""
    rows = [
        {"request_id": rid, "endpoint": endpoint, "actual": json.dumps(actual), "ts": ts}
        for rid, actual in items
    ]
    with store.write() as connection:
        connection.execute(prediction_feedback.insert(), rows)


@pytest.fixture
def bare_store(tmp_path: Path) -> Store:
    """A store whose schema was never created: validation must fail before any I/O."""
    return Store(f"sqlite:///{tmp_path / 'none.db'}")


@pytest.fixture(scope="session")
def numeric_model() -> Any:
    """The serving tests' LogisticRegression over three numeric columns."""
    from serving.conftest import fit_numeric

    return fit_numeric()


@pytest.fixture
def serve() -> Iterator[Callable[..., Any]]:
    """Start a real serving app on an ephemeral port: ``serve(ml, **options)``."""
    from mlops.serving import create_serving_app
    from serving.conftest import LiveServer

    started: list[Any] = []

    def start(ml: Any, **options: Any) -> Any:
        options.setdefault("poll_interval", 0.2)
        server = LiveServer(create_serving_app(ml, **options))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


# -- alerting: a store per backend, a settable clock and settable signals ---------------


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An alerting store on each backend (only the alerting tables are emptied)."""
    with backend_store(request, tmp_path) as store:
        yield store


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signals() -> Signals:
    return Signals()
