"""Request and response bodies of the registry routes (models, versions, stages)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops.api._tracking_schemas import Id, Key, Number, number
from mlops.registry import ApprovalRequest, ModelVersion, RegisteredModel, Transition

__all__ = [
    "AliasIn",
    "ApprovalOut",
    "HistoryList",
    "Lineage",
    "ModelCreate",
    "ModelList",
    "ModelOut",
    "ModelUpdate",
    "RollbackIn",
    "StageIn",
    "TransitionOut",
    "VersionList",
    "VersionOut",
]

StageName = Literal["none", "staging", "production", "archived"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelCreate(_In):
    name: str = Field(min_length=1, max_length=250, examples=["churn-classifier"])
    description: str | None = None
    owner: str | None = Field(default=None, max_length=250)
    tags: dict[Key, str] = Field(default_factory=dict)


class ModelUpdate(_In):
    description: str | None = None
    owner: str | None = Field(default=None, max_length=250)


class ModelOut(BaseModel):
    id: int
    name: str
    created_at: int
    updated_at: int
    description: str | None
    owner: str | None
    tags: dict[str, str]
    aliases: dict[str, int] = Field(description="Alias -> version number.")
    latest_version: int | None
    production_version: int | None

    @classmethod
    def of(cls, model: RegisteredModel) -> ModelOut:
        return cls(
            id=model.id,
            name=model.name,
            created_at=model.created_at,
            updated_at=model.updated_at,
            description=model.description,
            owner=model.owner,
            tags=dict(model.tags),
            aliases=dict(model.aliases),
            latest_version=model.latest_version,
            production_version=model.production_version,
        )


class ModelList(BaseModel):
    models: list[ModelOut]
    next_page_token: str | None


class VersionOut(BaseModel):
    model_name: str
    number: int
    semver: str
    uri: str
    stage: StageName
    flavor: str
    manifest_digest: str
    artifact_uri: str
    created_at: int
    created_by: str | None
    description: str | None
    metrics: dict[str, Number]
    metadata: dict[str, Any]
    aliases: list[str]
    run_id: str | None
    parent_version: int | None
    signed_by: str | None

    @classmethod
    def of(cls, version: ModelVersion) -> VersionOut:
        return cls(
            model_name=version.model_name,
            number=version.number,
            semver=version.semver,
            uri=version.uri,
            stage=version.stage.value,
            flavor=version.flavor,
            manifest_digest=version.manifest_digest,
            artifact_uri=version.artifact_uri,
            created_at=version.created_at,
            created_by=version.created_by,
            description=version.description,
            metrics={key: number(value) for key, value in version.metrics.items()},
            metadata=dict(version.metadata),
            aliases=list(version.aliases),
            run_id=version.run_id,
            parent_version=version.parent_version,
            signed_by=version.signed_by,
        )


class VersionList(BaseModel):
    versions: list[VersionOut]
    next_page_token: str | None


class StageIn(_In):
    stage: StageName
    reason: str | None = Field(default=None, max_length=2000)


class ApprovalOut(BaseModel):
    """A production move waiting for a second identity (policy ``require_approval``)."""

    id: int
    model_name: str
    version: int
    semver: str
    to_stage: StageName
    status: Literal["pending", "approved", "rejected"]
    requested_by: str | None
    reason: str | None
    created_at: int

    @classmethod
    def of(cls, request: ApprovalRequest) -> ApprovalOut:
        return cls(
            id=request.id,
            model_name=request.model_name,
            version=request.version,
            semver=request.semver,
            to_stage=request.to_stage.value,
            status=request.status.value,
            requested_by=request.requested_by,
            reason=request.reason,
            created_at=request.created_at,
        )


class AliasIn(_In):
    version: Id | str = Field(
        description="A number (3), a semantic version ('1.2.0'), a stage or 'latest'."
    )
    reason: str | None = Field(default=None, max_length=2000)


class RollbackIn(_In):
    reason: str | None = Field(default=None, max_length=2000)


class TransitionOut(BaseModel):
    version: int
    kind: Literal["stage", "alias"]
    name: str | None = Field(description="The alias, for alias changes.")
    from_value: str | None
    to_value: str | None
    actor: str | None
    reason: str | None
    created_at: int
    replaced_version: int | None

    @classmethod
    def of(cls, transition: Transition) -> TransitionOut:
        return cls(
            version=transition.version,
            kind=transition.kind,  # type: ignore[arg-type]
            name=transition.name,
            from_value=transition.from_value,
            to_value=transition.to_value,
            actor=transition.actor,
            reason=transition.reason,
            created_at=transition.created_at,
            replaced_version=transition.replaced_version,
        )


class HistoryList(BaseModel):
    transitions: list[TransitionOut]
    next_page_token: str | None


class LineageRun(BaseModel):
    id: str
    name: str
    experiment_id: int
    status: str


class LineageDataset(BaseModel):
    name: str
    digest: str
    context: str


class LineageParent(BaseModel):
    version: int
    semver: str


class Lineage(BaseModel):
    model: str
    version: int
    semver: str
    run: LineageRun | None
    datasets: list[LineageDataset]
    parents: list[LineageParent] = Field(description="Parent, grandparent, … versions.")
