"""``mlops deploy`` and ``mlops deployments``, through Typer's runner against a real store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import mlops
from mlops.cli import app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MLOPS_HOME", "MLOPS_DATABASE_URL", "MLOPS_ARTIFACT_ROOT", "MLOPS_USER"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "home"
    ml = mlops.connect(home=str(folder))
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 2)), columns=["a", "b"])
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    for _ in range(2):
        ml.registry.register_model("churn", model, input_example=frame[:3])
    ml.close()
    return folder


def run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.output


def test_deploy_then_canary_then_abort(home: Path) -> None:
    code, out = run(home, "deploy", "churn", "churn", "1")
    assert code == 0, out
    assert "succeeded" in out
    code, out = run(home, "deploy", "churn", "churn", "2", "--steps", "10,50,100", "--json")
    assert code == 0, out
    deployment = json.loads(out)
    assert deployment["strategy"] == "canary"
    assert [(r["version"], r["weight"]) for r in deployment["routes"]["routes"]] == [
        (1, 0.9),
        (2, 0.1),
    ]
    code, out = run(home, "deploy", "churn", "churn", "2")
    assert code == 1
    assert "already rolling out" in out
    code, out = run(home, "deployments", "list", "--active", "--json")
    assert [d["id"] for d in json.loads(out)] == [deployment["id"]]
    code, out = run(home, "deployments", "abort", "churn")
    assert code == 0, out
    assert "aborted" in out
    code, out = run(home, "deployments", "history", str(deployment["id"]), "--json")
    assert [e["kind"] for e in json.loads(out)] == ["created", "aborted"]


def test_blue_green_promote_and_rollback(home: Path) -> None:
    run(home, "deploy", "churn", "churn", "1")
    code, out = run(home, "deploy", "churn", "churn", "2", "--strategy", "blue-green", "--json")
    assert json.loads(out)["routes"]["preview_version"] == 2
    code, out = run(home, "deployments", "promote", "churn")
    assert code == 0, out
    assert "v2 100%" in out
    code, out = run(home, "deployments", "rollback", "churn")
    assert code == 0, out
    assert "v1 100%" in out
    code, out = run(home, "deployments", "status", "churn", "--json")
    assert json.loads(out)["state"] == "rolled_back"


def test_bad_input_is_one_error_line(home: Path) -> None:
    code, out = run(home, "deploy", "churn", "churn", "7")
    assert code == 1
    assert "error:" in out
    assert "Traceback" not in out
    run(home, "deploy", "churn", "churn", "1")
    code, out = run(
        home, "deploy", "churn", "churn", "2", "--strategy", "rolling", "--batch-size", "0"
    )
    assert code == 1
    assert "batch_size must be at least 1" in out
    code, out = run(home, "deploy", "churn", "churn", "2", "--steps", "5,x")
    assert code == 1
    code, out = run(home, "deployments", "status", "99")
    assert code == 1
    assert "does not exist" in out
