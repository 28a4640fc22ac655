"""``RemoteAuditLog`` and ``RemoteAccessControl``: ``ml.audit`` and ``ml.access`` of a
remote connection, over ``/audit``, ``/users``, ``/tokens`` and ``/whoami``.

The server writes the audit log and checks tokens; from here the log is read and
verified, and users and tokens are managed by a caller whose token has the admin
permissions (``audit.read``, ``users.admin``, ``tokens.admin``). Changes are recorded as
the token's user (``actor=`` counts only on a server without authentication).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn

from mlops.errors import InvalidInput, NotFound
from mlops.governance import (
    AccessControl,
    AuditEntry,
    AuditLog,
    AuditVerification,
    InferenceTokenInfo,
    Principal,
    TokenInfo,
    User,
    authorize,
    parse_expiry,
)
from mlops.remote._http import ApiClient
from mlops.remote._tracking import path_part

__all__ = [
    "RemoteAccessControl",
    "RemoteAuditLog",
    "audit_entry_of",
    "token_of",
    "user_of",
]

#: The most items the API returns in one page.
_PAGE = 1000


def audit_entry_of(body: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=body["id"],
        at=body["at"],
        actor=body["actor"],
        action=body["action"],
        target=body["target"],
        before=body["before"],
        after=body["after"],
        request_id=body["request_id"],
        prev_hash=body["prev_hash"],
        hash=body["hash"],
    )


def user_of(body: Mapping[str, Any]) -> User:
    models = body["models"]
    return User(
        id=body["id"],
        name=body["name"],
        role=body["role"],
        models=None if models is None else tuple(models),
        created_at=body["created_at"],
        disabled_at=body["disabled_at"],
    )


def token_of(body: Mapping[str, Any]) -> TokenInfo:
    return TokenInfo(
        id=body["id"],
        user=body["user"],
        name=body["name"],
        prefix=body["prefix"],
        created_at=body["created_at"],
        expires_at=body["expires_at"],
        revoked_at=body["revoked_at"],
        last_used_at=body["last_used_at"],
    )


class RemoteAuditLog(AuditLog):
    """The audit log of a remote server: ``list``, ``get`` and ``verify`` as embedded;
    ``record`` raises ``InvalidInput`` (the server appends entries with its changes).

    None of the embedded constructor runs: nothing here touches a database.
    """

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def __repr__(self) -> str:
        return f"<RemoteAuditLog {self._api.url}>"

    def record(
        self,
        action: str,
        target: str,
        *,
        before: Any = None,
        after: Any = None,
        actor: str | None = None,
        request_id: str | None = None,
    ) -> AuditEntry:
        raise InvalidInput(
            "ml.audit.record() is not available through a remote connection: the server "
            "appends audit entries in the transaction of each change it makes"
        )

    def get(self, entry_id: int) -> AuditEntry:
        """One entry (the API lists entries newest first, so this reads down to it)."""
        if isinstance(entry_id, bool) or not isinstance(entry_id, int):
            raise InvalidInput(f"an audit entry id is an integer; got {entry_id!r}")
        for entry in self._entries({}):
            if entry.id <= entry_id:
                if entry.id == entry_id:
                    return entry
                break
        raise NotFound(f"the audit log has no entry {entry_id} (see `mlops audit list`)")

    def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: int | datetime | None = None,
        until: int | datetime | None = None,
        limit: int = 100,
        after_id: int | None = None,
    ) -> builtins.list[AuditEntry]:
        """Entries newest first; ``since``/``until`` bound ``at`` (epoch ms or datetime,
        ``until`` exclusive); ``after_id`` continues after the last id seen (the API pages
        with tokens, so this reads past the newer entries).

        ``action`` ending in ``.*`` matches a prefix: ``"token.*"``.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive integer, got {limit!r}")
        if after_id is not None and (isinstance(after_id, bool) or not isinstance(after_id, int)):
            raise InvalidInput(f"after_id must be an audit entry id, got {after_id!r}")
        query = {
            "actor": actor,
            "action": action,
            "target": target,
            "since": None if since is None else _epoch_ms("since", since),
            "until": None if until is None else _epoch_ms("until", until),
        }
        found: builtins.list[AuditEntry] = []
        page_size = limit if after_id is None else _PAGE
        for entry in self._entries(query, page_size):
            if after_id is not None and entry.id >= after_id:
                continue
            found.append(entry)
            if len(found) == limit:
                break
        return found

    def verify(self, *, batch_size: int = 1000) -> AuditVerification:
        """The server recomputes every hash and link, oldest first, and reports the first
        break (``batch_size`` is the server's own there)."""
        body = self._api.get("/audit/verify")
        return AuditVerification(
            ok=body["ok"],
            checked=body["checked"],
            head_id=body["head_id"],
            head_hash=body["head_hash"],
            message=body["message"],
            broken_at=body["broken_at"],
            problem=body["problem"],
        )

    def _entries(self, query: Mapping[str, Any], page_size: int = _PAGE) -> Iterator[AuditEntry]:
        """Matching entries newest first, a page at a time, for as long as they are read."""
        params = {**query, "limit": min(page_size, _PAGE)}
        while True:
            body = self._api.get("/audit", params=params)
            yield from (audit_entry_of(item) for item in body["entries"])
            token = body.get("next_page_token")
            if not token:
                return
            params = {**params, "page_token": token, "limit": _PAGE}


