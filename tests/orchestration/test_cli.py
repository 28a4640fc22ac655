"""`mlops pipeline …` through Typer's runner, on a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import mlops
from mlops.cli import app

_VARIABLES = ("MLOPS_HOME", "MLOPS_DATABASE_URL", "MLOPS_ARTIFACT_ROOT", "MLOPS_USER")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)


def invoke(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--home", str(home), *args], env={"COLUMNS": "250"})


def ok(home: Path, *args: str) -> str:
    result = invoke(home, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def as_json(home: Path, *args: str) -> Any:
    return json.loads(ok(home, *args, "--json"))


def test_register_trigger_list_and_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = ok(
        home, "pipeline", "register", "nightly", "orchestration.flows:hello",
        "--schedule", "0 3 * * *", "--timezone", "Europe/Paris", "--retries", "2",
        "--timeout", "30m", "--param", "rows=5",
    )  # fmt: skip
    assert "registered pipeline 'nightly' (orchestration.flows:hello) runs on '0 3 * * *'" in out
    [listed] = as_json(home, "pipeline", "list")
    assert (listed["retries"], listed["timeout"], listed["params"]) == (2, 1800.0, {"rows": 5})
    assert "nightly" in ok(home, "pipeline", "list")

    queued = as_json(home, "pipeline", "trigger", "nightly", "--param", "rows=7", "--reason", "now")
    assert (queued["state"], queued["params"]) == ("queued", {"rows": 7})
    with mlops.connect(home=str(home)) as ml:
        [done] = ml.pipelines.work()
    assert done.state.value == "succeeded"

    [run] = as_json(home, "pipeline", "runs", "nightly")
    assert (run["id"], run["state"], run["trigger"]) == (queued["id"], "succeeded", "manual")
    table = ok(home, "pipeline", "runs", "--state", "succeeded")
    assert "1 execution" in table
    assert "succeeded" in table
    assert "manual" in table
    shown = ok(home, "pipeline", "show", str(queued["id"]))
    assert "extract" in shown
    assert done.run_ids[0] in shown


def test_schedule_pause_cancel_and_unregister(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ok(home, "pipeline", "register", "nightly", "orchestration.flows:hello")
    assert "runs on '*/5 * * * *' (UTC)" in ok(
        home, "pipeline", "schedule", "nightly", "*/5 * * * *"
    )
    assert as_json(home, "pipeline", "list")[0]["schedule"] == "*/5 * * * *"
    assert "has no schedule now" in ok(home, "pipeline", "schedule", "nightly", "--clear")
    assert "paused pipeline 'nightly'" in ok(home, "pipeline", "pause", "nightly")
    assert "resumed pipeline 'nightly'" in ok(home, "pipeline", "resume", "nightly")

    queued = as_json(home, "pipeline", "trigger", "nightly")
    out = ok(home, "pipeline", "cancel", str(queued["id"]))
    assert f"execution {queued['id']} of pipeline 'nightly' is cancelled" in out
    again = invoke(home, "pipeline", "cancel", str(queued["id"]))
    assert again.exit_code == 1
    assert "already cancelled; there is nothing to cancel" in again.output

    assert "unregistered pipeline 'nightly'" in ok(home, "pipeline", "unregister", "nightly")
    assert as_json(home, "pipeline", "list") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("register", "x", "orchestration.flows:hello", "--schedule", "99 * * * *"),
         "error: schedule '99 * * * *' is not a valid cron expression"),
        (("register", "x", "orchestration.flows:nothing"), "has no attribute 'nothing'"),
        (("trigger", "ghost"), "error: there is no registered pipeline 'ghost'"),
        (("schedule", "ghost"), "give a cron expression, or --clear"),
    ],
)  # fmt: skip
def test_errors_are_one_clear_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke(tmp_path / "home", "pipeline", *args)
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())
