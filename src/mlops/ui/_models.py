"""Dashboard pages: the model registry — models, a model's versions, one version.

Reads go through ``ml.registry`` (and ``ml.deployments`` for the lineage graph); the
actions (promote, roll back, approve, reject, set an alias) need ``models.stage``, the
permission the REST API asks for the same moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mlops._client import MLOps
from mlops.errors import Conflict, InvalidInput, NotFound
from mlops.models import MANIFEST_FILE, ModelManifest
from mlops.registry import ApprovalRequest, ModelVersion, RegisteredModel, Stage, Transition
from mlops.ui._common import connection, finite, redirect_done, render, require
from mlops.ui._models_lineage import lineage_graph
from mlops.ui._session import check_csrf

__all__ = ["routes"]

#: The permission every registry action of these pages needs (as in the REST API).
STAGE_PERMISSION = "models.stage"
#: Confirmations a redirect may ask the page to show (``?done=<key>``); nothing else is echoed.
DONE = {
    "promoted": "The version moved to its new stage.",
    "approval-requested": "The policy requires approval: a request is waiting for another "
    "identity to approve it.",
    "rolled-back": "Rolled back: the previous production version is serving again.",
    "approved": "Approved: the transition was applied.",
    "rejected": "Rejected: the request was declined.",
    "alias-set": "The alias now points at this version.",
}
#: Stages a page offers to promote to (archived happens by replacement or rollback).
PROMOTE_TO = (Stage.STAGING, Stage.PRODUCTION)


def _model_path(name: str) -> str:
    return f"/models/{quote(name, safe='')}"


def _done(request: Request) -> str | None:
    return DONE.get(request.query_params.get("done", ""))


# -- /models ------------------------------------------------------------------------------


def index(request: Request) -> Response:
    """Every registered model with its latest, production and staging versions."""
    ml = connection(request)
    stage_filter = request.query_params.get("stage") or None
    wanted = None if stage_filter is None else Stage.parse(stage_filter)
    rows = []
    for model in ml.registry.list_models(stage=wanted):
        versions = ml.registry.list_versions(model.name)
        rows.append(_model_row(model, versions))
    context = {
        "models": rows,
        "stage": None if wanted is None else wanted.value,
        "stages": [stage.value for stage in Stage],
    }
    return render(request, "models/index.html", context, title="Models")


def _model_row(model: RegisteredModel, versions: Sequence[ModelVersion]) -> dict[str, Any]:
    latest = versions[-1] if versions else None
    return {
        "model": model,
        "latest": latest,
        "production": [v for v in versions if v.stage is Stage.PRODUCTION],
        "staging": [v for v in versions if v.stage is Stage.STAGING],
        "aliases": sorted(model.aliases.items()),
        "semver_of": {v.number: v.semver for v in versions},
        "count": len(versions),
    }


# -- /models/{name} -----------------------------------------------------------------------


def model_page(request: Request) -> Response:
    name = request.path_params["name"]
    selected = request.query_params.get("version") or None
    context = _model_context(connection(request), name, selected)
    context["done"] = _done(request)
    return render(request, "models/model.html", context, title=f"Model {name}")


def _model_context(ml: MLOps, name: str, selected: str | None) -> dict[str, Any]:
    registry = ml.registry
    model = registry.get_model(name)
    versions = registry.list_versions(name)
    if selected is not None:
        focus = registry.get_version(name, selected)
    elif versions:
        focus = versions[-1]
    else:
        focus = None
    manifests = {v.number: _manifest(ml, v) for v in versions}
    verified = {v.number: registry.verify_version(name, v.number) for v in versions if v.signed_by}
    metric_names = sorted({key for v in versions for key in v.metrics})
    rollouts = [d for d in ml.deployments.list() if d.model == name]
    graph = None
    if focus is not None:
        own = [d for d in rollouts if d.candidate_version == focus.number]
        graph = lineage_graph(registry.lineage(name, focus.number), own, stage=focus.stage.value)
    history = list(reversed(registry.history(name)))
    production = next((v for v in versions if v.stage is Stage.PRODUCTION), None)
    return {
        "model": model,
        "versions": list(reversed(versions)),  # newest first in the table
        "metric_names": metric_names,
        "manifests": manifests,
        "verified": verified,
        "metrics_figure": _metrics_figure(versions, metric_names),
        "focus": focus,
        "graph": graph,
        "history": history,
        "semver_of": {v.number: v.semver for v in versions},
        "policy": registry.get_policy(name),
        "approvals": registry.list_approvals(name),
        "production": production,
        "rollback_to": _replaced_version(history, production),
        "promote_to": [stage.value for stage in PROMOTE_TO],
        "breadcrumbs": [("Models", "/models"), (name, None)],
        "error": None,
    }


def _replaced_version(history: Sequence[Transition], production: ModelVersion | None) -> int | None:
    """The version a rollback would restore (what production replaced), or None."""
    if production is None:
        return None
    for change in history:  # newest first
        if (
            change.version == production.number
            and change.kind == "stage"
            and change.to_value == Stage.PRODUCTION.value
        ):
            return change.replaced_version
    return None


def _metrics_figure(
    versions: Sequence[ModelVersion], metric_names: Sequence[str]
) -> dict[str, Any]:
    """One line per metric across versions (version number on x, labelled by semver)."""
    numbers = [v.number for v in versions]
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": metric,
            "x": numbers,
            "y": [finite(v.metrics.get(metric)) for v in versions],
            "text": [v.semver for v in versions],
            "hovertemplate": f"{metric} = %{{y}}<br>version %{{x}} (%{{text}})<extra></extra>",
            "connectgaps": True,
        }
        for metric in metric_names
    ]
    return {
        "data": traces,
        "layout": {
            "margin": {"t": 12},
            "xaxis": {
                "title": {"text": "version"},
                "tickvals": numbers,
                "ticktext": [f"v{v.number} ({v.semver})" for v in versions],
            },
            "yaxis": {"title": {"text": "value"}},
        },
    }


# -- /models/{name}/versions/{version} ---------------------------------------------------


def version_page(request: Request) -> Response:
    name = request.path_params["name"]
    context = _version_context(connection(request), name, request.path_params["version"])
    context["done"] = _done(request)
    title = f"{name} {context['version'].semver}"
    return render(request, "models/version.html", context, title=title)


def _version_context(ml: MLOps, name: str, selector: str) -> dict[str, Any]:
    registry = ml.registry
    version = _get_version(ml, name, selector)
    lineage = registry.lineage(name, version.number)
    rollouts = [
        d
        for d in ml.deployments.list()
        if d.model == name and d.candidate_version == version.number
    ]
    history = list(reversed(registry.history(name)))
    production = version if version.stage is Stage.PRODUCTION else None
    restores = _replaced_version(history, production)
    return {
        "model": registry.get_model(name),
        "version": version,
        "rollback_to": None if restores is None else registry.get_version(name, restores),
        "manifest": _manifest(ml, version),
        "verified": registry.verify_version(name, version.number) if version.signed_by else False,
        "lineage": lineage,
        "graph": lineage_graph(lineage, rollouts, stage=version.stage.value),
        "deployments": rollouts,
        "transitions": [t for t in history if t.version == version.number],
        "promote_to": [stage.value for stage in PROMOTE_TO],
        "breadcrumbs": [
            ("Models", "/models"),
            (name, _model_path(name)),
            (f"version {version.number} ({version.semver})", None),
        ],
        "error": None,
    }


def _get_version(ml: MLOps, name: str, selector: str) -> ModelVersion:
    """The version, with a 404 message that names the model's versions."""
    model = ml.registry.get_model(name)  # NotFound names the model
    try:
        return ml.registry.get_version(name, selector)
    except NotFound:
        latest = (
            f"its latest is version {model.latest_version}"
            if model.latest_version is not None
            else "it has no versions yet"
        )
        raise NotFound(
            f"model {name!r} has no version {selector!r}; {latest} "
            f"(see the versions at /ui{_model_path(name)})"
        ) from None


