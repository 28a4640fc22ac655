"""The Ray executor: each step call is a Ray task with the step's resources.

``@step(cpu=, memory=, gpu=)`` become the task's ``num_cpus``, ``memory`` (bytes) and
``num_gpus``, and Ray places the tasks (the driver submits every ready step and lets
Ray pack them). A step no node of the cluster could ever run is refused before the
pipeline starts, instead of waiting forever for resources that will not come.

Ray is an optional extra (``pip install 'mlops[ray]'``). The driver connects to
``MLOPS_RAY_ADDRESS`` (else ``RAY_ADDRESS``) when set, else starts a local instance
without the dashboard; if Ray is already initialised in this process it is used as is.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mlops.errors import InvalidInput, MissingDependency, MLOpsError
from mlops.pipelines._backends import (
    StepResult,
    StepTimeout,
    WorkerCrashed,
    decode_reply,
    driver_path,
)
from mlops.pipelines._context import StepContext
from mlops.pipelines._process import encode_call, worker_settings
from mlops.pipelines._step import Resources, Step
from mlops.pipelines._worker import ConnectInWorker, execute_streaming

if TYPE_CHECKING:
    from mlops._client import MLOps

__all__ = ["RayBackend", "init_options"]

_GiB = 2**30
_init_lock = threading.Lock()


def _import_ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise MissingDependency.for_extra("ray", "ray", "executor='ray'") from None


def init_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``ray.init`` arguments for this environment: its cluster, or a local one."""
    address = environ.get("MLOPS_RAY_ADDRESS") or environ.get("RAY_ADDRESS")
    if address:
        return {"address": address}
    return {"include_dashboard": False}


class RayBackend:
    """Calls each step as a Ray task; ``ctx.ml`` there connects to the same stores.

    A remote cluster needs this mlops (and cloudpickle) installed on its nodes, and
    stores it can reach: PostgreSQL and S3 rather than a SQLite file on this machine.
    """

    def __init__(self, ml: MLOps) -> None:
        self._ray = _import_ray()
        self._connect = ConnectInWorker(worker_settings(ml))
        self._task: Any = None

    def prepare(self, steps: list[Step]) -> None:
        ray = self._ray
        with _init_lock:
            if not ray.is_initialized():
                # The environment is read here, when Ray is first needed, rather than
                # at import: RAY_ADDRESS is Ray's own, read by ray.init likewise.
                options = init_options(os.environ)
                try:
                    ray.init(**options)
                except Exception as error:
                    where = options.get("address", "a local instance")
                    raise MLOpsError(
                        f"could not start or reach Ray ({where}): {type(error).__name__}: "
                        f"{error}; check MLOPS_RAY_ADDRESS / RAY_ADDRESS, or run with "
                        "executor='local'"
                    ) from error
        _check_feasible(ray, steps)
        self._task = ray.remote(execute_streaming)

    def call(self, step: Step, kwargs: Mapping[str, Any], context: StepContext) -> StepResult:
        ray = self._ray
        request = encode_call(step, kwargs, replace(context, connect=self._connect))
        options = _task_options(step.resources)
        replies = self._task.options(**options).remote(request, driver_path(), False)
        try:
            ray.get(next(replies))  # the call has started: queueing is not timed
            finished, _ = ray.wait([replies], timeout=step.timeout)
            if finished:
                reply = ray.get(next(replies))
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as error:
            raise WorkerCrashed(
                f"the Ray worker running step {step.name!r} died before the step returned "
                f"({type(error).__name__}); a crash in native code, os._exit() or the "
                "out-of-memory killer ends a worker this way"
            ) from None
        except BaseException:  # interrupted here: do not leave the step running there
            with contextlib.suppress(Exception):
                ray.cancel(replies, force=True)
            raise
        if not finished:
            ray.cancel(replies, force=True)
            raise StepTimeout(
                f"step {step.name!r} did not finish within {step.timeout:g}s; its Ray "
                "worker was killed. Raise @step(timeout=...) or make the step faster"
            )
        return decode_reply(reply, step, "its Ray worker")


def _task_options(resources: Resources) -> dict[str, Any]:
    # Retries are the driver's (each attempt is recorded); Ray must not re-run a step.
    options: dict[str, Any] = {
        "num_returns": "streaming",
        "num_cpus": resources.cpu,
        "max_retries": 0,
        "retry_exceptions": False,
    }
    if resources.memory is not None:
        options["memory"] = resources.memory
    if resources.gpu:
        options["num_gpus"] = resources.gpu
    return options


def _check_feasible(ray: Any, steps: list[Step]) -> None:
    """Refuse a step that no alive node of the cluster has the resources for."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive", True)]
    for step in steps:
        need = _needs(step.resources)
        if any(all(node.get(key, 0) >= amount for key, amount in need.items()) for node in nodes):
            continue
        asked = ", ".join(_describe(key, amount) for key, amount in need.items())
        most = ", ".join(
            _describe(key, max((node.get(key, 0) for node in nodes), default=0)) for key in need
        )
        raise InvalidInput(
            f"step {step.name!r} needs {asked} at once, which no node of the Ray cluster "
            f"has (the most a node has: {most}); lower @step(cpu=, memory=, gpu=) or run "
            "on a cluster with bigger nodes"
        )


def _needs(resources: Resources) -> dict[str, float]:
    need = {"CPU": resources.cpu}
    if resources.gpu:
        need["GPU"] = float(resources.gpu)
    if resources.memory is not None:
        need["memory"] = float(resources.memory)
    return need


def _describe(key: str, amount: float) -> str:
    if key == "memory":
        return f"{amount / _GiB:.1f} GiB of memory"
    unit = {"CPU": "CPU", "GPU": "GPU"}[key]
    return f"{amount:g} {unit}{'' if amount == 1 else 's'}"
