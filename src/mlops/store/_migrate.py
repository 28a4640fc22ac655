"""Schema migrations: Alembic scripts shipped as package data, run under a lock."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from mlops.errors import StorageError
from mlops.store._engine import Store

__all__ = ["current_revision", "head_revision", "upgrade"]

_MIGRATIONS = Path(__file__).with_name("migrations")
# Arbitrary constant: the PostgreSQL advisory lock that serializes migrations.
_PG_MIGRATION_LOCK = 0x6D6C6F7073


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest schema revision this version of mlops knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(store: Store) -> str | None:
    """The schema revision of the database, or None for an empty database."""
    with store.read() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(store: Store, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the schema to ``revision``; safe when several processes call it at once.

    Returns the revisions before and after.
    """
    if store.sqlite_path is not None:
        store.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    target = head_revision() if revision == "head" else revision
    # A cheap check first, so that an up-to-date store does not queue for the lock.
    try:
        before = current_revision(store)
    except StorageError:
        before = None
    if before == target:
        return before, before
    with store.write() as connection:
        if store.dialect == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        before = MigrationContext.configure(connection).get_current_revision()
        if before != target:
            _run_alembic(connection, revision)
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after


def _run_alembic(connection: Connection, revision: str) -> None:
    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
