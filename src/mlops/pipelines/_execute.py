"""Run one step of a pipeline run: cache lookup, tracked child run, retries, output.

Each step is a child run of the pipeline's run. Its output is written before the run
is marked FINISHED with the tags that point at it, so an interrupted or failed step
never looks like a reusable one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import InvalidInput, MLOpsError
from mlops.pipelines._backends import (
    RemoteStepError,
    StepBackend,
    StepNotSendable,
    StepResult,
    StepTimeout,
    ThreadBackend,
)
from mlops.pipelines._cache import (
    NONE_HASH,
    TAG_CACHE_KEY,
    TAG_CACHED,
    TAG_OUTPUT_HASH,
    TAG_OUTPUT_RUN,
    TAG_PIPELINE,
    TAG_STATE,
    TAG_STEP,
    OutputRef,
    cache_key,
    find_cached,
    has_output,
    serialize_output,
    store_output,
    value_hash,
)
from mlops.pipelines._context import StepContext
from mlops.pipelines._graph import Pipeline
from mlops.pipelines._results import StepRun, StepState
from mlops.pipelines._step import Step
from mlops.tracking import ActiveRun, ExperimentTracker, RunStatus
from mlops.tracking._validation import MAX_TAG_VALUE_LENGTH, now_ms

if TYPE_CHECKING:
    from mlops._client import MLOps

__all__ = ["StepRunner", "error_summary", "param_text"]

_log = logging.getLogger(__name__)

TAG_ERROR = "mlops.step.error"
TAG_ATTEMPTS = "mlops.step.attempts"
TAG_CODE_HASH = "mlops.step.code_hash"
_MAX_PARAM_TEXT = 500


@dataclass
class StepRunner:
    """Runs the steps of one pipeline run; ``execute`` is safe to call from many threads.

    ``scratch`` is an empty folder for staging output files. ``outputs`` starts with the
    outputs taken from earlier runs (``stage=``) and gains each step's output as it
    succeeds; ``reusable`` holds the outputs of a resumed run with each one's cache key.
    ``backend`` calls the step functions (in this process, a worker process, Ray).
    """

    ml: MLOps
    pipeline: Pipeline
    parent: ActiveRun
    params: Mapping[str, Any]
    scratch: Path
    outputs: dict[str, OutputRef] = field(default_factory=dict)
    reusable: Mapping[str, tuple[OutputRef, str]] = field(default_factory=dict)
    backend: StepBackend = field(default_factory=ThreadBackend)
    #: ``time.monotonic()`` past which no step may run (``run_pipeline(time_limit=)``).
    time_limit_at: float | None = None
    #: Whether a step was stopped (or not started) because of the time limit.
    limit_reached: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def tracker(self) -> ExperimentTracker:
        return self.ml.tracking

    def execute(self, name: str) -> StepRun:
        """Run step ``name`` (or reuse its output); step failures end up in the record."""
        step = self.pipeline.step(name)
        started = now_ms()
        clock = time.perf_counter()
        try:
            step_params = self._step_params(name)
            key = self._cache_key(step, step_params)
        except MLOpsError as error:  # an unpicklable param or a missing upstream output
            return self._record_failure(step, error, started, clock)
        reused = self._reusable(step, key)
        if reused is not None:
            return self._record_cached(step, step_params, key, reused, started, clock)
        return self._compute(step, step_params, key, started, clock)

    def skip(self, name: str, blocker: StepRun) -> StepRun:
        """The record of a step not run because ``blocker`` has no output."""
        why = "was skipped" if blocker.state is StepState.SKIPPED else blocker.state.value
        return StepRun(
            name=name,
            state=StepState.SKIPPED,
            error=f"upstream step {blocker.name!r} {why.replace('_', ' ')}",
        )

    def cancel(self, name: str) -> StepRun:
        """The record of a step not started because the run was asked to stop."""
        return StepRun(name=name, state=StepState.CANCELLED, error="the pipeline run was cancelled")

    # -- inputs and keys ----------------------------------------------------------------

    def _step_params(self, name: str) -> dict[str, Any]:
        defaults = self.pipeline.step(name).defaults
        return {
            binding.parameter: self.params.get(binding.parameter, defaults.get(binding.parameter))
            for binding in self.pipeline.bindings(name)
            if binding.kind != "step"
        }

    def _cache_key(self, step: Step, step_params: Mapping[str, Any]) -> str:
        param_hashes = {
            key: value_hash(f"param {key!r} of step {step.name!r}", value)
            for key, value in step_params.items()
        }
        input_hashes = {}
        for binding in self.pipeline.bindings(step.name):
            if binding.kind == "step":
                assert binding.source is not None
                digest = self._output(binding.source).output_hash
                input_hashes[binding.parameter] = f"{digest}:{binding.key or ''}"
        return cache_key(step.name, step.code_hash, param_hashes, input_hashes)

    def _output(self, source: str) -> OutputRef:
        with self._lock:
            return self.outputs[source]

    def _inputs(self, step: Step, step_params: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = dict(step_params)
        for binding in self.pipeline.bindings(step.name):
            if binding.kind != "step":
                continue
            assert binding.source is not None
            value = self._output(binding.source).load()
            if binding.key is not None:
                value = value[binding.key]
            kwargs[binding.parameter] = value
        return kwargs

    def _reusable(self, step: Step, key: str) -> OutputRef | None:
        if step.volatile:  # it reads the world: what it read before may have changed
            return None
        resumed = self.reusable.get(step.name)
        if resumed is not None and resumed[1] == key:
            return resumed[0]
        if not step.cache:
            return None
        found = find_cached(self.tracker, step.name, key, step.cache_expiry)
        if found is None or not has_output(self.tracker, found):
            return None  # the artifact was deleted: compute the output again
        return found

    # -- the three endings --------------------------------------------------------------

    def _record_cached(
        self,
        step: Step,
        step_params: Mapping[str, Any],
        key: str,
        ref: OutputRef,
        started: int,
        clock: float,
    ) -> StepRun:
        tags = self._tags(step, key, cached=True)
        tags |= {TAG_STATE: StepState.CACHED.value, TAG_OUTPUT_RUN: ref.run_id}
        tags[TAG_OUTPUT_HASH] = ref.output_hash
        with self.parent.start_child(name=step.name, tags=tags) as child:
            if step_params:
                child.log_params(_param_texts(step_params))
            child.end(RunStatus.FINISHED)
        with self._lock:
            self.outputs[step.name] = ref
        return StepRun(
            name=step.name,
            state=StepState.CACHED,
            run_id=child.id,
            started_at=started,
            ended_at=now_ms(),
            duration_ms=_elapsed_ms(clock),
            output_hash=ref.output_hash,
            output_run_id=ref.run_id,
        )

    def _compute(
        self, step: Step, step_params: Mapping[str, Any], key: str, started: int, clock: float
    ) -> StepRun:
        tags = self._tags(step, key, cached=False)
        with self.parent.start_child(name=step.name, tags=tags) as child:
            attempts, result, failure = self._call(step, step_params, child)
            if result is not None:
                try:
                    output_hash = self._store(step, child.id, result)
                except MLOpsError as error:  # unpicklable, or not the declared outputs
                    failure = error
            if failure is not None:
                return self._end_failed(step, child, step_params, failure, attempts, started, clock)
            # Params go with the final tags: one write instead of two per step.
            child.log_batch(
                metrics=[("duration_ms", _elapsed_ms(clock))],
                params=_param_texts(step_params),
                tags={
                    TAG_STATE: StepState.SUCCEEDED.value,
                    TAG_ATTEMPTS: attempts,
                    TAG_OUTPUT_RUN: child.id,
                    TAG_OUTPUT_HASH: output_hash,
                },
            )
            child.end(RunStatus.FINISHED)
        assert result is not None
        ref = OutputRef(self.tracker, step.name, child.id, output_hash, result.value)
        with self._lock:
            self.outputs[step.name] = ref
        return StepRun(
            name=step.name,
            state=StepState.SUCCEEDED,
            run_id=child.id,
            started_at=started,
            ended_at=now_ms(),
            duration_ms=_elapsed_ms(clock),
            output_hash=output_hash,
            attempts=attempts,
            output_run_id=child.id,
        )

    def _call(
        self, step: Step, step_params: Mapping[str, Any], child: ActiveRun
    ) -> tuple[int, StepResult | None, Exception | None]:
        """Call the step, retrying failures; return (attempts, result, last failure)."""
        try:
            kwargs = self._inputs(step, step_params)
        except Exception as error:  # a missing artifact, a missing output key
            return 0, None, error
        failure: Exception | None = None
        for attempt in range(1, step.retries + 2):
            context = self.context(step, child, attempt, step_params)
            try:
                return attempt, self.backend.call(self._bounded(step), kwargs, context), None
            except StepNotSendable as error:  # the same on every attempt
                _log_failure(step, attempt, error)
                return attempt, None, error
            except Exception as error:
                _log_failure(step, attempt, error)
                failure = error
                if self.out_of_time():
                    self.limit_reached = True
                    return (
                        attempt,
                        None,
                        StepTimeout(
                            f"step {step.name!r} was stopped at the run's time limit "
                            f"({error}); no more attempts"
                        ),
                    )
        return step.retries + 1, None, failure

    def out_of_time(self) -> bool:
        """Whether the run's time limit has passed."""
        return self.time_limit_at is not None and time.monotonic() >= self.time_limit_at

    def _bounded(self, step: Step) -> Step:
        """``step`` with its timeout cut to what is left of the run's time limit."""
        if self.time_limit_at is None:
            return step
        left = self.time_limit_at - time.monotonic()
        if left <= 0:
            raise StepTimeout(f"the run's time limit was reached before step {step.name!r} started")
        if step.timeout is not None and step.timeout <= left:
            return step
        return dataclasses.replace(step, timeout=left)

    def context(
        self, step: Step, child: ActiveRun, attempt: int, step_params: Mapping[str, Any]
    ) -> StepContext:
        """The ``step_context()`` of one attempt of ``step``."""
        ml = self.ml
        return StepContext(
            pipeline=self.pipeline.name,
            step=step.name,
            run_id=child.id,
            pipeline_run_id=self.parent.id,
            experiment_id=child.experiment_id,
            attempt=attempt,
            params=dict(step_params),
            connect=lambda: ml,
        )

    def _end_failed(
        self,
        step: Step,
        child: ActiveRun,
        step_params: Mapping[str, Any],
        failure: BaseException,
        attempts: int,
        started: int,
        clock: float,
    ) -> StepRun:
        state = StepState.TIMED_OUT if isinstance(failure, StepTimeout) else StepState.FAILED
        summary = error_summary(failure)
        child.log_batch(
            metrics=[("duration_ms", _elapsed_ms(clock))],
            params=_param_texts(step_params),
            tags={TAG_STATE: state.value, TAG_ATTEMPTS: attempts, TAG_ERROR: summary},
        )
        child.end(RunStatus.FAILED)
        return StepRun(
            name=step.name,
            state=state,
            run_id=child.id,
            started_at=started,
            ended_at=now_ms(),
            duration_ms=_elapsed_ms(clock),
            error=summary,
            attempts=attempts,
        )

    def _record_failure(
        self,
        step: Step,
        failure: BaseException,
        started: int,
        clock: float,
    ) -> StepRun:
        """Record a step that failed before it could be called."""
        tags = {TAG_PIPELINE: self.pipeline.name, TAG_STEP: step.name}
        with self.parent.start_child(name=step.name, tags=tags) as child:
            return self._end_failed(step, child, {}, failure, 0, started, clock)

    # -- tracking -----------------------------------------------------------------------

    def _tags(self, step: Step, key: str, *, cached: bool) -> dict[str, Any]:
        return {
            TAG_PIPELINE: self.pipeline.name,
            TAG_STEP: step.name,
            TAG_CACHE_KEY: key,
            TAG_CACHED: "true" if cached else "false",
            TAG_CODE_HASH: step.code_hash,
        }

    def _store(self, step: Step, run_id: str, result: StepResult) -> str:
        """Store the output as the run's artifact; return its SHA-256."""
        if result.output_error is not None:  # found by the worker that pickled it
            raise InvalidInput(result.output_error)
        if result.value is None:  # nothing to store: the hash alone says the output is None
            return NONE_HASH
        data = result.data
        if data is None:
            data = serialize_output(step.name, step.outputs, result.value)
        return store_output(self.tracker, run_id, data, self.scratch / run_id)


def _log_failure(step: Step, attempt: int, error: Exception) -> None:
    if not _log.isEnabledFor(logging.DEBUG):
        return
    if isinstance(error, RemoteStepError):
        _log.debug("step %r attempt %d failed:\n%s", step.name, attempt, error.remote_traceback)
    else:
        _log.debug("step %r attempt %d failed", step.name, attempt, exc_info=error)


def error_summary(error: BaseException) -> str:
    """ "Type: message", short enough for a tag."""
    if isinstance(error, RemoteStepError):
        text = error.summary
    else:
        text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MAX_TAG_VALUE_LENGTH else text[: MAX_TAG_VALUE_LENGTH - 1] + "…"


def _param_texts(values: Mapping[str, Any]) -> dict[str, str]:
    return {key: param_text(value) for key, value in values.items()}


def param_text(value: Any) -> str:
    """A param value as text for the tracking store, cut to a readable length."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_PARAM_TEXT else text[: _MAX_PARAM_TEXT - 1] + "…"


def _elapsed_ms(clock: float) -> float:
    return round((time.perf_counter() - clock) * 1000, 3)
