"""Governance: the hash-chained audit log, users/tokens/roles, endpoints' inference
tokens, artifact signing (Ed25519)."""

from mlops.governance._access import TOKEN_PREFIX, AccessControl, TokenInfo, User
from mlops.governance._audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditLog,
    AuditVerification,
    append,
    current_request_id,
    request_id_scope,
)
from mlops.governance._inference import (
    INFERENCE_TOKEN_PREFIX,
    InferenceTokenInfo,
    inference_token_refusal,
    unknown_inference_token,
)
from mlops.governance._permissions import (
    PERMISSIONS,
    ROLES,
    Principal,
    authorize,
    parse_expiry,
)
from mlops.governance._signing import (
    PrivateKeyLike,
    PublicKeyLike,
    generate_keypair,
    key_fingerprint,
    load_private_key,
    load_public_key,
    public_key_pem,
    sign_digest,
    verify_digest,
    write_keypair,
)

__all__ = [
    "GENESIS_HASH",
    "INFERENCE_TOKEN_PREFIX",
    "PERMISSIONS",
    "ROLES",
    "TOKEN_PREFIX",
    "AccessControl",
    "AuditEntry",
    "AuditLog",
    "AuditVerification",
    "InferenceTokenInfo",
    "Principal",
    "PrivateKeyLike",
    "PublicKeyLike",
    "TokenInfo",
    "User",
    "append",
    "authorize",
    "current_request_id",
    "generate_keypair",
    "inference_token_refusal",
    "key_fingerprint",
    "load_private_key",
    "load_public_key",
    "parse_expiry",
    "public_key_pem",
    "request_id_scope",
    "sign_digest",
    "unknown_inference_token",
    "verify_digest",
    "write_keypair",
]
