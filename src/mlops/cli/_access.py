"""``mlops users`` and ``mlops tokens``: who may use the API, with which role, and tokens."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mlops.cli._common import format_time, get_state, print_json, stdout_console
from mlops.errors import InvalidInput
from mlops.governance import ROLES, AccessControl, TokenInfo

__all__ = ["tokens_app", "users_app"]

users_app = typer.Typer(
    no_args_is_help=True,
    help=f"Users of the API and their roles ({' < '.join(ROLES)}).",
)
tokens_app = typer.Typer(
    no_args_is_help=True,
    help="API tokens: create (shown once), list, revoke.",
)

_JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_ROLE_HELP = f"One of {', '.join(ROLES)}."
_TOKEN_STYLES = {"active": "green", "revoked": "red", "expired": "yellow"}


def _access(ctx: typer.Context) -> AccessControl:
    access: AccessControl = get_state(ctx).connect().access
    return access


# -- users ---------------------------------------------------------------------------------


@users_app.command("create")
def create_user(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user's name.")],
    role: Annotated[str, typer.Option("--role", "-r", help=_ROLE_HELP)],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="PATTERN",
            help="Limit the user to models matching this glob (repeatable); default: all.",
        ),
    ] = None,
) -> None:
    """Create a user with a role."""
    user = _access(ctx).create_user(name, role, models=model or None)
    scope = "every model" if user.models is None else "models " + ", ".join(user.models)
    stdout_console().print(f"created user {user.name} (role {user.role}, {scope})")
    stdout_console().print(f"give it a token with `mlops tokens create {user.name}`")


@users_app.command("list")
def list_users(ctx: typer.Context, json_output: _JSON = False) -> None:
    """Users, by name."""
    found = _access(ctx).list_users()
    if json_output:
        print_json([user.to_json() for user in found])
        return
    noun = "user" if len(found) == 1 else "users"
    table = Table(title=f"{len(found)} {noun}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("name", "role", "models", "created", "status"):
        table.add_column(column, overflow="fold")
    for user in found:
        table.add_row(
            user.name,
            user.role,
            "all" if user.models is None else ", ".join(user.models),
            format_time(user.created_at),
            Text("disabled", style="red") if user.disabled else Text("active", style="green"),
        )
    stdout_console().print(table)


@users_app.command("set-role")
def set_role(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user's name.")],
    role: Annotated[str, typer.Argument(help=_ROLE_HELP)],
) -> None:
    """Change a user's role."""
    user = _access(ctx).set_role(name, role)
    stdout_console().print(f"user {user.name} now has role {user.role}")


@users_app.command("set-models")
def set_models(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user's name.")],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", metavar="PATTERN", help="A model-name glob the user may act on."
        ),
    ] = None,
    every_model: Annotated[
        bool, typer.Option("--all", help="Lift the limit: the user may act on every model.")
    ] = False,
) -> None:
    """Limit a user to models matching patterns (--model, repeatable), or lift it (--all)."""
    if bool(model) == every_model:
        raise InvalidInput("give either --model PATTERN (repeatable) or --all")
    user = _access(ctx).set_models(name, None if every_model else model)
    scope = "every model" if user.models is None else "models " + ", ".join(user.models)
    stdout_console().print(f"user {user.name} may now act on {scope}")


@users_app.command("disable")
def disable_user(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user's name.")]
) -> None:
    """Stop a user's tokens from working, keeping the user and its tokens."""
    _access(ctx).disable_user(name)
    stdout_console().print(f"disabled user {name}; `mlops users enable {name}` undoes it")


@users_app.command("enable")
def enable_user(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user's name.")]
) -> None:
    """Let a disabled user's tokens work again."""
    _access(ctx).enable_user(name)
    stdout_console().print(f"enabled user {name}")


@users_app.command("delete")
def delete_user(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user's name.")]
) -> None:
    """Delete a user and all of its tokens."""
    _access(ctx).delete_user(name)
    stdout_console().print(f"deleted user {name} and its tokens")


# -- tokens --------------------------------------------------------------------------------


@tokens_app.command("create")
def create_token(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[
        str, typer.Option("--name", "-n", help="What the token is for, e.g. ci.")
    ] = "default",
    expires: Annotated[
        str | None,
        typer.Option(help="Lifetime such as '12h', '30d' or '2w' (default: never expires)."),
    ] = None,
    json_output: _JSON = False,
) -> None:
    """Create an API token; it is printed once and cannot be shown again."""
    token, info = _access(ctx).create_token(user, name=name, expires_in=expires)
    warning = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    if json_output:
        print_json({"token": token, **info.to_json()})
    else:
        stdout_console().print(token, soft_wrap=True)
    expiry = (
        "never expires" if info.expires_at is None else f"expires {format_time(info.expires_at)}"
    )
    warning.print(
        f"token {info.id} ({info.name!r}) for user {info.user}, {expiry}. "
        "Copy it now: it will not be shown again.",
        style="yellow",
    )


@tokens_app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    json_output: _JSON = False,
) -> None:
    """API tokens (never the tokens themselves: their first characters)."""
    found = _access(ctx).list_tokens(user)
    if json_output:
        print_json([token.to_json() for token in found])
        return
    noun = "token" if len(found) == 1 else "tokens"
    table = Table(title=f"{len(found)} {noun}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("id", "user", "name", "token", "status", "created", "expires", "last used"):
        table.add_column(column, overflow="fold")
    for token in found:
        table.add_row(
            str(token.id),
            token.user,
            token.name,
            token.prefix + "…",
            _status(token),
            format_time(token.created_at),
            format_time(token.expires_at),
            format_time(token.last_used_at),
        )
    stdout_console().print(table)


def _status(token: TokenInfo) -> Text:
    status = token.status()
    return Text(status, style=_TOKEN_STYLES[status])


@tokens_app.command("revoke")
def revoke_token(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's id (tokens list).")],
) -> None:
    """Revoke a token: it stops working at once."""
    info = _access(ctx).revoke_token(token_id)
    stdout_console().print(f"revoked token {info.id} ({info.name!r} of user {info.user})")
