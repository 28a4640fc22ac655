"""Access control: users with a role (optionally scoped to models), API tokens, and the
inference tokens of endpoints (kept by ``_inference``).

Roles and permissions are in ``_permissions``. Tokens are ``mlops_`` plus 43 random
URL-safe characters; only their SHA-256 is stored, so a token is shown once, at creation.
Every change to users and tokens appends to the audit log in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops.errors import AlreadyExists, Conflict, InvalidInput, NotFound, Unauthenticated
from mlops.governance._audit import append
from mlops.governance._inference import InferenceTokenInfo, InferenceTokens
from mlops.governance._permissions import ROLES, Principal, authorize, parse_expiry
from mlops.store import Store
from mlops.store._schema import KEY_LENGTH, api_tokens, users

__all__ = ["TOKEN_PREFIX", "AccessControl", "TokenInfo", "User"]

TOKEN_PREFIX = "mlops_"
# Arbitrary constant: the PostgreSQL advisory lock that makes changes to users take turns.
_PG_USERS_LOCK = 0x6D6C6F7073_5553
_DISPLAY_LENGTH = len(TOKEN_PREFIX) + 8
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
# Recording every use of a token would make each API request a write; once a minute is
# precise enough to tell a token in use from a forgotten one.
_LAST_USED_PRECISION_MS = 60_000


@dataclass(frozen=True, slots=True)
class User:
    """A user; ``models`` is None for every model, else the model-name glob patterns."""

    id: int
    name: str
    role: str
    models: tuple[str, ...] | None
    created_at: int
    disabled_at: int | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "models": None if self.models is None else list(self.models),
            "created_at": self.created_at,
            "disabled_at": self.disabled_at,
        }


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is kept of an API token: never the token itself, only its display prefix."""

    id: int
    user: str
    name: str
    prefix: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None

    def status(self, now_ms: int | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        now = _now_ms() if now_ms is None else now_ms
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "prefix": self.prefix,
            "status": self.status(),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
        }


