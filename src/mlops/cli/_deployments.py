"""`mlops deploy`, `mlops deployments …` and `mlops predict`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from mlops.cli._common import format_time, get_state, print_json, stdout_console
from mlops.deployment import (
    ABTest,
    Analysis,
    BlueGreen,
    Canary,
    Deployment,
    Direct,
    Rolling,
    Shadow,
    Strategy,
)
from mlops.errors import InvalidInput

__all__ = ["deploy", "deployments_app", "predict"]

deployments_app = typer.Typer(
    no_args_is_help=True,
    help="Watch and steer rollouts: list, status, history, promote, pause, resume, abort, "
    "rollback. A DEPLOYMENT is an id, or an endpoint name for its latest deployment.",
)

_STRATEGIES = ("direct", "canary", "blue-green", "ab-test", "shadow", "rolling")


def _strategy(
    name: str,
    steps: str,
    interval: str,
    max_error_rate: float,
    max_p99_ms: float | None,
    metric: str | None,
    min_requests: int,
    share: float,
    sticky_header: str,
    auto_promote: bool,
    batch_size: int = 1,
) -> Strategy:
    gate = Analysis(
        max_error_rate=max_error_rate, max_p99_ms=max_p99_ms, metric=metric,
        min_requests=min_requests,
    )  # fmt: skip
    if name == "direct":
        return Direct()
    if name == "canary":
        try:
            percents = tuple(float(part) for part in steps.split(","))
        except ValueError:
            raise InvalidInput(f"--steps {steps!r} is not a list like 5,25,50,100") from None
        return Canary(steps_percent=percents, interval_seconds=interval, gate=gate)
    if name == "blue-green":
        return BlueGreen(preview_seconds=interval, gate=gate)
    if name == "ab-test":
        return ABTest(
            treatment_share=share, sticky_header=sticky_header, auto_promote=auto_promote,
            check_seconds=interval,
        )  # fmt: skip
    if name == "shadow":
        return Shadow(share=share)
    if name == "rolling":
        return Rolling(batch_size=batch_size, interval_seconds=interval, gate=gate)
    raise InvalidInput(f"--strategy {name!r} is not one of {', '.join(_STRATEGIES)}")


def deploy(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="Endpoint name, e.g. churn.")],
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Version: number, 1.2.0, stage or @alias.")],
    strategy: Annotated[
        str, typer.Option(help=f"One of {', '.join(_STRATEGIES)}; default canary.")
    ] = "canary",
    steps: Annotated[str, typer.Option(help="Canary traffic steps in percent.")] = "5,25,50,100",
    interval: Annotated[
        str, typer.Option(help="Step interval / preview time / A/B check period: 30s, 5m.")
    ] = "5m",
    max_error_rate: Annotated[
        float, typer.Option(help="Analysis: absolute error-rate bound.")
    ] = 0.05,
    max_p99_ms: Annotated[float | None, typer.Option(help="Analysis: p99 latency bound.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="Analysis metric from feedback: accuracy, rmse or mae.")
    ] = None,
    min_requests: Annotated[int, typer.Option(help="Fewer is 'inconclusive'.")] = 20,
    share: Annotated[float, typer.Option(help="A/B treatment share or shadow share.")] = 0.5,
    sticky_header: Annotated[
        str, typer.Option(help="A/B: header that keeps a user.")
    ] = "x-user-id",
    auto_promote: Annotated[bool, typer.Option(help="A/B: promote the winner by itself.")] = False,
    batch_size: Annotated[
        int, typer.Option(help="Rolling: serving workers switched per step.")
    ] = 1,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Roll a registry version out to an endpoint (the first deployment goes straight in)."""
    ml = get_state(ctx).connect()
    serving = {d.endpoint for d in ml.deployments.list()}
    chosen = (
        None
        if endpoint not in serving
        else _strategy(strategy, steps, interval, max_error_rate, max_p99_ms, metric,
                       min_requests, share, sticky_header, auto_promote, batch_size)
    )  # fmt: skip
    resolved: int | str = int(version) if version.isdigit() else version
    deployment = ml.deployments.deploy(endpoint, model, resolved, strategy=chosen)
    _show(deployment, json_output)


