"""Governance: artifact signing (Ed25519) — audit log and access control come later."""

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
    "PrivateKeyLike",
    "PublicKeyLike",
    "generate_keypair",
    "key_fingerprint",
    "load_private_key",
    "load_public_key",
    "public_key_pem",
    "sign_digest",
    "verify_digest",
    "write_keypair",
]