class RemoteAccessControl(AccessControl):
    """Users, roles and API tokens of a remote server, managed as embedded (by a caller
    with ``users.admin`` / ``tokens.admin``); ``whoami()`` says who the caller is.

    ``authenticate`` and the inference-token methods raise ``InvalidInput`` (the server
    checks tokens; endpoints' inference tokens are managed with ``mlops endpoints
    token`` on the server). ``authorize`` is the same pure check as embedded. None of the
    embedded constructor runs: nothing here touches a database. ``actor=`` is sent as
    ``X-MLOps-Actor``: a server without authentication records it; with a token, the
    token's user is recorded.
    """

    def __init__(self, api: ApiClient, *, actor: str | None = None) -> None:
        self._api = api
        self._actor = actor

    def __repr__(self) -> str:
        return f"<RemoteAccessControl {self._api.url}>"

    def _sent(self, actor: str | None) -> str | None:
        return actor if actor is not None else self._actor

    def whoami(self) -> dict[str, Any]:
        """The server's ``/whoami``: the caller's user, role, model scope, permissions."""
        found: dict[str, Any] = self._api.get("/whoami")
        return found

    # -- users ----------------------------------------------------------------------------

    def create_user(
        self,
        name: str,
        role: str,
        *,
        models: Sequence[str] | None = None,
        actor: str | None = None,
    ) -> User:
        body = {"name": name, "role": role, "models": _patterns(models)}
        return user_of(self._api.post("/users", json=body, actor=self._sent(actor)))

    def get_user(self, name: str) -> User:
        return user_of(self._api.get(f"/users/{_segment('user', name)}"))

    def list_users(self) -> builtins.list[User]:
        return [user_of(item) for item in self._api.pages("/users", "users")]

    def set_role(self, name: str, role: str, *, actor: str | None = None) -> User:
        return self._update(name, {"role": role}, actor)

    def set_models(
        self, name: str, models: Sequence[str] | None, *, actor: str | None = None
    ) -> User:
        return self._update(name, {"models": _patterns(models)}, actor)

    def disable_user(self, name: str, *, actor: str | None = None) -> User:
        return self._update(name, {"disabled": True}, actor)

    def enable_user(self, name: str, *, actor: str | None = None) -> User:
        return self._update(name, {"disabled": False}, actor)

    def delete_user(self, name: str, *, actor: str | None = None) -> None:
        self._api.delete(f"/users/{_segment('user', name)}", actor=self._sent(actor))

    def _update(self, name: str, change: dict[str, Any], actor: str | None) -> User:
        body = self._api.patch(
            f"/users/{_segment('user', name)}", json=change, actor=self._sent(actor)
        )
        return user_of(body)

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
        body = {"name": name, "expires_in": _lifetime(expires_in)}
        created = self._api.post(
            f"/users/{_segment('user', user)}/tokens", json=body, actor=self._sent(actor)
        )
        return created["token"], token_of(created)

    def list_tokens(self, user: str | None = None) -> builtins.list[TokenInfo]:
        if user is not None:
            _segment("user", user)
        return [token_of(item) for item in self._api.pages("/tokens", "tokens", {"user": user})]

    def revoke_token(self, token_id: int, *, actor: str | None = None) -> TokenInfo:
        if isinstance(token_id, bool) or not isinstance(token_id, int):
            raise InvalidInput(f"a token id is an integer (not its secret); got {token_id!r}")
        if token_id < 1:
            raise NotFound(f"there is no API token {token_id} (see `mlops tokens list`)")
        response = self._api.request("DELETE", f"/tokens/{token_id}", actor=self._sent(actor))
        return token_of(response.json())

    def authenticate(self, token: str | None) -> Principal:
        _server_side(
            "authenticate",
            "the server checks the token of each request; ask who you are with ml.access.whoami()",
        )

    def authorize(self, principal: Principal, permission: str, *, model: str | None = None) -> None:
        """Raise ``PermissionDenied`` unless the principal may do it (a pure check, run
        here; the server checks every request itself)."""
        authorize(principal, permission, model=model)

    # -- inference tokens (on the server) -------------------------------------------------

    def create_inference_token(
        self,
        endpoint: str,
        *,
        name: str = "default",
        expires_in: timedelta | float | str | None = None,
        actor: str | None = None,
    ) -> tuple[str, InferenceTokenInfo]:
        _inference("create_inference_token", f"mlops endpoints token create {endpoint}")

    def list_inference_tokens(
        self, endpoint: str | None = None
    ) -> builtins.list[InferenceTokenInfo]:
        _inference("list_inference_tokens", "mlops endpoints token list")

    def revoke_inference_token(
        self, token_id: int, *, actor: str | None = None
    ) -> InferenceTokenInfo:
        _inference("revoke_inference_token", f"mlops endpoints token revoke {token_id}")

    def require_inference_token(
        self, endpoint: str, required: bool = True, *, actor: str | None = None
    ) -> bool:
        _inference("require_inference_token", f"mlops endpoints require-token {endpoint}")

    def endpoints_requiring_tokens(self) -> frozenset[str]:
        _inference("endpoints_requiring_tokens", "mlops endpoints token list")

    def find_inference_token(self, token: str) -> InferenceTokenInfo | None:
        _server_side("find_inference_token", "serving replicas check inference tokens")

    def check_inference_token(self, endpoint: str, token: str | None) -> InferenceTokenInfo:
        _server_side("check_inference_token", "serving replicas check inference tokens")


