"""The root ``mlops`` command: global options, error reporting and the domain sub-commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

import mlops
from mlops.cli._access import tokens_app, users_app
from mlops.cli._alerts import alerts_app
from mlops.cli._audit import audit_app
from mlops.cli._common import CliState, report_error, stdout_console
from mlops.cli._db import db_app
from mlops.cli._demo import demo
from mlops.cli._deployments import deploy, deployments_app, predict
from mlops.cli._endpoints import endpoints_app
from mlops.cli._experiments import experiments_app
from mlops.cli._k8s import k8s_app
from mlops.cli._keys import keys_app
from mlops.cli._models import models_app
from mlops.cli._monitor import monitor_app
from mlops.cli._pipelines import pipelines_app
from mlops.cli._runs import runs_app
from mlops.cli._server import server
from mlops.errors import MLOpsError

__all__ = ["app", "main"]


class _ReportingGroup(TyperGroup):
    """Turns an ``MLOpsError`` from any sub-command into ``error: …`` and exit code 1."""

    # Any: typer's own context class differs between the typer releases we support.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MLOpsError as error:
            report_error(error)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="mlops",
    cls=_ReportingGroup,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(experiments_app, name="experiments")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(deployments_app, name="deployments")
app.add_typer(endpoints_app, name="endpoints")
app.add_typer(monitor_app, name="monitor")
app.add_typer(alerts_app, name="alerts")
app.add_typer(pipelines_app, name="pipeline")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(k8s_app, name="k8s")
app.command("deploy")(deploy)
app.command("predict")(predict)
app.command("server")(server)
app.command("demo")(demo)


@app.callback()
def _root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help="Metadata database, e.g. postgresql://user@host/db; "
            "overrides MLOPS_DATABASE_URL (default: a SQLite file in the home folder).",
        ),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            metavar="URL",
            help="Artifact root, a folder or s3://bucket/prefix; "
            "overrides MLOPS_ARTIFACT_ROOT (default: a folder in the home folder).",
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            metavar="DIR",
            help="Folder of the embedded store; overrides MLOPS_HOME (default: ./mlops-data).",
        ),
    ] = None,
) -> None:
    """Track experiments and runs, and manage the mlops metadata database."""
    state = CliState(database_url=database_url, artifacts=artifacts, home=home)
    ctx.obj = state
    ctx.call_on_close(state.close)


@app.command("version")
def version() -> None:
    """Print the installed mlops version."""
    stdout_console().print(f"mlops {mlops.__version__}")


def main() -> None:
    """Run the mlops command line; mlops errors end as one red line, not a traceback."""
    try:
        app(prog_name="mlops")
    except MLOpsError as error:
        # Errors raised outside a command (while parsing options) land here.
        report_error(error)
        sys.exit(1)
