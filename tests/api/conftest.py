"""A real mlops server (uvicorn, ephemeral port, in a thread) per backend, and helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import mlops
from conftest import _truncate_postgres
from live_server import LiveServer
from mlops.serving import create_serving_app


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
