"""What runs in a worker process or a Ray task: one step call, in and out as bytes.

The driver (``StepRunner``) keeps all tracking, caching and output storage; a worker
only calls the step function. A request is the pickled ``(fn, kwargs, context,
outputs)``, sent with the driver's ``sys.path`` when the worker does not have it yet
(the path must be in place before the function's module is imported). The reply says
how the call ended and, for a value, carries the pickled output, which the driver
stores as the step's artifact without pickling it again.

This module is also the entry point of the local process pool: ``main([_, fd])`` (run by
``python -c``; ``-m`` would import this module twice) starts the *zygote*, a process that
imports mlops once and forks a worker for each request on the socket ``fd``, kills and
reaps them when asked, and kills them all when the socket closes (the driver has exited).
Workers are forked from it, never from the driver, whose threads make ``fork`` unsafe.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import struct
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Literal

from mlops.config import Settings
from mlops.errors import InvalidInput
from mlops.pipelines._cache import pickler, serialize_output
from mlops.pipelines._context import StepContext, using_context

if TYPE_CHECKING:
    from mlops._client import MLOps

__all__ = [
    "COMMAND",
    "KILL",
    "SPAWN",
    "STOP",
    "ConnectInWorker",
    "Reply",
    "encode_request",
    "execute_request",
    "execute_streaming",
]

#: How a call ended: the output pickled, None, a raised exception (type name, message,
#: traceback), an output that cannot be stored (message), or a request that could not
#: be loaded here (type name, message).
ReplyKind = Literal["value", "none", "raised", "bad_output", "unloadable"]
Reply = tuple[ReplyKind, Any, bytes | None]

#: Zygote commands: a fixed-size ``(op, argument)`` pair of signed 64-bit integers.
COMMAND = struct.Struct("!qq")
SPAWN = 1  # fork a worker serving the attached socket; reply: its pid
KILL = 2  # SIGKILL the worker ``argument`` and reap it; reply: its wait status
STOP = 3  # reap the worker ``argument``, whose socket the driver closed (SIGKILL it if it
#           has not exited within STOP_GRACE seconds); reply: its wait status
STOP_GRACE = 2.0
_REPLY = struct.Struct("!q")
_PROTOCOL = pickle.HIGHEST_PROTOCOL

_MAX_CONNECTIONS = 4


@dataclass(frozen=True, slots=True)
class ConnectInWorker:
    """``StepContext.connect`` in a worker: one ``MLOps`` per process and ``settings``."""

    settings: Settings

    def __call__(self) -> MLOps:
        return _connection(self.settings)


_connections: OrderedDict[Settings, MLOps] = OrderedDict()


def _connection(settings: Settings) -> MLOps:
    """The worker's connection to ``settings``' stores, made once (a few kept, LRU)."""
    ml = _connections.get(settings)
    if ml is not None:
        _connections.move_to_end(settings)
        return ml
    from mlops._client import connect

    # The driver's own connection has already created or migrated the schema.
    ml = connect(settings=settings, upgrade_schema=False)
    _connections[settings] = ml
    while len(_connections) > _MAX_CONNECTIONS:
        _, oldest = _connections.popitem(last=False)
        with contextlib.suppress(Exception):
            oldest.close()
    return ml


def close_connections() -> None:
    """Flush and close this process's connections (before it exits)."""
    while _connections:
        _, ml = _connections.popitem()
        with contextlib.suppress(Exception):  # exiting anyway; the driver owns the runs
            ml.close()


# -- one call -------------------------------------------------------------------------


def encode_request(
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    context: StepContext,
    outputs: tuple[str, ...],
) -> bytes:
    """The request for one call of ``fn``."""
    return bytes(pickler.dumps((fn, dict(kwargs), context, outputs), protocol=_PROTOCOL))


def execute_request(
    request: bytes, path: list[str] | None = None, exact_path: bool = False
) -> Reply:
    """Call the step a request describes; never raises (how it ended is in the reply).

    ``path`` is the driver's ``sys.path``: with ``exact_path`` it replaces this
    process's (our own workers); otherwise its entries missing here are appended (a Ray
    worker may serve other jobs' tasks, with their own paths first).
    """
    try:
        _sync_path(path, exact_path)
        fn, kwargs, context, outputs = pickle.loads(request)
    except Exception as error:  # a module or class this process cannot import
        return "unloadable", (type(error).__name__, str(error)), None
    try:
        with using_context(context):
            value = fn(**kwargs)
    except BaseException as error:  # SystemExit and KeyboardInterrupt end the step only
        return "raised", (type(error).__name__, str(error), traceback.format_exc()), None
    if value is None:
        return "none", None, None
    try:
        return "value", None, serialize_output(context.step, outputs, value)
    except InvalidInput as error:
        return "bad_output", str(error), None


