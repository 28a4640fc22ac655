"""The ``mlops`` command line: experiments, runs, database migrations and a demo."""

from mlops.cli._app import app, main

__all__ = ["app", "main"]