def _server_side(method: str, why: str) -> NoReturn:
    raise InvalidInput(f"ml.access.{method}() is not available through a remote connection: {why}")


def _inference(method: str, command: str) -> NoReturn:
    _server_side(
        method,
        "the API has no routes for endpoints' inference tokens; run "
        f"`{command}` against the server's database",
    )


def _segment(what: str, name: object) -> str:
    if not isinstance(name, str):
        raise InvalidInput(f"a {what} name is a string; got {name!r}")
    if not name:
        raise NotFound(f"there is no {what} ''; see `mlops users list`")
    return name.replace(".", "%2E") if name in (".", "..") else path_part(name)


def _patterns(models: Sequence[str] | None) -> builtins.list[str] | None:
    # A single pattern is accepted as embedded; the server checks the patterns.
    if models is None:
        return None
    return [models] if isinstance(models, str) else builtins.list(models)


def _lifetime(expires_in: timedelta | float | str | None) -> str | None:
    """The lifetime as the API takes it: text such as "30d" (seconds otherwise)."""
    if expires_in is None:
        return None
    lifetime = parse_expiry(expires_in)  # refuse a bad one here, with the embedded message
    if isinstance(expires_in, str):
        return expires_in.strip()
    return f"{lifetime.total_seconds():.3f}s"


def _epoch_ms(what: str, value: int | datetime) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(f"{what} must be a timezone-aware datetime, got {value!r}")
        return int(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be epoch milliseconds or a datetime, got {value!r}")
    return value
