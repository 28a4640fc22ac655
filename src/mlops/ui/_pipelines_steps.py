"""What the pipelines pages draw: an execution's steps, their DAG laid out, the history chart.

Step states come from the execution's log (a line per step that ended), completed from
the tracked child runs of the latest attempt (start time, retries, cache, output hash,
and steps still running). The graph comes from the pipeline's code, resolved as a
worker resolves it; when it cannot be loaded here the steps are drawn without edges.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from mlops.errors import MLOpsError
from mlops.orchestration import (
    Execution,
    ExecutionState,
    LogLine,
    RegisteredPipeline,
    resolve_source,
)
from mlops.pipelines._cache import TAG_CACHED, TAG_OUTPUT_HASH, TAG_STATE, TAG_STEP
from mlops.pipelines._execute import TAG_ATTEMPTS, TAG_ERROR
from mlops.ui._common import finite

if TYPE_CHECKING:
    from mlops._client import MLOps

__all__ = [
    "Dag",
    "StepView",
    "execution_steps",
    "history_figure",
    "layout_dag",
    "pipeline_graph",
]

#: Node size and spacing of the drawn DAG, in SVG units (pixels).
NODE_WIDTH = 176
NODE_HEIGHT = 52
COLUMN_GAP = 64
ROW_GAP = 22
PADDING = 12

#: Colours of the history chart's bars, per execution state.
STATE_COLOURS = {
    "succeeded": "#0f9d58",
    "cached": "#34a853",
    "failed": "#d93025",
    "timed_out": "#b3261e",
    "cancelled": "#9aa3b5",
    "running": "#e8a200",
    "retrying": "#f59e0b",
    "queued": "#1a73e8",
    "scheduled": "#7baaf7",
}


@dataclass(frozen=True, slots=True)
class StepView:
    """One step of one execution as shown: ``state`` is a step state, or ``running`` /
    ``pending`` (not started yet) / ``not-run`` (the execution ended before it)."""

    name: str
    state: str
    upstream: tuple[str, ...] = ()
    started_at: int | None = None
    duration_ms: float | None = None
    cached: bool = False
    attempts: int | None = None
    error: str | None = None
    output_hash: str | None = None
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class DagNode:
    step: StepView
    x: int
    y: int
    width: int = NODE_WIDTH
    height: int = NODE_HEIGHT


@dataclass(frozen=True, slots=True)
class DagEdge:
    source: str
    target: str
    path: str


@dataclass(frozen=True, slots=True)
class Dag:
    """An SVG-ready layout: nodes in columns by dependency depth, edges between them."""

    nodes: tuple[DagNode, ...]
    edges: tuple[DagEdge, ...]
    width: int
    height: int


def pipeline_graph(
    definition: RegisteredPipeline | None, params: Mapping[str, Any]
) -> tuple[dict[str, tuple[str, ...]] | None, str | None]:
    """Each step's upstream steps in run order, or None and why the code did not load."""
    if definition is None:
        return None, "the pipeline is no longer registered, so its code is not loaded"
    try:
        pipeline, _ = resolve_source(definition.source, {**definition.params, **params})
    except Exception as error:  # user code may raise anything on import
        return None, f"{type(error).__name__}: {error}"
    return {name: pipeline.upstream(name) for name in pipeline.order}, None


def execution_steps(
    ml: MLOps, execution: Execution, graph: Mapping[str, Sequence[str]] | None
) -> list[StepView]:
    """The steps of the execution's latest attempt, in run order (graph order if known)."""
    attempt = execution.attempts[-1].number if execution.attempts else None
    ended: dict[str, LogLine] = {}
    for entry in execution.log:
        if entry.step and (attempt is None or entry.attempt == attempt):
            ended[entry.step] = entry
    runs = _child_runs(ml, execution.attempts[-1].run_id if execution.attempts else None)
    names = list(graph) if graph is not None else []
    names += [name for name in [*ended, *runs] if name not in names]
    active = execution.state in (ExecutionState.RUNNING, ExecutionState.QUEUED)
    active = active or execution.state in (ExecutionState.RETRYING, ExecutionState.SCHEDULED)
    steps = []
    for name in names:
        line = ended.get(name)
        run = runs.get(name)
        tags: Mapping[str, str] = run.tags if run is not None else {}
        if line is not None:
            state = line.state
        elif run is not None and run.end_time is None:
            state = "running"
        elif run is not None and TAG_STATE in tags:
            state = tags[TAG_STATE]
        else:
            state = "pending" if active else "not-run"
        duration = line.duration_ms if line is not None else None
        if duration is None and run is not None:
            duration = run.metrics.get("duration_ms", run.duration_ms)
        started = run.start_time if run is not None else None
        if started is None and line is not None and line.duration_ms is not None:
            started = round(line.at - line.duration_ms)
        attempts = tags.get(TAG_ATTEMPTS)
        steps.append(
            StepView(
                name=name,
                state=state,
                upstream=tuple(graph.get(name, ())) if graph is not None else (),
                started_at=started,
                duration_ms=finite(duration),
                cached=state == "cached" or tags.get(TAG_CACHED, "").lower() == "true",
                attempts=int(attempts) if attempts and attempts.isdigit() else None,
                error=(line.error if line is not None else None) or tags.get(TAG_ERROR),
                output_hash=tags.get(TAG_OUTPUT_HASH),
                run_id=run.id if run is not None else None,
            )
        )
    return steps


