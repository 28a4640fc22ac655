"""``/deployments``: roll registry versions out to endpoints, watch and steer the rollouts.

Reads need ``read``; deploying and every action on a rollout need ``deployments.write``,
checked against the model's scope: ``{name}`` for ``POST /models/{name}/deploy``, the
deployment's model for the actions on ``/deployments/{id}``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from mlops.api._deps import ML, Actor, Caller, require
from mlops.api._ops_schemas import (
    DeployIn,
    DeploymentList,
    DeploymentOut,
    DeploymentStatus,
    EventList,
    EventOut,
    ReasonIn,
    build_strategy,
)
from mlops.api._pagination import DEFAULT_LIMIT, MAX_LIMIT, fingerprint, page
from mlops.api._tracking_schemas import MAX_ID
from mlops.deployment import Deployment
from mlops.errors import Conflict, NotFound

__all__ = ["router"]

WRITE = "deployments.write"
router = APIRouter(tags=["deployments"], dependencies=[require(WRITE)])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
PageToken = Annotated[str | None, Query(description="next_page_token of the previous page.")]
DeploymentId = Annotated[int, Path(ge=1, description="The deployment's id.")]
Reason = Annotated[ReasonIn | None, Body()]


def _load(ml: ML, deployment_id: int, caller: Caller, permission: str) -> Deployment:
    """The deployment, once the caller's model scope allows ``permission`` on its model."""
    if deployment_id > MAX_ID:
        raise NotFound(f"deployment {deployment_id} does not exist; ids go up to {MAX_ID}")
    deployment = ml.deployments.status(deployment_id)
    if caller is not None:
        ml.access.authorize(caller, permission, model=deployment.model)
    return deployment


@router.post(
    "/models/{name}/deploy",
    status_code=201,
    summary="Deploy a version of the model to an endpoint with a rollout strategy",
)
def deploy(name: str, body: DeployIn, ml: ML, who: Actor) -> DeploymentOut:
    version = body.version
    if isinstance(version, str) and version.isdigit() and int(version) > MAX_ID:
        raise NotFound(f"no model has a version {version}; numbers go up to {MAX_ID}")
    strategy = None if body.strategy is None else build_strategy(body.strategy)
    deployment = ml.deployments.deploy(body.endpoint, name, version, strategy=strategy, actor=who)
    return DeploymentOut.of(deployment)


@router.get("/deployments", summary="List deployments, newest first")
def list_deployments(
    ml: ML,
    caller: Caller,
    endpoint: Annotated[
        str | None, Query(min_length=1, max_length=250, description="Only this endpoint's.")
    ] = None,
    active: Annotated[bool, Query(description="Only progressing and paused ones.")] = False,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> DeploymentList:
    found = ml.deployments.list(endpoint, active=active)
    if caller is not None:  # a user scoped to some models sees only their deployments
        found = [d for d in found if caller.can("read", model=d.model)]
    chosen, token = page(
        found,
        lambda deployment: -deployment.id,
        limit=limit,
        page_token=page_token,
        query=fingerprint("deployments", endpoint, active),
    )
    return DeploymentList(deployments=[DeploymentOut.of(d) for d in chosen], next_page_token=token)


@router.get("/deployments/{deployment_id}", summary="Get a deployment")
def get_deployment(deployment_id: DeploymentId, ml: ML, caller: Caller) -> DeploymentOut:
    return DeploymentOut.of(_load(ml, deployment_id, caller, "read"))


@router.get(
    "/deployments/{deployment_id}/status",
    summary="Where a rollout stands: state, traffic split, step, latest event",
)
def deployment_status(deployment_id: DeploymentId, ml: ML, caller: Caller) -> DeploymentStatus:
    deployment = _load(ml, deployment_id, caller, "read")
    events = ml.deployments.history(deployment.id)
    return DeploymentStatus.of_status(deployment, events[-1] if events else None)


@router.get(
    "/deployments/{deployment_id}/history",
    summary="Every recorded transition and analysis, oldest first",
)
def deployment_history(
    deployment_id: DeploymentId,
    ml: ML,
    caller: Caller,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> EventList:
    deployment = _load(ml, deployment_id, caller, "read")
    found, token = page(
        list(enumerate(ml.deployments.history(deployment.id))),
        lambda item: item[0],
        limit=limit,
        page_token=page_token,
        query=fingerprint("deployment-history", deployment.id),
    )
    return EventList(events=[EventOut.of(event) for _, event in found], next_page_token=token)


@router.post(
    "/deployments/{deployment_id}/promote",
    summary="Finish the rollout now: the candidate takes all traffic and becomes production",
)
def promote(deployment_id: DeploymentId, ml: ML, caller: Caller, who: Actor) -> DeploymentOut:
    deployment = _load(ml, deployment_id, caller, WRITE)
    return DeploymentOut.of(ml.deployments.promote(deployment.id, actor=who))


@router.post(
    "/deployments/{deployment_id}/abort",
    summary="Stop the rollout: all traffic back to the stable version",
)
def abort(
    deployment_id: DeploymentId, ml: ML, caller: Caller, who: Actor, body: Reason = None
) -> DeploymentOut:
    deployment = _load(ml, deployment_id, caller, WRITE)
    reason = None if body is None else body.reason
    return DeploymentOut.of(ml.deployments.abort(deployment.id, actor=who, reason=reason))


@router.post(
    "/deployments/{deployment_id}/pause", summary="Hold the rollout at its step (traffic stays)"
)
def pause(deployment_id: DeploymentId, ml: ML, caller: Caller, who: Actor) -> DeploymentOut:
    deployment = _load(ml, deployment_id, caller, WRITE)
    return DeploymentOut.of(ml.deployments.pause(deployment.id, actor=who))


@router.post("/deployments/{deployment_id}/resume", summary="Let a paused rollout move on")
def resume(deployment_id: DeploymentId, ml: ML, caller: Caller, who: Actor) -> DeploymentOut:
    deployment = _load(ml, deployment_id, caller, WRITE)
    return DeploymentOut.of(ml.deployments.resume(deployment.id, actor=who))


@router.post(
    "/deployments/{deployment_id}/rollback",
    summary="Undo the rollout: the previous version serves the endpoint again",
)
def rollback(
    deployment_id: DeploymentId, ml: ML, caller: Caller, who: Actor, body: Reason = None
) -> DeploymentOut:
    deployment = _load(ml, deployment_id, caller, WRITE)
    # The manager rolls back an endpoint's latest rollout; an older one is history.
    latest = ml.deployments.status(deployment.endpoint)
    if latest.id != deployment.id:
        raise Conflict(
            f"deployment {deployment.id} is not the latest of endpoint "
            f"{deployment.endpoint!r}; roll back deployment {latest.id} instead"
        )
    reason = None if body is None else body.reason
    return DeploymentOut.of(ml.deployments.rollback(deployment.endpoint, actor=who, reason=reason))