def _manifest(ml: MLOps, version: ModelVersion) -> ModelManifest | None:
    """The version's manifest (signature, files and their SHA-256), or None if unreadable."""
    try:
        with ml.registry.open_package_file(
            version.model_name, version.number, MANIFEST_FILE
        ) as stream:
            return ModelManifest.from_json(stream.read().decode("utf-8"))
    except (NotFound, OSError, ValueError, InvalidInput):
        return None


# -- actions -----------------------------------------------------------------------------


async def promote(request: Request) -> Response:
    """POST: move a version to the form's ``stage`` (may become an approval request)."""
    form = await check_csrf(request)
    name = request.path_params["name"]
    selector = request.path_params["version"]
    stage = Stage.parse(form.get("stage", ""))
    if stage not in PROMOTE_TO:
        raise InvalidInput(f"the dashboard promotes to staging or production, not {stage.value}")
    actor = require(request, STAGE_PERMISSION, model=name)
    reason = (form.get("reason") or "").strip() or None
    back_to_version = form.get("back") == "version"
    try:
        result = await run_in_threadpool(
            connection(request).registry.promote_to_stage,
            name,
            selector,
            stage,
            reason=reason,
            actor=actor,
        )
    except Conflict as exc:  # a policy refusal (PolicyViolation) or an archived version
        return await _refused(request, name, selector if back_to_version else None, str(exc))
    done = "approval-requested" if isinstance(result, ApprovalRequest) else "promoted"
    target = _model_path(name) + (
        f"/versions/{quote(selector, safe='')}" if back_to_version else ""
    )
    return redirect_done(request, target, done)


