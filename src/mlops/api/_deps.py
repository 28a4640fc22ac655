"""Dependencies shared by the routers: the connection, the caller and their permissions.

The ``Authentication`` middleware has already authenticated the request under the API's
``AuthPolicy``: a request with ``Authorization: Bearer mlops_…`` has a principal (checked
here against the route's permission, and recorded as the actor of registry changes); one
the policy lets through without a token runs as the server's own identity, as the Python
client does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from mlops._client import MLOps
from mlops.api._auth import is_read
from mlops.errors import InvalidInput, PermissionDenied
from mlops.governance import Principal

__all__ = [
    "ACTOR_HEADER",
    "ML",
    "Actor",
    "Caller",
    "actor",
    "actor_of",
    "connection",
    "principal",
    "require",
]

#: Names the actor of a change when the request carries no token (the server runs
#: without authentication, as the embedded library trusts its caller). With a token the
#: actor is always the token's user; a different name in this header is refused.
ACTOR_HEADER = "X-MLOps-Actor"


def connection(request: Request) -> MLOps:
    """The ``MLOps`` connection the API was created with (``app.state.ml``)."""
    ml: MLOps = request.app.state.ml
    return ml


def principal(request: Request) -> Principal | None:
    """The caller behind ``Authorization: Bearer``, or None (no token, and the policy
    lets the request through without one)."""
    caller: Principal | None = request.scope.get("state", {}).get("principal")
    return caller


def actor_of(caller: Principal | None) -> str | None:
    """The identity recorded for a change (None: the registry's default actor)."""
    return None if caller is None else caller.name


def actor(request: Request) -> str | None:
    """Who a change is recorded as: the token's user; without a token, the
    ``X-MLOps-Actor`` header if given; else None (the server's own identity)."""
    caller = principal(request)
    given = request.headers.get(ACTOR_HEADER)
    if given is not None:
        given = given.strip()
        if not given or len(given) > 250 or not given.isprintable():
            raise InvalidInput(
                f"the {ACTOR_HEADER} header must be a printable name of at most 250 characters"
            )
    if caller is not None:
        if given is not None and given != caller.name:
            raise PermissionDenied(
                f"this token belongs to {caller.name!r}; its changes are recorded as that "
                f"user, not as {given!r} (drop the {ACTOR_HEADER} header or actor=)"
            )
        return caller.name
    return given


# The dependencies are coroutines: they never block, and a sync dependency would cost
# every request a round trip through the thread pool (FastAPI runs those in threads).


async def _connection(request: Request) -> MLOps:
    return connection(request)


async def _principal(request: Request) -> Principal | None:
    return principal(request)


async def _actor(request: Request) -> str | None:
    return actor(request)


ML = Annotated[MLOps, Depends(_connection)]
Caller = Annotated[Principal | None, Depends(_principal)]
Actor = Annotated[str | None, Depends(_actor)]


def require(write_permission: str) -> Any:
    """A dependency checking ``read`` for reads and ``write_permission`` for the rest;
    a ``{name}`` in the path is the model the user's model scope is checked against."""

    async def check(request: Request, caller: Caller) -> None:
        if caller is None:
            return
        path = request.url.path.removeprefix(request.scope.get("root_path", ""))
        permission = "read" if is_read(request.method, path) else write_permission
        model = request.path_params.get("name") if path.startswith("/models/") else None
        connection(request).access.authorize(caller, permission, model=model)

    checker: Callable[..., Awaitable[None]] = check
    return Depends(checker)
