"""Parse an ``mlops …`` command line with the real CLI, so a renamed flag fails a test."""

from __future__ import annotations

import functools
from typing import Any

import typer

from mlops.cli._app import app


@functools.cache
def _root_command() -> Any:
    # Building the click command tree from the typer app takes a noticeable fraction
    # of a second; every check walks the same tree.
    return typer.main.get_command(app)


def parse_command_line(argv: list[str]) -> Any:
    """The context of the command ``argv`` names, after the CLI parsed every option and
    argument of each group on the way (raises its usage errors)."""
    assert argv[:1] == ["mlops"], f"not an mlops command line: {argv}"
    # Duck-typed: typer may bring its own copy of click, whose classes are not click's.
    command = _root_command()
    name, args, parent = "mlops", argv[1:], None
    while True:
        ctx = command.make_context(name, list(args), parent=parent)
        if not hasattr(command, "resolve_command"):
            return ctx
        # click keeps the sub-command's name apart from the arguments after it.
        protected = getattr(ctx, "_protected_args", None)
        rest = [*(protected if protected is not None else ctx.protected_args), *ctx.args]
        assert rest, f"{' '.join(argv)}: no sub-command after {name}"
        sub_name, sub_command, args = command.resolve_command(ctx, rest)
        assert sub_command is not None, f"{' '.join(argv)}: unknown command {rest[0]}"
        command, name, parent = sub_command, sub_name, ctx
