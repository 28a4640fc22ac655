"""``mlops demo``: the whole demo, twice on one home; the second run keeps its server up."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import mlops
from cli.conftest import invoke, ok
from mlops.store._schema import prediction_log

_MLOPS_VARIABLES = ("MLOPS_HOME", "MLOPS_DATABASE_URL", "MLOPS_ARTIFACT_ROOT", "MLOPS_USER")
_SERVED_WITHIN = 240.0  # seconds: a whole demo on a loaded CI machine
#: A small sweep and short canary steps keep each demo cheap.
_QUICK = ("--runs", "3", "--step-seconds", "1.5")


def json_of(home: Path, *args: str) -> Any:
    return json.loads(ok(home, *args, "--json").stdout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home after one ``mlops demo --no-serve``, and what it printed."""
    home = tmp_path_factory.mktemp("demo") / "home"
    with pytest.MonkeyPatch.context() as patch:
        for name in _MLOPS_VARIABLES:
            patch.delenv(name, raising=False)
        result = ok(home, "demo", "--no-serve", "--port", "0", *_QUICK)
    return home, result.stdout


def test_demo_trains_registers_canaries_drifts_and_retrains(demo: tuple[Path, str]) -> None:
    home, output = demo
    assert "best run:" in output
    assert f"mlops --home {home} runs list -e demo-churn" in output
    assert "deployment 2 succeeded" in output
    assert "the alert queued a retraining of 'churn-training'" in output
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/ui/", output)

    with mlops.connect(home=str(home)) as ml:
        versions = ml.registry.list_versions("churn-demo")
        assert {v.number: v.stage.value for v in versions} == {1: "archived", 2: "production"}
        assert all(v.metrics.keys() >= {"f1", "accuracy"} for v in versions)

        rollouts = ml.deployments.list("churn-demo")
        assert [(d.strategy, d.state.value) for d in rollouts] == [
            ("canary", "succeeded"),
            ("direct", "succeeded"),
        ]
        canary = rollouts[0]
        assert (canary.stable_version, canary.candidate_version) == (1, 2)
        analysed = [e for e in ml.deployments.history(canary.id) if "analysis" in e.detail]
        assert [e.kind for e in analysed if e.kind != "analysis"] == ["step", "step", "succeeded"]

        with ml.store.read() as connection:
            served = dict(
                connection.execute(
                    sa.select(prediction_log.c.version, sa.func.count())
                    .where(
                        prediction_log.c.endpoint == "churn-demo",
                        prediction_log.c.route.in_(["stable", "canary"]),
                    )
                    .group_by(prediction_log.c.version)
                ).all()
            )
        assert served.keys() == {1, 2}
        assert min(served.values()) >= 20

        firing = ml.monitor.alerts.alerts(state="firing", endpoint="churn-demo")
        assert "demo-feature-drift" in {alert.rule for alert in firing}
        (retraining,) = ml.pipelines.executions("churn-training")
        assert (retraining.trigger, retraining.state.value) == ("alert", "succeeded")

    data = json_of(home, "runs", "list", "-e", "demo-churn")
    children = [run for run in data["runs"] if run["parent_run_id"] is not None]
    assert [run["name"] for run in data["runs"] if run["parent_run_id"] is None] == [
        "challenger",
        "sweep",
    ]
    assert len(children) == 3
    assert all(run["status"] == "FINISHED" for run in data["runs"])
    top = max(children, key=lambda run: run["metrics"]["val_f1"])
    assert set(top["params"]) == {"learning_rate", "l2", "epochs"}
    assert {"train_loss", "val_loss", "val_accuracy", "val_f1"} <= set(top["metrics"])
    shown = json_of(home, "runs", "show", top["id"])
    assert {item["path"] for item in shown["artifacts"]} == {"model/weights.npz", "report.json"}
    with mlops.connect(home=str(home)) as ml:
        history = ml.tracking.get_metric_history(top["id"], "val_loss")
    assert [point.step for point in history] == list(range(len(history)))
    assert len(history) > 1


def test_demo_runs_again_without_duplicates_and_serves_until_sigint(
    demo: tuple[Path, str],
) -> None:
    home, _ = demo
    output = _serve_demo(home)
    assert "nothing is registered twice" in output
    assert "nothing new to roll out" in output
    assert "stopping the demo server" in output
    with mlops.connect(home=str(home)) as ml:
        assert [v.number for v in ml.registry.list_versions("churn-demo")] in ([1, 2], [2, 1])
        assert len(ml.deployments.list("churn-demo")) == 2
        assert ml.deployments.status("churn-demo").state.value == "succeeded"
    data = json_of(home, "runs", "list", "-e", "demo-churn")
    assert sum(run["name"] == "sweep" for run in data["runs"]) == 2


def _serve_demo(home: Path) -> str:
    """Run ``mlops demo --serve`` in a process: once it prints the dashboard, check that
    the server answers, then stop it with SIGINT; returns what it printed."""
    env = {key: value for key, value in os.environ.items() if key not in _MLOPS_VARIABLES}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="250")
    command = [sys.executable, "-m", "mlops", "--home", str(home), "demo", "--port", "0"]
    process = subprocess.Popen(
        [*command, *_QUICK],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    printed: list[str] = []
    try:
        dashboard = None
        while dashboard is None:
            line = lines.get(timeout=_SERVED_WITHIN)
            assert line is not None, "".join(printed)
            printed.append(line)
            if line.startswith("dashboard: "):
                dashboard = line.split()[1]
        base = dashboard.removesuffix("/ui/")
        assert httpx.get(f"{base}/health/live", timeout=10).status_code == 200
        answer = httpx.post(f"{base}/v1/endpoints/churn-demo/predict", json=[[0.0] * 8], timeout=10)
        assert answer.json()["version"] == 2
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, "".join(printed)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    while (line := lines.get(timeout=10)) is not None:
        printed.append(line)
    return "".join(printed)


def test_demo_on_a_taken_port_fails_early_and_says_to_pass_port(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(home, "demo", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "--port" in result.stderr
    assert "training" not in result.stdout
