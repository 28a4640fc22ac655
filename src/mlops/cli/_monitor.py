"""`mlops monitor performance` and `mlops monitor drift`."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from mlops.cli._common import format_number, get_state, print_json, stdout_console
from mlops.errors import InvalidInput, MissingDependency
from mlops.monitoring import PerformanceGroup, PerformanceReport
from mlops.monitoring.drift import DriftReport

__all__ = ["monitor_app", "read_table_file"]

monitor_app = typer.Typer(
    no_args_is_help=True,
    help="Performance and drift of an endpoint's live traffic (its prediction log).",
)

_WINDOW_HELP = "Time window ending now: 30s, 5m, 1h, 1d…"


@monitor_app.command("performance")
def performance_command(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="Endpoint name (as served or recorded).")],
    window: Annotated[str, typer.Option(help=_WINDOW_HELP)] = "1h",
    last: Annotated[
        int | None, typer.Option(min=1, help="The last N requests instead of a time window.")
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Split by 'version' or 'route' (A/B arms, canary).")
    ] = None,
    version: Annotated[int | None, typer.Option(help="Only this version's requests.")] = None,
    min_labels: Annotated[
        int, typer.Option(min=1, help="Labelled rows needed before metrics are reported.")
    ] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Requests, errors, latency, model metrics from feedback, and change from baseline."""
    ml = get_state(ctx).connect()
    report = ml.monitor.performance(
        endpoint,
        window=None if last is not None else window,
        last=last,
        by=by,
        version=version,
        min_labels=min_labels,
    )
    if as_json:
        print_json(report.to_dict())
        return
    console = stdout_console()
    console.print(
        Text.assemble(
            ("performance ", "bold"),
            (endpoint, "bold cyan"),
            f" over {report.window.label}"
            + (f", task {report.task}" if report.task else "")
            + (f", {report.orphan_feedback} orphan feedback" if report.orphan_feedback else ""),
        )
    )
    groups = [report.overall, *report.groups]
    console.print(_performance_table(report, groups))
    if report.status != "ok" and report.reason:
        console.print(Text(f"metrics: {report.reason}", style="yellow"))
    if report.degradation:
        console.print(_degradation_table(report))


def _performance_table(report: PerformanceReport, groups: list[PerformanceGroup]) -> Table:
    """One row per figure, one column per group (all traffic, then each version or arm)."""
    metric_names: list[str] = []
    for group in groups:
        for name in group.metrics or {}:
            if name not in metric_names:
                metric_names.append(name)
    table = Table(show_edge=False)
    table.add_column(report.by or "", style="bold")
    for index, group in enumerate(groups):
        table.add_column("all" if index == 0 else str(group.key), justify="right")

    def errors(group: PerformanceGroup) -> str:
        rate = group.error_rate
        return str(group.errors) + ("" if rate is None else f" ({rate:.1%})")

    rows: list[tuple[str, Any]] = [
        ("requests", lambda g: str(g.requests)),
        ("errors", errors),
        ("requests/s", lambda g: _number(g.throughput)),
        ("latency p50 ms", lambda g: _number(g.latency_p50_ms)),
        ("latency p95 ms", lambda g: _number(g.latency_p95_ms)),
        ("latency p99 ms", lambda g: _number(g.latency_p99_ms)),
        ("labelled rows", lambda g: str(g.labelled)),
    ]
    rows += [(name, _metric_cell(name)) for name in metric_names]
    estimated = sorted({name for g in groups if g.estimated for name in g.estimated.metrics})
    rows += [(f"estimated {name}", _estimate_cell(name)) for name in estimated]
    for label, cell in rows:
        table.add_row(label, *(cell(group) for group in groups))
    return table


def _metric_cell(name: str) -> Any:
    return lambda group: _number((group.metrics or {}).get(name))


def _estimate_cell(name: str) -> Any:
    return lambda group: _number(
        None if group.estimated is None else group.estimated.metrics.get(name)
    )


def _degradation_table(report: PerformanceReport) -> Table:
    table = Table(title="against the baseline", show_edge=False)
    for heading in ("metric", "baseline", "now", "change"):
        table.add_column(heading, justify="left" if heading == "metric" else "right")
    for name, item in report.degradation.items():
        worse = item.degradation is not None and item.degradation > 0
        change = "" if item.change is None else f"{item.change:+.1%}"
        table.add_row(
            name,
            format_number(item.baseline),
            format_number(item.current),
            Text(change, style="red" if worse else "green"),
        )
    return table


