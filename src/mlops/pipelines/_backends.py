"""Where a step function is called: a thread, a local worker process, a Ray task.

``StepRunner`` does everything else (cache lookups, the tracked child run, retries,
output storage) in the process that runs the pipeline; a backend only calls the step
function with its inputs and its ``StepContext`` and hands back what it returned.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mlops.errors import InvalidInput, MLOpsError
from mlops.pipelines._context import StepContext, using_context
from mlops.pipelines._step import Step
from mlops.pipelines._worker import Reply

__all__ = [
    "RemoteStepError",
    "StepBackend",
    "StepNotSendable",
    "StepResult",
    "StepTimeout",
    "Surroundings",
    "ThreadBackend",
    "WorkerCrashed",
    "call_with_timeout",
    "decode_reply",
    "describe_exit",
    "driver_path",
    "driver_surroundings",
]


class StepTimeout(TimeoutError):
    """A step did not return within its timeout."""


class WorkerCrashed(MLOpsError):
    """The process running a step died before the step returned (a native crash,
    ``os._exit()``, the out-of-memory killer)."""


class StepNotSendable(InvalidInput):
    """A step's function or inputs cannot be moved to the process that would run it;
    retrying cannot help, so the step fails at once."""


class RemoteStepError(Exception):
    """A step raised in another process; the original type is known by name only
    (its class need not exist, or unpickle, here)."""

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback

    @property
    def summary(self) -> str:
        """ "Type: message", as for an exception raised in this process."""
        return f"{self.type_name}: {self.message}"


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a call returned: the value, and its pickle when the call made one (a worker
    sends it pickled; the driver stores those bytes instead of pickling it again).
    ``output_error`` says why the value cannot be stored (it is then None)."""

    value: Any = None
    data: bytes | None = None
    output_error: str | None = None


class StepBackend(Protocol):
    """Calls step functions. Safe to call from many threads at once.

    ``prepare`` is called once per pipeline run, before anything runs: it gets the
    backend ready (starts workers, connects to a cluster) and refuses, with
    ``InvalidInput``, steps the backend can never run. ``call`` returns the
    ``StepResult`` or raises: what the step raised (or a ``RemoteStepError`` naming it),
    ``StepTimeout`` past ``step.timeout``, ``WorkerCrashed``, ``StepNotSendable``.
    """

    def prepare(self, steps: list[Step]) -> None: ...

    def call(self, step: Step, kwargs: Mapping[str, Any], context: StepContext) -> StepResult: ...


class ThreadBackend:
    """Calls the step in the calling thread, or a helper thread when it has a timeout.

    Inputs and outputs stay in memory, and a call costs microseconds; but a step past
    its timeout cannot be stopped (Python cannot kill a thread): it keeps running,
    abandoned, and whatever it returns is dropped.
    """

    def prepare(self, steps: list[Step]) -> None:
        return None

    def call(self, step: Step, kwargs: Mapping[str, Any], context: StepContext) -> StepResult:
        def run() -> Any:
            with using_context(context):
                return step.fn(**kwargs)

        return StepResult(value=call_with_timeout(run, step.timeout, step.name))


def call_with_timeout(fn: Callable[[], Any], timeout: float | None, name: str) -> Any:
    """Call ``fn()``; past ``timeout`` seconds raise ``StepTimeout``.

    Python cannot kill a thread, so a step that times out keeps running in a daemon
    thread whose result is ignored; it holds no tracked run and writes no artifact.
    """
    if timeout is None:
        return fn()
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as error:  # handed to the waiting thread
            outcome["error"] = error
        finally:
            finished.set()

    thread = threading.Thread(target=target, name=f"mlops-step-{name}", daemon=True)
    thread.start()
    if not finished.wait(timeout):
        raise StepTimeout(
            f"step {name!r} did not finish within {timeout:g}s; its thread was abandoned "
            "(threads cannot be stopped; executor='local' kills a step's process). "
            "Raise @step(timeout=...) or make the step faster"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def decode_reply(reply: Reply, step: Step, where: str) -> StepResult:
    """The result of a worker's reply (``where`` names the worker, for messages)."""
    kind, detail, data = reply
    if kind == "value":
        assert data is not None
        # The bytes came from our own worker, which ran the step's own code.
        return StepResult(value=pickle.loads(data), data=data)
    if kind == "none":
        return StepResult()
    if kind == "bad_output":
        return StepResult(output_error=str(detail))
    if kind == "raised":
        type_name, message, remote_traceback = detail
        raise RemoteStepError(type_name, message, remote_traceback)
    type_name, message = detail
    raise StepNotSendable(
        f"step {step.name!r} could not be loaded in {where} ({type_name}: {message}); "
        "define the step and the classes of its inputs in a module that process can "
        "import, or run it with executor='threads'"
    )


def describe_exit(status: int | None) -> str:
    """How a process ended, from its wait status: "exit code 3", "signal SIGSEGV"."""
    if status is None or status < 0:
        return "an unknown exit status"
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


def driver_path() -> list[str]:
    """This process's ``sys.path``, with the current folder made absolute."""
    cwd = os.getcwd()
    return [entry if entry else cwd for entry in sys.path]


#: What a local worker takes over from the process that runs the pipeline before each
#: call: ``sys.path``, the environment variables and the working folder.
Surroundings = tuple[list[str], dict[str, str], str]


def driver_surroundings() -> Surroundings:
    """``sys.path``, ``os.environ`` and the working folder of this process, now."""
    return driver_path(), dict(os.environ), os.getcwd()
