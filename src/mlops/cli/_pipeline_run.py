"""`mlops pipeline run CONFIG`: run a pipeline here and now, with a live view of its steps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from mlops.cli._common import format_duration, get_state, print_json, stdout_console
from mlops.errors import InvalidInput
from mlops.pipelines import EXECUTORS, Pipeline, PipelineRun, StepEvent, StepRun, run_pipeline

__all__ = ["parse_params", "run_command"]

_STATE_STYLES = {
    "succeeded": "green",
    "cached": "cyan",
    "failed": "bold red",
    "timed_out": "bold red",
    "skipped": "yellow",
    "cancelled": "yellow",
    "waiting": "dim",
}


def parse_params(values: list[str] | None) -> dict[str, Any]:
    """``k=v`` options as a dict; values are read as YAML scalars (numbers, booleans, text)."""
    import yaml

    params: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(
                f"--param takes key=value, got {item!r}; e.g. --param rows=100, or for a YAML "
                "config a dotted key: --param train.trials=20"
            )
        try:
            params[key.strip()] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            params[key.strip()] = raw
    return params


class _Progress:
    """The table of steps, updated from the threads that run them."""

    def __init__(self, pipeline: Pipeline, order: tuple[str, ...]) -> None:
        self._pipeline = pipeline
        self._order = order
        self._started: dict[str, float] = {}
        self._records: dict[str, StepRun] = {}
        self._lock = threading.Lock()
        self._clock = time.monotonic()

    def on_step(self, event: StepEvent) -> None:
        with self._lock:
            if event.record is None:
                self._started[event.step] = time.monotonic()
            else:
                self._records[event.step] = event.record

    def __rich__(self) -> RenderableType:
        table = Table(box=box.SIMPLE_HEAD, title=f"pipeline {self._pipeline.name}")
        table.add_column("step")
        table.add_column("state")
        table.add_column("duration", justify="right")
        table.add_column("detail", overflow="fold")
        now = time.monotonic()
        with self._lock:
            for name in self._order:
                record = self._records.get(name)
                if record is not None:
                    state = record.state.value
                    duration = format_duration(record.duration_ms)
                    detail = record.error or (
                        f"reused run {record.output_run_id}" if state == "cached" else ""
                    )
                    table.add_row(name, Text(state, _STATE_STYLES.get(state, "")), duration, detail)
                elif name in self._started:
                    elapsed = format_duration((now - self._started[name]) * 1000)
                    table.add_row(name, Spinner("dots", text="running"), elapsed, "")
                else:
                    table.add_row(name, Text("waiting", "dim"), "", "")
        total = format_duration((now - self._clock) * 1000)
        return Group(table, Text(f"elapsed {total}", style="dim"))


def run_command(
    ctx: typer.Context,
    config: Annotated[
        str,
        typer.Argument(
            help="A pipeline YAML config (e.g. the bundled sample) or module:attribute "
            "naming a Pipeline object.",
        ),
    ],
    stage: Annotated[
        str | None,
        typer.Option(help="Run only this step, on the latest outputs of the steps before it."),
    ] = None,
    executor: Annotated[
        str, typer.Option(help=f"Where steps run: {', '.join(EXECUTORS)}.")
    ] = "local",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Override a param: key=value (repeatable); for a YAML config a dotted key "
            "such as train.trials=20.",
        ),
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="Resume this failed pipeline run (its run id).")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="Experiment of the run (default: the pipeline's name).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run a pipeline now, showing each step as it starts and ends."""
    from mlops.orchestration import resolve_source

    pipeline, params = resolve_source(config, parse_params(param))
    ml = get_state(ctx).connect()
    kwargs: dict[str, Any] = {
        "params": params or None,
        "stage": stage,
        "resume_from": resume,
        "executor": executor,
        "experiment": experiment or pipeline.name,
    }
    console = stdout_console()
    if as_json or not console.is_terminal:
        result = _run_plain(ml, pipeline, kwargs, None if as_json else console)
    else:
        order = (stage,) if stage is not None else pipeline.order
        progress = _Progress(pipeline, order)
        with Live(progress, console=console, refresh_per_second=8, transient=False):
            result = run_pipeline(ml, pipeline, on_step=progress.on_step, **kwargs)
    if as_json:
        print_json(result.to_dict())
    else:
        _summary(console, result, config)
    if not result.succeeded:
        raise typer.Exit(1)


def _run_plain(
    ml: Any, pipeline: Pipeline, kwargs: dict[str, Any], console: Console | None
) -> PipelineRun:
    """Run without a live display: one line per step as it ends (none with --json)."""
    on_step: Callable[[StepEvent], None] | None = None
    if console is not None:
        lock = threading.Lock()

        def on_step(event: StepEvent) -> None:
            record = event.record
            if record is None:
                return
            with lock:
                state = record.state.value
                line = Text.assemble(
                    (f"{state:<9}", _STATE_STYLES.get(state, "")),
                    f" {event.step}  {format_duration(record.duration_ms)}",
                    (f"  {record.error}" if record.error else "", "red"),
                )
                console.print(line)

    return run_pipeline(ml, pipeline, on_step=on_step, **kwargs)


def _summary(console: Console, result: PipelineRun, config: str) -> None:
    style = "green" if result.succeeded else "bold red"
    console.print(
        Text.assemble(
            ("pipeline ", ""),
            (result.pipeline, "bold"),
            (f" {result.state.value}", style),
            f"  run {result.run_id}",
        )
    )
    failed = result.failed_steps
    if failed:
        first = failed[0]
        console.print(Text(f"step {first.name!r}: {first.error}", style="red"))
        console.print(f"fix it, then resume: mlops pipeline run {config} --resume {result.run_id}")
