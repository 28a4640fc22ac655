"""``/runs``: create, get, end, delete and search runs; log params, metrics and tags."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from mlops.api._deps import ML, Actor, Caller, require
from mlops.api._pagination import DEFAULT_LIMIT, MAX_LIMIT, fingerprint, page
from mlops.api._tracking_schemas import (
    BatchIn,
    InputIn,
    MetricHistory,
    MetricIn,
    MetricsIn,
    ParamsIn,
    RunCreate,
    RunList,
    RunOut,
    RunSearch,
    RunUpdate,
    TagsIn,
)
from mlops.tracking import Dataset
from mlops.tracking._validation import check_run_id

__all__ = ["router"]

router = APIRouter(prefix="/runs", tags=["runs"], dependencies=[require("runs.write")])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
PageToken = Annotated[str | None, Query(description="next_page_token of the previous page.")]


@router.post("", status_code=201, summary="Start a run (RUNNING)")
def create_run(body: RunCreate, ml: ML, caller: Caller) -> RunOut:
    active = ml.tracking.start_run(
        body.experiment_id, name=body.name, tags=body.tags, parent=body.parent_run_id
    )
    return RunOut.of(ml.tracking.get_run(active.id))


@router.post("/search", summary="Search runs with a filter, an order and pages")
def search_runs(body: RunSearch, ml: ML) -> RunList:
    found = ml.tracking.search_runs(
        body.experiment_ids,
        body.filter,
        order_by=body.order_by or None,
        max_results=body.limit,
        page_token=body.page_token,
        include_deleted=body.include_deleted,
    )
    return RunList(runs=[RunOut.of(run) for run in found], next_page_token=found.next_page_token)


@router.get("/{run_id}", summary="Get a run with its params, latest metrics and tags")
def get_run(run_id: str, ml: ML) -> RunOut:
    return RunOut.of(ml.tracking.get_run(run_id))


@router.patch("/{run_id}", summary="End a run: FINISHED, FAILED or KILLED")
def update_run(run_id: str, body: RunUpdate, ml: ML, caller: Caller) -> RunOut:
    ml.tracking.end_run(run_id, body.status)
    return RunOut.of(ml.tracking.get_run(run_id))


@router.delete(
    "/{run_id}",
    summary="Delete a run (soft: restore brings it back)",
    status_code=204,
    response_class=Response,
)
def delete_run(run_id: str, ml: ML, who: Actor) -> None:
    ml.tracking.delete_run(run_id, actor=who)


@router.post("/{run_id}/restore", summary="Restore a deleted run")
def restore_run(run_id: str, ml: ML, who: Actor) -> RunOut:
    ml.tracking.restore_run(run_id, actor=who)
    return RunOut.of(ml.tracking.get_run(run_id))


@router.post(
    "/{run_id}/params",
    summary="Log params (immutable once logged)",
    status_code=204,
    response_class=Response,
)
def log_params(run_id: str, body: ParamsIn, ml: ML, caller: Caller) -> None:
    ml.tracking.log_params(run_id, body.params)


@router.post(
    "/{run_id}/metrics", summary="Log metric points", status_code=204, response_class=Response
)
def log_metrics(run_id: str, body: MetricsIn, ml: ML, caller: Caller) -> None:
    ml.tracking.log_batch(run_id, metrics=_points(body.metrics))


@router.post(
    "/{run_id}/tags",
    summary="Set tags (overwrites existing keys)",
    status_code=204,
    response_class=Response,
)
def set_tags(run_id: str, body: TagsIn, ml: ML, caller: Caller) -> None:
    ml.tracking.set_tags(run_id, body.tags)


@router.delete(
    "/{run_id}/tags/{key:path}", summary="Delete a tag", status_code=204, response_class=Response
)
def delete_tag(run_id: str, key: str, ml: ML, caller: Caller) -> None:
    ml.tracking.delete_tag(run_id, key)


@router.post(
    "/{run_id}/log-batch",
    summary="Log metrics, params and tags in one transaction: all or nothing",
    status_code=204,
    response_class=Response,
)
def log_batch(run_id: str, body: BatchIn, ml: ML, caller: Caller) -> None:
    ml.tracking.log_batch(run_id, metrics=_points(body.metrics), params=body.params, tags=body.tags)


@router.post(
    "/{run_id}/inputs",
    summary="Record a dataset the run used (idempotent)",
    status_code=204,
    response_class=Response,
)
def log_input(run_id: str, body: InputIn, ml: ML, caller: Caller) -> None:
    item = body.dataset
    dataset = Dataset(item.name, item.digest, item.schema_, item.num_rows, item.source)
    ml.tracking.log_input(run_id, dataset, body.context)


@router.get("/{run_id}/metrics/{key:path}", summary="A metric's history, by step then time")
def metric_history(
    run_id: str,
    key: str,
    ml: ML,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> MetricHistory:
    points = list(enumerate(ml.tracking.get_metric_history(run_id, key)))
    found, token = page(
        points,
        lambda item: item[0],
        limit=limit,
        page_token=page_token,
        query=fingerprint("metric-history", check_run_id(run_id), key),
    )
    return MetricHistory.of(key, [point for _, point in found], token)


def _points(metrics: list[MetricIn]) -> list[tuple[str, float, int, int | None]]:
    return [(m.key, m.value, m.step, m.timestamp) for m in metrics]
