"""The metadata store's engine and its one transaction helper."""

from __future__ import annotations

import contextlib
import operator
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.sql.compiler import SQLCompiler

from mlops.errors import Conflict, InvalidInput, MissingDependency, MLOpsError, StorageError

__all__ = ["Prepared", "Store", "normalize_database_url"]

_SQLITE_BUSY_TIMEOUT_MS = 60_000
# Statement parameters carry secrets (token hashes, webhook secrets): SQLAlchemy's error
# messages and statement logs must show the SQL only.
_HIDE_PARAMETERS = True


def normalize_database_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain ``postgresql://`` URLs; check the scheme."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise InvalidInput(
            f"database URL {url!r} is not a URL; use sqlite:///path/to/mlops.db "
            "or postgresql://user@host:5432/dbname"
        ) from error
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if parsed.drivername in ("postgres", "postgresql"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed.render_as_string(hide_password=False)
    if backend == "sqlite":
        return url
    raise InvalidInput(
        f"database URL scheme {parsed.drivername!r} is not supported; "
        "use sqlite:///path/to/mlops.db or postgresql://user@host:5432/dbname"
    )


class Store:
    """A metadata database: SQLite (embedded default) or PostgreSQL.

    Thread-safe: each ``read()``/``write()`` block takes its own pooled connection.
    Creating a Store does no I/O; ``mlops.store.upgrade()`` creates or migrates tables.
    """

    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = normalize_database_url(url)
        self._url = make_url(self.url)
        self.dialect = self._url.get_backend_name()
        self._sqlite_synchronous = sqlite_synchronous.upper()
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a file-backed SQLite store."""
        if not self.is_sqlite or self._url.database in (None, "", ":memory:"):
            return None
        return Path(self._url.database or "")

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        if self.is_sqlite:
            return self._create_sqlite_engine()
        try:
            import psycopg  # noqa: F401
        except ImportError as error:
            raise MissingDependency.for_extra(
                "psycopg", "postgres", "a PostgreSQL store"
            ) from error
        # pre_ping: a pooled connection killed by a server restart is replaced, not failed.
        return sa.create_engine(
            self.url,
            pool_size=8,
            max_overflow=8,
            pool_recycle=3600,
            pool_pre_ping=True,
            hide_parameters=_HIDE_PARAMETERS,
        )

    def _create_sqlite_engine(self) -> Engine:
        if self.sqlite_path is None:
            raise InvalidInput(
                "an in-memory SQLite database cannot be shared between connections; "
                "give a file path: sqlite:///path/to/mlops.db"
            )
        engine = sa.create_engine(
            self.url,
            connect_args={"check_same_thread": False, "timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000},
            poolclass=sa.pool.QueuePool,
            pool_size=4,
            max_overflow=8,
            hide_parameters=_HIDE_PARAMETERS,
        )
        synchronous = self._sqlite_synchronous

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # We issue BEGIN ourselves so writers can take the lock up front (see below).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # A deferred transaction that reads and then writes cannot wait for the lock
            # (SQLite returns SQLITE_BUSY at once to avoid a deadlock); BEGIN IMMEDIATE
            # takes the write lock first, so concurrent writers queue on busy_timeout.
            mode = connection.get_execution_options().get("mlops_begin", "DEFERRED")
            connection.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that writes: commits on success, rolls back on any error."""
        with self._transaction(write=True) as connection:
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot)."""
        with self._transaction(write=False) as connection:
            yield connection

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection:
                if write and self.is_sqlite:
                    connection.execution_options(mlops_begin="IMMEDIATE")
                with connection.begin():
                    yield connection
        except MLOpsError:
            raise
        except OverflowError as error:
            raise InvalidInput(f"a number is out of the 64-bit range: {error}") from error
        except exc.IntegrityError as error:
            raise Conflict(
                f"the change conflicts with stored data: {_first_line(error)}"
            ) from error
        except exc.SQLAlchemyError as error:
            raise StorageError(
                f"the metadata database at {self.display_url} failed: {_first_line(error)}"
            ) from error

    @property
    def display_url(self) -> str:
        return self._url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        """Close pooled connections (call after fork or when done)."""
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def cursor(self, *, write: bool) -> Iterator[Any]:
        """A DBAPI cursor inside a transaction, for hot paths that run prepared SQL.

        Same guarantees as ``write()``/``read()`` (commit, rollback, error mapping), without
        SQLAlchemy's per-statement overhead; use ``prepare()`` to get the SQL.
        """
        try:
            raw = self.engine.raw_connection()
        except exc.SQLAlchemyError as error:
            raise StorageError(
                f"the metadata database at {self.display_url} failed: {_first_line(error)}"
            ) from error
        dialect = self.engine.dialect
        dbapi = dialect.loaded_dbapi
        try:
            cursor = raw.cursor()
            if self.is_sqlite:
                cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield cursor
            raw.commit()
        except BaseException as error:
            with contextlib.suppress(Exception):
                raw.rollback()
            if isinstance(error, dbapi.Error) and dialect.is_disconnect(error, raw, None):
                raw.invalidate()  # a dead connection must not go back to the pool
            if isinstance(error, OverflowError):
                raise InvalidInput(f"a number is out of the 64-bit range: {error}") from error
            if isinstance(error, dbapi.IntegrityError):
                raise Conflict(f"the change conflicts with stored data: {error}") from error
            if isinstance(error, dbapi.Error):
                raise StorageError(
                    f"the metadata database at {self.display_url} failed: {error}"
                ) from error
            raise
        finally:
            raw.close()

    def prepare(
        self, statement: sa.ClauseElement, columns: Sequence[str] | None = None
    ) -> Prepared:
        """Compile a SQLAlchemy statement once into driver SQL with positional parameters."""
        compiled = cast(
            SQLCompiler,
            statement.compile(dialect=self._positional_dialect(), column_keys=columns),
        )
        names = tuple(compiled.positiontup or ())
        return Prepared(str(compiled), names)

    def render(self, statement: sa.ClauseElement) -> tuple[str, tuple[Any, ...]]:
        """Compile a statement with its bound values, for one execution on ``cursor()``."""
        compiled = cast(
            SQLCompiler,
            statement.compile(
                dialect=self._positional_dialect(), compile_kwargs={"render_postcompile": True}
            ),
        )
        values = compiled.params
        return str(compiled), tuple(values[name] for name in compiled.positiontup or ())

    @property
    def placeholder(self) -> str:
        """The driver's positional parameter marker."""
        return "?" if self.is_sqlite else "%s"

    def _positional_dialect(self) -> sa.Dialect:
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

            return SQLiteDialect_pysqlite(paramstyle="qmark")
        from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

        return PGDialect_psycopg(paramstyle="format")  # type: ignore[no-untyped-call]

    def upsert(self, table: sa.Table) -> Any:
        """A dialect-specific INSERT that supports ``on_conflict_do_update``."""
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table)
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Driver SQL with positional parameters; ``args(row)`` orders a row's values."""

    sql: str
    names: tuple[str, ...]
    _getter: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        getter: Any = operator.itemgetter(*self.names) if self.names else (lambda row: ())
        if len(self.names) == 1:
            name = self.names[0]
            getter = lambda row: (row[name],)  # noqa: E731 - itemgetter of one name is not a tuple
        object.__setattr__(self, "_getter", getter)

    def args(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        result: tuple[Any, ...] = self._getter(row)
        return result


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
