"""What a pipeline run returns: the state of the run and of each of its steps."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import InvalidInput, NotFound
from mlops.pipelines._cache import OutputRef

__all__ = ["PipelineRun", "PipelineState", "StepEvent", "StepRun", "StepState"]


class StepState(enum.StrEnum):
    """How a step ended in one pipeline run."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CACHED = "cached"  # an earlier output was reused
    SKIPPED = "skipped"  # not run because a step it depends on did not succeed
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"  # not started because the run was asked to stop

    @property
    def has_output(self) -> bool:
        return self in (StepState.SUCCEEDED, StepState.CACHED)


class PipelineState(enum.StrEnum):
    """How a pipeline run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # stopped by ``should_stop`` before every step had run
    TIMED_OUT = "timed_out"  # stopped at ``time_limit``


@dataclass(frozen=True, slots=True)
class StepRun:
    """One step of a pipeline run.

    ``run_id`` is the step's tracked child run (None for a skipped step); times are
    milliseconds since the epoch; ``error`` is "ExceptionType: message" when the step
    failed, timed out or was skipped.
    """

    name: str
    state: StepState
    run_id: str | None = None
    started_at: int | None = None
    ended_at: int | None = None
    duration_ms: float | None = None
    output_hash: str | None = None
    error: str | None = None
    attempts: int = 0
    #: The run whose ``output.pkl`` holds the output: ``run_id``, or the reused run.
    output_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_ms": self.duration_ms,
            "output_hash": self.output_hash,
            "error": self.error,
            "attempts": self.attempts,
            "output_run_id": self.output_run_id,
        }


@dataclass(frozen=True, slots=True)
class StepEvent:
    """What ``run_pipeline(on_step=...)`` is told: a step started (``record`` is None)
    or ended (``record`` says how)."""

    pipeline: str
    pipeline_run_id: str
    step: str
    record: StepRun | None = None

    @property
    def started(self) -> bool:
        return self.record is None


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """The result of ``run_pipeline``: the tracked parent run and its steps in run order."""

    run_id: str
    pipeline: str
    state: PipelineState
    steps: tuple[StepRun, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    _outputs: Mapping[str, OutputRef] = field(default_factory=dict, repr=False, compare=False)

    @property
    def succeeded(self) -> bool:
        return self.state is PipelineState.SUCCEEDED

    @property
    def failed_steps(self) -> tuple[StepRun, ...]:
        """The steps that failed or timed out."""
        return tuple(s for s in self.steps if s.state in (StepState.FAILED, StepState.TIMED_OUT))

    def step(self, name: str) -> StepRun:
        """The record of step ``name``."""
        for record in self.steps:
            if record.name == name:
                return record
        raise InvalidInput(
            f"pipeline run '{self.run_id}' has no step {name!r}; its steps are "
            f"{', '.join(s.name for s in self.steps)}"
        )

    def output(self, name: str) -> Any:
        """The output of step ``name`` (kept in memory, else read from its artifact)."""
        record = self.step(name)
        ref = self._outputs.get(name)
        if ref is None:
            why = f"it {record.state.value}" + (f" ({record.error})" if record.error else "")
            raise NotFound(
                f"step {name!r} of pipeline run '{self.run_id}' has no output: {why}; "
                f"fix it and resume with run_pipeline(..., resume_from='{self.run_id}')"
            )
        return ref.load()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (params as their repr)."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "state": self.state.value,
            "params": {key: repr(value) for key, value in self.params.items()},
            "steps": [record.to_dict() for record in self.steps],
        }
