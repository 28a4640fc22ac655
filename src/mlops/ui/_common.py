"""What every page uses: rendering, the caller's permissions, formatting, charts.

A page handler is a plain (sync) function: Starlette runs it in the thread pool, where
it may call the blocking facades on ``connection(request)``. It returns
``render(request, "area/page.html", {...})``. An ``MLOpsError`` it raises becomes the
error page with the message (``NotFound`` → 404). Charts are plotly figure dicts passed
to the template and drawn by ``{{ chart("id", figure) }}``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mlops._client import MLOps
from mlops.errors import PermissionDenied
from mlops.governance import Principal
from mlops.ui._session import csrf_token

__all__ = [
    "NAV",
    "can",
    "connection",
    "error_page",
    "format_duration",
    "format_ms",
    "format_number",
    "format_time",
    "overview",
    "redirect_done",
    "render",
    "require",
    "templates",
]

#: The top navigation: (label, path under /ui).
NAV = (
    ("Experiments", "/experiments"),
    ("Models", "/models"),
    ("Deployments", "/deployments"),
    ("Monitoring", "/monitoring"),
    ("Pipelines", "/pipelines"),
)


def connection(request: Request) -> MLOps:
    """The server's connection (``app.state.ml``)."""
    ml: MLOps = request.app.state.ml
    return ml


def principal(request: Request) -> Principal | None:
    """The signed-in user, or None (the server's identity, or anonymous)."""
    caller: Principal | None = getattr(request.state, "principal", None)
    return caller


def can(request: Request, permission: str, *, model: str | None = None) -> bool:
    """Whether the caller may take an action needing ``permission`` (show its button)."""
    caller = principal(request)
    if caller is None:
        return not getattr(request.state, "anonymous", False)
    return caller.can(permission, model=model)


def require(request: Request, permission: str, *, model: str | None = None) -> str | None:
    """Refuse (PermissionDenied) unless the caller may; return the actor to record."""
    caller = principal(request)
    if caller is None:
        if getattr(request.state, "anonymous", False):
            raise PermissionDenied(
                f"sign in with an API token whose role has {permission!r} to do this"
            )
        return None
    connection(request).access.authorize(caller, permission, model=model)
    return caller.name


@functools.cache
def templates() -> Environment:
    """The Jinja2 environment of the package's templates (autoescaped)."""
    env = Environment(
        loader=PackageLoader("mlops.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        time=_time_element,
        duration=format_duration,
        number=format_number,
        ms=format_ms,
        pct=format_percent,
    )
    env.globals.update(nav=NAV, chart=chart)
    return env


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    title: str | None = None,
) -> Response:
    """The page ``name`` with ``context``, plus what the layout needs."""
    root = request.scope.get("root_path", "") or ""
    caller = principal(request)
    values = {
        "request": request,
        "root": root,
        "title": title,
        "user": caller.name if caller else None,
        "role": caller.role if caller else None,
        "anonymous": getattr(request.state, "anonymous", False),
        "csrf": csrf_token(request) if hasattr(request.state, "csrf") else "",
        "can": lambda permission, model=None: can(request, permission, model=model),
        "path": request.url.path,
        **context,
    }
    html = templates().get_template(name).render(values)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def redirect_done(request: Request, path: str, done: str) -> Response:
    """After an action: back to the dashboard page ``path`` (relative to /ui), which
    confirms ``done``; 303, so reloading it does not submit the form again."""
    root = request.scope.get("root_path", "") or ""
    return RedirectResponse(f"{root}{path}?done={quote(done)}", status_code=303)


def error_page(request: Request, status_code: int, message: str) -> Response:
    """A page saying what went wrong (404: the thing does not exist) and where to go."""
    titles = {
        400: "Invalid request",
        401: "Sign-in needed",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        503: "Storage unavailable",
    }
    title = titles.get(status_code, "Something went wrong")
    context = {"status": status_code, "heading": title, "message": message}
    return render(request, "error.html", context, status_code=status_code, title=title)


def chart(element_id: str, figure: Mapping[str, Any], *, height: int = 320) -> Markup:
    """A chart placeholder and its figure as JSON, drawn by mlops.js with plotly.js."""
    data = json.dumps(figure, default=_jsonable, allow_nan=False)
    safe = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(
        f'<div class="chart" id="{element_id}" data-figure="{element_id}-figure" '
        f'style="height:{int(height)}px"></div>'
        f'<script type="application/json" id="{element_id}-figure">{safe}</script>'
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in a chart")


def finite(value: float | None) -> float | None:
    """``value``, or None where JSON has no number (NaN, ±inf) — plotly leaves a gap."""
    if value is None or not math.isfinite(value):
        return None
    return value


def format_time(ms: int | float | None) -> str:
    """Milliseconds since the epoch as UTC ``2026-11-22 23:41:05``."""
    if ms is None:
        return "—"
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _time_element(ms: int | float | None) -> Markup:
    """``format_time`` in a ``<time>`` element that does not wrap inside a table cell."""
    if ms is None:
        return Markup("—")
    iso = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat()
    return Markup('<time class="ts" datetime="{}">{}</time>').format(iso, format_time(ms))


def format_duration(ms: int | float | None) -> str:
    """A duration in milliseconds, readably: ``850 ms``, ``12.4 s``, ``3 min 5 s``."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_number(value: Any) -> str:
    """A metric value with four significant digits; ints and text as they are."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def format_ms(value: float | None) -> str:
    """A latency in milliseconds."""
    return "—" if value is None else f"{value:.1f} ms"


def format_percent(value: float | None) -> str:
    """A share (0 to 1) as a percentage."""
    return "—" if value is None else f"{value * 100:.1f}%"


def overview(request: Request) -> Response:
    """The landing page: counts of what is here, and the latest of each."""
    ml = connection(request)
    experiments = ml.tracking.list_experiments()
    models = ml.registry.list_models()
    deployments = ml.deployments.list()
    alerts = ml.monitor.alerts.alerts(state="firing")
    pipelines = ml.pipelines.list()
    context = {
        "experiments": experiments[:5],
        "experiment_count": len(experiments),
        "models": models[:5],
        "model_count": len(models),
        "deployments": deployments[:5],
        "deployment_count": len(deployments),
        "firing": alerts[:5],
        "firing_count": len(alerts),
        "pipelines": pipelines[:5],
        "pipeline_count": len(pipelines),
    }
    return render(request, "overview.html", context, title="Overview")
