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

__all__ = ["current_revision", "head_revision", "require_known_revision", "upgrade"]

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
    require_known_revision(store, before)
    if before == target:
        return before, before
    if store.is_sqlite:
        return _upgrade_sqlite(store, revision, target)
    with store.write() as connection:
        lock = sa.text("SELECT pg_advisory_xact_lock(:key)")
        connection.execute(lock, {"key": _PG_MIGRATION_LOCK})
        before = MigrationContext.configure(connection).get_current_revision()
        require_known_revision(store, before)
        if before != target:
            _run_alembic(connection, revision)
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after


def _upgrade_sqlite(store: Store, revision: str, target: str) -> tuple[str | None, str | None]:
    # SQLite rebuilds a table to alter it (copy, DROP, rename). With foreign keys on, the
    # DROP would cascade into every child table, and the pragma cannot change inside a
    # transaction: switch it off first, check integrity before committing, then back on.
    with store.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            with connection.execution_options(mlops_begin="IMMEDIATE").begin():
                before = MigrationContext.configure(connection).get_current_revision()
                require_known_revision(store, before)
                if before != target:
                    _run_alembic(connection, revision)
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken is not None:
                        raise StorageError(
                            f"migrating {store.display_url} would break a foreign key in table "
                            f"{broken[0]!r}; nothing was changed"
                        )
                after = MigrationContext.configure(connection).get_current_revision()
        except sa.exc.SQLAlchemyError as error:
            raise StorageError(f"migrating {store.display_url} failed: {error}") from error
        finally:
            raw.execute("PRAGMA foreign_keys = ON")
    return before, after


def require_known_revision(store: Store, revision: str | None) -> None:
    """A database migrated by a newer mlops cannot be used (or downgraded) by this one."""
    if revision is None:
        return
    scripts = ScriptDirectory.from_config(_config())
    try:
        known = scripts.get_revision(revision) is not None
    except Exception:  # alembic raises its own error types for unknown revisions
        known = False
    if not known:
        raise StorageError(
            f"the database at {store.display_url} is at schema revision {revision!r}, written "
            f"by a newer mlops (this one knows up to {head_revision()!r}); upgrade mlops"
        )


def _run_alembic(connection: Connection, revision: str) -> None:
    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
