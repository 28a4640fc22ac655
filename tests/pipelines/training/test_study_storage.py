"""Optuna studies in the metadata database, and a search shared by worker processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import mlops
from mlops.pipelines import run_pipeline
from mlops.pipelines.training import PipelineConfig, bundled_data_path, study_storage
from mlops.store import head_revision

from .conftest import small_churn

optuna = pytest.importorskip("optuna")
pd = pytest.importorskip("pandas")


def _tables(connection: Any, schema: str) -> set[str]:
    return set(sa.inspect(connection).get_table_names(schema=schema))


@pytest.mark.postgres
def test_optuna_tables_live_in_their_own_postgres_schema(pg_ml: mlops.MLOps) -> None:
    storage = study_storage(pg_ml)
    study = optuna.create_study(storage=storage, study_name="schema-check", direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)

    engine = sa.create_engine(pg_ml.store.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            optuna_tables = _tables(connection, "optuna")
            public_tables = _tables(connection, "public")
            ours = connection.exec_driver_sql("SELECT version_num FROM public.alembic_version")
            assert [row[0] for row in ours] == [head_revision()]
    finally:
        engine.dispose()
    assert {"studies", "trials", "trial_params", "alembic_version"} <= optuna_tables
    assert not {"studies", "trials", "trial_params"} & public_tables
    # A second storage (another process, another run) finds the same study.
    again = optuna.load_study(study_name="schema-check", storage=study_storage(pg_ml))
    assert len(again.trials) == 2


def test_on_sqlite_studies_go_to_a_file_beside_the_metadata(
    ml: mlops.MLOps, tmp_path: Path
) -> None:
    storage = study_storage(ml)
    optuna.create_study(storage=storage, study_name="beside")
    assert (tmp_path / "mlops.optuna.db").is_file()
    engine = sa.create_engine(ml.store.url)
    try:
        with engine.connect() as connection:
            assert "studies" not in _tables(connection, "main")
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_two_worker_processes_fill_one_study_on_postgres(pg_ml: mlops.MLOps) -> None:
    config = small_churn()
    config["train"].update(trials=4, hpo={"workers": 2, "storage": "database"})

    result = run_pipeline(pg_ml, PipelineConfig.from_dict(config).pipeline())

    assert result.succeeded, [record.error for record in result.steps]
    trained = result.output("train")
    workers = [trial["worker"] for trial in trained.trials]
    assert len(workers) == 4
    assert sorted(workers.count(worker) for worker in set(workers)) == [2, 2]
    study = optuna.load_study(study_name=trained.study_name, storage=study_storage(pg_ml))
    assert len(study.trials) == 4
    assert study.best_value == pytest.approx(trained.cv_score)
    assert pg_ml.registry.get_version("churn", "production").number == 1


@pytest.mark.postgres
def test_a_sql_source_reads_from_postgres(
    pg_ml: mlops.MLOps,
    postgres_server_url: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    frame = pd.read_csv(bundled_data_path())
    engine = sa.create_engine(postgres_server_url, poolclass=sa.pool.NullPool)
    # Its own schema: a table left in the public one would break the schema contract test.
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE SCHEMA IF NOT EXISTS training_source"))
    frame.to_sql("churn_source", engine, schema="training_source", index=False, if_exists="replace")
    request.addfinalizer(lambda: _drop_source_schema(engine))
    # Set after the local executor's workers started: they see it all the same.
    monkeypatch.setenv("CHURN_DB_URL", postgres_server_url)
    data = {
        "sql": {
            "url": "${CHURN_DB_URL}",
            "query": "SELECT * FROM training_source.churn_source WHERE tenure_months < 12",
        },
        "name": "recent-customers",
    }

    pipeline = PipelineConfig.from_dict(small_churn(data=data)).pipeline()
    result = run_pipeline(pg_ml, pipeline, stage="ingest", executor="local")

    assert result.succeeded, result.step("ingest").error
    loaded = result.output("ingest")
    expected = frame[frame["tenure_months"] < 12].reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded.frame, expected, check_dtype=False)
    assert loaded.dataset.name == "recent-customers"
    assert "${CHURN_DB_URL}" in pg_ml.tracking.get_run(result.run_id).params["data"]


def _drop_source_schema(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA IF EXISTS training_source CASCADE"))
    engine.dispose()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_search_workers_die_with_a_killed_pipeline(tmp_path: Path) -> None:
    config = small_churn()
    config["train"].update(trials=20_000, hpo={"workers": 2, "storage": "database"})
    script = tmp_path / "run.py"
    script.write_text(
        "import json, sys, mlops\n"
        "from mlops.pipelines import run_pipeline\n"
        "from mlops.pipelines.training import PipelineConfig\n"
        f"config = json.loads({json.dumps(json.dumps(config))})\n"
        f"with mlops.connect(home={str(tmp_path / 'home')!r}) as ml:\n"
        "    run_pipeline(ml, PipelineConfig.from_dict(config).pipeline(), executor='threads')\n"
    )
    driver = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    try:
        workers: list[int] = []
        deadline = time.monotonic() + 120
        while not workers and time.monotonic() < deadline and driver.poll() is None:
            workers = _search_workers(driver.pid)
            time.sleep(0.2)
        assert workers, "the search workers never started"
        time.sleep(2)  # into its trials: killed earlier, it would die reading its work
        assert all(_alive(pid) for pid in workers)
    finally:
        driver.kill()
        driver.wait()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


def _search_workers(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"worker_main" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
