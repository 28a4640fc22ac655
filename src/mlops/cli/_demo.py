"""``mlops demo``: run the end-to-end tracking demo and point at what to look at next."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer
from rich.text import Text

from mlops._demo import MAX_DEMO_RUNS, run_demo
from mlops._demo_monitoring import DEMO_ENDPOINT
from mlops.cli._common import format_number, get_state, stdout_console
from mlops.cli._runs import compare_table

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
) -> None:
    """Train a small NumPy model sweep on synthetic data and track it (takes seconds)."""
    state = get_state(ctx)
    console = stdout_console()
    result = run_demo(state.connect(), console, runs=runs)
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
    suggestions = [
        [*prefix, "runs", "list", "-e", result.experiment_name],
        [
            *prefix,
            *("runs", "list", "-e", result.experiment_name),
            *("-f", "metrics.val_f1 > 0.7", "-o", "metrics.val_f1 DESC"),
        ],
        [*prefix, "runs", "show", best.id[:8]],
        [*prefix, "models", "show", result.model_version.model_name],
        [*prefix, "models", "history", result.model_version.model_name],
    ]
    if len(top) > 1:
        suggestions.append([*prefix, "runs", "compare", *(run.id[:8] for run in top)])
    endpoint = DEMO_ENDPOINT
    suggestions += [
        [*prefix, "monitor", "performance", endpoint, "--window", "2h", "--by", "version"],
        [*prefix, "monitor", "drift", endpoint, "--window", "1h"],
        [*prefix, "alerts", "list"],
    ]
    console.print("explore further:", style="bold")
    for command in suggestions:
        console.print(f"  {shlex.join(command)}", soft_wrap=True)