async def rollback(request: Request) -> Response:
    form = await check_csrf(request)
    name = request.path_params["name"]
    actor = require(request, STAGE_PERMISSION, model=name)
    reason = (form.get("reason") or "").strip() or "rolled back from the dashboard"
    back_to_version = form.get("back") == "version"
    try:
        restored = await run_in_threadpool(
            connection(request).registry.rollback, name, reason=reason, actor=actor
        )
    except Conflict as exc:
        return await _refused(request, name, None, str(exc))
    # From a version page, land on the version that serves again.
    target = _model_path(name) + (f"/versions/{restored.number}" if back_to_version else "")
    return redirect_done(request, target, "rolled-back")


async def decide(request: Request) -> Response:
    """POST: approve or reject a pending approval request of this model."""
    form = await check_csrf(request)
    name = request.path_params["name"]
    request_id = request.path_params["request_id"]
    decision_name = request.path_params["decision"]
    if decision_name not in ("approve", "reject"):
        raise NotFound(f"an approval request is approved or rejected, not {decision_name!r}")
    approve = decision_name == "approve"
    actor = require(request, STAGE_PERMISSION, model=name)
    registry = connection(request).registry
    pending = await run_in_threadpool(registry.list_approvals, name, status=None)
    if not any(r.id == request_id for r in pending):
        raise NotFound(f"model {name!r} has no approval request #{request_id}")
    comment = (form.get("comment") or "").strip() or None
    decision = registry.approve if approve else registry.reject
    try:
        await run_in_threadpool(decision, request_id, comment=comment, actor=actor)
    except Conflict as exc:
        return await _refused(request, name, None, str(exc))
    return redirect_done(request, _model_path(name), "approved" if approve else "rejected")


async def set_alias(request: Request) -> Response:
    form = await check_csrf(request)
    name = request.path_params["name"]
    selector = request.path_params["version"]
    alias = (form.get("alias") or "").strip().removeprefix("@")
    if not alias:
        raise InvalidInput("give the alias to point at this version, such as 'champion'")
    actor = require(request, STAGE_PERMISSION, model=name)
    version = await run_in_threadpool(
        connection(request).registry.set_alias, name, alias, selector, actor=actor
    )
    return redirect_done(request, f"{_model_path(name)}/versions/{version.number}", "alias-set")


async def _refused(request: Request, name: str, selector: str | None, message: str) -> Response:
    """The page the action came from, with why it was refused (409)."""
    ml = connection(request)
    if selector is None:
        context = await run_in_threadpool(_model_context, ml, name, None)
        page, title = "models/model.html", f"Model {name}"
    else:
        context = await run_in_threadpool(_version_context, ml, name, selector)
        page, title = "models/version.html", f"{name} {context['version'].semver}"
    context.update(error=message, done=None)
    return render(request, page, context, status_code=409, title=title)


routes: list[BaseRoute] = [
    Route("/models", index, methods=["GET"], name="models"),
    Route("/models/{name}", model_page, methods=["GET"], name="model"),
    Route("/models/{name}/rollback", rollback, methods=["POST"], name="model_rollback"),
    Route(
        "/models/{name}/approvals/{request_id:int}/{decision:str}",
        decide,
        methods=["POST"],
        name="model_approval",
    ),
    Route("/models/{name}/versions/{version}", version_page, methods=["GET"], name="model_version"),
    Route(
        "/models/{name}/versions/{version}/promote",
        promote,
        methods=["POST"],
        name="model_version_promote",
    ),
    Route(
        "/models/{name}/versions/{version}/alias",
        set_alias,
        methods=["POST"],
        name="model_version_alias",
    ),
]
