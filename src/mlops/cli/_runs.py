"""``mlops runs``: search runs, show one, compare several side by side."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, Group
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mlops.artifacts import ArtifactInfo
from mlops.cli._common import (
    experiment_ref,
    first_keys,
    format_duration,
    format_number,
    format_size,
    format_time,
    get_state,
    print_json,
    resolve_run_id,
    run_json,
    status_text,
    stdout_console,
)
from mlops.tracking import Run

__all__ = ["best_runs", "compare_json", "compare_table", "lower_is_better", "runs_app"]

runs_app = typer.Typer(
    help="Search runs, show one, compare several. A RUN_ID may be a unique prefix of an id.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON to stdout instead.")]
_LOWER_IS_BETTER = ("loss", "error", "rmse", "mae", "mse")
_SHOWN_KEYS = 3
_UNBOUNDED = 100_000
_DIFFERS = "yellow"
_BEST = "bold green"


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    experiments: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            metavar="EXPERIMENT",
            help="Only runs of this experiment (name, or id if all digits); repeatable. "
            "Default: every active experiment.",
        ),
    ] = None,
    filter_text: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            metavar="FILTER",
            help="Search filter, e.g. \"metrics.val_f1 > 0.8 and params.l2 = '0.01'\".",
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by",
            "-o",
            metavar="CLAUSE",
            help="Sort clause such as 'metrics.val_f1 DESC'; repeatable. Default: newest first.",
        ),
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max", "-n", min=1, help="Show at most this many runs.")
    ] = 100,
    page_token: Annotated[
        str | None,
        typer.Option(
            "--page-token",
            metavar="TOKEN",
            help="Continue after a previous page (its JSON next_page_token).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Search runs with a filter and sort order; shows a few metrics and params per run."""
    tracking = get_state(ctx).connect().tracking
    refs = None if not experiments else [experiment_ref(item) for item in experiments]
    page = tracking.search_runs(
        refs,
        filter_text,
        order_by=order_by or None,
        max_results=max_results,
        page_token=page_token,
    )
    if as_json:
        print_json(
            {"runs": [run_json(run) for run in page], "next_page_token": page.next_page_token}
        )
        return
    console = stdout_console()
    if not page:
        console.print("no runs match" if filter_text else "no runs yet")
        return
    names: dict[int, str] = {}
    if len({run.experiment_id for run in page}) > 1:
        names = {e.id: e.name for e in tracking.list_experiments(include_deleted=True)}
    table, hidden = _fitted_runs_table(console, page, names)
    console.print(table)
    if hidden:
        console.print(
            Text(f"{hidden} metric/param columns hidden: widen the terminal or use --json", "dim")
        )
    if page.next_page_token is not None:
        console.print(
            Text(
                f"showing the first {len(page)} runs; raise --max, or pass --page-token "
                f"{page.next_page_token} for the next page",
                style="dim",
            )
        )


def _fitted_runs_table(
    console: Console, found: Sequence[Run], names: dict[int, str]
) -> tuple[Table, int]:
    """The runs table with as many metric and param columns as fit; and how many did not."""
    metric_keys = first_keys([run.metrics for run in found], _SHOWN_KEYS)
    param_keys = first_keys([run.params for run in found], _SHOWN_KEYS)
    wanted = len(metric_keys) + len(param_keys)
    unbounded = console.options.update(max_width=_UNBOUNDED)
    while True:
        table = _runs_table(found, names, metric_keys, param_keys)
        shown = len(metric_keys) + len(param_keys)
        if not shown or Measurement.get(console, unbounded, table).maximum <= console.width:
            return table, wanted - shown
        # Params go first: metrics say more about a run.
        if param_keys:
            param_keys = param_keys[:-1]
        else:
            metric_keys = metric_keys[:-1]


