"""Orchestration fixtures: a connection on each backend, made fast.

SQLite: a copy of a file migrated once per session. PostgreSQL: the session database
with what these tests write emptied (TRUNCATE of every table costs about a second per
test). Tracking runs stay behind, so tests never assume ids or an empty cache.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import mlops
from mlops.orchestration import PipelineOrchestrator
from mlops.store import Store, upgrade
from mlops.store._schema import (
    alert_channel_states,
    alert_channels,
    alert_notifications,
    alert_rules,
    alert_silences,
    alerts,
    events,
    orchestrated_pipelines,
    pipeline_executions,
    pipeline_triggers,
    webhook_deliveries,
)
from orchestration import flows

_EMPTIED = (
    pipeline_executions,
    pipeline_triggers,
    orchestrated_pipelines,
    alert_channel_states,
    alert_notifications,
    alerts,
    alert_silences,
    alert_channels,
    alert_rules,
    webhook_deliveries,
    events,
)
_template: list[Path] = []
_migrated: set[str] = set()


def _migrated_sqlite(factory: pytest.TempPathFactory) -> Path:
    if not _template:
        path = factory.mktemp("orchestration-template") / "mlops.db"
        store = Store(f"sqlite:///{path}")
        upgrade(store)
        store.dispose()
        _template.append(path)
    return _template[0]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "mlops.db"
        shutil.copyfile(_migrated_sqlite(request.getfixturevalue("tmp_path_factory")), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_server_url")
    store = Store(url)
    try:
        if url not in _migrated:
            upgrade(store)
            _migrated.add(url)
        with store.write() as connection:
            for table in _EMPTIED:
                connection.execute(table.delete())
    finally:
        store.dispose()
    return url


@pytest.fixture
def ml(database_url: str, tmp_path: Path) -> Iterator[mlops.MLOps]:
    connection = mlops.connect(
        database_url,
        artifacts=str(tmp_path / "artifacts"),
        home=str(tmp_path / "home"),
        upgrade_schema=False,  # migrated above: the connection only checks the revision
    )
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def control() -> flows.Control:
    """Fresh step controls (and test clock) for each test."""
    return flows.reset()


@pytest.fixture
def orchestrator(ml: mlops.MLOps, control: flows.Control) -> PipelineOrchestrator:
    """``ml.pipelines`` on the test clock."""
    return PipelineOrchestrator(ml, clock=control.clock)
