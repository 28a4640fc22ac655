"""What every command shares: the connection on the Typer context, consoles and formatting."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from mlops._client import MLOps, connect
from mlops.config import Settings
from mlops.errors import InvalidInput, MLOpsError, NotFound
from mlops.tracking import Experiment, ExperimentTracker, Run, RunStatus

__all__ = [
    "CliState",
    "experiment_json",
    "experiment_ref",
    "first_keys",
    "format_duration",
    "format_number",
    "format_size",
    "format_time",
    "get_state",
    "print_json",
    "report_error",
    "resolve_run_id",
    "run_json",
    "status_text",
    "stdout_console",
]

_STATUS_STYLES = {
    RunStatus.RUNNING: "bold blue",
    RunStatus.FINISHED: "green",
    RunStatus.FAILED: "bold red",
    RunStatus.KILLED: "yellow",
}
_RUN_ID_LENGTH = 32
_HEX_DIGITS = frozenset("0123456789abcdef")


@dataclass
class CliState:
    """The global options of one invocation, and the connection made from them on demand."""

    database_url: str | None = None
    artifacts: str | None = None
    home: Path | None = None
    _connection: MLOps | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """The ``MLOPS_*`` environment with the command-line options applied on top."""
        return Settings.from_env().with_overrides(
            database_url=self.database_url, artifact_root=self.artifacts, home=self.home
        )

    def connect(self) -> MLOps:
        """The connection of this invocation, opened on first use."""
        if self._connection is None:
            self._connection = connect(settings=self.settings())
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def global_args(self) -> list[str]:
        """The global options as given, to repeat them in suggested commands."""
        args: list[str] = []
        if self.database_url is not None:
            args += ["--database-url", self.database_url]
        if self.artifacts is not None:
            args += ["--artifacts", self.artifacts]
        if self.home is not None:
            args += ["--home", str(self.home)]
        return args


def get_state(ctx: typer.Context) -> CliState:
    """The state that the root callback put on the context (a fresh one if run alone)."""
    state = ctx.find_object(CliState)
    if state is None:
        state = ctx.ensure_object(CliState)
        ctx.call_on_close(state.close)
    return state


def stdout_console() -> Console:
    """A console on the current stdout; no markup, so names print as they are."""
    return Console(highlight=False, markup=False, emoji=False)


def report_error(error: MLOpsError) -> None:
    """Print ``error: <message>`` in red on stderr, without a traceback."""
    console = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    console.print(Text.assemble(("error:", "bold red"), " ", (str(error), "red")))


def print_json(data: Any) -> None:
    """Write ``data`` as strict JSON to stdout (NaN and infinities become null)."""
    sys.stdout.write(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {str(key): _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data


def experiment_ref(text: str) -> int | str:
    """An argument that is all digits names an experiment by id, anything else by name."""
    return int(text) if text.isascii() and text.isdigit() else text


def resolve_run_id(tracking: ExperimentTracker, text: str) -> str:
    """A full run id from a full id or a unique prefix of one (as shown by `runs list`)."""
    candidate = text.strip().lower()
    if len(candidate) == _RUN_ID_LENGTH or not candidate or not set(candidate) <= _HEX_DIGITS:
        return text
    # The search language cannot match id prefixes, so scan the ids page by page.
    matches: list[str] = []
    token: str | None = None
    while True:
        page = tracking.search_runs(max_results=1000, page_token=token, order_by="start_time")
        matches += [run.id for run in page if run.id.startswith(candidate)]
        token = page.next_page_token
        if token is None:
            break
    if not matches:
        raise NotFound(f"no run id starts with '{text}' (see `mlops runs list`)")
    if len(matches) > 1:
        shown = ", ".join(match[:12] for match in matches[:5])
        raise InvalidInput(
            f"run id prefix '{text}' matches {len(matches)} runs ({shown}…); give more characters"
        )
    return matches[0]


def run_json(run: Run) -> dict[str, Any]:
    """A run as plain JSON-ready data; times are milliseconds since the epoch."""
    return {
        "id": run.id,
        "name": run.name,
        "experiment_id": run.experiment_id,
        "status": run.status.value,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "duration_ms": run.duration_ms,
        "parent_run_id": run.parent_run_id,
        "user": run.user,
        "lifecycle_stage": run.lifecycle_stage.value,
        "artifact_uri": run.artifact_uri,
        "params": dict(run.params),
        "metrics": dict(run.metrics),
        "tags": dict(run.tags),
        "inputs": [
            {
                "name": item.dataset.name,
                "digest": item.dataset.digest,
                "context": item.context,
                "num_rows": item.dataset.num_rows,
                "source": item.dataset.source,
                "schema": item.dataset.schema,
            }
            for item in run.inputs
        ],
    }


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    """An experiment as plain JSON-ready data; times are milliseconds since the epoch."""
    return {
        "id": experiment.id,
        "name": experiment.name,
        "description": experiment.description,
        "lifecycle_stage": experiment.lifecycle_stage.value,
        "artifact_location": experiment.artifact_location,
        "created_at": experiment.created_at,
        "updated_at": experiment.updated_at,
        "tags": dict(experiment.tags),
    }


def status_text(status: RunStatus) -> Text:
    return Text(status.value, style=_STATUS_STYLES[status])


def format_time(epoch_ms: int | None, *, now: datetime | None = None) -> str:
    """Local time: ``14:03:12`` today, ``Nov 21 09:15`` this year, else ``2024-11-21 09:15``."""
    if epoch_ms is None:
        return "—"
    moment = datetime.fromtimestamp(epoch_ms / 1000).astimezone()
    current = now or datetime.now().astimezone()
    if moment.date() == current.date():
        return moment.strftime("%H:%M:%S")
    if moment.year == current.year:
        return moment.strftime("%b %d %H:%M")
    return moment.strftime("%Y-%m-%d %H:%M")


def format_duration(duration_ms: float | None) -> str:
    """``850ms``, ``12.3s``, ``4m 05s`` or ``2h 03m``; a dash while a run is going."""
    if duration_ms is None:
        return "—"
    if duration_ms < 1000:
        return f"{duration_ms:.0f}ms"
    seconds = duration_ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, whole_seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {whole_seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_number(value: float) -> str:
    """A metric value with 4 significant digits (``nan`` and ``inf`` as such)."""
    return f"{value:.4g}"


def format_size(size: int) -> str:
    """A byte count in B, KiB, MiB or GiB."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB"):
        if amount < 1024:
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def first_keys(mappings: Sequence[Mapping[str, object]], limit: int) -> list[str]:
    """The first ``limit`` distinct keys seen across ``mappings`` (each read in sorted order)."""
    keys: list[str] = []
    for mapping in mappings:
        for key in sorted(mapping):
            if key not in keys:
                keys.append(key)
                if len(keys) == limit:
                    return keys
    return keys
