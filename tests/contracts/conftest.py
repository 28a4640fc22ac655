"""One API server for the contract suites' remote runs (building FastAPI's routes is the
slow part of starting one); each test points it at its own fresh connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette

import mlops
from live_server import LiveServer
from mlops.api import api_routes


class SharedServer:
    """A running API server whose connection each test swaps in (``serve``)."""

    def __init__(self, api: Any, live: LiveServer) -> None:
        self.api = api
        self.live = live
        self.url = live.url

    def serve(self, ml: mlops.MLOps) -> None:
        self.api.state.ml = ml


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServer]:
    folder = tmp_path_factory.mktemp("shared-server")
    placeholder = mlops.connect(
        f"sqlite:///{folder / 'placeholder.db'}",
        artifacts=str(folder / "artifacts"),
        home=str(folder / "home"),
        upgrade_schema=True,
    )
    routes = api_routes(placeholder, auth="off")
    live = LiveServer(Starlette(routes=routes)).start()
    try:
        yield SharedServer(routes[0].app, live)  # type: ignore[attr-defined]
    finally:
        live.stop()
        placeholder.close()
