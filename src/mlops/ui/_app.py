"""``create_ui``: the dashboard at ``/ui`` of ``mlops server``, and the routes that mount it.

Server-rendered pages (Jinja2) over the embedded facades of the server's own connection;
charts are plotly figures drawn by plotly.js, served from plotly's installed package
(no CDN). Each page module (``_experiments``, ``_models``, ``_deployments``,
``_monitoring``, ``_pipelines``) exports ``routes``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mlops._client import MLOps
from mlops.api._auth import AuthPolicy
from mlops.errors import (
    Conflict,
    InvalidInput,
    MLOpsError,
    NotFound,
    PermissionDenied,
    StorageError,
    Unauthenticated,
)

__all__ = ["UI_PREFIX", "create_ui", "ui_available", "ui_routes"]

UI_PREFIX = "/ui"
_INSTALL_HINT = (
    "the dashboard needs the ui extra: pip install 'mlops[ui]' (Jinja2 and plotly), "
    "then restart the server"
)


def ui_available() -> bool:
    """Whether the dashboard's optional dependencies (the ``ui`` extra) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("jinja2", "plotly"))


def create_ui(ml: MLOps, *, auth: AuthPolicy) -> Starlette:
    """The dashboard app over ``ml``, to mount at ``/ui``, behind the API's ``auth`` policy.

    Without a token a browser acts as the server's identity when ``auth`` is off; with
    auth required it signs in with an API token (kept in an HttpOnly cookie) and sees
    what the token's role may see; actions a role may not take show no button and are
    refused anyway.
    """
    from mlops.ui import _deployments, _experiments, _models, _monitoring, _pipelines
    from mlops.ui._common import error_page, overview
    from mlops.ui._session import UISession, login_form, login_submit, logout

    routes: list[BaseRoute] = [
        Route("/", overview, methods=["GET"], name="overview"),
        Route("/login", login_form, methods=["GET"], name="login"),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"], name="logout"),
        Route("/static/vendor/plotly.min.js", _plotly_js, methods=["GET"], name="plotly"),
        Mount("/static", StaticFiles(packages=[("mlops.ui", "static")]), name="static"),
    ]
    for module in (_experiments, _models, _deployments, _monitoring, _pipelines):
        routes.extend(module.routes)

    async def handle_mlops_error(request: Request, exc: Exception) -> Response:
        return error_page(request, _status_of(exc), str(exc))

    async def handle_not_found(request: Request, exc: Exception) -> Response:
        return error_page(request, 404, f"there is no page at {request.url.path}")

    app = Starlette(
        routes=routes,
        exception_handlers={MLOpsError: handle_mlops_error, 404: handle_not_found},
    )
    app.state.ml = ml
    app.state.auth = auth
    app.add_middleware(UISession, policy=auth, authenticate=ml.access.authenticate)
    return app


def ui_routes(ml: MLOps, *, auth: AuthPolicy) -> list[BaseRoute]:
    """``/ui`` (the dashboard, or a page saying which extra to install), with ``/`` and
    ``/ui`` sending browsers to ``/ui/``."""

    async def home(request: Request) -> Response:
        return RedirectResponse(f"{UI_PREFIX}/", status_code=307)

    if ui_available():
        dashboard: Any = create_ui(ml, auth=auth)
    else:

        async def dashboard(scope: Any, receive: Any, send: Any) -> None:
            await PlainTextResponse(_INSTALL_HINT, status_code=503)(scope, receive, send)

    return [
        Route("/", home, methods=["GET"]),
        Route(UI_PREFIX, home, methods=["GET"]),
        Mount(UI_PREFIX, dashboard),
    ]


def _status_of(exc: Exception) -> int:
    for kind, status in (
        (NotFound, 404),
        (InvalidInput, 400),
        (Unauthenticated, 401),
        (PermissionDenied, 403),
        (Conflict, 409),
        (StorageError, 503),
    ):
        if isinstance(exc, kind):
            return status
    return 500


async def _plotly_js(request: Request) -> Response:
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        return PlainTextResponse(_INSTALL_HINT, status_code=503)
    path = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})
