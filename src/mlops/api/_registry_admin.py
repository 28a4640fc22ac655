"""The registry's rules and records: promotion policies, approval requests, trusted signing
keys and signature checks, model tags, and registry webhooks.

Policies, keys and webhooks are settings (``settings.admin``: a deployer must not lift the
gate their own promotions pass through); deciding an approval moves a stage
(``models.stage``, checked against the request's model); tags are part of registering.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from mlops.api._deps import ML, Actor, Caller, connection, principal
from mlops.api._models import VersionPath, _selector
from mlops.api._pagination import DEFAULT_LIMIT, MAX_LIMIT, fingerprint, page
from mlops.api._registry_schemas import (
    ApprovalList,
    ApprovalOut,
    DecisionIn,
    DeliveryList,
    DeliveryOut,
    KeyIn,
    KeyOut,
    PolicyIn,
    PolicyOut,
    TagValue,
    VerifyOut,
    WebhookIn,
    WebhookList,
    WebhookOut,
)
from mlops.api._tracking_schemas import MAX_ID
from mlops.registry import PromotionPolicy, Webhook

__all__ = ["router"]

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
PageToken = Annotated[str | None, Query(description="next_page_token of the previous page.")]
RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]


def needs(permission: str, *, per_model: bool = False) -> Any:
    """A dependency checking ``permission`` whatever the method (these routes' reads are
    settings too); with ``per_model``, against the model named in the path."""

    async def check(request: Request) -> None:
        caller = principal(request)
        if caller is not None:
            model = request.path_params.get("name") if per_model else None
            connection(request).access.authorize(caller, permission, model=model)

    return Depends(check)


READ = [needs("read", per_model=True)]
ADMIN = [needs("settings.admin")]
ADMIN_MODEL = [needs("settings.admin", per_model=True)]


# -- policies -----------------------------------------------------------------------------


@router.get("/models/{name}/policy", tags=["models"], dependencies=READ, summary="A policy")
def get_policy(name: str, ml: ML) -> PolicyOut:
    ml.registry.get_model(name)  # 404 for an unknown model, not an empty policy
    policy = ml.registry.get_policy(name)
    if policy is None:
        return PolicyOut(policy=None)
    return PolicyOut(
        policy=PolicyIn(
            thresholds=dict(policy.thresholds),
            max_regression=dict(policy.max_regression),
            lower_is_better=None
            if policy.lower_is_better is None
            else sorted(policy.lower_is_better),
            require_approval=policy.require_approval,
            require_signature=policy.require_signature,
        )
    )


@router.put(
    "/models/{name}/policy",
    tags=["models"],
    dependencies=ADMIN_MODEL,
    summary="Gate production for a model (replaces its policy)",
)
def set_policy(name: str, body: PolicyIn, ml: ML, who: Actor) -> PolicyOut:
    policy = PromotionPolicy(
        thresholds=body.thresholds,
        max_regression=body.max_regression,
        lower_is_better=None if body.lower_is_better is None else frozenset(body.lower_is_better),
        require_approval=body.require_approval,
        require_signature=body.require_signature,
    )
    ml.registry.set_policy(name, policy, actor=who)
    return PolicyOut(policy=body)


@router.delete(
    "/models/{name}/policy",
    tags=["models"],
    dependencies=ADMIN_MODEL,
    status_code=204,
    response_class=Response,
    summary="Remove a model's policy",
)
def delete_policy(name: str, ml: ML, who: Actor) -> None:
    ml.registry.set_policy(name, None, actor=who)


# -- tags and signatures ------------------------------------------------------------------


@router.put(
    "/models/{name}/tags/{key:path}",
    tags=["models"],
    dependencies=[needs("models.register", per_model=True)],
    status_code=204,
    response_class=Response,
    summary="Set a model tag (overwrites)",
)
def set_model_tag(name: str, key: str, body: TagValue, ml: ML, who: Actor) -> None:
    ml.registry.set_model_tag(name, key, body.value, actor=who)


@router.get(
    "/models/{name}/versions/{version}/verify",
    tags=["models"],
    dependencies=READ,
    summary="Whether a version carries a valid signature from a trusted key",
)
def verify_version(name: str, version: VersionPath, ml: ML) -> VerifyOut:
    return VerifyOut(verified=ml.registry.verify_version(name, _selector(version)))


@router.post(
    "/keys", tags=["keys"], dependencies=ADMIN, status_code=201, summary="Trust a signing key"
)
def trust_key(body: KeyIn, ml: ML, who: Actor) -> KeyOut:
    return KeyOut(fingerprint=ml.registry.trust_key(body.public_key, name=body.name, actor=who))


# -- approvals ----------------------------------------------------------------------------


@router.get(
    "/approvals",
    tags=["approvals"],
    dependencies=[needs("read")],
    summary="Approval requests, oldest first",
)
def list_approvals(
    ml: ML,
    model: Annotated[str | None, Query(max_length=250)] = None,
    status: Annotated[
        str, Query(description="pending, approved, rejected, or all.", max_length=20)
    ] = "pending",
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> ApprovalList:
    found, token = page(
        ml.registry.list_approvals(model, status=None if status == "all" else status),
        lambda request: request.id,
        limit=limit,
        page_token=page_token,
        query=fingerprint("approvals", model, status),
    )
    return ApprovalList(approvals=[ApprovalOut.of(r) for r in found], next_page_token=token)


def _decide(
    request_id: int, approve: bool, body: DecisionIn, ml: Any, caller: Any, who: str | None
) -> ApprovalOut:
    if caller is not None:
        pending = [r for r in ml.registry.list_approvals(status=None) if r.id == request_id]
        model = pending[0].model_name if pending else None
        ml.access.authorize(caller, "models.stage", model=model)
    decide = ml.registry.approve if approve else ml.registry.reject
    return ApprovalOut.of(decide(request_id, comment=body.comment, actor=who))


@router.post(
    "/approvals/{request_id}/approve",
    tags=["approvals"],
    summary="Approve (not one's own request) and apply the transition",
)
def approve(
    request_id: RecordId, body: DecisionIn, ml: ML, caller: Caller, who: Actor
) -> ApprovalOut:
    return _decide(request_id, True, body, ml, caller, who)


@router.post("/approvals/{request_id}/reject", tags=["approvals"], summary="Reject a request")
def reject(
    request_id: RecordId, body: DecisionIn, ml: ML, caller: Caller, who: Actor
) -> ApprovalOut:
    return _decide(request_id, False, body, ml, caller, who)


# -- webhooks -----------------------------------------------------------------------------


def _webhook(hook: Webhook) -> WebhookOut:
    return WebhookOut(
        id=hook.id,
        url=hook.url,
        events=list(hook.events),
        active=hook.active,
        created_at=hook.created_at,
        secret=hook.secret,
    )


@router.get("/webhooks", tags=["webhooks"], dependencies=ADMIN, summary="Registry webhooks")
def list_webhooks(ml: ML) -> WebhookList:
    return WebhookList(webhooks=[_webhook(hook) for hook in ml.registry.webhooks.list()])


@router.post(
    "/webhooks",
    tags=["webhooks"],
    dependencies=ADMIN,
    status_code=201,
    summary="Subscribe a URL to registry events (the secret is shown in this answer only)",
)
def add_webhook(body: WebhookIn, ml: ML) -> WebhookOut:
    return _webhook(ml.registry.webhooks.add(body.url, secret=body.secret, events=body.events))


@router.delete(
    "/webhooks/{webhook_id}",
    tags=["webhooks"],
    dependencies=ADMIN,
    status_code=204,
    response_class=Response,
    summary="Remove a webhook and its deliveries",
)
def remove_webhook(webhook_id: RecordId, ml: ML) -> None:
    ml.registry.webhooks.remove(webhook_id)


@router.get(
    "/webhooks/deliveries",
    tags=["webhooks"],
    dependencies=ADMIN,
    summary="Webhook deliveries, newest first",
)
def deliveries(
    ml: ML,
    event_kind: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    found = ml.registry.webhooks.deliveries(event_kind=event_kind, status=status, limit=limit)
    return DeliveryList(
        deliveries=[
            DeliveryOut(
                id=d.id,
                event_id=d.event_id,
                event_kind=d.event_kind,
                subject=d.subject,
                webhook_id=d.webhook_id,
                status=d.status.value,
                attempts=d.attempts,
                next_attempt_at=d.next_attempt_at,
                last_error=d.last_error,
                response_status=d.response_status,
                delivered_at=d.delivered_at,
            )
            for d in found
        ]
    )