def _runs_table(
    found: Sequence[Run], names: dict[int, str], metric_keys: list[str], param_keys: list[str]
) -> Table:
    table = Table(
        title=f"{len(found)} runs", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    table.add_column("run id", style="cyan", no_wrap=True)
    if names:
        table.add_column("experiment", overflow="fold")
    table.add_column("name", style="bold", overflow="fold", min_width=8)
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    for key in metric_keys:
        table.add_column(key, justify="right", header_style="bold green", no_wrap=True)
    for key in param_keys:
        table.add_column(key, justify="right", header_style="bold magenta", no_wrap=True)
    for run in found:
        cells: list[str | Text] = [run.id[:8]]
        if names:
            cells.append(names.get(run.experiment_id, str(run.experiment_id)))
        cells += [
            run.name,
            status_text(run.status),
            format_time(run.start_time),
            format_duration(run.duration_ms),
        ]
        cells += [_metric_cell(run, key) for key in metric_keys]
        cells += [run.params.get(key, "") for key in param_keys]
        table.add_row(*cells)
    return table


def _metric_cell(run: Run, key: str) -> str:
    value = run.metrics.get(key)
    return "" if value is None else format_number(value)


@runs_app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="Run id or a unique prefix.")],
    as_json: JsonOption = False,
) -> None:
    """Show a run: attributes, params, latest metrics, tags, datasets and artifacts."""
    tracking = get_state(ctx).connect().tracking
    run = tracking.get_run(resolve_run_id(tracking, run_id))
    experiment = tracking.get_experiment(run.experiment_id)
    artifacts = tracking.list_artifacts(run.id)
    if as_json:
        data = run_json(run) | {
            "experiment_name": experiment.name,
            "artifacts": [
                {"path": info.path, "size": info.size, "sha256": info.sha256} for info in artifacts
            ],
        }
        print_json(data)
        return
    attributes = _key_value_table()
    for key, value in (
        ("id", run.id),
        ("name", run.name),
        ("experiment", f"{experiment.name} (id {experiment.id})"),
        ("status", status_text(run.status)),
        ("started", format_time(run.start_time)),
        ("ended", format_time(run.end_time)),
        ("duration", format_duration(run.duration_ms)),
        ("parent run", run.parent_run_id or "—"),
        ("user", run.user or "—"),
        ("artifacts at", run.artifact_uri),
    ):
        attributes.add_row(key, value)
    parts: list[Any] = [Panel(attributes, title=f"run {run.name}", title_align="left")]
    parts.append(_mapping_section("params", dict(run.params)))
    metrics = {key: format_number(value) for key, value in run.metrics.items()}
    parts.append(_mapping_section("metrics (latest)", metrics))
    parts.append(_mapping_section("tags", dict(run.tags)))
    if run.inputs:
        datasets = Table(title="datasets", title_justify="left")
        for column in ("name", "context", "rows", "digest", "source"):
            datasets.add_column(column)
        for item in run.inputs:
            rows = item.dataset.num_rows
            datasets.add_row(
                item.dataset.name,
                item.context,
                "—" if rows is None else str(rows),
                item.dataset.digest[:12],
                item.dataset.source or "—",
            )
        parts.append(datasets)
    parts.append(_artifacts_section(artifacts))
    stdout_console().print(Group(*parts))


def _key_value_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    return table


def _mapping_section(title: str, values: dict[str, str]) -> Table | Text:
    if not values:
        return Text(f"{title}: none", style="dim")
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key in sorted(values):
        table.add_row(key, values[key])
    return table


def _artifacts_section(artifacts: list[ArtifactInfo]) -> Table | Text:
    if not artifacts:
        return Text("artifacts: none", style="dim")
    table = Table(title="artifacts", title_justify="left")
    table.add_column("path", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("sha256")
    for info in artifacts:
        table.add_row(info.path, format_size(info.size), info.sha256[:12])
    return table


@runs_app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: Annotated[
        list[str], typer.Argument(metavar="RUN_ID...", help="Two or more run ids (or prefixes).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Compare runs side by side: differing params in yellow, best metrics in bold green."""
    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two runs to compare", param_hint="RUN_ID...")
    tracking = get_state(ctx).connect().tracking
    found = [tracking.get_run(resolve_run_id(tracking, run_id)) for run_id in run_ids]
    if as_json:
        print_json(compare_json(found))
    else:
        stdout_console().print(compare_table(found))


def lower_is_better(metric_key: str) -> bool:
    """Whether the smallest value of a metric is its best (losses and errors)."""
    lowered = metric_key.lower()
    return any(word in lowered for word in _LOWER_IS_BETTER)


def best_runs(found: Sequence[Run], metric_key: str) -> list[str]:
    """Ids of the runs holding the best finite value of a metric (ties all count)."""
    values = {
        run.id: run.metrics[metric_key]
        for run in found
        if metric_key in run.metrics and math.isfinite(run.metrics[metric_key])
    }
    if not values:
        return []
    best = min(values.values()) if lower_is_better(metric_key) else max(values.values())
    return [run_id for run_id, value in values.items() if value == best]


def _differs(found: Sequence[Run], key: str) -> bool:
    return len({run.params.get(key) for run in found}) > 1


def compare_json(found: Sequence[Run]) -> dict[str, Any]:
    """The comparison as data: runs, differing params and the best run(s) per metric."""
    param_keys = sorted({key for run in found for key in run.params})
    metric_keys = sorted({key for run in found for key in run.metrics})
    return {
        "runs": [run_json(run) for run in found],
        "differing_params": [key for key in param_keys if _differs(found, key)],
        "best_metrics": {key: best_runs(found, key) for key in metric_keys},
    }


def compare_table(found: Sequence[Run], title: str = "run comparison") -> Table:
    """One column per run; rows: attributes, then params, then metrics."""
    table = Table(title=title, title_justify="left")
    table.add_column("", style="bold", no_wrap=True)
    for run in found:
        table.add_column(run.id[:8], justify="right", header_style="cyan")
    table.add_row("name", *(run.name for run in found))
    table.add_row("status", *(status_text(run.status) for run in found))
    table.add_row("duration", *(format_duration(run.duration_ms) for run in found))
    table.add_section()
    for key in sorted({key for run in found for key in run.params}):
        style = _DIFFERS if _differs(found, key) else None
        label = Text(f"params.{key}", style=style or "")
        table.add_row(label, *(Text(run.params.get(key, "—"), style=style or "") for run in found))
    table.add_section()
    for key in sorted({key for run in found for key in run.metrics}):
        best = set(best_runs(found, key))
        cells = [
            Text(
                format_number(run.metrics[key]) if key in run.metrics else "—",
                style=_BEST if run.id in best else "",
            )
            for run in found
        ]
        arrow = "↓" if lower_is_better(key) else "↑"
        table.add_row(Text(f"metrics.{key} {arrow}"), *cells)
    return table
