"""The deployment controller: advances rollouts in the background, once across replicas."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
from typing import IO, Any

import sqlalchemy as sa

from mlops.deployment._manager import DeploymentManager
from mlops.errors import InvalidInput, MLOpsError
from mlops.store import Store

__all__ = ["DeploymentController", "LeaderLock", "LeaderTicker"]

_log = logging.getLogger(__name__)
# Arbitrary constant: the PostgreSQL advisory lock held by the leading controller.
_PG_CONTROLLER_LOCK = 0x6D6C6F7064


def _advisory_key(name: str) -> int:
    """The PostgreSQL advisory lock key of the leader lock ``name`` (a signed 64-bit int).

    Each name gets its own key, so different leaders (the deployment controller, the alert
    evaluator) do not exclude each other; "controller" keeps the key it always had.
    """
    if name == "controller":
        return _PG_CONTROLLER_LOCK
    digest = hashlib.sha256(f"mlops-leader:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class LeaderLock:
    """Held by at most one process per database: a PostgreSQL advisory lock on a dedicated
    connection, or an exclusive ``flock`` on a file beside the SQLite database."""

    def __init__(self, store: Store, name: str = "controller") -> None:
        self._store = store
        self._name = name
        self._key = _advisory_key(name)
        self._connection: Any = None
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    def acquire(self) -> bool:
        """Try to become the leader without waiting; True if this process now leads."""
        if self._connection is not None and not self._connection_alive():
            self.release()  # the server dropped our session, and the lock with it
        if self.held:
            return True
        if self._store.is_sqlite:
            path = self._store.sqlite_path
            assert path is not None
            handle = open(f"{path}.{self._name}.lock", "ab")  # noqa: SIM115 - held while leading
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            self._file = handle
            return True
        connection = self._store.engine.connect()
        try:
            got = connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            ).scalar()
            connection.commit()
        except Exception:
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def _connection_alive(self) -> bool:
        try:
            self._connection.execute(sa.text("SELECT 1"))
            self._connection.commit()
        except Exception:
            return False
        return True

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
                )
                self._connection.commit()
            self._connection.close()
            self._connection = None


class LeaderTicker:
    """A daemon thread that calls ``run_once()`` every ``interval`` seconds; each
    ``run_once`` first takes ``lock_name``'s LeaderLock, so one process per database works.

    Subclasses implement ``run_once`` (holding ``_tick_lock`` while they tick, so a call
    from a test never interleaves with the thread's). ``stop()`` ends the thread after its
    current tick and gives up leadership.
    """

    _description = "background tick"

    def __init__(self, store: Store, lock_name: str, interval: float) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise InvalidInput(f"interval must be a positive number of seconds; got {interval!r}")
        self._lock = LeaderLock(store, lock_name)
        self._interval = float(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()

    @property
    def leading(self) -> bool:
        return self._lock.held

    def run_once(self) -> object:
        raise NotImplementedError

    def start(self) -> None:
        """Tick in a background daemon thread until ``stop()`` (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        name = f"mlops-{self._description.replace(' ', '-')}"
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a database hiccup must not end the loop; the next tick retries
                _log.exception("%s failed", self._description)
            self._stop.wait(self._interval)

    def stop(self) -> None:
        """Stop ticking (after the current tick), wait for the thread, give up leadership."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._tick_lock:
            self._lock.release()


class DeploymentController(LeaderTicker):
    """Calls ``manager.advance()`` every ``interval`` seconds while this process leads."""

    _description = "deployment controller"

    def __init__(self, manager: DeploymentManager, store: Store, *, interval: float = 1.0) -> None:
        super().__init__(store, "controller", interval)
        self._manager = manager

    def run_once(self) -> bool:
        """One tick: lead if nobody else does, then advance due deployments."""
        with self._tick_lock:
            if not self._lock.acquire():
                return False
            try:
                self._manager.advance()
            except MLOpsError as error:  # keep the loop alive; the next tick tries again
                _log.warning("deployment controller: %s", error)
            return True
