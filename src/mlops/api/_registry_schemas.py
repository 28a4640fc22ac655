"""Request and response bodies of the registry routes (models, versions, stages)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops.api._tracking_schemas import Id, Key, Number, number
from mlops.registry import ApprovalRequest, ModelVersion, RegisteredModel, Transition

__all__ = [
    "AliasIn",
    "ApprovalList",
    "ApprovalOut",
    "DatasetLink",
    "DecisionIn",
    "DeliveryList",
    "DeliveryOut",
    "HistoryList",
    "KeyIn",
    "KeyOut",
    "Lineage",
    "ModelCreate",
    "ModelList",
    "ModelOut",
    "ModelUpdate",
    "PolicyIn",
    "PolicyOut",
    "Registration",
    "RollbackIn",
    "StageIn",
    "TagValue",
    "TransitionOut",
    "VerifyOut",
    "VersionList",
    "VersionOut",
    "WebhookIn",
    "WebhookList",
    "WebhookOut",
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
    datasets: list[LineageDataset] = Field(default_factory=list)
    signature: dict[str, Any] | None = Field(
        default=None, description="The model's input/output signature, if recorded."
    )

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
            datasets=[
                LineageDataset(name=name, digest=digest, context=context)
                for name, digest, context in version.datasets
            ],
            signature=None if version.signature is None else dict(version.signature),
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
    decided_by: str | None = None
    comment: str | None = None
    decided_at: int | None = None

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
            decided_by=request.decided_by,
            comment=request.comment,
            decided_at=request.decided_at,
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


VersionOut.model_rebuild()


class ApprovalList(BaseModel):
    approvals: list[ApprovalOut]
    next_page_token: str | None


class DecisionIn(_In):
    comment: str | None = Field(default=None, max_length=2000)


class PolicyIn(_In):
    """What a version needs to enter production (see ``PromotionPolicy``)."""

    thresholds: dict[Key, float] = Field(default_factory=dict)
    max_regression: dict[Key, float] = Field(default_factory=dict)
    lower_is_better: list[Key] | None = None
    require_approval: bool = False
    require_signature: bool = False


class PolicyOut(BaseModel):
    policy: PolicyIn | None


class TagValue(_In):
    value: str = Field(max_length=8000)


class KeyIn(_In):
    public_key: str = Field(
        min_length=1, max_length=10_000, description="An Ed25519 public key, PEM text."
    )
    name: str | None = Field(default=None, max_length=250)


class KeyOut(BaseModel):
    fingerprint: str


class VerifyOut(BaseModel):
    verified: bool = Field(description="Signed by a trusted key, and the signature is valid.")


class WebhookIn(_In):
    url: str = Field(min_length=1, max_length=2000)
    events: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=100)
    secret: str | None = Field(default=None, min_length=1, max_length=500)


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    active: bool
    created_at: int
    secret: str | None = Field(
        default=None, description="Only in the answer that creates the webhook."
    )


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: int
    event_id: int
    event_kind: str
    subject: str
    webhook_id: int
    status: str
    attempts: int
    next_attempt_at: int
    last_error: str | None
    response_status: int | None
    delivered_at: int | None


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]


class DatasetLink(_In):
    name: str = Field(min_length=1, max_length=250)
    digest: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    num_rows: int | None = Field(default=None, ge=0, le=2**63 - 1)
    source: str | None = Field(default=None, max_length=2000)
    context: Key = "training"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Registration(_In):
    """``registration.json`` inside an uploaded package archive: what the version is."""

    metrics: dict[Key, float] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = None
    datasets: list[DatasetLink] = Field(default_factory=list, max_length=1000)
    parent_version: str | None = Field(default=None, max_length=250)
    version: str | None = Field(default=None, max_length=64)
    description: str | None = None
    signature: str | None = Field(default=None, max_length=512)
    signing_key: str | None = Field(default=None, max_length=512)
