"""The local executor's process pool: warm worker processes forked from a zygote.

One pool serves every pipeline run of this process: it is made on first use, forks as
many workers as steps run at once (the executor's CPU budget bounds that), keeps up to
one per CPU warm between steps and runs, and stops them at exit. A worker runs one
step at a time.

Workers are forked from a *zygote* (see ``_worker``), a process started once that has
imported mlops: a new worker costs a ``fork`` (milliseconds), not a Python start-up and
the imports (about a second). A step past its timeout has its worker killed, a worker
that dies fails only the step it was running, and either way the next step gets a fresh
worker. The zygote kills every worker when this process exits, even by SIGKILL (it sees
its socket close).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from mlops.config import Settings
from mlops.errors import MLOpsError
from mlops.pipelines._backends import (
    StepNotSendable,
    StepResult,
    StepTimeout,
    Surroundings,
    WorkerCrashed,
    decode_reply,
    describe_exit,
    driver_surroundings,
)
from mlops.pipelines._cache import pickler
from mlops.pipelines._context import StepContext
from mlops.pipelines._step import Step
from mlops.pipelines._worker import (
    COMMAND,
    KILL,
    SPAWN,
    STOP,
    ConnectInWorker,
    Reply,
    encode_request,
)

if TYPE_CHECKING:
    from mlops._client import MLOps

__all__ = ["ProcessBackend", "ProcessPool", "encode_call", "shared_pool", "worker_settings"]

_REPLY_SIZE = 8
_NO_PATH = pickle.dumps(None)
_ZYGOTE_CODE = "import sys; from mlops.pipelines._worker import main; main(sys.argv)"


class _Worker:
    """A worker process, the connection the driver talks to it on, and the zygote that
    forked it (and alone can reap it)."""

    __slots__ = ("connection", "path", "pid", "zygote")

    def __init__(self, pid: int, connection: Connection, zygote: _Zygote) -> None:
        self.pid = pid
        self.connection = connection
        self.zygote = zygote
        #: The surroundings last sent to this worker (a request carries them when they
        #: change): ``sys.path``, environment variables, working folder.
        self.path: Surroundings | None = None


class _Zygote:
    """The driver's handle on the zygote: spawn a worker, kill one. Thread-safe."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _ZYGOTE_CODE, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                # Ctrl-C in a terminal is the driver's to handle, not its workers'.
                start_new_session=True,
            )
        except OSError as error:
            ours.close()
            raise MLOpsError(
                f"could not start the local executor's worker processes ({error}); "
                "use executor='threads' to run the steps in this process"
            ) from error
        finally:
            theirs.close()
        self._socket = ours
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                try:
                    socket.send_fds(self._socket, [COMMAND.pack(SPAWN, 0)], [theirs.fileno()])
                except OSError:
                    raise self._gone() from None
                pid = self._receive()
            if pid <= 0:
                raise MLOpsError(
                    "the local executor could not start a worker process (fork failed: "
                    "out of memory or of processes?); lower max_workers, or use "
                    "executor='threads'"
                )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return _Worker(pid, Connection(ours.detach()), self)

    def kill(self, pid: int, *, graceful: bool = False) -> int | None:
        """Reap worker ``pid``: SIGKILL it now, or (``graceful``, its socket closed) once
        it has exited by itself; its wait status (None if unknown)."""
        try:
            with self._lock:
                self._socket.sendall(COMMAND.pack(STOP if graceful else KILL, pid))
                status = self._receive()
        except (MLOpsError, OSError):  # the zygote is gone: its orphans are init's to reap
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            return None
        return None if status < 0 else status

    def _receive(self) -> int:
        reply = b""
        with contextlib.suppress(OSError):
            while len(reply) < _REPLY_SIZE:
                chunk = self._socket.recv(_REPLY_SIZE - len(reply))
                if not chunk:
                    break
                reply += chunk
        if len(reply) < _REPLY_SIZE:
            raise self._gone()
        return int.from_bytes(reply, "big", signed=True)

    def _gone(self) -> MLOpsError:
        try:
            status = _status(self._process.wait(timeout=5))
        except subprocess.TimeoutExpired:
            status = None
        return MLOpsError(
            f"the local executor's process manager (pid {self._process.pid}) stopped "
            f"({describe_exit(status)}); its error, if any, is printed above. Use "
            "executor='threads' to run the steps in this process"
        )

    def close(self) -> None:
        """Close the socket: the zygote kills its workers and exits."""
        self._socket.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _status(returncode: int | None) -> int | None:
    """A wait status from a ``Popen.returncode``."""
    if returncode is None:
        return None
    return (-returncode) & 0x7F if returncode < 0 else (returncode & 0xFF) << 8


