"""``/pipelines``: registered pipelines, their executions, and running, cancelling,
pausing and resuming them.

Executing only queues: the server's ``PipelineScheduler`` workers run the execution
(answered 202 with it queued, or waiting for a slot). Registering a pipeline is not
offered here, on purpose: it imports the pipeline's code into the server process, so it
stays with whoever deploys that code (``ml.pipelines.register`` or
``mlops pipeline register``).

Reads need ``read``; executing and cancelling ``pipelines.run``; pausing and resuming
``pipelines.write``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query

from mlops.api._admin_schemas import (
    CancelIn,
    ExecuteIn,
    ExecutionList,
    ExecutionOut,
    ExecutionStateName,
    ExecutionSummary,
    PipelineList,
    PipelineOut,
    PipelineStatus,
)
from mlops.api._deps import ML, Actor, require
from mlops.api._pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_token, fingerprint, page
from mlops.errors import NotFound
from mlops.orchestration import Execution

__all__ = ["router"]

router = APIRouter(prefix="/pipelines", tags=["pipelines"])
READ = [require("read")]
RUN = [require("pipelines.run")]
WRITE = [require("pipelines.write")]

#: Execution ids are 64-bit in the database; larger ones cannot exist.
MAX_EXECUTION_ID = 2**63 - 1

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
PageToken = Annotated[str | None, Query(description="next_page_token of the previous page.")]
Name = Annotated[str, Path(max_length=250, description="The registered pipeline's name.")]
ExecutionId = Annotated[int, Path(ge=1, le=MAX_EXECUTION_ID)]


def _name(name: str) -> str:
    """Refuse names no pipeline can have before they reach the database (PostgreSQL text
    cannot hold NUL)."""
    if "\x00" in name:
        raise NotFound(f"there is no registered pipeline {name!r}; pipeline names are printable")
    return name


@router.get("", dependencies=READ, summary="List registered pipelines by name")
def list_pipelines(
    ml: ML,
    paused: Annotated[bool | None, Query(description="Only paused (or running) ones.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> PipelineList:
    found, token = page(
        ml.pipelines.list(paused=paused),
        lambda pipeline: pipeline.name,
        limit=limit,
        page_token=page_token,
        query=fingerprint("pipelines", paused),
    )
    return PipelineList(pipelines=[PipelineOut.of(p) for p in found], next_page_token=token)


@router.get("/{name}", dependencies=READ, summary="Get a registered pipeline")
def get_pipeline(name: Name, ml: ML) -> PipelineOut:
    return PipelineOut.of(ml.pipelines.get(_name(name)))


@router.post(
    "/{name}/execute",
    dependencies=RUN,
    status_code=202,
    summary="Queue an execution now (the server's workers run it)",
)
def execute(name: Name, ml: ML, who: Actor, body: ExecuteIn | None = None) -> ExecutionOut:
    given = body or ExecuteIn()
    execution = ml.pipelines.trigger(_name(name), given.params, reason=given.reason, actor=who)
    return ExecutionOut.of(execution)


@router.get(
    "/{name}/status",
    dependencies=READ,
    summary="Schedule, paused flag, next due time and the latest execution",
)
def status(name: Name, ml: ML) -> PipelineStatus:
    pipeline = ml.pipelines.get(_name(name))
    latest = ml.pipelines.executions(pipeline.name, limit=1)
    return PipelineStatus(
        name=pipeline.name,
        schedule=pipeline.schedule,
        timezone=pipeline.timezone,
        paused=pipeline.paused,
        next_due_at=None if pipeline.paused else pipeline.next_fire_at,
        latest_execution=ExecutionSummary.of(latest[0]) if latest else None,
    )


@router.get(
    "/{name}/executions",
    dependencies=READ,
    summary="List a pipeline's executions, newest first (kept after it is unregistered)",
)
def list_executions(
    name: Name,
    ml: ML,
    state: Annotated[ExecutionStateName | None, Query(description="Only in this state.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> ExecutionList:
    pipelines = ml.pipelines
    try:
        pipelines.get(_name(name))
    except NotFound:
        if not pipelines.executions(name, limit=1):
            raise
    found, token = _newest_first(
        lambda count: pipelines.executions(name, state=state, limit=count),
        limit=limit,
        page_token=page_token,
        query=fingerprint("executions", name, state),
    )
    return ExecutionList(executions=[ExecutionOut.of(e) for e in found], next_page_token=token)


@router.get(
    "/executions/{execution_id}",
    dependencies=READ,
    summary="Get an execution with its attempts, steps and log",
)
def get_execution(execution_id: ExecutionId, ml: ML) -> ExecutionOut:
    return ExecutionOut.of(ml.pipelines.execution(execution_id))


@router.post(
    "/executions/{execution_id}/cancel",
    dependencies=RUN,
    summary="Cancel an execution (a running one stops before its next step)",
)
def cancel(
    execution_id: ExecutionId, ml: ML, who: Actor, body: CancelIn | None = None
) -> ExecutionOut:
    reason = None if body is None else body.reason
    return ExecutionOut.of(ml.pipelines.cancel(execution_id, reason=reason, actor=who))


@router.post(
    "/{name}/pause",
    dependencies=WRITE,
    summary="Stop firing the schedule and triggers (executing by hand still works)",
)
def pause(name: Name, ml: ML, who: Actor) -> PipelineOut:
    return PipelineOut.of(ml.pipelines.pause(_name(name), actor=who))


@router.post(
    "/{name}/resume",
    dependencies=WRITE,
    summary="Fire the schedule and triggers again (events while paused are not replayed)",
)
def resume(name: Name, ml: ML, who: Actor) -> PipelineOut:
    return PipelineOut.of(ml.pipelines.resume(_name(name), actor=who))


def _newest_first(
    fetch: Callable[[int], list[Execution]], *, limit: int, page_token: str | None, query: str
) -> tuple[list[Execution], str | None]:
    """A page of executions, newest first: ``fetch(count)`` returns the newest ``count``;
    it is asked for twice as many until the page after the token is complete."""
    after = decode_token(page_token, query) if page_token else None
    count = limit + 1
    while True:
        found = fetch(count)
        if len(found) < count or not isinstance(after, int | None):
            break
        beyond = [item for item in found if after is None or -item.id > after]
        if len(beyond) > limit:
            break
        count *= 2
    return page(found, lambda item: -item.id, limit=limit, page_token=page_token, query=query)
