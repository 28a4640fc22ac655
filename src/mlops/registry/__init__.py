"""Model registry: versions, stages and aliases, policies, approvals, lineage, events."""

from mlops.registry._entities import (
    ApprovalRequest,
    ApprovalStatus,
    ModelReference,
    ModelVersion,
    RegisteredModel,
    Stage,
    Transition,
    parse_model_uri,
)
from mlops.registry._policy import PromotionPolicy
from mlops.registry._registry import ModelRegistry
from mlops.registry._webhooks import (
    Delivery,
    DeliveryStatus,
    Webhook,
    WebhookDispatcher,
    WebhookManager,
    webhook_signature,
)

__all__ = [
    "ApprovalRequest",
    "ApprovalStatus",
    "Delivery",
    "DeliveryStatus",
    "ModelReference",
    "ModelRegistry",
    "ModelVersion",
    "PromotionPolicy",
    "RegisteredModel",
    "Stage",
    "Transition",
    "Webhook",
    "WebhookDispatcher",
    "WebhookManager",
    "parse_model_uri",
    "webhook_signature",
]