def predict(
    endpoint: Annotated[str, typer.Argument(help="Endpoint name.")],
    data: Annotated[str, typer.Option("--json", help="Request body: JSON text, or @file.json.")],
    url: Annotated[str, typer.Option(help="Base URL of a running mlops server.")] = (
        "http://127.0.0.1:8000"
    ),
    header: Annotated[
        list[str] | None, typer.Option("--header", "-H", help="Extra header 'Name: value'.")
    ] = None,
) -> None:
    """Send one prediction request to a running server and print the answer."""
    text = Path(data[1:]).read_text() if data.startswith("@") else data
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"--json is not valid JSON: {error}") from None
    headers = dict(_header(item) for item in header or [])
    try:
        response = httpx.post(
            f"{url.rstrip('/')}/v1/endpoints/{endpoint}/predict",
            json=body, headers=headers, timeout=30,
        )  # fmt: skip
    except httpx.HTTPError as error:
        raise InvalidInput(f"cannot reach {url}: {error}; is `mlops server` running?") from None
    print_json(response.json())
    if response.status_code >= 400:
        raise typer.Exit(1)


def _header(item: str) -> tuple[str, str]:
    name, separator, value = item.partition(":")
    if not separator:
        raise InvalidInput(f"header {item!r} is not 'Name: value'")
    return name.strip(), value.strip()


@deployments_app.command("list")
def list_deployments(
    ctx: typer.Context,
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint.")] = None,
    active: Annotated[bool, typer.Option(help="Only rollouts in progress.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Deployments, newest first."""
    found = get_state(ctx).connect().deployments.list(endpoint, active=active)
    if json_output:
        print_json([_json(d) for d in found])
        return
    table = Table(title=f"{len(found)} deployments")
    for column in ("id", "endpoint", "model", "from → to", "strategy", "state", "step", "updated"):
        table.add_column(column)
    for d in found:
        table.add_row(
            str(d.id), d.endpoint, d.model,
            f"{d.stable_version or '—'} → {d.candidate_version}", d.strategy, d.state.value,
            f"{d.step + 1}/{d.steps}", format_time(d.updated_at),
        )  # fmt: skip
    stdout_console().print(table)


@deployments_app.command("status")
def status(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="Deployment id or endpoint name.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A deployment's state, traffic split and last analysis."""
    manager = get_state(ctx).connect().deployments
    _show(manager.status(_ref(deployment)), json_output)


@deployments_app.command("history")
def history(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="Deployment id or endpoint name.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every transition and analysis of a deployment, with reasons."""
    events = get_state(ctx).connect().deployments.history(_ref(deployment))
    if json_output:
        print_json([asdict(e) for e in events])
        return
    table = Table(title="history")
    for column in ("time", "event", "state", "step", "detail", "actor"):
        table.add_column(column)
    for event in events:
        detail = event.detail.get("reason") or event.detail.get("analysis", {}).get("verdict")
        table.add_row(
            format_time(event.created_at), event.kind,
            f"{event.from_state or ''} → {event.to_state}" if event.to_state else "",
            "" if event.step is None else str(event.step + 1), str(detail or ""),
            event.actor or "",
        )  # fmt: skip
    stdout_console().print(table)


def _action(name: str, doc: str) -> None:
    def command(
        ctx: typer.Context,
        deployment: Annotated[str, typer.Argument(help="Deployment id or endpoint name.")],
        json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        manager = get_state(ctx).connect().deployments
        if name == "rollback":
            result = manager.rollback(str(deployment))
        else:
            result = getattr(manager, name)(_ref(deployment))
        _show(result, json_output)

    command.__doc__ = doc
    deployments_app.command(name)(command)


_action("promote", "Finish a rollout now: the candidate takes all traffic and production.")
_action("pause", "Hold a rollout at its current step.")
_action("resume", "Continue a paused rollout.")
_action("abort", "Stop a rollout: all traffic back to the stable version.")
_action("rollback", "Undo an endpoint's last rollout (ENDPOINT name).")


def _ref(deployment: str) -> int | str:
    return int(deployment) if deployment.isdigit() else deployment


def _json(d: Deployment) -> dict[str, Any]:
    data = asdict(d)
    data["state"] = d.state.value
    data["routes"] = None if d.routes is None else json.loads(d.routes.to_json())
    return data


def _show(d: Deployment, json_output: bool) -> None:
    if json_output:
        print_json(_json(d))
        return
    console = stdout_console()
    console.print(
        f"deployment {d.id}: {d.model} {d.stable_version or '—'} → {d.candidate_version} on "
        f"endpoint {d.endpoint} ({d.strategy}) — {d.state.value}, step {d.step + 1}/{d.steps}"
    )
    if d.reason:
        console.print(f"reason: {d.reason}")
    if d.routes is not None:
        split = ", ".join(
            f"v{r.version} {r.weight:.0%} ({r.label})" for r in d.routes.routes if r.weight > 0
        )
        console.print(f"traffic: {split}")
        if d.routes.shadow_version is not None:
            console.print(f"shadow: v{d.routes.shadow_version} gets {d.routes.shadow_share:.0%}")
        if d.routes.preview_version is not None:
            console.print(
                f"preview: v{d.routes.preview_version} with header {d.routes.preview_header}"
            )
