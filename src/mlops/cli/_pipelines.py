"""`mlops pipeline …`: register pipelines, schedule and trigger them, and see their runs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from mlops.cli._common import format_duration, format_time, get_state, print_json, stdout_console
from mlops.cli._pipeline_run import parse_params, run_command
from mlops.errors import NotFound
from mlops.orchestration import Execution, PipelineOrchestrator, RegisteredPipeline

__all__ = ["pipelines_app"]

pipelines_app = typer.Typer(
    no_args_is_help=True,
    help="Pipelines: register, schedule, trigger and cancel them, and list their runs.",
)

# `mlops pipeline run CONFIG`: run here and now, with a live view of the steps.
pipelines_app.command("run")(run_command)

_STATE_STYLES = {
    "scheduled": "dim",
    "queued": "cyan",
    "running": "bold blue",
    "retrying": "yellow",
    "succeeded": "green",
    "cached": "green",
    "failed": "bold red",
    "timed_out": "bold red",
    "cancelled": "yellow",
}
_JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_PARAMS = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="A pipeline param: key=value (repeatable)."),
]


def _pipelines(ctx: typer.Context) -> PipelineOrchestrator:
    return get_state(ctx).connect().pipelines


@pipelines_app.command("register")
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The name to register the pipeline under.")],
    source: Annotated[
        str,
        typer.Argument(help="package.module:attribute naming a Pipeline, or a YAML config."),
    ],
    schedule: Annotated[
        str | None, typer.Option(help="Cron expression, e.g. '0 3 * * *' (daily at 03:00).")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="Time zone of the schedule (IANA name; default UTC).")
    ] = None,
    catchup: Annotated[
        bool | None,
        typer.Option(help="After downtime, run every missed due time, not just the latest."),
    ] = None,
    max_active: Annotated[int | None, typer.Option(help="Executions active at once (1).")] = None,
    retries: Annotated[int | None, typer.Option(help="Attempts after a failure (0).")] = None,
    retry_backoff: Annotated[
        str | None, typer.Option(help="Wait before the first retry (doubles each time): 10s.")
    ] = None,
    retry_on: Annotated[
        list[str] | None,
        typer.Option(help="Retry only these exception types (repeatable; default: any)."),
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Time limit of each attempt: 30m, 2h.")
    ] = None,
    executor: Annotated[
        str | None, typer.Option(help="Where steps run: local, threads or ray (local).")
    ] = None,
    param: _PARAMS = None,
    json_output: _JSON = False,
) -> None:
    """Register a pipeline, or update one: options not given keep their registered value
    (so triggers and notifications set from Python survive)."""
    orchestrator = _pipelines(ctx)
    given = {
        "schedule": schedule,
        "timezone": timezone,
        "catchup": catchup,
        "max_active": max_active,
        "retries": retries,
        "retry_backoff": retry_backoff,
        "retry_on": retry_on,
        "timeout": timeout,
        "executor": executor,
        "params": parse_params(param) if param else None,
    }
    try:
        spec = orchestrator.get(name).get_params()
    except NotFound:
        spec = {}
    spec.pop("name", None)
    spec.pop("source", None)
    spec.update({key: value for key, value in given.items() if value is not None})
    registered = orchestrator.register(name, source, **spec)
    if json_output:
        print_json(registered.to_json())
        return
    stdout_console().print(f"registered pipeline {name!r} ({registered.source}){_when(registered)}")


@pipelines_app.command("schedule")
def schedule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A registered pipeline.")],
    cron: Annotated[
        str | None, typer.Argument(help="Cron expression, e.g. '*/15 * * * *'.")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="Time zone of the schedule (default: unchanged).")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the schedule.")] = False,
) -> None:
    """Set or replace the schedule of a pipeline, or remove it with --clear."""
    if clear == (cron is not None):
        raise typer.BadParameter("give a cron expression, or --clear to remove the schedule")
    registered = _pipelines(ctx).set_schedule(name, None if clear else cron, timezone=timezone)
    if clear:
        stdout_console().print(f"pipeline {name!r} has no schedule now")
    else:
        stdout_console().print(f"pipeline {name!r}{_when(registered)}")


@pipelines_app.command("trigger")
def trigger(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A registered pipeline.")],
    param: _PARAMS = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept with the execution).")] = None,
    json_output: _JSON = False,
) -> None:
    """Queue an execution now (a running `mlops server` picks it up)."""
    execution = _pipelines(ctx).trigger(name, parse_params(param), reason=reason)
    if json_output:
        print_json(execution.to_json())
        return
    stdout_console().print(
        f"execution {execution.id} of pipeline {name!r} is {execution.state.value}"
    )


@pipelines_app.command("runs")
def runs(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this pipeline.")] = None,
    state: Annotated[
        str | None,
        typer.Option(help="Only in this state: queued, running, retrying, failed, succeeded…"),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    json_output: _JSON = False,
) -> None:
    """Executions of registered pipelines, newest first."""
    found = _pipelines(ctx).executions(name, state=state, limit=limit)
    if json_output:
        print_json([execution.to_json() for execution in found])
        return
    title = f"{len(found)} execution{'' if len(found) == 1 else 's'}"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("id", "pipeline", "state", "trigger", "created", "duration", "tries", "error"):
        table.add_column(column, overflow="fold")
    for execution in found:
        table.add_row(
            str(execution.id),
            execution.pipeline,
            Text(execution.state.value, style=_STATE_STYLES.get(execution.state.value, "")),
            execution.trigger,
            format_time(execution.created_at),
            format_duration(execution.duration_ms),
            str(len(execution.attempts)),
            execution.error or "",
        )
    stdout_console().print(table)


@pipelines_app.command("show")
def show(
    ctx: typer.Context,
    execution_id: Annotated[int, typer.Argument(help="The execution (see `mlops pipeline runs`).")],
    json_output: _JSON = False,
) -> None:
    """One execution: its trigger, attempts (tracked runs) and log."""
    execution = _pipelines(ctx).execution(execution_id)
    if json_output:
        print_json(execution.to_json())
        return
    console = stdout_console()
    console.print(
        Text.assemble(
            f"execution {execution.id} of pipeline ",
            (execution.pipeline, "bold"),
            " ",
            (execution.state.value, _STATE_STYLES.get(execution.state.value, "")),
            f"  trigger {execution.trigger}  duration {format_duration(execution.duration_ms)}",
        )
    )
    if execution.error:
        console.print(Text(execution.error, style="red"))
    for attempt in execution.attempts:
        console.print(
            f"attempt {attempt.number}: {attempt.state or 'running'}  run {attempt.run_id or '—'}"
            f"  {format_duration(attempt.duration_ms)}"
        )
    _print_log(execution)


def _print_log(execution: Execution) -> None:
    table = Table(box=box.SIMPLE_HEAD, title="log", title_justify="left")
    for column in ("time", "attempt", "step", "state", "duration", "detail"):
        table.add_column(column, overflow="fold")
    for line in execution.log:
        duration = None if line.duration_ms is None else round(line.duration_ms)
        table.add_row(
            format_time(line.at),
            "" if line.attempt is None else str(line.attempt),
            line.step or "",
            Text(line.state, style=_STATE_STYLES.get(line.state, "")),
            "" if duration is None else format_duration(duration),
            " ".join(part for part in (line.message, line.error) if part),
        )
    stdout_console().print(table)


@pipelines_app.command("cancel")
def cancel(
    ctx: typer.Context,
    execution_id: Annotated[int, typer.Argument(help="The execution (see `mlops pipeline runs`).")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in its log).")] = None,
) -> None:
    """Cancel an execution; a running one stops before its next step."""
    execution = _pipelines(ctx).cancel(execution_id, reason=reason)
    what = "will stop before its next step" if execution.cancel_requested else "is cancelled"
    if execution.state.finished:
        what = "is cancelled"
    stdout_console().print(f"execution {execution.id} of pipeline {execution.pipeline!r} {what}")


@pipelines_app.command("list")
def list_pipelines(ctx: typer.Context, json_output: _JSON = False) -> None:
    """Registered pipelines, with their schedules and triggers."""
    found = _pipelines(ctx).list()
    if json_output:
        print_json([item.to_json() for item in found])
        return
    table = Table(
        title=f"{len(found)} pipeline{'' if len(found) == 1 else 's'}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for column in ("name", "source", "schedule", "next", "triggers", "retries", "state"):
        table.add_column(column, overflow="fold")
    for item in found:
        table.add_row(
            item.name,
            item.source,
            f"{item.schedule} ({item.timezone})" if item.schedule else "—",
            format_time(item.next_fire_at),
            ", ".join(trigger.describe() for trigger in item.triggers) or "—",
            str(item.retries),
            Text("paused", style="yellow") if item.paused else Text("active", style="green"),
        )
    stdout_console().print(table)


@pipelines_app.command("pause")
def pause(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="A registered pipeline.")]
) -> None:
    """Stop firing the schedule and triggers of a pipeline (manual triggers still run)."""
    _pipelines(ctx).pause(name)
    stdout_console().print(f"paused pipeline {name!r}")


@pipelines_app.command("resume")
def resume(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="A registered pipeline.")]
) -> None:
    """Fire the schedule and triggers of a paused pipeline again."""
    registered = _pipelines(ctx).resume(name)
    stdout_console().print(f"resumed pipeline {name!r}{_when(registered)}")


@pipelines_app.command("unregister")
def unregister(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="A registered pipeline.")]
) -> None:
    """Forget a pipeline; its pending executions are cancelled, its history stays."""
    _pipelines(ctx).unregister(name)
    stdout_console().print(f"unregistered pipeline {name!r}")


def _when(registered: RegisteredPipeline) -> str:
    if registered.schedule is None:
        return ""
    return (
        f" runs on '{registered.schedule}' ({registered.timezone}), next at "
        f"{format_time(registered.next_fire_at)}"
    )
