"""Request and response bodies of the tracking routes (experiments, runs, artifacts)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops.artifacts import ArtifactInfo
from mlops.tracking import Experiment, Metric, Run

__all__ = [
    "ArtifactList",
    "ArtifactOut",
    "BatchIn",
    "DatasetIn",
    "ExperimentCreate",
    "ExperimentList",
    "ExperimentOut",
    "ExperimentUpdate",
    "InputIn",
    "MetricHistory",
    "MetricIn",
    "MetricPointOut",
    "MetricsIn",
    "ParamsIn",
    "RunCreate",
    "RunList",
    "RunOut",
    "RunSearch",
    "RunUpdate",
    "TagValueIn",
    "TagsIn",
    "number",
]

#: JSON has no NaN or infinities; like protobuf's JSON mapping they travel as strings.
NonFinite = Literal["NaN", "Infinity", "-Infinity"]
Number = float | NonFinite
#: Params accept JSON scalars and are stored as text ("0.1", "True", "rf").
ParamValue = str | int | float | bool
Key = Annotated[str, Field(min_length=1, max_length=250)]
Limit = Annotated[int, Field(ge=1, le=1000)]
#: Ids and version numbers are 32-bit in the database; larger ones cannot exist.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def number(value: float) -> Number:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


class _In(BaseModel):
    """A request body: unknown fields are refused, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


# -- experiments ----------------------------------------------------------------------


class ExperimentCreate(_In):
    name: str = Field(min_length=1, max_length=250, examples=["churn"])
    description: str | None = None
    tags: dict[Key, str] = Field(default_factory=dict)


class ExperimentUpdate(_In):
    name: str = Field(min_length=1, max_length=250, description="The new name.")


class ExperimentOut(BaseModel):
    id: int
    name: str
    lifecycle_stage: Literal["active", "deleted"]
    artifact_location: str
    created_at: int = Field(description="Milliseconds since the epoch.")
    updated_at: int
    description: str | None
    tags: dict[str, str]

    @classmethod
    def of(cls, experiment: Experiment) -> ExperimentOut:
        return cls(
            id=experiment.id,
            name=experiment.name,
            lifecycle_stage=experiment.lifecycle_stage.value,
            artifact_location=experiment.artifact_location,
            created_at=experiment.created_at,
            updated_at=experiment.updated_at,
            description=experiment.description,
            tags=dict(experiment.tags),
        )


class ExperimentList(BaseModel):
    experiments: list[ExperimentOut]
    next_page_token: str | None


# -- runs -----------------------------------------------------------------------------


class RunCreate(_In):
    experiment_id: Id | None = Field(
        default=None, description="Defaults to the parent's experiment, else 'Default'."
    )
    name: str | None = Field(default=None, min_length=1, max_length=250)
    tags: dict[Key, str] = Field(default_factory=dict)
    parent_run_id: str | None = None


class RunUpdate(_In):
    status: Literal["FINISHED", "FAILED", "KILLED"] = Field(
        description="End the run with this status (only RUNNING runs can end)."
    )


class DatasetInputOut(BaseModel):
    name: str
    digest: str
    context: str
    num_rows: int | None
    source: str | None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class DatasetIn(_In):
    name: str = Field(min_length=1, max_length=250)
    digest: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    num_rows: int | None = Field(default=None, ge=0, le=2**63 - 1)
    source: str | None = Field(default=None, max_length=2000)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InputIn(_In):
    """A dataset the run used, and in what role ("training", "validation", …)."""

    dataset: DatasetIn
    context: Key = "training"


class TagValueIn(_In):
    value: str = Field(max_length=8000)


class RunOut(BaseModel):
    id: str
    experiment_id: int
    name: str
    status: Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]
    lifecycle_stage: Literal["active", "deleted"]
    start_time: int
    end_time: int | None
    artifact_uri: str
    parent_run_id: str | None
    user: str | None
    params: dict[str, str]
    metrics: dict[str, Number] = Field(description="The latest value of each metric.")
    tags: dict[str, str]
    inputs: list[DatasetInputOut]

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(
            id=run.id,
            experiment_id=run.experiment_id,
            name=run.name,
            status=run.status.value,
            lifecycle_stage=run.lifecycle_stage.value,
            start_time=run.start_time,
            end_time=run.end_time,
            artifact_uri=run.artifact_uri,
            parent_run_id=run.parent_run_id,
            user=run.user,
            params=dict(run.params),
            metrics={key: number(value) for key, value in run.metrics.items()},
            tags=dict(run.tags),
            inputs=[
                DatasetInputOut(
                    name=item.dataset.name,
                    digest=item.dataset.digest,
                    context=item.context,
                    num_rows=item.dataset.num_rows,
                    source=item.dataset.source,
                    schema=None if item.dataset.schema is None else dict(item.dataset.schema),
                )
                for item in run.inputs
            ],
        )


class RunSearch(_In):
    experiment_ids: list[Id] | None = Field(
        default=None, max_length=100, description="Default: every active experiment."
    )
    filter: str | None = Field(
        default=None,
        max_length=10_000,
        examples=["metrics.f1 > 0.8 and params.model = 'rf'"],
    )
    order_by: list[str] = Field(default_factory=list, max_length=10, examples=[["metrics.f1 DESC"]])
    include_deleted: bool = False
    limit: Limit = 100
    page_token: str | None = None


class RunList(BaseModel):
    runs: list[RunOut]
    next_page_token: str | None


class MetricIn(_In):
    key: Key
    value: float = Field(description='A number, or "NaN", "Infinity", "-Infinity".')
    step: int = 0
    timestamp: int | None = Field(default=None, description="Milliseconds; default: now.")


class MetricsIn(_In):
    metrics: list[MetricIn] = Field(min_length=1, max_length=10_000)


class ParamsIn(_In):
    params: dict[Key, ParamValue] = Field(min_length=1)


class TagsIn(_In):
    tags: dict[Key, str] = Field(min_length=1)


class BatchIn(_In):
    """Metrics, params and tags written in one transaction: all of them or none."""

    metrics: list[MetricIn] = Field(default_factory=list, max_length=10_000)
    params: dict[Key, ParamValue] = Field(default_factory=dict)
    tags: dict[Key, str] = Field(default_factory=dict)


class MetricPointOut(BaseModel):
    value: Number
    step: int
    timestamp: int


class MetricHistory(BaseModel):
    key: str
    points: list[MetricPointOut]
    next_page_token: str | None

    @classmethod
    def of(cls, key: str, points: list[Metric], token: str | None) -> MetricHistory:
        return cls(
            key=key,
            points=[
                MetricPointOut(value=number(p.value), step=p.step, timestamp=p.timestamp)
                for p in points
            ],
            next_page_token=token,
        )


# -- artifacts ------------------------------------------------------------------------


class ArtifactOut(BaseModel):
    path: str = Field(description="Relative to the run's artifact folder.")
    size: int
    sha256: str

    @classmethod
    def of(cls, info: ArtifactInfo) -> ArtifactOut:
        return cls(path=info.path, size=info.size, sha256=info.sha256)


class ArtifactList(BaseModel):
    artifacts: list[ArtifactOut]
    next_page_token: str | None
