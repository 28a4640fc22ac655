"""``mlops demo``: run the end-to-end demo, point at what to look at, keep serving it."""

from __future__ import annotations

import shlex
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from mlops._client import connect
from mlops._demo import MAX_DEMO_RUNS, DemoResult, run_demo
from mlops._demo_monitoring import DEMO_ENDPOINT
from mlops._demo_rollout import DemoServer
from mlops.api import settings_for_host
from mlops.cli._common import CliState, format_number, get_state, stdout_console
from mlops.cli._runs import compare_table
from mlops.errors import InvalidInput
from mlops.serving._server import bind_socket

__all__ = ["demo"]


def demo(
    ctx: typer.Context,
    runs: Annotated[
        int,
        typer.Option(
            "--runs",
            "-n",
            min=1,
            max=MAX_DEMO_RUNS,
            help="How many (learning rate, L2) settings to train.",
        ),
    ] = 6,
    host: Annotated[str, typer.Option(help="Interface the demo server listens on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port of the demo server (0: any free port).")] = 8000,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Keep the server (and its dashboard) running after the demo, until Ctrl-C.",
        ),
    ] = True,
    step_seconds: Annotated[
        float, typer.Option(min=0.5, hidden=True, help="Seconds per canary step.")
    ] = 4.0,
) -> None:
    """Run the end-to-end demo: train and track a model sweep, register two versions,
    deploy v1 and roll v2 out as a canary under live traffic on a real server, run the
    training pipeline, drift the traffic until an alert fires and retrains; then keep
    serving the dashboard (about a minute)."""
    state = get_state(ctx)
    console = stdout_console()
    try:
        sock = bind_socket(host, port)
    except InvalidInput as error:
        raise InvalidInput(
            f"{error}; pass --port with a free port (--port 0 takes any free port)"
        ) from None
    # As `mlops server`: off loopback, the control-plane API (and so the dashboard's data)
    # needs a token unless MLOPS_AUTH says otherwise.
    settings, policy = settings_for_host(state.settings(), host)
    ml = connect(settings=settings)
    server = DemoServer(ml, sock)
    try:
        server.start()
        console.print(f"demo server listening on {server.url} ({policy.describe()})")
        result = run_demo(ml, console, runs=runs, server=server, step_seconds=step_seconds)
        _summarize(console, state, result)
        dashboard = f"{server.url}/ui/"
        console.print()
        console.print(Text.assemble("dashboard: ", (dashboard, "bold")))
        console.print(f"API docs:  {server.url}/api/docs")
        if serve:
            server.start_background()
            console.print("serving until Ctrl-C (the rollout controller, alerts and schedules run)")
            _wait_for_signal(server)
            console.print("stopping the demo server")
    finally:
        server.stop()
        sock.close()
        ml.close()


def _wait_for_signal(server: DemoServer) -> None:
    """Block until SIGINT or SIGTERM (or until the server stops by itself)."""
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        while server.running and not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _summarize(console: Console, state: CliState, result: DemoResult) -> None:
    """The best run, the top runs side by side, and commands to explore further."""
    best = result.ranked_runs[0]
    console.print()
    console.print(
        Text.assemble(
            "best run: ",
            (best.name, "bold"),
            f" ({best.id[:8]})  val_f1 ",
            (format_number(best.metrics["val_f1"]), "bold green"),
            f"  val_accuracy {format_number(best.metrics['val_accuracy'])}",
        )
    )
    top = result.ranked_runs[:3]
    if len(top) > 1:
        console.print(compare_table(top, title=f"top {len(top)} runs by val_f1"))

    prefix = ["mlops", *state.global_args()]
    model = result.model_version.model_name
    suggestions = [
        [*prefix, "runs", "list", "-e", result.experiment_name],
        [
            *prefix,
            *("runs", "list", "-e", result.experiment_name),
            *("-f", "metrics.val_f1 > 0.7", "-o", "metrics.val_f1 DESC"),
        ],
        [*prefix, "runs", "show", best.id[:8]],
        [*prefix, "models", "show", model],
        [*prefix, "models", "history", model],
    ]
    if len(top) > 1:
        suggestions.append([*prefix, "runs", "compare", *(run.id[:8] for run in top)])
    endpoint = DEMO_ENDPOINT
    suggestions += [
        [*prefix, "deployments", "history", endpoint],
        [*prefix, "monitor", "performance", endpoint, "--window", "2h", "--by", "version"],
        [*prefix, "monitor", "drift", endpoint, "--window", "1h"],
        [*prefix, "alerts", "list"],
    ]
    console.print("explore further:", style="bold")
    for command in suggestions:
        console.print(f"  {shlex.join(command)}", soft_wrap=True)
