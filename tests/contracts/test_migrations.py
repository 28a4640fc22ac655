"""The shipped Alembic migrations build exactly the tables the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mlops.store import Store, current_revision, head_revision, upgrade
from mlops.store._schema import metadata


def test_migrations_match_the_declared_schema(database_url: str) -> None:
    store = Store(database_url)
    try:
        upgrade(store)
        assert current_revision(store) == head_revision()
        with store.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
        assert differences == []
        assert upgrade(store) == (head_revision(), head_revision())  # idempotent
    finally:
        store.dispose()
