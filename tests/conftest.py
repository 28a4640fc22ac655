"""Shared fixtures: real databases (a SQLite file, the PostgreSQL on 127.0.0.1)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import mlops
from mlops.store._schema import metadata
from s3server import BUCKET, create_bucket, run_moto_server

POSTGRES_ADMIN_URL = os.environ.get(
    "MLOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end.

    An unreachable server fails the tests (CI must not skip silently), unless
    MLOPS_TEST_ALLOW_NO_POSTGRES=1 turns the failure into a skip.
    """
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mlops_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {error}"
        if os.environ.get("MLOPS_TEST_ALLOW_NO_POSTGRES") == "1":
            pytest.skip(message)
        pytest.fail(message + " (set MLOPS_TEST_ALLOW_NO_POSTGRES=1 to skip)")
    url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _truncate_postgres(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            existing = set(sa.inspect(connection).get_table_names())
            tables = [table.name for table in metadata.sorted_tables if table.name in existing]
            if tables:
                joined = ", ".join(f'"{name}"' for name in tables)
                connection.exec_driver_sql(f"TRUNCATE {joined} RESTART IDENTITY CASCADE")
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every metadata backend: a fresh SQLite file, or the session's PostgreSQL emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlops.db'}"
    url: str = request.getfixturevalue("postgres_server_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def ml(database_url: str, tmp_path: Path) -> Iterator[mlops.MLOps]:
    """A connection on each backend, with a local artifact folder."""
    connection = mlops.connect(
        database_url,
        artifacts=str(tmp_path / "artifacts"),
        home=str(tmp_path / "home"),
        upgrade_schema=True,
    )
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Run moto's S3 server for the session; yield its endpoint URL (bucket created)."""
    with run_moto_server() as endpoint_url:
        create_bucket(endpoint_url, BUCKET)
        yield endpoint_url


@pytest.fixture
def s3_bucket_url(s3_server: str) -> str:
    """Return a fresh, empty ``s3://bucket/<uuid>`` URL on the session's S3 server."""
    return f"s3://{BUCKET}/{uuid.uuid4().hex}"


#: Modules that take longest (subprocesses, browsers, several processes): collected first,
#: so two xdist workers (``--dist loadfile`` hands out files in collection order) do not
#: end with one of them running a long module alone.
_LONG_FIRST = (
    "tests/test_docs.py",
    "tests/test_examples.py",
    "tests/cli/test_demo.py",
    "tests/contracts/test_concurrency.py",
    "tests/api/test_fuzz.py",
    "tests/ui/",
    "tests/serving/test_rolling.py",
    "tests/serving/test_predlog.py",
    "tests/pipelines/training/",
)


def _long_first(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return next((rank for rank, prefix in enumerate(_LONG_FIRST) if path.startswith(prefix)), 99)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules that set ``SQLITE_ONLY = True`` run on SQLite alone: their subject does not
    depend on the database (what does is covered on both by the contract suites); with
    ``SQLITE_ONLY = "remote"`` only the cases whose parameters include "remote" do. The
    longest modules are moved to the front (see ``_LONG_FIRST``)."""
    items.sort(key=_long_first)  # stable: the order within a module stays as written
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        ids = set(callspec.id.split("-")) if callspec is not None else set()
        only = getattr(getattr(item, "module", None), "SQLITE_ONLY", None)
        if "postgresql" in ids and (only is True or (isinstance(only, str) and only in ids)):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