class AccessControl:
    """Users, roles and API tokens in one metadata store.

    Thread-safe; each method runs in its own transaction, and every change appends its
    audit entry in that transaction. Returned objects are frozen. Raises ``NotFound``,
    ``AlreadyExists``, ``InvalidInput``, ``Conflict`` (the last active admin) and, from
    ``authenticate``/``authorize``, ``Unauthenticated``/``PermissionDenied``.
    """

    def __init__(self, store: Store, *, actor: str | None = None) -> None:
        self._store = store
        self._actor = actor
        self._inference = InferenceTokens(store)

    # -- users ----------------------------------------------------------------------------

    def create_user(
        self,
        name: str,
        role: str,
        *,
        models: Sequence[str] | None = None,
        actor: str | None = None,
    ) -> User:
        """Create a user; ``models`` (glob patterns) limits it to matching model names."""
        name = _checked_name(name)
        role = _checked_role(role)
        scopes = _checked_models(models)
        who = self._who(actor)
        with self._store.write() as connection:
            _serialize_user_changes(connection)
            if _user_row(connection, name) is not None:
                raise AlreadyExists(f"user {name!r} already exists (see `mlops users list`)")
            now = _now_ms()
            user_id = connection.execute(
                users.insert()
                .values(
                    name=name,
                    role=role,
                    model_scopes=None if scopes is None else json.dumps(list(scopes)),
                    created_at=now,
                )
                .returning(users.c.id)
            ).scalar_one()
            user = User(user_id, name, role, scopes, now, None)
            _audit(connection, who, "user.created", name, after=_user_state(user))
        return user

    def get_user(self, name: str) -> User:
        with self._store.read() as connection:
            return _require_user(connection, name)

    def list_users(self) -> list[User]:
        with self._store.read() as connection:
            rows = connection.execute(sa.select(users).order_by(users.c.name)).all()
        return [_user(row._mapping) for row in rows]

    def set_role(self, name: str, role: str, *, actor: str | None = None) -> User:
        """Change a user's role (the last active admin cannot be demoted)."""
        role = _checked_role(role)
        who = self._who(actor)
        with self._store.write() as connection:
            _serialize_user_changes(connection)
            user = _require_user(connection, name)
            if user.role == role:
                return user
            if user.role == "admin" and not user.disabled:
                _require_another_admin(connection, user, f"demote {user.name!r} to {role}")
            connection.execute(users.update().where(users.c.id == user.id).values(role=role))
            changed = User(user.id, user.name, role, user.models, user.created_at, user.disabled_at)
            _audit(
                connection,
                who,
                "user.role_changed",
                name,
                before=_user_state(user),
                after=_user_state(changed),
            )
        return changed

    def set_models(
        self, name: str, models: Sequence[str] | None, *, actor: str | None = None
    ) -> User:
        """Limit a user to models matching these glob patterns (None: every model)."""
        scopes = _checked_models(models)
        who = self._who(actor)
        with self._store.write() as connection:
            _serialize_user_changes(connection)
            user = _require_user(connection, name)
            if user.models == scopes:
                return user
            connection.execute(
                users.update()
                .where(users.c.id == user.id)
                .values(model_scopes=None if scopes is None else json.dumps(list(scopes)))
            )
            changed = User(user.id, user.name, user.role, scopes, user.created_at, user.disabled_at)
            _audit(
                connection,
                who,
                "user.models_changed",
                name,
                before=_user_state(user),
                after=_user_state(changed),
            )
        return changed

    def disable_user(self, name: str, *, actor: str | None = None) -> User:
        """Stop a user's tokens from authenticating, keeping the user and its tokens."""
        return self._set_disabled(name, disabled=True, actor=actor)

    def enable_user(self, name: str, *, actor: str | None = None) -> User:
        return self._set_disabled(name, disabled=False, actor=actor)

    def _set_disabled(self, name: str, *, disabled: bool, actor: str | None) -> User:
        who = self._who(actor)
        with self._store.write() as connection:
            _serialize_user_changes(connection)
            user = _require_user(connection, name)
            if user.disabled == disabled:
                return user
            if disabled and user.role == "admin":
                _require_another_admin(connection, user, f"disable {user.name!r}")
            at = _now_ms() if disabled else None
            connection.execute(users.update().where(users.c.id == user.id).values(disabled_at=at))
            changed = User(user.id, user.name, user.role, user.models, user.created_at, at)
            action = "user.disabled" if disabled else "user.enabled"
            _audit(
                connection,
                who,
                action,
                name,
                before=_user_state(user),
                after=_user_state(changed),
            )
        return changed

    def delete_user(self, name: str, *, actor: str | None = None) -> None:
        """Delete a user and, with it, all of its tokens."""
        who = self._who(actor)
        with self._store.write() as connection:
            _serialize_user_changes(connection)
            user = _require_user(connection, name)
            if user.role == "admin" and not user.disabled:
                _require_another_admin(connection, user, f"delete {user.name!r}")
            tokens = connection.execute(
                sa.select(sa.func.count()).where(api_tokens.c.user_id == user.id)
            ).scalar_one()
            connection.execute(users.delete().where(users.c.id == user.id))
            before = {**_user_state(user), "tokens": tokens}
            _audit(connection, who, "user.deleted", name, before=before)

    # -- tokens ---------------------------------------------------------------------------

    def create_token(
        self,
        user: str,
        *,
        name: str,
        expires_in: timedelta | float | str | None = None,
        actor: str | None = None,
    ) -> tuple[str, TokenInfo]:
        """Create an API token for a user; returns the token text (shown only now)."""
        if not isinstance(name, str) or not name.strip() or len(name) > KEY_LENGTH:
            raise InvalidInput(f"a token name must be 1 to {KEY_LENGTH} characters, got {name!r}")
        lifetime = None if expires_in is None else parse_expiry(expires_in)
        who = self._who(actor)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._store.write() as connection:
            owner = _require_user(connection, user)
            now = _now_ms()
            expires_at = None if lifetime is None else now + int(lifetime.total_seconds() * 1000)
            prefix = token[:_DISPLAY_LENGTH]
            values = {
                "user_id": owner.id,
                "name": name,
                "prefix": prefix,
                "token_hash": _token_hash(token),
                "created_at": now,
                "expires_at": expires_at,
            }
            token_id = connection.execute(
                api_tokens.insert().values(**values).returning(api_tokens.c.id)
            ).scalar_one()
            info = TokenInfo(token_id, owner.name, name, prefix, now, expires_at, None, None)
            _audit(
                connection,
                who,
                "token.created",
                f"{owner.name}/tokens/{token_id}",
                after=_token_state(info),
            )
        return token, info

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """Tokens (of one user, or all), oldest first; revoked and expired ones included."""
        query = _token_query().order_by(api_tokens.c.id)
        with self._store.read() as connection:
            if user is not None:
                owner = _require_user(connection, user)
                query = query.where(api_tokens.c.user_id == owner.id)
            rows = connection.execute(query).all()
        return [_token(row._mapping) for row in rows]

    def revoke_token(self, token_id: int, *, actor: str | None = None) -> TokenInfo:
        """Revoke a token; revoking it again changes nothing."""
        who = self._who(actor)
        with self._store.write() as connection:
            row = connection.execute(
                _token_query().where(api_tokens.c.id == token_id).with_for_update(of=api_tokens)
            ).first()
            if row is None:
                raise NotFound(f"there is no API token {token_id} (see `mlops tokens list`)")
            info = _token(row._mapping)
            if info.revoked_at is not None:
                return info
            now = _now_ms()
            connection.execute(
                api_tokens.update().where(api_tokens.c.id == token_id).values(revoked_at=now)
            )
            revoked = TokenInfo(
                info.id,
                info.user,
                info.name,
                info.prefix,
                info.created_at,
                info.expires_at,
                now,
                info.last_used_at,
            )
            _audit(
                connection,
                who,
                "token.revoked",
                f"{info.user}/tokens/{token_id}",
                before=_token_state(info),
                after=_token_state(revoked),
            )
        return revoked

    def authenticate(self, token: str | None) -> Principal:
        """The principal behind an API token; ``Unauthenticated`` says why it is refused."""
        if not token:
            raise Unauthenticated(
                "no API token was given; send 'Authorization: Bearer mlops_…' "
                "(an admin creates one with `mlops tokens create USER`)"
            )
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
            raise Unauthenticated(
                f"the API token is malformed: mlops tokens start with {TOKEN_PREFIX!r}"
            )
        with self._store.read() as connection:
            row = connection.execute(
                sa.select(
                    api_tokens,
                    users.c.name.label("user_name"),
                    users.c.role,
                    users.c.model_scopes,
                    users.c.disabled_at,
                )
                .join(users, users.c.id == api_tokens.c.user_id)
                .where(api_tokens.c.token_hash == _token_hash(token))
            ).first()
        if row is None:
            raise Unauthenticated(
                "the API token is not known: it was mistyped, or its user was deleted; "
                "ask an admin for a new one (`mlops tokens create USER`)"
            )
        now = _now_ms()
        shown = f"{row.prefix}… ({row.name!r} of user {row.user_name!r})"
        if row.revoked_at is not None:
            raise Unauthenticated(f"the API token {shown} was revoked; create a new one")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated(f"the API token {shown} has expired; create a new one")
        if row.disabled_at is not None:
            raise Unauthenticated(
                f"user {row.user_name!r} is disabled; an admin can enable it again"
            )
        if row.last_used_at is None or now - row.last_used_at >= _LAST_USED_PRECISION_MS:
            with self._store.write() as connection:
                connection.execute(
                    api_tokens.update().where(api_tokens.c.id == row.id).values(last_used_at=now)
                )
        return Principal(row.user_id, row.user_name, row.role, _scopes(row.model_scopes), row.id)

    def authorize(self, principal: Principal, permission: str, *, model: str | None = None) -> None:
        """Raise ``PermissionDenied`` (naming the missing permission and the role that has
        it) unless the principal may do it; ``model`` applies the user's model scope."""
        authorize(principal, permission, model=model)

    # -- inference tokens (endpoints' prediction routes) --------------------------------

    def create_inference_token(
        self,
        endpoint: str,
        *,
        name: str = "default",
        expires_in: timedelta | float | str | None = None,
        actor: str | None = None,
    ) -> tuple[str, InferenceTokenInfo]:
        """Create a token for ``endpoint``'s prediction routes (the endpoint need not be
        deployed yet); returns the token text, shown only now."""
        return self._inference.create(
            endpoint, name=name, expires_in=expires_in, actor=self._who(actor)
        )

    def list_inference_tokens(self, endpoint: str | None = None) -> list[InferenceTokenInfo]:
        """Inference tokens (of one endpoint, or all), oldest first, without the tokens;
        revoked and expired ones included."""
        return self._inference.list(endpoint)

    def revoke_inference_token(
        self, token_id: int, *, actor: str | None = None
    ) -> InferenceTokenInfo:
        """Revoke an inference token (again: no change). Serving replicas refuse it once
        their token cache expires, within a few seconds."""
        return self._inference.revoke(token_id, actor=self._who(actor))

    def require_inference_token(
        self, endpoint: str, required: bool = True, *, actor: str | None = None
    ) -> bool:
        """Let only requests with one of ``endpoint``'s inference tokens use its prediction
        and feedback routes (``required=False``: everyone); whether this changed anything.
        Serving replicas apply it within their cache time (a few seconds)."""
        return self._inference.require(endpoint, required, actor=self._who(actor))

    def endpoints_requiring_tokens(self) -> frozenset[str]:
        """The endpoints whose prediction routes need an inference token."""
        return self._inference.requiring()

    def find_inference_token(self, token: str) -> InferenceTokenInfo | None:
        """The stored inference token that ``token`` is, whatever its state (None: none)."""
        return self._inference.find(token)

    def check_inference_token(self, endpoint: str, token: str | None) -> InferenceTokenInfo:
        """The inference token that opens ``endpoint``; ``Unauthenticated`` says why not."""
        return self._inference.check(endpoint, token)

    def _who(self, actor: str | None) -> str:
        who = actor if actor is not None else self._actor
        if not who:
            raise InvalidInput("changes to users and tokens need an actor; pass actor='name'")
        return who


