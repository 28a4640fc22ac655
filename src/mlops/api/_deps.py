"""Dependencies shared by the routers: the connection, the caller and their permissions.

Authentication is optional unless the API was created with ``require_auth=True``: a
request with ``Authorization: Bearer mlops_…`` is authenticated (and the user recorded as
the actor of registry changes, and checked against the route's permission); a request
without one runs as the server's own identity, as the Python client does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from mlops._client import MLOps
from mlops.errors import Unauthenticated
from mlops.governance import Principal

__all__ = ["ML", "Caller", "actor_of", "connection", "principal", "require"]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def connection(request: Request) -> MLOps:
    """The ``MLOps`` connection the API was created with (``app.state.ml``)."""
    ml: MLOps = request.app.state.ml
    return ml


def principal(request: Request) -> Principal | None:
    """The caller behind ``Authorization: Bearer``, or None (no header, auth optional)."""
    header = request.headers.get("authorization")
    if header is None and not request.app.state.require_auth:
        return None
    scheme, _, token = (header or "").partition(" ")
    if header is not None and scheme.lower() != "bearer":
        raise Unauthenticated(
            f"the Authorization header uses the {scheme!r} scheme; send 'Bearer mlops_…'"
        )
    return connection(request).access.authenticate(token.strip() or None)


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
        # A search is a read that takes its query as a POST body.
        reads = request.method in _READS or request.url.path.endswith("/runs/search")
        permission = "read" if reads else write_permission
        model = request.path_params.get("name") if "/models" in request.url.path else None
        connection(request).access.authorize(caller, permission, model=model)

    checker: Callable[..., None] = check
    return Depends(checker)
