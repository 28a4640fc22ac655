"""``/experiments``: create, list, get, rename, delete and restore experiments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from mlops.api._deps import ML, Actor, Caller, require
from mlops.api._pagination import DEFAULT_LIMIT, MAX_LIMIT, fingerprint, page
from mlops.api._tracking_schemas import (
    MAX_ID,
    ExperimentCreate,
    ExperimentList,
    ExperimentOut,
    ExperimentUpdate,
    TagValueIn,
)

__all__ = ["router"]

router = APIRouter(
    prefix="/experiments", tags=["experiments"], dependencies=[require("experiments.write")]
)

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
PageToken = Annotated[str | None, Query(description="next_page_token of the previous page.")]
ExperimentId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("", status_code=201, summary="Create an experiment")
def create_experiment(body: ExperimentCreate, ml: ML, who: Actor) -> ExperimentOut:
    experiment = ml.tracking.create_experiment(
        body.name, description=body.description, tags=body.tags, actor=who
    )
    return ExperimentOut.of(experiment)


@router.get("", summary="List experiments, oldest first")
def list_experiments(
    ml: ML,
    include_deleted: bool = False,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> ExperimentList:
    found, token = page(
        ml.tracking.list_experiments(include_deleted=include_deleted),
        lambda experiment: experiment.id,
        limit=limit,
        page_token=page_token,
        query=fingerprint("experiments", include_deleted),
    )
    return ExperimentList(experiments=[ExperimentOut.of(e) for e in found], next_page_token=token)


@router.get("/by-name/{name}", summary="Get an experiment by name")
def get_experiment_by_name(name: str, ml: ML) -> ExperimentOut:
    return ExperimentOut.of(ml.tracking.get_experiment(name))


@router.get("/{experiment_id}", summary="Get an experiment by id")
def get_experiment(experiment_id: ExperimentId, ml: ML) -> ExperimentOut:
    return ExperimentOut.of(ml.tracking.get_experiment(experiment_id))


@router.patch("/{experiment_id}", summary="Rename an experiment")
def rename_experiment(
    experiment_id: ExperimentId, body: ExperimentUpdate, ml: ML, who: Actor
) -> ExperimentOut:
    return ExperimentOut.of(ml.tracking.rename_experiment(experiment_id, body.name, actor=who))


@router.delete(
    "/{experiment_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an experiment (soft: restore brings it and its runs back)",
)
def delete_experiment(experiment_id: ExperimentId, ml: ML, who: Actor) -> None:
    ml.tracking.delete_experiment(experiment_id, actor=who)


@router.post("/{experiment_id}/restore", summary="Restore a deleted experiment")
def restore_experiment(experiment_id: ExperimentId, ml: ML, who: Actor) -> ExperimentOut:
    ml.tracking.restore_experiment(experiment_id, actor=who)
    return ExperimentOut.of(ml.tracking.get_experiment(experiment_id))


@router.put(
    "/{experiment_id}/tags/{key:path}",
    status_code=204,
    response_class=Response,
    summary="Set an experiment tag (overwrites)",
)
def set_experiment_tag(
    experiment_id: ExperimentId, key: str, body: TagValueIn, ml: ML, caller: Caller
) -> None:
    ml.tracking.set_experiment_tag(experiment_id, key, body.value)
