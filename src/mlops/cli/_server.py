"""`mlops server`: the serving gateway, with the deployment controller, alert evaluation
and webhook delivery."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from mlops._client import connect
from mlops.api import AuthPolicy, is_loopback, settings_for_host
from mlops.cli._common import get_state
from mlops.deployment import DeploymentController
from mlops.monitoring.alerts import AlertEvaluator
from mlops.orchestration import PipelineScheduler
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
        bool,
        typer.Option(
            help="Advance rollouts, evaluate alert rules, deliver webhooks and run "
            "scheduled pipelines here."
        ),
    ] = True,
    alert_interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between alert evaluation ticks.")
    ] = 5.0,
    pipeline_interval: Annotated[
        float,
        typer.Option(min=0.05, help="Most seconds between pipeline scheduler ticks."),
    ] = 1.0,
    pipeline_workers: Annotated[
        int, typer.Option(min=1, help="Pipeline executions run at once by this server.")
    ] = 2,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    auth: Annotated[
        Literal["auto", "required", "off"] | None,
        typer.Option(
            help="API tokens: auto (required unless --host is loopback), required or off. "
            "Default: MLOPS_AUTH, else auto.",
            show_default=False,
        ),
    ] = None,
    allow_anonymous_read: Annotated[
        bool,
        typer.Option(
            "--allow-anonymous-read",
            help="With auth required, let requests without a token read (writes still "
            "need one). Also MLOPS_ALLOW_ANONYMOUS_READ=1.",
        ),
    ] = False,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            metavar="ORIGIN",
            help="Let browser pages of this origin (https://app.example, or *) call the "
            "server (repeatable). Also MLOPS_CORS_ORIGINS (comma-separated). Default: no "
            "CORS headers at all.",
            show_default=False,
        ),
    ] = None,
    keep_alive_timeout: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds an idle keep-alive connection stays open."),
    ] = 5.0,
    graceful_timeout: Annotated[
        float,
        typer.Option(
            min=0.1, help="Seconds requests in flight may take to finish on SIGTERM/SIGINT."
        ),
    ] = 30.0,
) -> None:
    """Serve every endpoint over HTTP (native, MLflow and Open Inference Protocol v2).

    Also runs the deployment controller and the alert evaluator (each once across every
    server on the same database), the webhook dispatcher and the pipeline scheduler
    (every server fires each due time once and runs executions). Stops gracefully on
    SIGTERM/SIGINT, draining the prediction log.

    The REST API under /api/v1 needs an API token on every request when the server
    listens on anything but loopback (see --auth). Prediction routes stay open unless
    an endpoint requires an inference token (`mlops endpoints require-token`).
    """
    # The decided policy travels in the settings, so every worker process applies it.
    given = (
        get_state(ctx)
        .settings()
        .with_overrides(cors_origins=tuple(cors_origin) if cors_origin else None)
    )
    settings, policy = settings_for_host(
        given, host, auth=auth, allow_anonymous_read=allow_anonymous_read
    )
    _announce(policy, host, settings.cors_origins)
    ml = connect(settings=settings)
    background: list[
        DeploymentController | AlertEvaluator | WebhookDispatcher | PipelineScheduler
    ] = []
    if controller:
        background = [
            DeploymentController(ml.deployments, ml.store),
            AlertEvaluator(ml.monitor.alerts, ml.store, interval=alert_interval),
            WebhookDispatcher(ml.store),
            PipelineScheduler(ml.pipelines, interval=pipeline_interval, workers=pipeline_workers),
        ]
    for worker in background:
        worker.start()
    try:
        serve(
            ml,
            host,
            port,
            workers,
            log_level=log_level,
            poll_interval=poll_interval,
            keep_alive_timeout=keep_alive_timeout,
            graceful_timeout=graceful_timeout,
        )
    finally:
        for worker in background:
            worker.stop()
        ml.close()


def _announce(policy: AuthPolicy, host: str, cors_origins: tuple[str, ...]) -> None:
    """Say which authentication mode is on; warn loudly when the API is open to a network."""
    typer.echo(f"mlops server: {policy.describe()} on {host}", err=True)
    if cors_origins:
        typer.echo(f"mlops server: CORS allowed for {', '.join(cors_origins)}", err=True)
    if policy is AuthPolicy.OFF and not is_loopback(host):
        typer.secho(
            f"WARNING: --auth off on {host}, which is not loopback: anyone who can reach "
            "this port can change experiments, runs and models as the server's identity. "
            "Use --auth required (with tokens from `mlops tokens create USER`), or "
            "--allow-anonymous-read to let only reads through.",
            err=True,
            fg=typer.colors.RED,
            bold=True,
        )
