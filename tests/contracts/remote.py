"""The contract suites' connections: embedded, and remote through a real server.

``connection_pair(kind, ...)`` yields ``(ml, server_ml)``: the facade under test and the
embedded connection behind it (the same object when embedded), which tests use to look
at storage directly (``server_ml.store``, ``server_ml.artifacts``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import mlops

KINDS = ["embedded", "remote"]


@contextmanager
def connection_pair(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[tuple[mlops.MLOps, mlops.MLOps]]:
    embedded = mlops.connect(
        database_url,
        artifacts=str(tmp_path / "artifacts"),
        home=str(tmp_path / "home"),
        upgrade_schema=True,
    )
    try:
        if request.param == "embedded":
            yield embedded, embedded
            return
        server = request.getfixturevalue("shared_server")
        server.serve(embedded)
        remote = mlops.connect(server.url, home=str(tmp_path / "client-home"))
        try:
            yield remote, embedded
        finally:
            remote.close()
    finally:
        embedded.close()