# -- rows -------------------------------------------------------------------------------------


def _user(row: Any) -> User:
    return User(
        row["id"],
        row["name"],
        row["role"],
        _scopes(row["model_scopes"]),
        row["created_at"],
        row["disabled_at"],
    )


def _serialize_user_changes(connection: Connection) -> None:
    # Changes to users take turns, so that two concurrent demotions of the last two admins
    # cannot both see the other one still there, and a taken name is AlreadyExists, not a
    # constraint error. SQLite's write transaction is serialized already. Users change
    # rarely; taking turns costs nothing.
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_USERS_LOCK)))


def _user_row(connection: Connection, name: str) -> Any:
    return connection.execute(sa.select(users).where(users.c.name == name)).first()


def _require_user(connection: Connection, name: str) -> User:
    row = _user_row(connection, name)
    if row is None:
        raise NotFound(f"there is no user {name!r} (see `mlops users list`)")
    return _user(row._mapping)


def _require_another_admin(connection: Connection, user: User, change: str) -> None:
    admins = connection.execute(
        sa.select(users.c.id).where(
            users.c.role == "admin", users.c.disabled_at.is_(None), users.c.id != user.id
        )
    ).all()
    if not admins:
        raise Conflict(
            f"cannot {change}: it is the last active admin; make another user admin first "
            "(`mlops users create NAME --role admin`)"
        )