def execute_streaming(
    request: bytes, path: list[str] | None = None, exact_path: bool = False
) -> Iterator[Reply | None]:
    """``execute_request`` as a Ray streaming task: first None, the moment the call
    starts (so a timeout excludes the time queued for resources), then the reply."""
    yield None
    yield execute_request(request, path, exact_path)


def _sync_path(path: list[str] | None, exact: bool) -> None:
    if path is None:
        return
    if exact:
        sys.path[:] = path
    else:
        sys.path.extend(entry for entry in path if entry not in sys.path)


# -- a worker process -----------------------------------------------------------------


def _take_surroundings(environ: dict[str, str], cwd: str) -> None:
    """Make this worker's environment variables and working folder the driver's."""
    if dict(os.environ) != environ:
        os.environ.clear()
        os.environ.update(environ)
    with contextlib.suppress(OSError):  # a folder since removed: stay where we are
        os.chdir(cwd)


def _serve(connection: Connection) -> None:
    """Answer requests until the driver closes the connection."""
    while True:
        try:
            path = pickle.loads(connection.recv_bytes())
            request = connection.recv_bytes()
        except (EOFError, OSError):
            return
        if path is not None:  # the driver's sys.path, environment and folder changed
            sys_path, environ, cwd = path
            _take_surroundings(environ, cwd)
            path = sys_path
        kind, detail, data = execute_request(request, path, exact_path=True)
        # Printed output appears as the step runs; flush it before the step counts as done.
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        try:
            connection.send_bytes(pickle.dumps((kind, detail), protocol=_PROTOCOL))
            if data is not None:
                connection.send_bytes(data)
        except OSError:  # the driver is gone (or gave up on this worker)
            return


def _run_worker(fd: int) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 0
    try:
        _serve(Connection(fd))
    except BaseException:  # a worker must end with os._exit, whatever happens
        code = 1
    finally:
        close_connections()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


# -- the zygote -----------------------------------------------------------------------


def _zygote(control: socket.socket) -> None:
    """Fork workers, kill and reap them, on the driver's commands; exit when it closes."""
    children: set[int] = set()
    while True:
        try:
            message, fds = _receive_command(control)
        except (EOFError, OSError):  # the driver closed the socket (or died)
            break
        op, argument = COMMAND.unpack(message)
        if op == SPAWN and fds:
            reply = _fork_worker(control, fds[0])
            if reply > 0:
                children.add(reply)
        elif op in (KILL, STOP):
            reply = _stop(argument, 0.0 if op == KILL else STOP_GRACE)
            children.discard(argument)
        else:
            reply = -1
        try:
            control.sendall(_REPLY.pack(reply))
        except OSError:
            break
    # The driver has gone, and with it the workers' sockets: idle ones are exiting.
    deadline = time.monotonic() + STOP_GRACE
    for pid in children:
        _stop(pid, max(0.0, deadline - time.monotonic()))


def _fork_worker(control: socket.socket, fd: int) -> int:
    """Fork a worker serving ``fd``; its pid, or -1 if the fork failed."""
    try:
        pid = os.fork()
    except OSError:
        pid = -1
    if pid == 0:
        control.close()
        _run_worker(fd)
    os.close(fd)
    return pid


def _receive_command(control: socket.socket) -> tuple[bytes, list[int]]:
    message, fds, _flags, _address = socket.recv_fds(control, COMMAND.size, 1)
    while 0 < len(message) < COMMAND.size:  # a stream may split a message
        chunk = control.recv(COMMAND.size - len(message))
        if not chunk:
            break
        message += chunk
    if len(message) < COMMAND.size:
        for fd in fds:
            os.close(fd)
        raise EOFError
    return message, fds


def _stop(pid: int, grace: float) -> int:
    """Reap ``pid`` once it exits, SIGKILLing it after ``grace`` seconds; its wait
    status, or -1 if it is not our child."""
    deadline = time.monotonic() + grace
    try:
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            time.sleep(0.005)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return -1


def main(argv: list[str]) -> None:
    """Run the zygote on the socket whose descriptor is ``argv[1]``."""
    # The driver answers Ctrl-C; its workers must not die of the same keystroke mid-step.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=int(argv[1]))
    try:
        _zygote(control)
    finally:
        control.close()
