"""Inference tokens: what opens an endpoint's prediction routes when it requires a token.

Kept apart from API tokens, in a table of their own: an inference token acts as no user
and opens nothing but one endpoint's prediction and feedback routes, so the tokens handed
to client applications can change nothing, and an API token (even an admin's) opens no
prediction route. Tokens are ``mlinf_`` plus 43 random URL-safe characters; only their
SHA-256 is stored, as for API tokens. Whether an endpoint requires one is a column of
``serving_endpoints``, so every serving replica reads the same setting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from mlops.errors import InvalidInput, NotFound, Unauthenticated
from mlops.governance._audit import append
from mlops.governance._permissions import parse_expiry
from mlops.store import Store
from mlops.store._schema import KEY_LENGTH, inference_tokens, serving_endpoints

__all__ = [
    "INFERENCE_TOKEN_PREFIX",
    "InferenceTokenInfo",
    "InferenceTokens",
    "inference_token_refusal",
    "unknown_inference_token",
]

INFERENCE_TOKEN_PREFIX = "mlinf_"
_API_TOKEN_PREFIX = "mlops_"  # _access.TOKEN_PREFIX (not imported: _access imports this)
_DISPLAY_LENGTH = len(INFERENCE_TOKEN_PREFIX) + 8


@dataclass(frozen=True, slots=True)
class InferenceTokenInfo:
    """What is kept of an endpoint's inference token: its display prefix, not the token."""

    id: int
    endpoint: str
    name: str
    prefix: str
    created_by: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None

    def status(self, now_ms: int | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        now = _now_ms() if now_ms is None else now_ms
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def refusal(self, endpoint: str, now_ms: int | None = None) -> str | None:
        """Why this token may not call ``endpoint`` (now), or None when it may."""
        shown = f"the inference token {self.prefix}… ({self.name!r})"
        if self.endpoint != endpoint:
            return f"{shown} is for endpoint {self.endpoint!r}, not {endpoint!r}"
        status = self.status(now_ms)
        if status == "active":
            return None
        what = "was revoked" if status == "revoked" else "has expired"
        return (
            f"{shown} of endpoint {endpoint!r} {what}; an operator creates a new one "
            f"with `mlops endpoints token create {endpoint}`"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "name": self.name,
            "prefix": self.prefix,
            "status": self.status(),
            "created_by": self.created_by,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        }


class InferenceTokens:
    """Inference tokens and the endpoints that require them, in one metadata store.

    Thread-safe; each method runs in its own transaction, and every change appends its
    audit entry in that transaction (the caller names the actor). Returned objects are
    frozen. Raises ``NotFound``, ``InvalidInput`` and, from ``check``, ``Unauthenticated``.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(
        self, endpoint: str, *, name: str, expires_in: timedelta | float | str | None, actor: str
    ) -> tuple[str, InferenceTokenInfo]:
        endpoint = _checked_endpoint(endpoint)
        if not isinstance(name, str) or not name.strip() or len(name) > KEY_LENGTH:
            raise InvalidInput(f"a token name must be 1 to {KEY_LENGTH} characters, got {name!r}")
        lifetime = None if expires_in is None else parse_expiry(expires_in)
        token = INFERENCE_TOKEN_PREFIX + secrets.token_urlsafe(32)
        prefix = token[:_DISPLAY_LENGTH]
        with self._store.write() as connection:
            now = _now_ms()
            expires_at = None if lifetime is None else now + int(lifetime.total_seconds() * 1000)
            token_id = connection.execute(
                inference_tokens.insert()
                .values(
                    endpoint=endpoint,
                    name=name,
                    prefix=prefix,
                    token_hash=_token_hash(token),
                    created_by=actor,
                    created_at=now,
                    expires_at=expires_at,
                )
                .returning(inference_tokens.c.id)
            ).scalar_one()
            info = InferenceTokenInfo(
                token_id, endpoint, name, prefix, actor, now, expires_at, None
            )
            append(
                connection,
                actor=actor,
                action="inference_token.created",
                target=f"endpoints/{endpoint}/tokens/{token_id}",
                after=_state(info),
            )
        return token, info

    def list(self, endpoint: str | None = None) -> list[InferenceTokenInfo]:
        query = sa.select(inference_tokens).order_by(inference_tokens.c.id)
        if endpoint is not None:
            query = query.where(inference_tokens.c.endpoint == endpoint)
        with self._store.read() as connection:
            rows = connection.execute(query).all()
        return [_info(row._mapping) for row in rows]

    def revoke(self, token_id: int, *, actor: str) -> InferenceTokenInfo:
        with self._store.write() as connection:
            row = connection.execute(
                sa.select(inference_tokens)
                .where(inference_tokens.c.id == token_id)
                .with_for_update()
            ).first()
            if row is None:
                raise NotFound(
                    f"there is no inference token {token_id} (see `mlops endpoints token list`)"
                )
            info = _info(row._mapping)
            if info.revoked_at is not None:
                return info
            revoked = dataclasses.replace(info, revoked_at=_now_ms())
            connection.execute(
                inference_tokens.update()
                .where(inference_tokens.c.id == token_id)
                .values(revoked_at=revoked.revoked_at)
            )
            append(
                connection,
                actor=actor,
                action="inference_token.revoked",
                target=f"endpoints/{info.endpoint}/tokens/{token_id}",
                before=_state(info),
                after=_state(revoked),
            )
        return revoked

    def require(self, endpoint: str, required: bool, *, actor: str) -> bool:
        with self._store.write() as connection:
            row = connection.execute(
                sa.select(serving_endpoints.c.id, serving_endpoints.c.token_required)
                .where(serving_endpoints.c.name == endpoint)
                .with_for_update()
            ).first()
            if row is None:
                raise NotFound(
                    f"endpoint {endpoint!r} does not exist; deploy a model to it first "
                    "(see `mlops deployments list`)"
                )
            if bool(row.token_required) == required:
                return False
            connection.execute(
                serving_endpoints.update()
                .where(serving_endpoints.c.id == row.id)
                .values(token_required=int(required))
            )
            append(
                connection,
                actor=actor,
                action="endpoint.token_requirement_changed",
                target=f"endpoints/{endpoint}",
                before={"token_required": not required},
                after={"token_required": required},
            )
        return True

    def requiring(self) -> frozenset[str]:
        with self._store.read() as connection:
            names = connection.execute(
                sa.select(serving_endpoints.c.name).where(serving_endpoints.c.token_required != 0)
            ).scalars()
            return frozenset(names)

    def find(self, token: str) -> InferenceTokenInfo | None:
        with self._store.read() as connection:
            row = connection.execute(
                sa.select(inference_tokens).where(
                    inference_tokens.c.token_hash == _token_hash(token)
                )
            ).first()
        return None if row is None else _info(row._mapping)

    def check(self, endpoint: str, token: str | None) -> InferenceTokenInfo:
        refusal = inference_token_refusal(endpoint, token)
        if refusal is None and token is not None:
            info = self.find(token)
            refusal = unknown_inference_token(endpoint) if info is None else info.refusal(endpoint)
            if info is not None and refusal is None:
                return info
        raise Unauthenticated(refusal)


def inference_token_refusal(endpoint: str, token: str | None) -> str | None:
    """Why ``token`` cannot open ``endpoint``, telling by its form alone; None if it may."""
    create = f"`mlops endpoints token create {endpoint}`"
    if not token:
        return (
            f"endpoint {endpoint!r} requires an inference token; send 'Authorization: "
            f"Bearer {INFERENCE_TOKEN_PREFIX}…' (an operator creates one with {create})"
        )
    if token.startswith(_API_TOKEN_PREFIX):
        return (
            f"an API token does not open prediction routes; endpoint {endpoint!r} needs one "
            f"of its inference tokens ({create})"
        )
    if not token.startswith(INFERENCE_TOKEN_PREFIX):
        return f"the inference token is malformed: they start with {INFERENCE_TOKEN_PREFIX!r}"
    return None


def unknown_inference_token(endpoint: str) -> str:
    """The refusal of a well-formed token that no endpoint has."""
    return (
        "the inference token is not known: it was mistyped or never existed; ask an "
        f"operator for one (`mlops endpoints token create {endpoint}`)"
    )


def _info(row: Any) -> InferenceTokenInfo:
    return InferenceTokenInfo(
        row["id"],
        row["endpoint"],
        row["name"],
        row["prefix"],
        row["created_by"],
        row["created_at"],
        row["expires_at"],
        row["revoked_at"],
    )


def _state(info: InferenceTokenInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "prefix": info.prefix,
        "expires_at": info.expires_at,
        "revoked": info.revoked_at is not None,
    }


def _checked_endpoint(endpoint: object) -> str:
    if not isinstance(endpoint, str) or not endpoint.strip() or len(endpoint) > KEY_LENGTH:
        raise InvalidInput(
            f"an endpoint name must be 1 to {KEY_LENGTH} characters, got {endpoint!r}"
        )
    return endpoint


def _token_hash(token: str) -> str:
    # The same digest as API tokens' (_access._token_hash).
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
