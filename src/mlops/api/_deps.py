"""Dependencies shared by the routers: the connection, the caller and their permissions.

The ``Authentication`` middleware has already authenticated the request under the API's
``AuthPolicy``: a request with ``Authorization: Bearer mlops_…`` has a principal (checked
here against the route's permission, and recorded as the actor of registry changes); one
the policy lets through without a token runs as the server's own identity, as the Python
client does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from mlops._client import MLOps
from mlops.api._auth import is_read
from mlops.governance import Principal

__all__ = ["ML", "Caller", "actor_of", "connection", "principal", "require"]


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


ML = Annotated[MLOps, Depends(connection)]
Caller = Annotated[Principal | None, Depends(principal)]


def require(write_permission: str) -> Any:
    """A dependency checking ``read`` for reads and ``write_permission`` for the rest;
    a ``{name}`` in the path is the model the user's model scope is checked against."""

    def check(request: Request, caller: Caller) -> None:
        if caller is None:
            return
        path = request.url.path.removeprefix(request.scope.get("root_path", ""))
        permission = "read" if is_read(request.method, path) else write_permission
        model = request.path_params.get("name") if "/models" in request.url.path else None
        connection(request).access.authorize(caller, permission, model=model)

    checker: Callable[..., None] = check
    return Depends(checker)
