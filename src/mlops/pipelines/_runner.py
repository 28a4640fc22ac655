"""``run_pipeline``: one tracked run of a pipeline, a whole one, one stage or a resumption."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import Conflict, InvalidInput, NotFound
from mlops.pipelines._backends import StepBackend, ThreadBackend
from mlops.pipelines._cache import (
    TAG_CACHE_KEY,
    TAG_PIPELINE,
    TAG_STEP,
    OutputRef,
    latest_output,
    output_of,
)
from mlops.pipelines._execute import StepRunner, param_text
from mlops.pipelines._graph import Pipeline
from mlops.pipelines._local import LocalExecutor
from mlops.pipelines._results import PipelineRun, PipelineState, StepEvent, StepRun, StepState
from mlops.pipelines._step import parse_duration
from mlops.tracking import ExperimentTracker, RunStatus
from mlops.tracking._validation import check_run_id

if TYPE_CHECKING:
    from mlops._client import MLOps

__all__ = ["EXECUTORS", "run_pipeline"]

_log = logging.getLogger(__name__)

#: The executors ``run_pipeline`` accepts: a pool of worker processes on this machine,
#: threads of the calling process, a Ray cluster.
EXECUTORS = ("local", "threads", "ray")

TAG_PIPELINE_STATE = "mlops.pipeline.state"
TAG_STAGE = "mlops.pipeline.stage"
TAG_RESUMED_FROM = "mlops.pipeline.resumed_from"
TAG_EXECUTOR = "mlops.pipeline.executor"


def run_pipeline(
    ml: MLOps,
    pipeline: Pipeline,
    *,
    params: Mapping[str, Any] | None = None,
    stage: str | None = None,
    resume_from: str | None = None,
    executor: str = "local",
    max_workers: int | None = None,
    experiment: int | str | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[StepEvent], None] | None = None,
    time_limit: float | str | None = None,
) -> PipelineRun:
    """Run ``pipeline`` as a tracked run with one child run per step.

    Args:
        params: values for the pipeline params (and step parameter defaults) for this run.
        stage: run only this step, on the latest successful outputs of its upstream steps.
        resume_from: the id of a failed run of this pipeline; its successful outputs are
            reused (where code, params and inputs are unchanged) and the rest is run.
        executor: where step functions run: "local", worker processes on this machine
            (a step's timeout kills its process); "threads", threads of this process
            (nothing is pickled, but a timed-out step cannot be stopped); "ray", Ray
            tasks with the steps' resources (``pip install 'mlops[ray]'``).
        max_workers: CPUs the steps may use at once (default: all of this machine's;
            on Ray, no limit: Ray places the steps); 1 runs the steps one after
            another.
        experiment: the experiment (name or id) of the run; created if named and missing.
        should_stop: asked before each step starts; once it returns True, the steps not
            yet started end CANCELLED and so does the run (running steps finish).
        on_step: called with a ``StepEvent`` when a step starts and when it ends (from
            the thread that runs it); what it raises is logged and otherwise ignored.
        time_limit: seconds (or "30m") the whole run may take: no step starts after
            it, and a running step is stopped at it as at its own timeout (its worker
            killed; abandoned with "threads"); such a step ends TIMED_OUT.

    Returns the ``PipelineRun``; a step that fails leaves it FAILED rather than raising.
    """
    if not isinstance(pipeline, Pipeline):
        raise InvalidInput(
            f"run_pipeline takes a Pipeline, got {type(pipeline).__name__}; build one with "
            "Pipeline(name, steps=[...], params={...})"
        )
    if executor not in EXECUTORS:
        raise InvalidInput(
            f"executor {executor!r} is not available; use one of {', '.join(EXECUTORS)}"
        )
    if stage is not None and resume_from is not None:
        raise InvalidInput("give stage= or resume_from=, not both")
    limit_at = (
        None if time_limit is None else time.monotonic() + parse_duration("time_limit", time_limit)
    )
    scheduler = (
        LocalExecutor.unbudgeted()
        if executor == "ray" and max_workers is None
        else LocalExecutor(max_workers)
    )
    tracker = ml.tracking
    values = _resolve_params(pipeline, params)
    if stage is not None:
        pipeline.step(stage)
        order: tuple[str, ...] = (stage,)
        outputs = _upstream_outputs(tracker, pipeline, stage)
        reusable: dict[str, tuple[OutputRef, str]] = {}
    else:
        order = pipeline.order
        outputs = {}
        reusable = {} if resume_from is None else _resumable(tracker, pipeline, resume_from)
    backend = _backend(ml, executor)
    backend.prepare([pipeline.step(name) for name in order])

    tags = {TAG_PIPELINE: pipeline.name, TAG_EXECUTOR: executor}
    if stage is not None:
        tags[TAG_STAGE] = stage
    if resume_from is not None:
        tags[TAG_RESUMED_FROM] = resume_from
    experiment_ref = (
        tracker.set_experiment(experiment).id if isinstance(experiment, str) else experiment
    )
    parent = tracker.start_run(experiment_ref, name=pipeline.name, tags=tags)
    with parent, tempfile.TemporaryDirectory(prefix="mlops-pipeline-") as scratch:
        if values:
            parent.log_params({key: param_text(value) for key, value in values.items()})
        runner = StepRunner(
            ml,
            pipeline,
            parent,
            values,
            Path(scratch),
            outputs,
            reusable,
            backend=backend,
            time_limit_at=limit_at,
        )
        upstream = {name: [d for d in pipeline.upstream(name) if d in order] for name in order}
        cpu = {name: pipeline.step(name).resources.cpu for name in order}
        events = _Events(pipeline.name, parent.id, on_step)
        results = scheduler.run(
            order,
            upstream,
            cpu,
            events.wrap_execute(runner.execute),
            events.wrap_skip(runner.skip),
            cancel=events.wrap_execute(runner.cancel, announce=False),
            should_stop=_or(should_stop, runner.out_of_time) if limit_at else should_stop,
        )
        records = tuple(results[name] for name in order)
        state = _run_state(records)
        stopped = state is PipelineState.CANCELLED and runner.out_of_time()
        if state is not PipelineState.SUCCEEDED and (runner.limit_reached or stopped):
            state = PipelineState.TIMED_OUT
        parent.set_tag(TAG_PIPELINE_STATE, state.value)
        parent.end(_RUN_STATUS[state])
    return PipelineRun(
        run_id=parent.id,
        pipeline=pipeline.name,
        state=state,
        steps=records,
        params=values,
        _outputs={name: runner.outputs[name] for name in order if name in runner.outputs},
    )


def _backend(ml: MLOps, executor: str) -> StepBackend:
    if executor == "local":
        from mlops.pipelines._process import ProcessBackend

        return ProcessBackend(ml)
    if executor == "ray":
        from mlops.pipelines._ray import RayBackend

        return RayBackend(ml)
    return ThreadBackend()


_RUN_STATUS = {
    PipelineState.SUCCEEDED: RunStatus.FINISHED,
    PipelineState.FAILED: RunStatus.FAILED,
    PipelineState.CANCELLED: RunStatus.KILLED,
    PipelineState.TIMED_OUT: RunStatus.FAILED,
}


def _or(first: Callable[[], bool] | None, second: Callable[[], bool]) -> Callable[[], bool]:
    if first is None:
        return second
    return lambda: first() or second()


def _run_state(records: tuple[StepRun, ...]) -> PipelineState:
    if all(record.state.has_output for record in records):
        return PipelineState.SUCCEEDED
    if any(record.state is StepState.CANCELLED for record in records) and not any(
        record.state in (StepState.FAILED, StepState.TIMED_OUT) for record in records
    ):
        return PipelineState.CANCELLED
    return PipelineState.FAILED


class _Events:
    """Tells ``on_step`` about each step starting and ending."""

    def __init__(
        self, pipeline: str, run_id: str, on_step: Callable[[StepEvent], None] | None
    ) -> None:
        self._pipeline = pipeline
        self._run_id = run_id
        self._on_step = on_step

    def _send(self, step: str, record: StepRun | None) -> None:
        if self._on_step is None:
            return
        try:
            self._on_step(StepEvent(self._pipeline, self._run_id, step, record))
        except Exception:  # a progress display must not break the run
            _log.exception("on_step callback failed for step %r", step)

    def wrap_execute(
        self, execute: Callable[[str], StepRun], *, announce: bool = True
    ) -> Callable[[str], StepRun]:
        def wrapped(name: str) -> StepRun:
            if announce:
                self._send(name, None)
            record = execute(name)
            self._send(name, record)
            return record

        return wrapped

    def wrap_skip(
        self, skip: Callable[[str, StepRun], StepRun]
    ) -> Callable[[str, StepRun], StepRun]:
        def wrapped(name: str, blocker: StepRun) -> StepRun:
            record = skip(name, blocker)
            self._send(name, record)
            return record

        return wrapped


def _resolve_params(pipeline: Pipeline, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    if overrides is None:
        return dict(pipeline.params)
    if not isinstance(overrides, Mapping):
        raise InvalidInput(
            f"params must be a mapping of name to value, got {type(overrides).__name__}"
        )
    unknown = sorted(set(overrides) - pipeline.param_names, key=str)
    if unknown:
        raise InvalidInput(
            f"pipeline {pipeline.name!r} takes no param {unknown[0]!r}; its params are "
            f"{', '.join(sorted(pipeline.param_names)) or 'none'}"
        )
    return {**pipeline.params, **overrides}


def _upstream_outputs(
    tracker: ExperimentTracker, pipeline: Pipeline, stage: str
) -> dict[str, OutputRef]:
    outputs = {}
    for source in pipeline.upstream(stage):
        found = latest_output(tracker, pipeline.name, source)
        if found is None:
            raise NotFound(
                f"stage {stage!r} of pipeline {pipeline.name!r} needs the output of step "
                f"{source!r}, which has never succeeded; run the whole pipeline first, or "
                f"stage={source!r}"
            )
        outputs[source] = found
    return outputs


def _resumable(
    tracker: ExperimentTracker, pipeline: Pipeline, run_id: str
) -> dict[str, tuple[OutputRef, str]]:
    """The outputs of a failed run of ``pipeline``, with the cache key of each."""
    check_run_id(run_id)
    run = tracker.get_run(run_id)
    owner = run.tags.get(TAG_PIPELINE)
    if owner is not None and run.parent_run_id is not None:
        raise InvalidInput(
            f"run '{run_id}' is a step of a pipeline run; resume from the pipeline run "
            f"itself: resume_from='{run.parent_run_id}'"
        )
    if owner != pipeline.name:
        what = f"a run of pipeline {owner!r}" if owner else "not a pipeline run"
        raise InvalidInput(
            f"run '{run_id}' is {what}, so pipeline {pipeline.name!r} cannot resume from it; "
            "give the id of one of its failed runs"
        )
    if run.status is RunStatus.RUNNING:
        raise Conflict(f"pipeline run '{run_id}' is still running; resume it once it has ended")
    if run.status is RunStatus.FINISHED:
        raise InvalidInput(
            f"pipeline run '{run_id}' succeeded, so there is nothing to resume; run the "
            "pipeline again instead (unchanged steps come from the cache)"
        )
    children = tracker.search_runs(
        run.experiment_id, f"attributes.parent_run_id = '{run_id}'", max_results=1000
    )
    reusable: dict[str, tuple[OutputRef, str]] = {}
    for child in children:
        name = child.tags.get(TAG_STEP)
        if (
            child.status is not RunStatus.FINISHED
            or name is None
            or TAG_CACHE_KEY not in child.tags
        ):
            continue
        ref = output_of(tracker, name, child)
        if ref is not None:
            reusable[name] = (ref, child.tags[TAG_CACHE_KEY])
    return reusable
