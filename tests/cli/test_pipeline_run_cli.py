"""`mlops pipeline run`: a YAML training config or a module's pipeline, run here and now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

import mlops
from mlops.cli import app
from mlops.pipelines.training import sample_config_path

pytest.importorskip("sklearn")
pytest.importorskip("optuna")

_VARIABLES = ("MLOPS_HOME", "MLOPS_DATABASE_URL", "MLOPS_ARTIFACT_ROOT", "MLOPS_USER")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)


def invoke(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--home", str(home), *args], env={"COLUMNS": "250"})


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The sample config, cut to 2 trials x 2 folds of one candidate, no deploy/monitor."""
    raw = yaml.safe_load(sample_config_path().read_text())
    raw["train"].update(
        trials=2,
        folds=2,
        candidates=[
            {
                "algorithm": "logistic_regression",
                "search": {"C": {"type": "log", "low": 0.01, "high": 10}},
            }
        ],
    )
    del raw["deploy"], raw["monitor"]
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_run_a_yaml_config_with_params_then_one_stage(tmp_path: Path, config: Path) -> None:
    home = tmp_path / "home"

    result = invoke(home, "pipeline", "run", str(config), "--param", "train.trials=3", "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["state"] == "succeeded"
    assert [s["name"] for s in summary["steps"]] == [
        "ingest", "validate", "preprocess", "features", "train", "evaluate", "register",
    ]  # fmt: skip
    with mlops.connect(home=str(home)) as ml:
        trials = ml.tracking.search_runs(
            "churn-training", "attributes.run_name LIKE 'trial-%'", max_results=100
        )
        assert len(trials) == 3  # the override reached the search
        assert ml.registry.get_version("churn", "production").number == 1

    # Piped (not a terminal): one line per step as it ends, then the summary.
    stage = invoke(home, "pipeline", "run", str(config), "--param", "train.trials=3",
                   "--stage", "evaluate")  # fmt: skip
    assert stage.exit_code == 0, stage.output
    lines = stage.stdout.splitlines()
    assert lines[0].startswith("succeeded evaluate")
    assert "pipeline churn-training succeeded" in lines[-1]


def test_bad_params_and_stages_are_refused_before_anything_runs(
    tmp_path: Path, config: Path
) -> None:
    home = tmp_path / "home"
    cases: list[tuple[tuple[str, ...], str]] = [
        (("--param", "train.trialz=3"), "unknown key 'trialz'"),
        (("--param", "train.trials=many"), "train.trials: input should be a valid integer"),
        (("--param", "seed.x=1"), "'seed' in config"),
        (("--param", "novalue"), "--param takes key=value"),
        (("--stage", "nope"), "has no step 'nope'"),
        (("--executor", "gpu-farm"), "executor 'gpu-farm' is not available"),
    ]
    for args, message in cases:
        result = invoke(home, "pipeline", "run", str(config), *args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    with mlops.connect(home=str(home)) as ml:
        assert not any(e.name == "churn-training" for e in ml.tracking.list_experiments())


def test_a_failing_run_exits_1_and_says_how_to_resume(tmp_path: Path, config: Path) -> None:
    home = tmp_path / "home"
    raw: dict[str, Any] = yaml.safe_load(config.read_text())
    raw["validate"]["min_rows"] = 10_000
    config.write_text(yaml.safe_dump(raw))

    result = invoke(home, "pipeline", "run", str(config))

    assert result.exit_code == 1
    assert any(line.split()[:2] == ["failed", "validate"] for line in result.stdout.splitlines())
    assert "step 'validate': ValidationFailed: data validation failed" in result.stdout
    assert "[red]" not in result.stdout
    assert f"mlops pipeline run {config} --resume " in result.stdout
