"""Dashboard pages: registered pipelines, an execution's DAG and steps, and the actions
(trigger, pause, resume, cancel) over ``ml.pipelines``.

Triggering only queues, as the API does: the server's ``PipelineScheduler`` workers run
the execution. Triggering and cancelling need ``pipelines.run``; pausing and resuming
``pipelines.write`` (the permissions of ``/api/v1/pipelines``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mlops._client import MLOps
from mlops.errors import InvalidInput, NotFound
from mlops.orchestration import CronSchedule, Execution, ExecutionState, RegisteredPipeline
from mlops.ui._common import connection, redirect_done, render, require
from mlops.ui._pipelines_steps import (
    execution_steps,
    history_figure,
    layout_dag,
    pipeline_graph,
)
from mlops.ui._session import check_csrf

__all__ = ["routes"]

#: Executions the success rate and the history chart look back over.
RECENT = 20
HISTORY = 50
NEXT_RUNS = 5
REFRESH_SECONDS = 5
#: Ids are 64-bit in the database; larger ones cannot exist.
MAX_ID = 2**63 - 1
_WAITING = (
    ExecutionState.SCHEDULED,
    ExecutionState.QUEUED,
    ExecutionState.RUNNING,
    ExecutionState.RETRYING,
)
_SUCCESSES = (ExecutionState.SUCCEEDED, ExecutionState.CACHED)
_DONE_MESSAGES = {
    "triggered": "Execution queued: the server's workers will run it.",
    "paused": "Paused: the schedule and triggers no longer fire (triggering by hand still works).",
    "resumed": "Resumed: the schedule and triggers fire again.",
    "cancelled": "Cancel requested: a waiting execution ends now, a running one before its "
    "next step.",
}


def index(request: Request) -> Response:
    """Every registered pipeline: schedule, triggers, paused, latest execution, success rate."""
    ml = connection(request)
    paused = _paused_filter(request.query_params.get("paused"))
    rows: list[dict[str, Any]] = []
    for pipeline in ml.pipelines.list(paused=paused):
        recent = ml.pipelines.executions(pipeline.name, limit=RECENT)
        rows.append(
            {
                "pipeline": pipeline,
                "latest": recent[0] if recent else None,
                "success_rate": _success_rate(recent),
                "finished": sum(1 for item in recent if item.state.finished),
                "triggers": [trigger.describe() for trigger in pipeline.triggers],
            }
        )
    live = any(row["latest"] is not None and row["latest"].state in _WAITING for row in rows)
    context = {
        "rows": rows,
        "paused": paused,
        "recent": RECENT,
        "refresh": REFRESH_SECONDS if live else None,
    }
    return render(request, "pipelines/index.html", context, title="Pipelines")


def pipeline_page(request: Request) -> Response:
    """One pipeline: its latest (or ``?execution=``) execution drawn, history, schedule."""
    ml = connection(request)
    name = request.path_params["name"]
    definition = ml.pipelines.get(name)
    history = ml.pipelines.executions(name, limit=HISTORY)
    chosen = _int_param(request.query_params.get("execution"), "execution")
    if chosen is not None:
        execution: Execution | None = _execution_of(ml, name, chosen)
    else:
        execution = history[0] if history else None
    context: dict[str, Any] = {
        "pipeline": definition,
        "history": history,
        "execution": execution,
        "figure": history_figure(history) if any(e.started_at for e in history) else None,
        "next_runs": _next_runs(definition, ml.pipelines.now_ms()),
        "triggers": [trigger.describe() for trigger in definition.triggers],
        "done": _DONE_MESSAGES.get(request.query_params.get("done", "")),
        "breadcrumbs": [("Pipelines", "/pipelines"), (name, None)],
        "refresh": REFRESH_SECONDS if any(e.state in _WAITING for e in history[:5]) else None,
        **_execution_context(ml, definition, execution),
    }
    return render(request, "pipelines/pipeline.html", context, title=f"Pipeline {name}")


def execution_page(request: Request) -> Response:
    """One execution: its DAG and steps, params, attempts and log."""
    ml = connection(request)
    name = request.path_params["name"]
    execution_id = _int_param(request.path_params["execution_id"], "execution id")
    assert execution_id is not None
    execution = _execution_of(ml, name, execution_id)
    try:
        definition: RegisteredPipeline | None = ml.pipelines.get(name)
    except NotFound:  # unregistered since: its history stays
        definition = None
    context: dict[str, Any] = {
        "pipeline": definition,
        "name": name,
        "execution": execution,
        "done": _DONE_MESSAGES.get(request.query_params.get("done", "")),
        "breadcrumbs": [
            ("Pipelines", "/pipelines"),
            (name, f"/pipelines/{quote(name, safe='')}"),
            (f"execution #{execution.id}", None),
        ],
        "refresh": REFRESH_SECONDS if execution.state in _WAITING else None,
        **_execution_context(ml, definition, execution),
    }
    return render(
        request, "pipelines/execution.html", context, title=f"{name} execution #{execution.id}"
    )


async def trigger(request: Request) -> Response:
    form = await check_csrf(request)
    actor = require(request, "pipelines.run")
    name = request.path_params["name"]
    reason = form.get("reason") or "triggered from the dashboard"
    ml = connection(request)
    await run_in_threadpool(ml.pipelines.trigger, name, reason=reason, actor=actor)
    return _back_to(request, name, "triggered")


async def pause(request: Request) -> Response:
    await check_csrf(request)
    actor = require(request, "pipelines.write")
    name = request.path_params["name"]
    await run_in_threadpool(connection(request).pipelines.pause, name, actor=actor)
    return _back_to(request, name, "paused")


async def resume(request: Request) -> Response:
    await check_csrf(request)
    actor = require(request, "pipelines.write")
    name = request.path_params["name"]
    await run_in_threadpool(connection(request).pipelines.resume, name, actor=actor)
    return _back_to(request, name, "resumed")


async def cancel(request: Request) -> Response:
    await check_csrf(request)
    actor = require(request, "pipelines.run")
    name = request.path_params["name"]
    execution_id = _int_param(request.path_params["execution_id"], "execution id")
    assert execution_id is not None
    ml = connection(request)
    await run_in_threadpool(_execution_of, ml, name, execution_id)
    await run_in_threadpool(
        ml.pipelines.cancel, execution_id, reason="cancelled from the dashboard", actor=actor
    )
    path = f"/pipelines/{quote(name, safe='')}/executions/{execution_id}"
    return redirect_done(request, path, "cancelled")


def _execution_context(
    ml: MLOps, definition: RegisteredPipeline | None, execution: Execution | None
) -> dict[str, Any]:
    """The DAG, step table and cancel flag of ``execution`` (empty values without one)."""
    if execution is None:
        return {"steps": [], "dag": None, "graph_error": None, "cancellable": False}
    graph, graph_error = pipeline_graph(definition, execution.params)
    steps = execution_steps(ml, execution, graph)
    return {
        "steps": steps,
        "dag": layout_dag(steps) if steps else None,
        "graph_error": graph_error,
        "cancellable": execution.state in _WAITING and not execution.cancel_requested,
    }


def _execution_of(ml: MLOps, name: str, execution_id: int) -> Execution:
    """Execution ``execution_id`` of pipeline ``name``, else NotFound saying so."""
    try:
        execution = ml.pipelines.execution(execution_id)
    except NotFound:
        raise NotFound(
            f"pipeline {name!r} has no execution {execution_id}; see its history at "
            f"/ui/pipelines/{quote(name, safe='')}"
        ) from None
    if execution.pipeline != name:
        raise NotFound(
            f"execution {execution_id} belongs to pipeline {execution.pipeline!r}, not {name!r}"
        )
    return execution


def _back_to(request: Request, name: str, done: str) -> Response:
    return redirect_done(request, f"/pipelines/{quote(name, safe='')}", done)


def _success_rate(executions: list[Execution]) -> float | None:
    finished = [item for item in executions if item.state.finished]
    if not finished:
        return None
    return sum(1 for item in finished if item.state in _SUCCESSES) / len(finished)


def _next_runs(definition: RegisteredPipeline, now_ms: int) -> list[int]:
    """The schedule's next due times (none while paused or without a schedule)."""
    if definition.schedule is None or definition.paused:
        return []
    schedule = CronSchedule(definition.schedule, definition.timezone)
    found: list[int] = []
    after = now_ms
    while len(found) < NEXT_RUNS:
        due = schedule.next_after(after)
        if due is None:
            break
        found.append(due)
        after = due
    return found


def _paused_filter(value: str | None) -> bool | None:
    if value in (None, "", "all"):
        return None
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise InvalidInput(f"paused must be true, false or all; got {value!r}")


def _int_param(value: str | None, what: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
        raise InvalidInput(f"{what} must be a positive integer such as 12; got {value!r}")
    return int(value)


routes: list[BaseRoute] = [
    Route("/pipelines", index, methods=["GET"], name="pipelines"),
    Route("/pipelines/{name}", pipeline_page, methods=["GET"], name="pipeline"),
    Route("/pipelines/{name}/trigger", trigger, methods=["POST"], name="pipeline_trigger"),
    Route("/pipelines/{name}/pause", pause, methods=["POST"], name="pipeline_pause"),
    Route("/pipelines/{name}/resume", resume, methods=["POST"], name="pipeline_resume"),
    Route(
        "/pipelines/{name}/executions/{execution_id}",
        execution_page,
        methods=["GET"],
        name="pipeline_execution",
    ),
    Route(
        "/pipelines/{name}/executions/{execution_id}/cancel",
        cancel,
        methods=["POST"],
        name="pipeline_execution_cancel",
    ),
]
