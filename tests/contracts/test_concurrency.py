"""Several processes writing at once lose nothing, and no "database is locked" escapes."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import mlops
import mlops.store

WORKERS = 4
SINGLE_METRICS = 150
BATCHES = 5
BATCH_SIZE = 200
RUNS_PER_WORKER = 15


def _worker(database_url: str, artifacts: str, run_id: str, worker: int) -> None:
    ml = mlops.connect(database_url, artifacts=artifacts, upgrade_schema=True)
    run = ml.tracking.resume_run(run_id)
    key = f"worker{worker}"
    for step in range(SINGLE_METRICS):
        run.log_metric(key, float(step), step=step)
    for batch in range(BATCHES):
        base = SINGLE_METRICS + batch * BATCH_SIZE
        run.log_batch([(key, float(step), step) for step in range(base, base + BATCH_SIZE)])
    run.log_param(f"param{worker}", worker)
    for index in range(RUNS_PER_WORKER):
        with ml.tracking.start_run("shared", name=f"w{worker}-{index}") as child:
            child.log_metric("index", float(index))
    ml.close()


@pytest.mark.slow
def test_four_processes_log_into_one_run_and_create_runs(database_url: str, tmp_path: Path) -> None:
    artifacts = str(tmp_path / "artifacts")
    ml = mlops.connect(database_url, artifacts=artifacts, upgrade_schema=True)
    ml.tracking.create_experiment("shared")
    run = ml.tracking.start_run("shared", name="target")
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(database_url, artifacts, run.id, worker))
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    assert [process.exitcode for process in processes] == [0] * WORKERS

    expected_steps = list(range(SINGLE_METRICS + BATCHES * BATCH_SIZE))
    for worker in range(WORKERS):
        history = ml.tracking.get_metric_history(run.id, f"worker{worker}")
        assert [point.step for point in history] == expected_steps
    stored = ml.tracking.get_run(run.id)
    assert stored.params == {f"param{w}": str(w) for w in range(WORKERS)}
    created = ml.tracking.search_runs("shared", "attributes.name != 'target'")
    assert len(created) == WORKERS * RUNS_PER_WORKER
    assert {r.name for r in created} == {
        f"w{w}-{i}" for w in range(WORKERS) for i in range(RUNS_PER_WORKER)
    }
    assert all(r.metrics.keys() == {"index"} for r in created)
    ml.close()


def _connect_fresh(database_url: str, artifacts: str, queue: multiprocessing.Queue[str]) -> None:
    ml = mlops.connect(database_url, artifacts=artifacts, upgrade_schema=True)
    experiment = ml.tracking.set_experiment("race")
    with ml.tracking.start_run(experiment.id) as run:
        run.log_metric("x", 1.0)
    queue.put(run.id)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all: a new SQLite path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'mlops.db'}"
        return
    server: str = request.getfixturevalue("postgres_server_url")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"mlops_fresh_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_processes_creating_a_fresh_store_at_once(empty_database_url: str, tmp_path: Path) -> None:
    database_url = empty_database_url
    artifacts = str(tmp_path / "artifacts")
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[str] = context.Queue()
    processes = [
        context.Process(target=_connect_fresh, args=(database_url, artifacts, queue))
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * WORKERS
    run_ids = {queue.get(timeout=5) for _ in range(WORKERS)}
    ml = mlops.connect(database_url, artifacts=artifacts)
    assert mlops.store.current_revision(ml.store) == mlops.store.head_revision()
    assert [e.name for e in ml.tracking.list_experiments()] == ["race"]
    assert {r.id for r in ml.tracking.search_runs("race")} == run_ids
    ml.close()


REGISTRATIONS = 3


def _register_versions(database_url: str, artifacts: str, home: str, queue: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 3))
    model = LogisticRegression().fit(features, (features[:, 0] > 0).astype(int))
    ml = mlops.connect(database_url, artifacts=artifacts, home=home, upgrade_schema=True)
    for _ in range(REGISTRATIONS):
        version = ml.registry.register_model("shared", model, input_example=features[:3])
        queue.put(version.number)
    ml.close()


@pytest.mark.slow
def test_four_processes_register_versions_of_one_model(database_url: str, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    artifacts = str(tmp_path / "artifacts")
    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue()
    processes = [
        context.Process(
            target=_register_versions,
            args=(database_url, artifacts, str(tmp_path / f"home{worker}"), queue),
        )
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    assert [process.exitcode for process in processes] == [0] * WORKERS
    numbers = sorted(queue.get(timeout=5) for _ in range(WORKERS * REGISTRATIONS))
    assert numbers == list(range(1, WORKERS * REGISTRATIONS + 1))
    ml = mlops.connect(database_url, artifacts=artifacts, home=str(tmp_path / "home"))
    versions = ml.registry.list_versions("shared")
    assert [v.number for v in versions] == numbers
    assert len({v.semver for v in versions}) == len(versions)
    assert len({v.artifact_uri for v in versions}) == len(versions)
    ml.close()
