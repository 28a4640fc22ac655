"""Optuna studies in the metadata database, kept apart from mlops's own tables.

Optuna's ``RDBStorage`` creates tables named ``studies``, ``trials``… and its own
``alembic_version``, which would collide with mlops's schema. On PostgreSQL they live in
the ``optuna`` schema (created if missing) through the connection's search path; on
SQLite in a file beside the metadata database (``mlops.db`` → ``mlops.optuna.db``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mlops.errors import InvalidInput, MissingDependency, StorageError

if TYPE_CHECKING:
    from mlops._client import MLOps

__all__ = ["OPTUNA_SCHEMA", "StorageSpec", "storage_spec", "study_storage"]

#: The PostgreSQL schema that holds Optuna's tables.
OPTUNA_SCHEMA = "optuna"


@dataclass(frozen=True)
class StorageSpec:
    """How to open the study storage: picklable, so worker processes open their own."""

    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    schema: str | None = None

    def open(self) -> Any:
        """An ``optuna.storages.RDBStorage`` (creating Optuna's tables on first use)."""
        optuna = _optuna()
        try:
            return optuna.storages.RDBStorage(
                self.url,
                engine_kwargs={"connect_args": dict(self.connect_args)},
            )
        except sa.exc.SQLAlchemyError as error:
            shown = sa.make_url(self.url).render_as_string(hide_password=True)
            raise StorageError(
                f"cannot open the Optuna study storage at {shown}: {error}"
            ) from None

    def prepare(self) -> None:
        """Create the PostgreSQL schema if it is missing (safe to run concurrently)."""
        if self.schema is None:
            return
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            try:
                with engine.begin() as connection:
                    connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            except sa.exc.IntegrityError:  # created by a concurrent worker meanwhile
                pass
        except sa.exc.SQLAlchemyError as error:
            raise StorageError(
                f"cannot create the schema {self.schema!r} for Optuna's tables: {error}; "
                f"create it once with: CREATE SCHEMA {self.schema}"
            ) from None
        finally:
            engine.dispose()


def storage_spec(database_url: str) -> StorageSpec:
    """Where studies go for the metadata database at ``database_url``."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return StorageSpec(
            url.render_as_string(hide_password=False),
            {"options": f"-csearch_path={OPTUNA_SCHEMA}"},
            OPTUNA_SCHEMA,
        )
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise InvalidInput(
                "a study in the database needs a metadata database on disk, not an in-memory "
                "SQLite; connect to a file (or PostgreSQL), or use train.hpo.storage: memory"
            )
        path = Path(database)
        beside = path.with_name(f"{path.stem}.optuna{path.suffix or '.db'}")
        return StorageSpec(f"sqlite:///{beside}", {"timeout": 60})
    raise InvalidInput(
        f"studies can be stored in PostgreSQL or SQLite, not {url.get_backend_name()}; "
        "use train.hpo.storage: memory"
    )


def study_storage(ml: MLOps) -> Any:
    """An Optuna storage in ``ml``'s metadata database, for studies shared by workers.

    PostgreSQL: the ``optuna`` schema of the same database; SQLite: a file next to the
    metadata file. Pass it to ``optuna.create_study(storage=...)``.
    """
    spec = storage_spec(ml.store.url)
    spec.prepare()
    return spec.open()


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingDependency.for_extra("optuna", "train", "Hyperparameter search") from None
    return optuna