def _token_query() -> sa.Select[Any]:
    return sa.select(api_tokens, users.c.name.label("user_name")).join(
        users, users.c.id == api_tokens.c.user_id
    )


def _token(row: Any) -> TokenInfo:
    return TokenInfo(
        row["id"],
        row["user_name"],
        row["name"],
        row["prefix"],
        row["created_at"],
        row["expires_at"],
        row["revoked_at"],
        row["last_used_at"],
    )


def _scopes(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(json.loads(text))


def _audit(
    connection: Connection,
    actor: str,
    action: str,
    target: str,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    append(
        connection,
        actor=actor,
        action=action,
        target=f"users/{target}",
        before=before,
        after=after,
    )


def _user_state(user: User) -> dict[str, Any]:
    return {
        "role": user.role,
        "models": None if user.models is None else list(user.models),
        "disabled": user.disabled,
    }


def _token_state(info: TokenInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "prefix": info.prefix,
        "expires_at": info.expires_at,
        "revoked": info.revoked_at is not None,
    }


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _checked_name(name: object) -> str:
    if not isinstance(name, str) or len(name) > KEY_LENGTH or not _USER_NAME.match(name):
        raise InvalidInput(
            f"user name {name!r} is not valid; use letters, digits and . _ @ + - "
            f"(starting with a letter or digit, at most {KEY_LENGTH} characters)"
        )
    return name


def _checked_role(role: object) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    assert isinstance(role, str)
    return role


def _checked_models(models: Sequence[str] | None) -> tuple[str, ...] | None:
    if models is None:
        return None
    if isinstance(models, str):
        models = [models]
    patterns = tuple(models)
    if not patterns:
        raise InvalidInput(
            "models must name at least one pattern such as 'churn-*'; give None for every model"
        )
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > KEY_LENGTH:
            raise InvalidInput(f"model pattern {pattern!r} must be a non-empty glob like 'churn-*'")
    return patterns


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
