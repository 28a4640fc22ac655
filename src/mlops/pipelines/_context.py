"""``step_context()``: what a running step may know about its run and the platform.

Steps stay plain functions of their inputs; the few that need the platform (to log
metrics on their run, register a model, read the registry) ask for the context of the
step being run:

    @step
    def train(data: Frame) -> Model:
        ctx = step_context()
        ctx.run.log_metric("cv_auc", 0.91)
        ...

The context is set in the thread (or worker process) that calls the step function.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops.errors import MLOpsError

if TYPE_CHECKING:
    from mlops._client import MLOps
    from mlops.tracking import ActiveRun

__all__ = ["StepContext", "step_context", "using_context"]


@dataclass(frozen=True, slots=True)
class StepContext:
    """The step being run: its names, its tracked run, and a connection to the platform.

    ``ml`` and ``run`` are made on first use by ``connect``: in the process that runs the
    pipeline they are the caller's own connection and the step's child run; in a worker
    process they are a connection to the same stores (made once per worker).
    """

    pipeline: str
    step: str
    run_id: str
    pipeline_run_id: str
    experiment_id: int
    attempt: int
    params: dict[str, Any]
    connect: Callable[[], MLOps] = field(repr=False)

    @property
    def ml(self) -> MLOps:
        """The ``MLOps`` connection the pipeline runs against."""
        return self.connect()

    @property
    def run(self) -> ActiveRun:
        """The step's tracked run, to log metrics, params, tags and artifacts on.

        It is ended by the pipeline when the step returns; do not end it yourself.
        """
        from mlops.tracking import ActiveRun

        return ActiveRun(self.ml.tracking, self.run_id, self.experiment_id)


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "mlops_step_context", default=None
)


def step_context() -> StepContext:
    """The context of the step this code runs in; ``MLOpsError`` outside a step."""
    context = _current.get()
    if context is None:
        raise MLOpsError(
            "step_context() is only available while a pipeline step runs; call it from "
            "inside an @step function run by run_pipeline (or pass what you need as a param)"
        )
    return context


@contextmanager
def using_context(context: StepContext) -> Iterator[None]:
    """Make ``context`` the current step context for the duration of the block."""
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)
