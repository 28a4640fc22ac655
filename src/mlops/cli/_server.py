"""`mlops server`: the serving gateway, with the deployment controller and webhook delivery."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops.cli._common import get_state
from mlops.deployment import DeploymentController
from mlops.registry import WebhookDispatcher
from mlops.serving import serve

__all__ = ["server"]


def server(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8000,
    workers: Annotated[int, typer.Option(help="Serving worker processes.")] = 1,
    poll_interval: Annotated[
        float, typer.Option(help="Seconds between routing-table checks.")
    ] = 1.0,
    controller: Annotated[
        bool, typer.Option(help="Advance rollouts and deliver webhooks from this process.")
    ] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve every endpoint over HTTP (native, MLflow and Open Inference Protocol v2).

    Also runs the deployment controller (once across every server on the same database)
    and the webhook dispatcher. Stops gracefully on SIGTERM/SIGINT, draining the
    prediction log.
    """
    ml = get_state(ctx).connect()
    background: list[DeploymentController | WebhookDispatcher] = []
    if controller:
        background = [
            DeploymentController(ml.deployments, ml.store),
            WebhookDispatcher(ml.store),
        ]
    for worker in background:
        worker.start()
    try:
        serve(ml, host, port, workers, log_level=log_level, poll_interval=poll_interval)
    finally:
        for worker in background:
            worker.stop()
