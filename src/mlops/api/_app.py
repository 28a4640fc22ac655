"""``create_api``: the control-plane REST API v1, and the routes that mount it."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, request_response

from mlops._client import MLOps
from mlops.api import (
    _artifacts,
    _deployments,
    _experiments,
    _governance,
    _models,
    _monitoring,
    _packages,
    _pipelines,
    _registry_admin,
    _runs,
)
from mlops.api._auth import Authentication, AuthPolicy, resolve_auth
from mlops.api._docs import docs_response
from mlops.api._errors import install_error_handlers
from mlops.api._middleware import RequestContext
from mlops.errors import InvalidInput

__all__ = [
    "API_PREFIX",
    "DOCS_PATH",
    "ROUTER_MODULES",
    "api_routes",
    "create_api",
    "policy_of",
]

API_PREFIX = "/api/v1"
#: One router per domain, in the order the docs list them.
ROUTER_MODULES = (
    _experiments,
    _runs,
    _artifacts,
    _models,
    _packages,
    _registry_admin,
    _deployments,
    _monitoring,
    _pipelines,
    _governance,
)
DOCS_PATH = "/api/docs"

_DESCRIPTION = (
    "Experiments, runs and their data, artifacts, and the model registry of one mlops "
    "installation. Every error answers "
    '{"error": {"code", "message"}, "request_id"}; list endpoints page with limit and '
    "page_token. See docs/api.md."
)


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail
    request_id: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in [
        (400, "Malformed request (invalid JSON, bad artifact path)"),
        (401, "Missing or refused API token"),
        (403, "The caller lacks the permission"),
        (404, "Not found"),
        (409, "Conflicts with stored state"),
        (413, "Request body too large"),
        (422, "Invalid input"),
        (503, "Storage unavailable"),
    ]
}


def create_api(
    ml: MLOps,
    *,
    max_body_bytes: int = 2**20,
    max_artifact_bytes: int = 2**30,
    auth: AuthPolicy | str | None = None,
) -> FastAPI:
    """The REST API over ``ml``'s tracking and registry, to mount at ``/api/v1``.

    JSON bodies over ``max_body_bytes`` and artifact uploads over ``max_artifact_bytes``
    are answered 413. ``auth`` says which requests need ``Authorization: Bearer`` (401
    without; a token given is always checked): an ``AuthPolicy``, "required", "off" or
    "anonymous-read"; None takes ``ml.settings.auth`` and ``allow_anonymous_read``
    ("auto" there is off: the API does not know where it listens; `mlops server` decides
    it from ``--host``). The connection lives on ``app.state.ml``, the policy on
    ``app.state.auth``.
    """
    for label, value in (
        ("max_body_bytes", max_body_bytes),
        ("max_artifact_bytes", max_artifact_bytes),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidInput(f"{label} must be a positive number of bytes, got {value!r}")
    policy = policy_of(ml, auth)
    app = FastAPI(
        title="mlops API",
        version="1",
        description=_DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.ml = ml
    app.state.max_artifact_bytes = max_artifact_bytes
    app.state.auth = policy
    for module in ROUTER_MODULES:
        app.include_router(module.router, responses=_ERRORS)
    install_error_handlers(app)
    # Added first, so it runs inside RequestContext: its 401s carry the request id.
    app.add_middleware(Authentication, policy=policy, authenticate=ml.access.authenticate)
    app.add_middleware(
        RequestContext,
        max_body_bytes=max_body_bytes,
        streamed=lambda scope: (
            _artifacts.is_artifact_upload(scope["method"], scope["path"])
            or _packages.is_package_upload(scope["method"], scope["path"])
        ),
    )
    return app


def policy_of(ml: MLOps, auth: AuthPolicy | str | None) -> AuthPolicy:
    """The policy ``auth`` names, else the one ``ml``'s settings decide."""
    if auth is not None:
        return resolve_auth(auth, None)
    settings = ml.settings
    return resolve_auth(settings.auth, None, allow_anonymous_read=settings.allow_anonymous_read)


class _Mount(Mount):
    """A Mount that also takes paths holding a newline (``%0A``): Starlette's pattern
    stops at one, which would hand such requests to the outer app's plain-text 404."""

    def __init__(self, path: str, app: Any) -> None:
        super().__init__(path, app=app)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


def api_routes(ml: MLOps, **options: Any) -> list[BaseRoute]:
    """The API mounted at ``/api/v1`` and its docs page at ``/api/docs`` (behind the same
    authentication policy), for a Starlette app's routes; ``options`` go to ``create_api``."""
    api = create_api(ml, **options)

    async def docs(request: Request) -> Response:
        return docs_response(api.openapi(), request, prefix=API_PREFIX)

    guarded_docs = RequestContext(
        Authentication(
            request_response(docs), policy=api.state.auth, authenticate=ml.access.authenticate
        ),
        max_body_bytes=1024,
        streamed=lambda scope: False,
    )
    return [_Mount(API_PREFIX, api), Route(DOCS_PATH, guarded_docs, methods=["GET"])]
