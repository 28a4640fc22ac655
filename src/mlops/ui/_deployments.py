"""Dashboard pages: deployments — each endpoint's live traffic split, every rollout, and
one rollout's view (timeline, share chart, A/B result, shadow agreement, actions)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mlops.deployment import Deployment
from mlops.errors import Conflict, NotFound
from mlops.ui._common import connection, redirect_done, render, require
from mlops.ui._deployments_views import (
    ab_result,
    actions_for,
    blue_green,
    candidate_share,
    shadow_agreement,
    share_chart,
    split_of,
    timeline,
)
from mlops.ui._session import check_csrf

__all__ = ["routes"]

#: The permission the REST API needs for deploying and every action on a rollout.
WRITE = "deployments.write"
#: Ids are 64-bit in the store; a longer number cannot name a deployment.
_MAX_ID = 2**63 - 1
_DONE = {
    "promote": "Promoted: the candidate takes all traffic.",
    "pause": "Paused: traffic stays where it is.",
    "resume": "Resumed: the rollout moves on.",
    "abort": "Aborted: all traffic is back on the stable version.",
    "rollback": "Rolled back: the previous version serves again.",
}


def _deployment_id(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1 or int(raw) > _MAX_ID:
        raise NotFound(
            f"there is no deployment {raw!r}: deployments are numbered 1, 2, 3… "
            "(see the list of deployments)"
        )
    return int(raw)


def index(request: Request) -> Response:
    ml = connection(request)
    deployments = ml.deployments.list()
    endpoints: dict[str, dict[str, Any]] = {}
    for deployment in deployments:  # newest first: the first seen is the endpoint's latest
        entry = endpoints.setdefault(
            deployment.endpoint, {"name": deployment.endpoint, "latest": deployment, "active": None}
        )
        if entry["active"] is None and deployment.state.active:
            entry["active"] = deployment
    for entry in endpoints.values():
        latest: Deployment = entry["latest"]
        entry["split"] = split_of(latest, entry["active"])
        routes = latest.routes
        entry["shadow"] = (
            (routes.shadow_version, routes.shadow_share)
            if routes is not None and routes.shadow_version is not None
            else None
        )
        entry["preview"] = routes.preview_version if routes is not None else None
    context = {
        "endpoints": sorted(endpoints.values(), key=lambda e: e["name"]),
        "deployments": deployments,
        "refresh": 5,
        "breadcrumbs": [("Deployments", None)],
    }
    return render(request, "deployments/index.html", context, title="Deployments")


def _detail_context(request: Request, deployment_id: int) -> dict[str, Any]:
    ml = connection(request)
    deployment = ml.deployments.status(deployment_id)
    events = ml.deployments.history(deployment.id)
    latest = ml.deployments.status(deployment.endpoint)
    strategy = deployment.strategy
    context: dict[str, Any] = {
        "d": deployment,
        "share": candidate_share(deployment),
        "events": timeline(deployment, events),
        "analyses": sum(1 for e in events if "analysis" in e.detail),
        "share_chart": share_chart(deployment, events),
        "actions": actions_for(deployment, latest.id),
        "latest_id": latest.id,
        "ab": ab_result(ml, deployment, events) if strategy == "ab-test" else None,
        "shadow": shadow_agreement(ml, deployment) if strategy == "shadow" else None,
        "blue_green": blue_green(deployment) if strategy == "blue-green" else None,
        "done": _DONE.get(request.query_params.get("done", "")),
        "problem": None,
        "refresh": 5 if deployment.state.active else None,
        "breadcrumbs": [
            ("Deployments", "/deployments"),
            (deployment.endpoint, None),
            (f"#{deployment.id}", None),
        ],
    }
    return context


def detail(request: Request) -> Response:
    deployment_id = _deployment_id(request.path_params["deployment_id"])
    context = _detail_context(request, deployment_id)
    title = f"Deployment {deployment_id}"
    return render(request, "deployments/detail.html", context, title=title)


async def act(request: Request) -> Response:
    """Promote, pause, resume, abort or roll back a deployment (a form POST)."""
    action = request.path_params["action"]
    deployment_id = _deployment_id(request.path_params["deployment_id"])
    if action not in _DONE:
        raise NotFound(f"deployments have no action {action!r}; try one of {', '.join(_DONE)}")
    await check_csrf(request)
    ml = connection(request)
    deployment = await run_in_threadpool(ml.deployments.status, deployment_id)
    actor = require(request, WRITE, model=deployment.model)

    def run() -> None:
        manager = ml.deployments
        if action == "promote":
            manager.promote(deployment.id, actor=actor)
        elif action == "pause":
            manager.pause(deployment.id, actor=actor)
        elif action == "resume":
            manager.resume(deployment.id, actor=actor)
        elif action == "abort":
            manager.abort(deployment.id, actor=actor, reason="aborted from the dashboard")
        else:
            latest = manager.status(deployment.endpoint)
            if latest.id != deployment.id:
                raise Conflict(
                    f"deployment {deployment.id} is not the latest of endpoint "
                    f"{deployment.endpoint!r}; roll back deployment {latest.id} instead"
                )
            manager.rollback(
                deployment.endpoint, actor=actor, reason="rolled back from the dashboard"
            )

    try:
        await run_in_threadpool(run)
    except Conflict as refused:
        # Show the rollout as it is now, with why the action could not be taken.
        context = await run_in_threadpool(_detail_context, request, deployment.id)
        context["problem"] = f"Could not {action} deployment {deployment.id}: {refused}"
        return render(
            request,
            "deployments/detail.html",
            context,
            status_code=409,
            title=f"Deployment {deployment.id}",
        )
    return redirect_done(request, f"/deployments/{deployment.id}", action)


routes: list[BaseRoute] = [
    Route("/deployments", index, methods=["GET"], name="deployments"),
    Route("/deployments/{deployment_id}", detail, methods=["GET"], name="deployment"),
    Route("/deployments/{deployment_id}/{action}", act, methods=["POST"], name="deployment_action"),
]
