"""``create_serving_app``: the ASGI app that answers predictions for every endpoint."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mlops.config import Settings
from mlops.errors import InvalidInput
from mlops.serving import _handlers as handlers
from mlops.serving._gateway import ServingState
from mlops.serving._predlog import PredictionLogWriter
from mlops.serving._tokens import DEFAULT_TOKEN_CACHE_SECONDS

__all__ = ["create_serving_app"]

#: What browser pages of an allowed origin may send and read (CORS).
_CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_CORS_HEADERS = ("Authorization", "Content-Type", "X-Request-ID", "X-MLOps-Preview")
_CORS_EXPOSED = ("X-Request-ID", "X-MLOps-Version", "X-MLOps-Route", "Retry-After")


async def _pipeline_webhook(request: Request) -> Response:
    """``POST /v1/pipelines/{name}/trigger`` (imported on first call: orchestration is
    not needed to serve predictions)."""
    from mlops.orchestration._webhook import pipeline_webhook

    return await pipeline_webhook(request)


def create_serving_app(
    ml: Any,
    *,
    poll_interval: float = 1.0,
    max_body_bytes: int = 10 * 2**20,
    log_inputs: bool = True,
    keep_unused_seconds: float = 300.0,
    log_queue_size: int = 100_000,
    log_batch_size: int = 2_000,
    log_flush_interval: float = 0.25,
    api: bool = True,
    token_cache_seconds: float = DEFAULT_TOKEN_CACHE_SECONDS,
    cors_origins: Sequence[str] | None = None,
) -> Starlette:
    """The serving gateway for the endpoints in ``ml``'s store (``ml.store``, ``ml.registry``).

    Routing tables are polled every ``poll_interval`` seconds and swapped in once their
    versions are loaded and warm; versions no table needs are unloaded after
    ``keep_unused_seconds``. Requests over ``max_body_bytes`` get 413. The prediction log
    keeps request payloads unless ``log_inputs=False``, and is drained on shutdown. State
    lives on ``app.state.serving`` (``await app.state.serving.refresh()`` polls now).
    With ``api=True`` the control-plane REST API is mounted at ``/api/v1`` (docs at
    ``/api/docs``). Endpoints that require an inference token are checked against what
    the store said at most ``token_cache_seconds`` ago. Browser pages of ``cors_origins``
    (default: ``ml.settings.cors_origins``, none) may call every route; with none, no
    ``Access-Control-*`` header is sent.
    """
    if poll_interval <= 0:
        raise InvalidInput(f"poll_interval must be positive, got {poll_interval}")
    if max_body_bytes <= 0:
        raise InvalidInput(f"max_body_bytes must be positive, got {max_body_bytes}")
    if token_cache_seconds < 0:
        raise InvalidInput(f"token_cache_seconds must not be negative, got {token_cache_seconds}")
    settings: Settings = ml.settings
    origins = tuple(settings.cors_origins if cors_origins is None else cors_origins)
    if cors_origins is not None:
        settings.with_overrides(cors_origins=origins)  # validates them
    writer = PredictionLogWriter(
        ml.store,
        max_queue=log_queue_size,
        batch_size=log_batch_size,
        flush_interval=log_flush_interval,
    )
    state = ServingState(
        ml,
        poll_interval=poll_interval,
        max_body_bytes=max_body_bytes,
        log_inputs=log_inputs,
        keep_unused_seconds=keep_unused_seconds,
        writer=writer,
        token_cache_seconds=token_cache_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.loop = asyncio.get_running_loop()
        writer.start()
        poller = state.loop.create_task(state.poll_forever(), name="mlops-route-poller")
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await state.close()

    post, get = ["POST"], ["GET"]
    routes: list[BaseRoute] = [
        Route("/v1/endpoints/{name}/predict", handlers.predict_native, methods=post),
        Route("/v1/endpoints/{name}/invocations", handlers.predict_mlflow, methods=post),
        Route("/v2/models/{name}/infer", handlers.infer_v2, methods=post),
        Route("/v2/models/{name}/versions/{version:int}/infer", handlers.infer_v2, methods=post),
        Route("/v1/endpoints/{name}/feedback", handlers.feedback, methods=post),
        Route("/v1/pipelines/{name}/trigger", _pipeline_webhook, methods=post),
        Route("/health/live", handlers.live, methods=get),
        Route("/health/ready", handlers.ready, methods=get),
        Route("/metrics", handlers.metrics, methods=get),
        Route("/v2", handlers.v2_server, methods=get),
        Route("/v2/health/live", handlers.live, methods=get),
        Route("/v2/health/ready", handlers.v2_ready, methods=get),
        Route("/v2/models/{name}", handlers.v2_model, methods=get),
        Route("/v2/models/{name}/ready", handlers.v2_model_ready, methods=get),
        Route("/v2/models/{name}/versions/{version:int}", handlers.v2_model, methods=get),
        Route(
            "/v2/models/{name}/versions/{version:int}/ready",
            handlers.v2_model_ready,
            methods=get,
        ),
    ]
    if api:
        from mlops.api import api_routes
        from mlops.api._app import policy_of
        from mlops.ui import ui_routes

        routes.extend(api_routes(ml))
        routes.extend(ui_routes(ml, auth=policy_of(ml, None)))
    middleware = []
    if origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=_CORS_METHODS,
                allow_headers=_CORS_HEADERS,
                expose_headers=_CORS_EXPOSED,
                max_age=600,
            )
        )
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.serving = state
    return app
