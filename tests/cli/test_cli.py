"""The ``mlops`` command line, driven through Typer's runner against a real SQLite store."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlops
from cli.conftest import invoke, ok
from mlops.store import head_revision
from mlops.tracking import ExperimentTracker, dataset_from_data

_MLOPS_VARIABLES = ("MLOPS_HOME", "MLOPS_DATABASE_URL", "MLOPS_ARTIFACT_ROOT")


def json_of(home: Path, *args: str) -> Any:
    return json.loads(ok(home, *args, "--json").stdout)


@dataclass
class Populated:
    """Three finished runs in experiment 'churn' with known params and metrics."""

    first: str
    second: str
    third: str
    other: str

    @property
    def churn_ids(self) -> list[str]:
        return [self.first, self.second, self.third]


@pytest.fixture
def populated(home: Path) -> Populated:
    with mlops.connect(home=str(home)) as ml:
        tracking = ml.tracking
        tracking.create_experiment("churn", description="who leaves")
        ids = [
            _finished_run(tracking, "churn", "first", {"lr": 0.1, "depth": 3}, 0.71, 0.52),
            _finished_run(tracking, "churn", "second", {"lr": 0.3, "depth": 3}, 0.88, 0.47),
            _finished_run(tracking, "churn", "third", {"lr": 0.03, "depth": 3}, 0.80, 0.31),
        ]
        other = _finished_run(tracking, "fraud", "other", {"lr": 1.0}, 0.5, 0.9)
    return Populated(first=ids[0], second=ids[1], third=ids[2], other=other)


def _finished_run(
    tracking: ExperimentTracker,
    experiment: str,
    name: str,
    params: dict[str, object],
    f1: float,
    loss: float,
) -> str:
    tracking.set_experiment(experiment)
    with tracking.start_run(experiment, name=name, tags={"team": "ml"}) as run:
        run.log_params(params)
        run.log_metrics({"val_loss": loss + 0.2}, step=0)
        run.log_metrics({"val_f1": f1, "val_loss": loss, "diverged": math.nan}, step=1)
        run.log_input(dataset_from_data("tiny", np.arange(6.0).reshape(3, 2)), "training")
        run.log_text("hello", "notes/readme.txt")
    return run.id


# -- root -------------------------------------------------------------------------------


def test_version_prints_the_package_version(home: Path) -> None:
    assert ok(home, "version").stdout.strip() == f"mlops {mlops.__version__}"


def test_help_lists_every_command_group(home: Path) -> None:
    output = ok(home, "--help").stdout
    for command in ("experiments", "runs", "db", "demo", "version"):
        assert command in output


def test_an_unknown_run_id_is_one_error_line_and_exit_1(home: Path, populated: Populated) -> None:
    result = invoke(home, "runs", "show", "f" * 32)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: run 'ffff")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_bad_filter_is_an_error_message_that_points_at_it(
    home: Path, populated: Populated
) -> None:
    result = invoke(home, "runs", "list", "-f", "metrics.val_f1 >")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_unexpected_exceptions_are_not_swallowed(
    home: Path, populated: Populated, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ExperimentTracker, "list_experiments", broken)
    result = invoke(home, "experiments", "list")
    assert isinstance(result.exception, RuntimeError)


def test_the_console_script_runs_and_reports_errors_without_traceback(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in _MLOPS_VARIABLES}
    command = [sys.executable, "-m", "mlops", "--home", str(tmp_path / "home")]
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env)
    assert shown.returncode == 0
    assert "experiments" in shown.stdout
    failed = subprocess.run(
        [*command, "runs", "show", "0" * 32], capture_output=True, text=True, env=env
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: run '0000")
    assert len(failed.stderr.strip().splitlines()) == 1
    assert "Traceback" not in failed.stderr


# -- experiments --------------------------------------------------------------------------


def test_experiments_create_list_rename_delete_restore(home: Path) -> None:
    assert (
        "created experiment 'churn'"
        in ok(home, "experiments", "create", "churn", "-d", "why").stdout
    )
    listed = json_of(home, "experiments", "list")["experiments"]
    assert [(e["name"], e["description"]) for e in listed] == [("churn", "why")]
    experiment_id = listed[0]["id"]

    ok(home, "experiments", "rename", str(experiment_id), "attrition")
    assert [e["name"] for e in json_of(home, "experiments", "list")["experiments"]] == ["attrition"]

    ok(home, "experiments", "delete", "attrition")
    assert json_of(home, "experiments", "list")["experiments"] == []
    everything = json_of(home, "experiments", "list", "--all")["experiments"]
    assert [(e["id"], e["lifecycle_stage"]) for e in everything] == [(experiment_id, "deleted")]

    ok(home, "experiments", "restore", str(experiment_id))
    table = ok(home, "experiments", "list").stdout
    assert "attrition" in table
    assert "why" in table


def test_creating_an_existing_experiment_fails_with_a_hint(home: Path) -> None:
    ok(home, "experiments", "create", "churn")
    result = invoke(home, "experiments", "create", "churn")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: experiment 'churn' already exists")


def test_an_all_digit_argument_is_an_experiment_id(home: Path) -> None:
    ok(home, "experiments", "create", "churn")
    result = invoke(home, "experiments", "delete", "99")
    assert result.exit_code == 1
    assert "experiment id 99 does not exist" in result.stderr


# -- runs ---------------------------------------------------------------------------------


def test_runs_list_json_has_full_ids_and_data(home: Path, populated: Populated) -> None:
    data = json_of(home, "runs", "list", "-e", "churn")
    by_id = {run["id"]: run for run in data["runs"]}
    assert set(by_id) == set(populated.churn_ids)
    assert data["next_page_token"] is None
    second = by_id[populated.second]
    assert second["params"] == {"lr": "0.3", "depth": "3"}
    assert second["metrics"]["val_f1"] == 0.88
    assert second["metrics"]["diverged"] is None  # NaN stays strict JSON
    assert second["status"] == "FINISHED"


def test_runs_list_filters_sorts_and_pages(home: Path, populated: Populated) -> None:
    good = json_of(home, "runs", "list", "-f", "metrics.val_f1 > 0.75")["runs"]
    assert {run["id"] for run in good} == {populated.second, populated.third}

    ranked = json_of(home, "runs", "list", "-e", "churn", "-o", "metrics.val_f1 DESC")["runs"]
    assert [run["id"] for run in ranked] == [populated.second, populated.third, populated.first]

    first_page = json_of(
        home, "runs", "list", "-e", "churn", "-o", "metrics.val_f1 DESC", "--max", "2"
    )
    token = first_page["next_page_token"]
    assert [run["id"] for run in first_page["runs"]] == [populated.second, populated.third]
    rest = json_of(
        home,
        "runs",
        "list",
        "-e",
        "churn",
        "-o",
        "metrics.val_f1 DESC",
        "--max",
        "2",
        "--page-token",
        token,
    )
    assert [run["id"] for run in rest["runs"]] == [populated.first]


def test_runs_list_spans_several_experiments(home: Path, populated: Populated) -> None:
    data = json_of(home, "runs", "list", "-e", "churn", "-e", "fraud")
    assert {run["id"] for run in data["runs"]} == {*populated.churn_ids, populated.other}


def test_runs_list_table_shows_short_ids_names_and_key_columns(
    home: Path, populated: Populated
) -> None:
    output = ok(home, "runs", "list", "-e", "churn").stdout
    for run_id, name in zip(populated.churn_ids, ("first", "second", "third"), strict=True):
        assert run_id[:8] in output
        assert run_id not in output
        assert name in output
    for column in ("FINISHED", "val_f1", "val_loss", "depth", "lr", "0.88"):
        assert column in output


def test_runs_show_json_has_params_metrics_inputs_and_artifacts(
    home: Path, populated: Populated
) -> None:
    data = json_of(home, "runs", "show", populated.third)
    assert data["id"] == populated.third
    assert data["experiment_name"] == "churn"
    assert data["params"] == {"lr": "0.03", "depth": "3"}
    assert data["metrics"]["val_loss"] == 0.31
    assert data["tags"] == {"team": "ml"}
    assert [(item["name"], item["context"], item["num_rows"]) for item in data["inputs"]] == [
        ("tiny", "training", 3)
    ]
    assert [(item["path"], item["size"]) for item in data["artifacts"]] == [("notes/readme.txt", 5)]


def test_runs_show_accepts_the_short_id_of_the_table(home: Path, populated: Populated) -> None:
    output = ok(home, "runs", "show", populated.first[:8]).stdout
    for text in (populated.first, "churn", "val_f1", "0.71", "tiny", "notes/readme.txt"):
        assert text in output


def test_a_prefix_that_matches_no_run_is_not_found(home: Path, populated: Populated) -> None:
    taken = {run_id[:1] for run_id in [*populated.churn_ids, populated.other]}
    unused = next(digit for digit in "0123456789abcdef" if digit not in taken)
    result = invoke(home, "runs", "show", unused * 6)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: no run id starts with '{unused * 6}'")


def test_runs_compare_json_names_the_best_runs(home: Path, populated: Populated) -> None:
    data = json_of(home, "runs", "compare", *populated.churn_ids)
    assert [run["id"] for run in data["runs"]] == populated.churn_ids
    assert data["best_metrics"]["val_f1"] == [populated.second]  # higher is better
    assert data["best_metrics"]["val_loss"] == [populated.third]  # a loss: lower is better
    assert data["best_metrics"]["diverged"] == []  # NaN is never best
    assert data["differing_params"] == ["lr"]


def test_runs_compare_table_marks_the_best_in_bold_green(home: Path, populated: Populated) -> None:
    output = ok(home, "runs", "compare", *populated.churn_ids, env={"FORCE_COLOR": "1"}).stdout
    best = set(re.findall(r"\x1b\[1;32m\s*([0-9.]+)", output))
    assert best == {"0.88", "0.31"}  # max val_f1, min val_loss


def test_runs_compare_needs_two_runs(home: Path, populated: Populated) -> None:
    result = invoke(home, "runs", "compare", populated.first)
    assert result.exit_code == 2
    assert "at least two runs" in result.output


# -- db -----------------------------------------------------------------------------------


def test_db_upgrade_on_a_fresh_sqlite_file_then_current_shows_head(tmp_path: Path) -> None:
    database = tmp_path / "fresh" / "meta.db"
    url = f"sqlite:///{database}"
    home = tmp_path / "unused"

    before = json_of(home, "--database-url", url, "db", "current")
    assert (before["current"], before["head"], before["up_to_date"]) == (
        None,
        head_revision(),
        False,
    )
    assert not database.exists()  # looking does not create it

    upgraded = ok(home, "--database-url", url, "db", "upgrade").stdout
    assert f"upgraded from an empty database to {head_revision()}" in upgraded
    again = ok(home, "--database-url", url, "db", "upgrade").stdout
    assert f"already at revision {head_revision()}" in again

    after = json_of(home, "--database-url", url, "db", "current")
    assert (after["current"], after["up_to_date"]) == (head_revision(), True)
    table = ok(home, "--database-url", url, "db", "current").stdout
    assert head_revision() in table
    assert "db upgrade" not in table