@monitor_app.command("drift")
def drift_command(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="Endpoint name (as served or recorded).")],
    window: Annotated[str, typer.Option(help=_WINDOW_HELP)] = "1d",
    last: Annotated[
        int | None, typer.Option(min=1, help="The last N requests instead of a time window.")
    ] = None,
    current: Annotated[
        Path | None,
        typer.Option(help="Compare this CSV/Parquet/JSON file instead of the logged inputs."),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(help="Reference CSV/Parquet/JSON file (default: the version's profile)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Registered model to compare with (default: served).")
    ] = None,
    version: Annotated[int | None, typer.Option(help="The version whose profile to use.")] = None,
    method: Annotated[
        str | None, typer.Option(help="One test for every column (default: chosen per column).")
    ] = None,
    drift_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of drifted columns for dataset drift.")
    ] = 0.5,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Which input columns (and predictions) drifted from the model's reference data."""
    ml = get_state(ctx).connect()
    report = ml.monitor.drift(
        endpoint,
        window=None if last is not None else window,
        last=last,
        current=None if current is None else read_table_file(current),
        reference=None if reference is None else read_table_file(reference),
        model=model,
        version=version,
        method=method,
        drift_share=drift_share,
    )
    if html is not None:
        report.save_html(html)
    if as_json:
        print_json(report.to_dict())
        return
    console = stdout_console()
    console.print(drift_table(report, title=f"drift of {endpoint}"))
    verdict = (
        Text("dataset drift", style="bold red")
        if report.dataset_drift
        else Text("no dataset drift", style="bold green")
    )
    console.print(
        Text.assemble(
            verdict,
            f": {report.drifted_count} of {_tested(report)} columns drifted "
            f"(threshold {report.drift_share:.0%}); "
            f"reference {report.reference_rows} rows, current {report.current_rows} rows",
        )
    )
    if report.multivariate is not None:
        check = report.multivariate
        verdict_text = (
            Text("drift", style="red")
            if check.drifted
            else Text("no drift" if check.drifted is False else "not enough data")
        )
        console.print(Text.assemble("multivariate (PCA reconstruction): ", verdict_text))
    for warning in report.warnings:
        console.print(Text.assemble(("warning: ", "yellow"), warning))
    if html is not None:
        console.print(f"HTML report: {html}")


def drift_table(report: DriftReport, *, title: str) -> Table:
    """A row per column: method, statistic, threshold, p-value and verdict."""
    table = Table(title=title, show_edge=False)
    for heading in ("column", "kind", "method", "statistic", "threshold", "p-value", "verdict"):
        table.add_column(
            heading, justify="right" if heading in {"statistic", "p-value"} else "left"
        )
    columns = list(report.columns)
    if report.prediction is not None:
        columns.append(report.prediction)
    for column in columns:
        style = {"drift": "red", "no_drift": "green"}.get(column.status, "yellow")
        name = column.name + (" (prediction)" if column is report.prediction else "")
        table.add_row(
            name,
            column.kind,
            column.method or "",
            _number(column.statistic),
            _number(column.threshold),
            _number(column.p_value),
            Text(column.status.replace("_", " "), style=style),
        )
    return table


def _tested(report: DriftReport) -> int:
    return sum(1 for column in report.columns if column.drifted is not None)


def _number(value: float | None) -> str:
    return "—" if value is None else format_number(value)


def read_table_file(path: Path) -> Any:
    """A CSV, Parquet, JSON or JSON-lines file as a DataFrame (or columns without pandas)."""
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file; give a CSV, Parquet or JSON file")
    suffix = path.suffix.lower()
    pd: Any = None
    try:
        import pandas  # type: ignore[import-untyped,unused-ignore]

        pd = pandas
    except ImportError:
        pass
    if suffix == ".parquet":
        if pd is None:
            raise MissingDependency.for_extra("pandas", "sklearn", "reading Parquet files")
        return pd.read_parquet(path)
    if suffix in {".json", ".jsonl", ".ndjson"}:
        text = path.read_text(encoding="utf-8")
        try:
            if suffix == ".json":
                return json.loads(text)
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as error:
            raise InvalidInput(f"{path} is not valid JSON: {error}") from None
    if suffix not in {".csv", ".tsv", ".txt"}:
        raise InvalidInput(f"{path}: unknown file type {suffix!r}; use .csv, .parquet or .json")
    if pd is not None:
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ","))
    if not rows:
        raise InvalidInput(f"{path} holds no rows")
    return {name: _csv_column([row[name] for row in rows]) for name in rows[0]}


def _csv_column(values: list[str]) -> Any:
    try:
        return np.array([float(v) if v != "" else np.nan for v in values], dtype=float)
    except ValueError:
        return np.array([v if v != "" else None for v in values], dtype=object)
