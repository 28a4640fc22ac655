"""``mlops db``: migrate the metadata database and show its schema revision."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from mlops.cli._common import get_state, print_json, stdout_console
from mlops.store import Store, current_revision, head_revision, upgrade

__all__ = ["db_app"]

db_app = typer.Typer(
    help="Migrate the metadata database (--database-url or MLOPS_DATABASE_URL) "
    "and show its schema revision.",
    no_args_is_help=True,
)


def _open_store(ctx: typer.Context) -> Store:
    # Not mlops.connect(): that would migrate an embedded store before we look at it.
    settings = get_state(ctx).settings()
    store = Store(settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous)
    ctx.call_on_close(store.dispose)
    return store


def _revision(store: Store) -> str | None:
    if store.sqlite_path is not None and not store.sqlite_path.exists():
        return None  # Looking must not create the file.
    return current_revision(store)


@db_app.command("upgrade")
def upgrade_database(ctx: typer.Context) -> None:
    """Migrate the database schema to the newest revision this mlops knows."""
    store = _open_store(ctx)
    before, after = upgrade(store)
    console = stdout_console()
    if before == after:
        console.print(f"database at {store.display_url} already at revision {after}")
    else:
        start = "an empty database" if before is None else before
        console.print(f"database at {store.display_url} upgraded from {start} to {after}")


@db_app.command("current")
def current_database_revision(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON to stdout instead.")] = False,
) -> None:
    """Show the database's schema revision and the newest one this mlops knows."""
    store = _open_store(ctx)
    current = _revision(store)
    head = head_revision()
    if as_json:
        print_json(
            {
                "database": store.display_url,
                "current": current,
                "head": head,
                "up_to_date": current == head,
            }
        )
        return
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("database", store.display_url)
    table.add_row("current", current or "none (empty database)")
    table.add_row("head", head)
    console = stdout_console()
    console.print(table)
    if current != head:
        console.print(Text("run `mlops db upgrade` to migrate it", style="yellow"))
