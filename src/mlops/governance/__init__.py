"""Governance: the hash-chained audit log, users/tokens/roles, artifact signing (Ed25519)."""

from mlops.governance._access import TOKEN_PREFIX, AccessControl, TokenInfo, User
from mlops.governance._audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditLog,
    AuditVerification,
    append,
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
    "PERMISSIONS",
    "ROLES",
    "TOKEN_PREFIX",
    "AccessControl",
    "AuditEntry",
    "AuditLog",
    "AuditVerification",
    "Principal",
    "PrivateKeyLike",
    "PublicKeyLike",
    "TokenInfo",
    "User",
    "append",
    "authorize",
    "generate_keypair",
    "key_fingerprint",
    "load_private_key",
    "load_public_key",
    "parse_expiry",
    "public_key_pem",
    "sign_digest",
    "verify_digest",
    "write_keypair",
]
