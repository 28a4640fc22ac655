"""``mlops keys``: Ed25519 key pairs that sign model versions, and the keys the registry trusts."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from mlops.cli._common import get_state, stdout_console
from mlops.governance import key_fingerprint, write_keypair

__all__ = ["keys_app"]

keys_app = typer.Typer(
    help="Generate signing key pairs and trust public keys for signed model versions.",
    no_args_is_help=True,
)


@keys_app.command("generate")
def generate(
    ctx: typer.Context,
    folder: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            metavar="DIR",
            file_okay=False,
            help="Where to write the key pair (default: the keys folder in MLOPS_HOME).",
        ),
    ] = None,
    name: Annotated[
        str, typer.Option("--name", "-n", help="File name: NAME.key and NAME.pub.")
    ] = "mlops",
) -> None:
    """Write a new key pair (the private key readable by you only); overwrites nothing."""
    state = get_state(ctx)
    written = write_keypair(folder or state.settings().home / "keys", name)
    private_path, public_path = (path.resolve() for path in written)
    console = stdout_console()
    console.print(f"private key  {private_path}  (keep it secret)")
    console.print(f"public key   {public_path}")
    console.print(f"fingerprint  {key_fingerprint(public_path)}")
    trust = shlex.join(["mlops", *state.global_args(), "keys", "trust", str(public_path)])
    console.print(f"trust the public key with `{trust}`, then sign versions with", soft_wrap=True)
    console.print(
        f"ml.registry.register_model(..., sign_with={str(private_path)!r})", soft_wrap=True
    )


@keys_app.command("trust")
def trust(
    ctx: typer.Context,
    public_key: Annotated[
        Path,
        typer.Argument(metavar="PUBLIC_KEY_PATH", help="A .pub file written by `keys generate`."),
    ],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="A label for the key, e.g. a team.")
    ] = None,
) -> None:
    """Trust a public key: versions it signs pass `require_signature` policies."""
    fingerprint = get_state(ctx).connect().registry.trust_key(public_key, name=name)
    label = f" ({name})" if name else ""
    stdout_console().print(f"trusted key {fingerprint}{label}")