def _child_runs(ml: MLOps, run_id: str | None) -> dict[str, Any]:
    """The attempt's step runs by step name (empty when the run is gone or not started)."""
    if run_id is None:
        return {}
    try:
        parent = ml.tracking.get_run(run_id)
        found = ml.tracking.search_runs(
            parent.experiment_id,
            f"attributes.parent_run_id = '{run_id}'",
            max_results=1000,
            include_deleted=True,
        )
    except MLOpsError:
        return {}
    return {run.tags.get(TAG_STEP, run.name): run for run in found}


def layout_dag(steps: Sequence[StepView]) -> Dag:
    """Columns by dependency depth; within a column, rows ordered by where their inputs
    sit (one barycenter pass), so edges cross less; columns centred vertically."""
    known = {step.name for step in steps}
    depth: dict[str, int] = {}
    for step in steps:  # run order: every upstream step comes first
        ups = [depth[name] for name in step.upstream if name in depth]
        depth[step.name] = 1 + max(ups) if ups else 0
    columns: dict[int, list[StepView]] = {}
    for step in steps:
        columns.setdefault(depth[step.name], []).append(step)
    row: dict[str, float] = {}
    for column in sorted(columns):
        members = columns[column]
        for index, step in enumerate(members):
            inputs = [row[name] for name in step.upstream if name in row]
            row[step.name] = sum(inputs) / len(inputs) if inputs else float(index)
        members.sort(key=lambda step: row[step.name])
        for index, step in enumerate(members):
            row[step.name] = float(index)
    tallest = max((len(members) for members in columns.values()), default=0)
    height = 2 * PADDING + tallest * NODE_HEIGHT + max(0, tallest - 1) * ROW_GAP
    nodes: dict[str, DagNode] = {}
    for column, members in columns.items():
        span = len(members) * NODE_HEIGHT + (len(members) - 1) * ROW_GAP
        top = (height - span) // 2
        for index, step in enumerate(members):
            x = PADDING + column * (NODE_WIDTH + COLUMN_GAP)
            nodes[step.name] = DagNode(step, x, top + index * (NODE_HEIGHT + ROW_GAP))
    edges = []
    for step in steps:
        target = nodes[step.name]
        for name in step.upstream:
            if name not in known:
                continue
            source = nodes[name]
            x1, y1 = source.x + source.width, source.y + source.height // 2
            x2, y2 = target.x - 4, target.y + target.height // 2  # room for the arrow
            bend = (x2 - x1) // 2
            path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
            edges.append(DagEdge(name, step.name, path))
    width = 2 * PADDING + len(columns) * NODE_WIDTH + max(0, len(columns) - 1) * COLUMN_GAP
    ordered = tuple(nodes[step.name] for step in steps)
    return Dag(ordered, tuple(edges), width, height)


def history_figure(executions: Sequence[Execution]) -> dict[str, Any]:
    """Execution durations over time (bars by start time), one trace per state."""
    started = sorted(
        (execution for execution in executions if execution.started_at is not None),
        key=lambda execution: execution.id,
    )
    starts = sorted(execution.started_at for execution in started if execution.started_at)
    gaps = [later - earlier for earlier, later in pairwise(starts)]
    # On a date axis a bar is as wide as told in ms: most of the closest gap between
    # two starts, so bars neither vanish nor overlap (a minute for a lone bar).
    width = max(1.0, 0.8 * min((gap for gap in gaps if gap > 0), default=60_000))
    traces: dict[str, dict[str, Any]] = {}
    for execution in started:
        assert execution.started_at is not None
        state = execution.state.value
        trace = traces.setdefault(
            state,
            {
                "type": "bar",
                "name": state,
                "x": [],
                "y": [],
                "width": [],
                "customdata": [],
                "marker": {"color": STATE_COLOURS.get(state, "#5f6b7e")},
                "hovertemplate": "execution #%{customdata}<br>%{y:.3f} s<extra>"
                + state
                + "</extra>",
            },
        )
        trace["x"].append(_iso(execution.started_at))
        end = execution.finished_at
        trace["y"].append(None if end is None else finite((end - execution.started_at) / 1000))
        trace["width"].append(width)
        trace["customdata"].append(execution.id)
    layout = {
        "xaxis": {"type": "date", "title": {"text": "started (UTC)"}, "nticks": 6},
        "yaxis": {"title": {"text": "seconds"}, "rangemode": "tozero"},
        "barmode": "overlay",
        "showlegend": True,
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
    }
    return {"data": list(traces.values()), "layout": layout}


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
