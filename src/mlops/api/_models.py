"""``/models``: registered models, versions, stage transitions, aliases, history, lineage
and rollback. Registering a version (uploading a model package) is not offered here yet:
use the Python client or ``mlops models register``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse

from mlops.api._deps import ML, Actor, require
from mlops.api._pagination import DEFAULT_LIMIT, MAX_LIMIT, fingerprint, page
from mlops.api._registry_schemas import (
    AliasIn,
    ApprovalOut,
    HistoryList,
    Lineage,
    ModelCreate,
    ModelList,
    ModelOut,
    ModelUpdate,
    RollbackIn,
    StageIn,
    StageName,
    TransitionOut,
    VersionList,
    VersionOut,
)
from mlops.api._tracking_schemas import MAX_ID
from mlops.errors import InvalidInput, NotFound
from mlops.registry import ApprovalRequest

__all__ = ["router"]

router = APIRouter(prefix="/models", tags=["models"], dependencies=[require("models.register")])
#: Stage moves, aliases and rollbacks change what serves: they need ``models.stage``.
STAGE = [require("models.stage")]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
PageToken = Annotated[str | None, Query(description="next_page_token of the previous page.")]
VersionPath = Annotated[
    str,
    Path(
        max_length=250,
        description="A number (3), a semantic version (1.2.0), a stage, @alias or latest.",
    ),
]


def _selector(version: str) -> str:
    """Refuse version numbers no version can have (the database column is 32-bit)."""
    if version.isdigit() and int(version) > MAX_ID:
        raise NotFound(f"no model has a version {version}; numbers go up to {MAX_ID}")
    return version


@router.post("", status_code=201, summary="Create a registered model (no versions yet)")
def create_model(body: ModelCreate, ml: ML, who: Actor) -> ModelOut:
    model = ml.registry.create_model(
        body.name,
        description=body.description,
        owner=body.owner or who,
        tags=body.tags,
        actor=who,
    )
    return ModelOut.of(model)


@router.get("", summary="List models by name; status=active: those with a production version")
def list_models(
    ml: ML,
    status: Annotated[
        Literal["active", "all"],
        Query(description="active: only models with a version in production."),
    ] = "all",
    stage: Annotated[
        StageName | None, Query(description="Only models with a version in this stage.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> ModelList:
    if status == "active" and stage not in (None, "production"):
        raise InvalidInput(
            f"status=active means stage=production; it cannot be combined with stage={stage}"
        )
    wanted = "production" if status == "active" else stage
    found, token = page(
        ml.registry.list_models(stage=wanted),
        lambda model: model.name,
        limit=limit,
        page_token=page_token,
        query=fingerprint("models", wanted),
    )
    return ModelList(models=[ModelOut.of(model) for model in found], next_page_token=token)


@router.get("/{name}", summary="Get a model")
def get_model(name: str, ml: ML) -> ModelOut:
    return ModelOut.of(ml.registry.get_model(name))


@router.patch("/{name}", summary="Update a model's description or owner")
def update_model(name: str, body: ModelUpdate, ml: ML, who: Actor) -> ModelOut:
    return ModelOut.of(
        ml.registry.update_model(name, description=body.description, owner=body.owner, actor=who)
    )


@router.get("/{name}/versions", summary="List a model's versions, oldest first")
def list_versions(
    name: str, ml: ML, limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None
) -> VersionList:
    found, token = page(
        ml.registry.list_versions(name),
        lambda version: version.number,
        limit=limit,
        page_token=page_token,
        query=fingerprint("versions", name),
    )
    return VersionList(versions=[VersionOut.of(v) for v in found], next_page_token=token)


@router.get("/{name}/versions/{version}", summary="Get a version by number, semver, stage…")
def get_version(name: str, version: VersionPath, ml: ML) -> VersionOut:
    return VersionOut.of(ml.registry.get_version(name, _selector(version)))


@router.post(
    "/{name}/versions/{version}/stage",
    dependencies=STAGE,
    summary="Move a version to a stage (202 with an approval request if policy says so)",
    response_model=VersionOut,
    responses={202: {"model": ApprovalOut, "description": "Waiting for approval."}},
)
def transition_stage(
    name: str, version: VersionPath, body: StageIn, ml: ML, who: Actor
) -> VersionOut | JSONResponse:
    result = ml.registry.promote_to_stage(
        name, _selector(version), body.stage, reason=body.reason, actor=who
    )
    if isinstance(result, ApprovalRequest):
        approval = ApprovalOut.of(result)
        return JSONResponse(approval.model_dump(mode="json"), status_code=202)
    return VersionOut.of(result)


@router.get("/{name}/versions/{version}/lineage", summary="Run, datasets and parents")
def lineage(name: str, version: VersionPath, ml: ML) -> Lineage:
    return Lineage.model_validate(ml.registry.lineage(name, _selector(version)))


@router.put(
    "/{name}/aliases/{alias}", dependencies=STAGE, summary="Point an alias at a version (moves it)"
)
def set_alias(name: str, alias: str, body: AliasIn, ml: ML, who: Actor) -> VersionOut:
    version = ml.registry.set_alias(name, alias, body.version, reason=body.reason, actor=who)
    return VersionOut.of(version)


@router.delete(
    "/{name}/aliases/{alias}",
    dependencies=STAGE,
    status_code=204,
    response_class=Response,
    summary="Remove an alias",
)
def delete_alias(name: str, alias: str, ml: ML, who: Actor) -> None:
    ml.registry.delete_alias(name, alias, actor=who)


@router.get("/{name}/history", summary="Every stage and alias change, oldest first")
def history(
    name: str, ml: ML, limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None
) -> HistoryList:
    found, token = page(
        list(enumerate(ml.registry.history(name))),
        lambda item: item[0],
        limit=limit,
        page_token=page_token,
        query=fingerprint("history", name),
    )
    return HistoryList(transitions=[TransitionOut.of(t) for _, t in found], next_page_token=token)


@router.post(
    "/{name}/rollback", dependencies=STAGE, summary="Restore the previous production version"
)
def rollback(name: str, body: RollbackIn, ml: ML, who: Actor) -> VersionOut:
    return VersionOut.of(ml.registry.rollback(name, reason=body.reason, actor=who))
