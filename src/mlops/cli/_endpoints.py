"""``mlops endpoints``: who may call an endpoint's prediction routes (inference tokens)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mlops.cli._common import format_time, get_state, print_json, stdout_console
from mlops.errors import InvalidInput
from mlops.governance import AccessControl

__all__ = ["endpoints_app"]

endpoints_app = typer.Typer(
    no_args_is_help=True,
    help="Endpoints' inference tokens: require one for the prediction routes, and manage them.",
)
token_app = typer.Typer(
    no_args_is_help=True,
    help="Inference tokens of an endpoint: create (shown once), list, revoke.",
)
endpoints_app.add_typer(token_app, name="token")

_JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_TOKEN_STYLES = {"active": "green", "revoked": "red", "expired": "yellow"}


def _access(ctx: typer.Context) -> AccessControl:
    access: AccessControl = get_state(ctx).connect().access
    return access


@endpoints_app.command("require-token")
def require_token(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="The endpoint's name.")],
    required: Annotated[
        bool | None,
        typer.Option(
            "--on/--off",
            help="--on: predictions need one of the endpoint's inference tokens; --off: "
            "anyone may call it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Require an inference token for an endpoint's prediction routes (--on), or not."""
    if required is None:
        raise InvalidInput("give --on (require an inference token) or --off")
    changed = _access(ctx).require_inference_token(endpoint, required)
    state = "requires an inference token" if required else "is open to every caller"
    note = "" if changed else " (already so)"
    stdout_console().print(f"endpoint {endpoint} {state}{note}")
    if changed:
        stdout_console().print("serving replicas apply it within a few seconds", style="dim")


@token_app.command("create")
def create_token(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="The endpoint the token opens.")],
    name: Annotated[
        str, typer.Option("--name", "-n", help="Who the token is for, e.g. checkout-app.")
    ] = "default",
    expires: Annotated[
        str | None,
        typer.Option(help="Lifetime such as '12h', '30d' or '2w' (default: never expires)."),
    ] = None,
    json_output: _JSON = False,
) -> None:
    """Create an inference token; it is printed once and cannot be shown again."""
    token, info = _access(ctx).create_inference_token(endpoint, name=name, expires_in=expires)
    if json_output:
        print_json({"token": token, **info.to_json()})
    else:
        stdout_console().print(token, soft_wrap=True)
    expiry = (
        "never expires" if info.expires_at is None else f"expires {format_time(info.expires_at)}"
    )
    warning = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    warning.print(
        f"inference token {info.id} ({info.name!r}) for endpoint {info.endpoint}, {expiry}. "
        "Copy it now: it will not be shown again.",
        style="yellow",
    )


@token_app.command("list")
def list_tokens(
    ctx: typer.Context,
    endpoint: Annotated[
        str | None, typer.Argument(help="Only this endpoint's tokens.", show_default=False)
    ] = None,
    json_output: _JSON = False,
) -> None:
    """Inference tokens (never the tokens themselves: their first characters)."""
    found = _access(ctx).list_inference_tokens(endpoint)
    if json_output:
        print_json([token.to_json() for token in found])
        return
    noun = "inference token" if len(found) == 1 else "inference tokens"
    table = Table(title=f"{len(found)} {noun}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("id", "endpoint", "name", "token", "status", "created", "by", "expires"):
        table.add_column(column, overflow="fold")
    for token in found:
        status = token.status()
        table.add_row(
            str(token.id),
            token.endpoint,
            token.name,
            token.prefix + "…",
            Text(status, style=_TOKEN_STYLES[status]),
            format_time(token.created_at),
            token.created_by,
            format_time(token.expires_at),
        )
    stdout_console().print(table)


@token_app.command("revoke")
def revoke_token(
    ctx: typer.Context,
    token_id: Annotated[
        int, typer.Argument(metavar="ID", help="The token's id (endpoints token list).")
    ],
) -> None:
    """Revoke an inference token: serving replicas refuse it within a few seconds."""
    info = _access(ctx).revoke_inference_token(token_id)
    stdout_console().print(
        f"revoked inference token {info.id} ({info.name!r} of endpoint {info.endpoint})"
    )
