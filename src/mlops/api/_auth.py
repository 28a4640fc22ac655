"""Who may call the API without a token: the policy, its choice from the listening host,
and the middleware that authenticates every request before it is routed.

Authentication (401) happens here, once per request, for every path under the API (so a
missing token is refused before the body is parsed or the route looked up); the route's
permission (403) is checked by ``_deps.require``.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mlops.config import Settings
from mlops.errors import InvalidInput, Unauthenticated
from mlops.governance import Principal

__all__ = [
    "AuthPolicy",
    "Authentication",
    "is_loopback",
    "is_read",
    "resolve_auth",
    "settings_for_host",
]

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Reads that take their query as a POST body, relative to the API's root.
_READ_POSTS = frozenset({"/runs/search"})
_CHALLENGE = 'Bearer realm="mlops"'


class AuthPolicy(enum.Enum):
    """Which requests the API answers without ``Authorization: Bearer``."""

    #: Every request needs a valid token.
    REQUIRED = "required"
    #: Reads (what the ``read`` permission allows) without a token; writes need one.
    ANONYMOUS_READ = "anonymous-read"
    #: A token is optional; without one a request acts as the server's own identity.
    OFF = "off"

    def allows_anonymous(self, method: str, path: str) -> bool:
        """Whether a request without a token may go on to its route."""
        if self is AuthPolicy.OFF:
            return True
        return self is AuthPolicy.ANONYMOUS_READ and is_read(method, path)

    def describe(self) -> str:
        """One line for the server's start-up log."""
        return {
            AuthPolicy.REQUIRED: "auth: required (every API request needs a token)",
            AuthPolicy.ANONYMOUS_READ: "auth: required, anonymous read allowed (writes need one)",
            AuthPolicy.OFF: "auth: off (requests without a token act as the server)",
        }[self]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as given to ``--host``) is reachable only from this machine."""
    text = host.strip().strip("[]").lower()
    if text == "localhost" or text.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False  # a hostname or a wildcard: it may be reachable from elsewhere


def resolve_auth(
    mode: str | AuthPolicy, host: str | None, *, allow_anonymous_read: bool = False
) -> AuthPolicy:
    """The policy for ``--auth mode`` on ``host``: "auto" is required off loopback.

    ``host=None`` (an embedded API that does not know where it listens) makes "auto" off.
    ``allow_anonymous_read`` turns "required" into ``ANONYMOUS_READ``.
    """
    if isinstance(mode, AuthPolicy):
        return mode
    text = mode.strip().lower()
    if text in ("anonymous-read", "anonymous_read"):
        return AuthPolicy.ANONYMOUS_READ
    if text == "auto":
        text = "off" if host is None or is_loopback(host) else "required"
    if text == "off":
        return AuthPolicy.OFF
    if text == "required":
        return AuthPolicy.ANONYMOUS_READ if allow_anonymous_read else AuthPolicy.REQUIRED
    raise InvalidInput(f"auth mode {mode!r} is not one of auto, required, off")


def settings_for_host(
    settings: Settings,
    host: str,
    *,
    auth: str | None = None,
    allow_anonymous_read: bool = False,
) -> tuple[Settings, AuthPolicy]:
    """``settings`` carrying the policy decided for a server listening on ``host``
    (``auth`` over ``settings.auth``), so the API and every worker process apply it."""
    policy = resolve_auth(
        auth if auth is not None else settings.auth,
        host,
        allow_anonymous_read=allow_anonymous_read or settings.allow_anonymous_read,
    )
    decided = settings.with_overrides(
        auth="off" if policy is AuthPolicy.OFF else "required",
        allow_anonymous_read=policy is AuthPolicy.ANONYMOUS_READ,
    )
    return decided, policy


def is_read(method: str, path: str) -> bool:
    """Whether a request (``path`` relative to the API root) needs only ``read``."""
    return method.upper() in _READ_METHODS or (method.upper() == "POST" and path in _READ_POSTS)


class Authentication:
    """ASGI middleware: puts the caller (a ``Principal``, or None) on ``scope["state"]``,
    or answers 401 with ``WWW-Authenticate: Bearer`` when a token is needed and missing
    or refused. ``authenticate`` is blocking (a database read); it runs in a thread."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: AuthPolicy,
        authenticate: Callable[[str | None], Principal],
    ) -> None:
        self.app = app
        self.policy = policy
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        try:
            state["principal"] = await self._caller(scope)
        except Unauthenticated as error:
            body = {
                "error": {"code": error.code, "message": str(error)},
                "request_id": str(state.get("request_id", "")),
            }
            response = JSONResponse(body, 401, headers={"WWW-Authenticate": _CHALLENGE})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _caller(self, scope: Scope) -> Principal | None:
        header = dict(scope["headers"]).get(b"authorization")
        if header is None:
            if self.policy.allows_anonymous(scope["method"], _relative_path(scope)):
                return None
            needs = "this request" if self.policy is AuthPolicy.REQUIRED else "a write"
            raise Unauthenticated(
                f"this server requires an API token for {needs}; send "
                "'Authorization: Bearer mlops_…' (an admin creates one with "
                "`mlops tokens create USER`)"
            )
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthenticated(
                f"the Authorization header uses the {scheme!r} scheme; send 'Bearer mlops_…'"
            )
        return await run_in_threadpool(self.authenticate, token.strip() or None)


def _relative_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
