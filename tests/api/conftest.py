"""A real mlops server (uvicorn, ephemeral port, in a thread) per backend, and helpers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import mlops
from conftest import _truncate_postgres
from mlops.serving import create_serving_app
from mlops.serving._server import bind_socket


class LiveServer:
    """uvicorn serving ``app`` in a thread, on a socket bound to port 0; ready once
    ``ready_path`` answers ``ready_status`` (401 for an API that requires tokens)."""

    def __init__(
        self, app: Any, ready_path: str = "/api/v1/openapi.json", ready_status: int = 200
    ) -> None:
        self._socket = bind_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.ready_path = ready_path
        self.ready_status = ready_status
        config = uvicorn.Config(app, log_level="warning", lifespan="auto")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        with self.client() as client:
            while True:
                try:
                    if client.get(self.ready_path).status_code == self.ready_status:
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("the API server did not become ready")
                time.sleep(0.02)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.should_exit = True
            self._thread.join(30)
        self._socket.close()


def unique(prefix: str) -> str:
    """A name no other test of the module uses (servers are shared per module)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def ml(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One connection per backend for the module's tests (they use unique names)."""
    folder: Path = tmp_path_factory.mktemp("api")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'mlops.db'}"
    else:
        url = request.getfixturevalue("postgres_server_url")
        _truncate_postgres(url)
    connection = mlops.connect(
        url, artifacts=str(folder / "artifacts"), home=str(folder / "home"), upgrade_schema=True
    )
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(scope="module")
def server(ml: Any) -> Iterator[LiveServer]:
    """``mlops server``'s app (serving routes + the API at /api/v1) on an ephemeral port."""
    live = LiveServer(create_serving_app(ml, poll_interval=5.0)).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    """A client whose relative URLs go to /api/v1."""
    with httpx.Client(base_url=server.url + "/api/v1", timeout=30.0) as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the API's error body with ``status`` and ``code``; its error."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    error: dict[str, Any] = body["error"]
    return error
