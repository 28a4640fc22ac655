"""``mlops audit``: read the hash-chained audit log and verify that nobody changed it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from mlops.cli._common import format_time, get_state, print_json, stdout_console
from mlops.errors import IntegrityError, InvalidInput
from mlops.governance import AuditEntry, AuditLog

__all__ = ["audit_app", "parse_since"]

audit_app = typer.Typer(
    no_args_is_help=True,
    help="The audit log: who changed what, hash-chained so that tampering shows.",
)

_JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_AGO = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _audit(ctx: typer.Context) -> AuditLog:
    audit: AuditLog = get_state(ctx).connect().audit
    return audit


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """A moment from ``30m``/``12h``/``7d`` (ago) or an ISO date or date-time (local time
    unless it names a zone)."""
    match = _AGO.match(text.strip())
    current = now or datetime.now(UTC)
    if match is not None:
        return current - timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"--since {text!r} is neither a time ago such as '12h' or '7d' "
            "nor a date such as '2026-11-22' or '2026-11-22T09:30'"
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


@audit_app.command("list")
def list_entries(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="Only changes made by this actor.")] = None,
    action: Annotated[
        str | None,
        typer.Option(help="Only this action, e.g. model.stage_changed; 'token.*' for a family."),
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Only changes to this target, e.g. users/bob.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only since then: '12h', '7d' ago, or a date.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    before_id: Annotated[
        int | None, typer.Option(help="Only entries older than this id (the next page).")
    ] = None,
    json_output: _JSON = False,
) -> None:
    """Audit entries, newest first."""
    entries = _audit(ctx).list(
        actor=actor,
        action=action,
        target=target,
        since=None if since is None else parse_since(since),
        limit=limit,
        after_id=before_id,
    )
    if json_output:
        print_json([entry.to_json() for entry in entries])
        return
    noun = "entry" if len(entries) == 1 else "entries"
    table = Table(title=f"{len(entries)} {noun}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("id", "at", "actor", "action", "target", "change", "request"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            str(entry.id),
            format_time(entry.at),
            entry.actor,
            entry.action,
            entry.target,
            _change(entry),
            entry.request_id or "",
        )
    stdout_console().print(table)
    if len(entries) == limit:
        stdout_console().print(f"more with --before-id {entries[-1].id}", style="dim")


def _change(entry: AuditEntry) -> str:
    if entry.before is None and entry.after is None:
        return ""
    return f"{_compact(entry.before)} → {_compact(entry.after)}"


def _compact(state: Any) -> str:
    return "—" if state is None else json.dumps(state, ensure_ascii=False, separators=(",", ":"))


@audit_app.command("verify")
def verify(ctx: typer.Context, json_output: _JSON = False) -> None:
    """Recompute the hash chain; exit with 1 and the break's location if it is broken."""
    result = _audit(ctx).verify()
    if json_output:
        print_json(result.to_json())
        if not result.ok:
            raise typer.Exit(1)
        return
    if not result.ok:
        raise IntegrityError(
            f"the audit log is broken: {result.message} "
            f"({result.checked} entries before it verified)"
        )
    stdout_console().print(result.message)