class ProcessPool:
    """Warm worker processes, handed to one step at a time. Thread-safe."""

    def __init__(self, keep_idle: int | None = None) -> None:
        #: Workers kept warm between steps; more are forked when more steps run at once
        #: (a fork costs milliseconds) and stopped when they finish.
        self.keep_idle = keep_idle if keep_idle is not None else max(2, os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._zygote: _Zygote | None = None
        self._closed = False

    def start(self) -> None:
        """Start the zygote now, so its start-up overlaps the caller's own work."""
        self._spawner()

    def _spawner(self) -> _Zygote:
        with self._lock:
            if self._closed:
                raise MLOpsError("the local executor's process pool has been shut down")
            if self._zygote is None or not self._zygote.alive:
                if self._zygote is not None:
                    self._zygote.close()
                self._zygote = _Zygote()
            return self._zygote

    def run(self, request: bytes, timeout: float | None, step: str) -> Reply:
        """Have a worker execute ``request`` (see ``_worker``); return its reply."""
        path = driver_surroundings()
        worker = self._acquire()
        try:
            self._send(worker, request, path)
        except OSError:  # it died while idle; the step has not started, so use a new one
            self._discard(worker)
            worker = self._spawner().spawn()
            self._send(worker, request, path)
        try:
            # Without a timeout, a blocking read (poll() would build a selector per call).
            finished = timeout is None or worker.connection.poll(timeout)
            if finished:
                kind, detail = pickle.loads(worker.connection.recv_bytes())
                data = worker.connection.recv_bytes() if kind == "value" else None
        except (EOFError, OSError):
            status = self._discard(worker)
            raise WorkerCrashed(
                f"the worker process (pid {worker.pid}) running step {step!r} died with "
                f"{describe_exit(status)} before the step returned; a crash in native "
                "code, os._exit() or the out-of-memory killer ends a process this way"
            ) from None
        except BaseException:  # interrupted mid-call: the worker's state is unknown
            self._discard(worker)
            raise
        if not finished:
            self._discard(worker)
            raise StepTimeout(
                f"step {step!r} did not finish within {timeout:g}s; its worker process "
                f"(pid {worker.pid}) was killed. Raise @step(timeout=...) or make the "
                "step faster"
            )
        self._release(worker)
        return kind, detail, data

    @staticmethod
    def _send(worker: _Worker, request: bytes, path: Surroundings) -> None:
        known = worker.path == path
        worker.connection.send_bytes(_NO_PATH if known else pickle.dumps(path))
        worker.connection.send_bytes(request)
        worker.path = path

    def _acquire(self) -> _Worker:
        dead = []
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                # Readable while idle means it closed its end: it died. A worker whose
                # zygote died could no longer be reaped: retire it too.
                if worker.zygote.alive and not worker.connection.poll(0):
                    break
                dead.append(worker)
            else:
                worker = None
        for corpse in dead:
            self._discard(corpse)
        return worker if worker is not None else self._spawner().spawn()

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.keep_idle:
                self._idle.append(worker)
                return
        self._discard(worker, graceful=True)  # idle: it exits once its connection closes

    @staticmethod
    def _discard(worker: _Worker, *, graceful: bool = False) -> int | None:
        """Close ``worker``'s connection and have it reaped; its wait status, if known."""
        worker.connection.close()
        return worker.zygote.kill(worker.pid, graceful=graceful)

    def shutdown(self) -> None:
        """Stop every worker and the zygote; idempotent."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            zygote, self._zygote = self._zygote, None
        for worker in idle:
            worker.connection.close()  # an idle worker exits when its connection closes
        if zygote is not None:
            zygote.close()  # and the zygote reaps them, or kills them after a grace period

    def _forget_after_fork(self) -> None:
        """In a forked child: drop the parent's workers without touching them."""
        for worker in self._idle:
            with contextlib.suppress(OSError):
                worker.connection.close()
        if self._zygote is not None:
            with contextlib.suppress(OSError):
                self._zygote._socket.close()
        self._idle, self._zygote, self._closed = [], None, True
        self._lock = threading.Lock()


_shared: ProcessPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> ProcessPool:
    """This process's pool, made on first use and shut down at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ProcessPool()
            atexit.register(_shared.shutdown)
        return _shared


def _after_fork_in_child() -> None:
    global _shared, _shared_lock
    _shared_lock = threading.Lock()
    if _shared is not None:
        _shared._forget_after_fork()
        _shared = None


os.register_at_fork(after_in_child=_after_fork_in_child)


class ProcessBackend:
    """Calls each step in a worker process of the shared ``ProcessPool``.

    The function, inputs and context are pickled (with cloudpickle where installed, so
    steps defined in ``__main__``, a notebook or a test function work); ``ctx.ml`` in
    the worker is its own connection to the same stores, made once per worker.
    """

    def __init__(self, ml: MLOps, pool: ProcessPool | None = None) -> None:
        self._connect = ConnectInWorker(worker_settings(ml))
        self._pool = pool if pool is not None else shared_pool()

    def prepare(self, steps: list[Step]) -> None:
        if not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
            raise MLOpsError(
                f"executor='local' forks worker processes, which {sys.platform} cannot do; "
                "use executor='threads' (or 'ray')"
            )
        self._pool.start()  # the zygote's start-up overlaps the driver's own

    def call(self, step: Step, kwargs: Mapping[str, Any], context: StepContext) -> StepResult:
        request = encode_call(step, kwargs, replace(context, connect=self._connect))
        reply = self._pool.run(request, step.timeout, step.name)
        return decode_reply(reply, step, "its worker process")


def encode_call(step: Step, kwargs: Mapping[str, Any], context: StepContext) -> bytes:
    """The worker request for one call of ``step``; ``StepNotSendable`` if it cannot be
    pickled."""
    try:
        return encode_request(step.fn, kwargs, context, step.outputs)
    except Exception as error:
        raise StepNotSendable(
            f"step {step.name!r} cannot be sent to a worker process: {_culprit(step, kwargs)} "
            f"cannot be pickled ({type(error).__name__}: {error}). A step's function may "
            "not close over locks, connections or open files (use step_context().ml for "
            "the platform); or run it with executor='threads'"
        ) from error


def _culprit(step: Step, kwargs: Mapping[str, Any]) -> str:
    """What of a call cannot be pickled: an input by name, else the function."""
    for name, value in kwargs.items():
        try:
            pickler.dumps(value)
        except Exception:
            return f"its input {name!r} (a {type(value).__name__})"
    return f"its function {getattr(step.fn, '__qualname__', step.name)!r}"


def worker_settings(ml: MLOps) -> Settings:
    """What a worker connects with: the driver's own stores, as absolute URLs (a worker
    may run in another folder, or on another machine)."""
    database = ml.store.url
    path = ml.store.sqlite_path
    if path is not None and not path.is_absolute():
        database = (
            make_url(database)
            .set(database=str(path.absolute()))
            .render_as_string(hide_password=False)
        )
    return ml.settings.with_overrides(
        home=ml.settings.home.absolute(), database_url=database, artifact_root=ml.artifacts.root
    )
