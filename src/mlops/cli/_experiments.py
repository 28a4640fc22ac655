"""``mlops experiments``: list, create, rename, delete and restore experiments."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mlops.cli._common import (
    experiment_json,
    experiment_ref,
    format_time,
    get_state,
    print_json,
    stdout_console,
)
from mlops.tracking import LifecycleStage

__all__ = ["experiments_app"]

experiments_app = typer.Typer(
    help="List, create, rename, delete and restore experiments. "
    "An EXPERIMENT argument that is all digits is an id, anything else a name.",
    no_args_is_help=True,
)

ExperimentArgument = Annotated[
    str, typer.Argument(metavar="EXPERIMENT", help="Experiment name, or its id if all digits.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON to stdout instead.")]


@experiments_app.command("list")
def list_experiments(
    ctx: typer.Context,
    include_deleted: Annotated[
        bool, typer.Option("--all", "-a", help="Include deleted experiments.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List experiments, oldest first."""
    found = get_state(ctx).connect().tracking.list_experiments(include_deleted=include_deleted)
    if as_json:
        print_json({"experiments": [experiment_json(experiment) for experiment in found]})
        return
    console = stdout_console()
    if not found:
        console.print("no experiments yet; create one with `mlops experiments create NAME`")
        return
    table = Table(title="Experiments", title_justify="left")
    table.add_column("id", justify="right", style="cyan", no_wrap=True)
    table.add_column("name", style="bold")
    table.add_column("created", no_wrap=True)
    if include_deleted:
        table.add_column("stage")
    table.add_column("description", overflow="fold")
    for experiment in found:
        deleted = experiment.lifecycle_stage is LifecycleStage.DELETED
        row = [str(experiment.id), experiment.name, format_time(experiment.created_at)]
        if include_deleted:
            row.append(experiment.lifecycle_stage.value)
        row.append(experiment.description or "")
        table.add_row(*row, style="dim" if deleted else None)
    console.print(table)


@experiments_app.command("create")
def create_experiment(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the new experiment.")],
    description: Annotated[
        str | None, typer.Option("--description", "-d", help="What the experiment is about.")
    ] = None,
) -> None:
    """Create an experiment."""
    experiment = get_state(ctx).connect().tracking.create_experiment(name, description=description)
    stdout_console().print(f"created experiment '{experiment.name}' (id {experiment.id})")


@experiments_app.command("rename")
def rename_experiment(
    ctx: typer.Context,
    experiment: ExperimentArgument,
    new_name: Annotated[str, typer.Argument(help="The new name.")],
) -> None:
    """Rename an experiment; its runs stay with it."""
    tracking = get_state(ctx).connect().tracking
    before = tracking.get_experiment(experiment_ref(experiment))
    after = tracking.rename_experiment(before.id, new_name)
    stdout_console().print(f"renamed experiment '{before.name}' (id {before.id}) to '{after.name}'")


@experiments_app.command("delete")
def delete_experiment(ctx: typer.Context, experiment: ExperimentArgument) -> None:
    """Delete an experiment and hide its runs; `restore` brings them back."""
    tracking = get_state(ctx).connect().tracking
    found = tracking.get_experiment(experiment_ref(experiment))
    console = stdout_console()
    if found.lifecycle_stage is LifecycleStage.DELETED:
        console.print(f"experiment '{found.name}' (id {found.id}) is already deleted")
        return
    tracking.delete_experiment(found.id)
    console.print(
        f"deleted experiment '{found.name}' (id {found.id}); "
        f"undo with `mlops experiments restore {found.id}`"
    )


@experiments_app.command("restore")
def restore_experiment(ctx: typer.Context, experiment: ExperimentArgument) -> None:
    """Restore a deleted experiment and its runs."""
    tracking = get_state(ctx).connect().tracking
    found = tracking.get_experiment(experiment_ref(experiment))
    console = stdout_console()
    if found.lifecycle_stage is LifecycleStage.ACTIVE:
        console.print(f"experiment '{found.name}' (id {found.id}) is not deleted")
        return
    tracking.restore_experiment(found.id)
    console.print(f"restored experiment '{found.name}' (id {found.id})")
