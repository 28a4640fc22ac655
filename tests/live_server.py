"""A real server for tests: uvicorn in a thread, on a socket bound to an ephemeral port."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
import uvicorn

from mlops.serving._server import bind_socket

__all__ = ["LiveServer"]


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
