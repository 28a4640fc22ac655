"""A real serving app under uvicorn on an ephemeral port, and the models it serves."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
import uvicorn

import mlops
from mlops.serving import EndpointStore, RouteTable, create_serving_app
from mlops.serving._server import bind_socket
from mlops.store._schema import prediction_feedback, prediction_log

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

FEATURES = ["tenure", "charges", "calls"]


def numeric_frame(rows: int = 200, seed: int = 0) -> Any:
    """Three numeric columns."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows).astype(float),
            "charges": rng.normal(70.0, 20.0, rows).round(2),
            "calls": rng.integers(0, 10, rows).astype(float),
        }
    )


def fit_numeric(flip: bool = False) -> Any:
    """A LogisticRegression on a DataFrame with named numeric columns."""
    from sklearn.linear_model import LogisticRegression

    frame = numeric_frame()
    labels = ((frame["tenure"] < 24) | (frame["calls"] > 6)).astype(int)
    if flip:
        labels = 1 - labels
    return LogisticRegression(max_iter=1000).fit(frame, labels)


def category_frame(rows: int = 150) -> Any:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows).astype(float),
            "plan": rng.choice(["basic", "pro", "team"], rows),
        }
    )


def fit_category() -> Any:
    """A Pipeline over a numeric and a string category column."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = category_frame()
    labels = ((frame["age"] < 35) | (frame["plan"] == "basic")).astype(int)
    pre = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=1000))]).fit(frame, labels)


def register(ml: mlops.MLOps, name: str, model: Any, example: Any = None, **options: Any) -> int:
    """Register ``model`` as the next version of ``name``; its number."""
    version = ml.registry.register_model(name, model, input_example=example, **options)
    return version.number


def put(ml: mlops.MLOps, endpoint: str, table: RouteTable) -> None:
    EndpointStore(ml.store).put(endpoint, table)


def single(ml: mlops.MLOps, endpoint: str, version: int = 1) -> None:
    put(ml, endpoint, RouteTable.single(endpoint, version))


def log_rows(ml: mlops.MLOps, **where: Any) -> list[Any]:
    """Rows of ``prediction_log`` matching the column values in ``where``."""
    query = sa.select(prediction_log).order_by(prediction_log.c.id)
    for column, value in where.items():
        query = query.where(prediction_log.c[column] == value)
    with ml.store.read() as connection:
        return list(connection.execute(query).all())


def feedback_rows(ml: mlops.MLOps) -> list[Any]:
    query = sa.select(prediction_feedback).order_by(prediction_feedback.c.id)
    with ml.store.read() as connection:
        return list(connection.execute(query).all())


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what or predicate}")
        time.sleep(0.02)


def is_ready(client: httpx.Client) -> bool:
    """Whether the server at ``client``'s base URL answers /health/ready with 200."""
    try:
        return client.get("/health/ready").status_code == 200
    except httpx.TransportError:
        return False


class LiveServer:
    """uvicorn running the serving app in a thread, on a socket bound to port 0."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state.serving
        self._socket = bind_socket("127.0.0.1", 0)
        port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=10
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        with self.client() as client:
            wait_for(lambda: is_ready(client), what="the server to be ready")
        return self

    def refresh(self) -> None:
        """Run ``await app.state.serving.refresh()`` on the server's event loop."""
        asyncio.run_coroutine_threadsafe(self.state.refresh(), self.state.loop).result(60)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def stop(self) -> None:
        """Graceful shutdown: in-flight requests finish, the prediction log drains."""
        if self._thread.is_alive():
            self.server.should_exit = True
            self._thread.join(60)
        self._socket.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., LiveServer]]:
    """Start a serving app for a connection: ``serve(ml, **create_serving_app options)``."""
    started: list[LiveServer] = []

    def start(ml: mlops.MLOps, **options: Any) -> LiveServer:
        options.setdefault("poll_interval", 0.2)
        server = LiveServer(create_serving_app(ml, **options))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def numeric_model() -> Any:
    return fit_numeric()


@pytest.fixture(scope="session")
def flipped_model() -> Any:
    return fit_numeric(flip=True)
