"""A thin MLflow-style layer: ``mlops.start_run()``, ``mlops.log_metric()``…

It keeps a default connection (``mlops.connect()`` on first use) and a stack of active
runs per thread / asyncio task. Nothing else in mlops depends on it; code that wants
explicit control uses the object that ``mlops.connect()`` returns.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from mlops._client import MLOps, connect
from mlops.artifacts import ArtifactInfo
from mlops.errors import Conflict, MLOpsError
from mlops.tracking import ActiveRun, Dataset, Experiment, RunStatus

__all__ = [
    "active_run",
    "end_run",
    "get_connection",
    "log_artifact",
    "log_dict",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "set_connection",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
]

_connection: MLOps | None = None
_connection_lock = threading.Lock()
_experiment: ContextVar[str | int | None] = ContextVar("mlops_experiment", default=None)
_run_stack: ContextVar[tuple[ActiveRun, ...]] = ContextVar("mlops_run_stack", default=())


def get_connection() -> MLOps:
    """The default connection, created from the ``MLOPS_*`` environment on first use."""
    global _connection
    with _connection_lock:
        if _connection is None:
            _connection = connect()
        return _connection


def set_connection(connection: MLOps | None) -> None:
    """Make ``connection`` the default for the module-level functions (None resets)."""
    global _connection
    with _connection_lock:
        _connection = connection


def set_experiment(name: str) -> Experiment:
    """Use experiment ``name`` (created if missing) for runs started after this call."""
    experiment = get_connection().tracking.set_experiment(name)
    _experiment.set(experiment.id)
    return experiment


def _live_stack() -> tuple[ActiveRun, ...]:
    stack = _run_stack.get()
    while stack and stack[-1].ended:
        stack = stack[:-1]
    _run_stack.set(stack)
    return stack


def active_run() -> ActiveRun | None:
    """The innermost run started with ``mlops.start_run()`` that has not ended."""
    stack = _live_stack()
    return stack[-1] if stack else None


def start_run(
    name: str | None = None,
    *,
    experiment: str | int | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    async_logging: bool = False,
) -> ActiveRun:
    """Start a run and make it active; use it as ``with mlops.start_run(): ...``."""
    stack = _live_stack()
    parent = stack[-1] if stack else None
    if parent is not None and not nested:
        raise Conflict(
            f"run {parent.id} is already active; end it first, or pass nested=True "
            "to start a child run inside it"
        )
    tracker = get_connection().tracking
    chosen = experiment if experiment is not None else _experiment.get()
    if chosen is None and parent is not None:
        chosen = parent.experiment_id
    run = tracker.start_run(
        chosen, name=name, tags=tags, parent=parent, async_logging=async_logging
    )
    _run_stack.set((*stack, run))
    return run


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (no-op when there is none)."""
    run = active_run()
    if run is not None:
        run.end(status)
        _live_stack()


def _require_run() -> ActiveRun:
    run = active_run()
    if run is None:
        run = start_run()
        _auto_started.append(run)
    return run


# Runs that a bare ``mlops.log_metric()`` started implicitly end when the script exits.
_auto_started: list[ActiveRun] = []


@atexit.register
def _end_auto_started_runs() -> None:
    for run in _auto_started:
        if not run.ended:
            with contextlib.suppress(MLOpsError):
                run.end()


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    _require_run().log_metric(key, value, step, timestamp)


def log_metrics(values: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    _require_run().log_metrics(values, step, timestamp)


def log_param(key: str, value: Any) -> None:
    _require_run().log_param(key, value)


def log_params(values: Mapping[str, Any]) -> None:
    _require_run().log_params(values)


def set_tag(key: str, value: Any) -> None:
    _require_run().set_tag(key, value)


def set_tags(values: Mapping[str, Any]) -> None:
    _require_run().set_tags(values)


def log_input(dataset: Dataset, context: str = "training") -> None:
    _require_run().log_input(dataset, context)


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None
) -> list[ArtifactInfo]:
    return _require_run().log_artifact(local_path, artifact_path)


def log_text(text: str, artifact_file: str) -> ArtifactInfo:
    return _require_run().log_text(text, artifact_file)


def log_dict(data: Mapping[str, Any], artifact_file: str) -> ArtifactInfo:
    return _require_run().log_dict(data, artifact_file)
