"""A rolling rollout across a real 2-worker server: workers switch one batch at a time.

The server runs as its own process (``python -m mlops.serving --workers 2``) on a SQLite
store; each worker heartbeats into ``serving_workers`` and the manager moves a batch on
only when every live worker has swapped in the batch's routing revision.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

import mlops
from mlops.deployment import DeploymentState, Rolling
from mlops.registry import Stage
from mlops.store._schema import serving_workers
from serving.conftest import log_rows, numeric_frame, register, wait_for


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready_workers(ml: mlops.MLOps) -> int:
    now = int(time.time() * 1000)
    with ml.store.read() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).where(
                    serving_workers.c.last_seen >= now - 5000, serving_workers.c.ready == 1
                )
            ).scalar_one()
        )


class Traffic:
    """A thread posting one-row requests on a new connection each, recording answers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[float, int | None, Any]] = []  # (time, status, version)
        self._row = numeric_frame(1).to_dict(orient="records")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = httpx.post(self.url, json=self._row, timeout=10.0)
                version = response.json().get("version") if response.status_code == 200 else None
                self.answers.append((time.monotonic(), response.status_code, version))
            except (httpx.HTTPError, ValueError) as error:
                self.answers.append((time.monotonic(), None, repr(error)))

    def between(self, start: float, end: float = float("inf")) -> list[Any]:
        return [version for at, _, version in list(self.answers) if start <= at <= end]

    def failures(self) -> list[Any]:
        return [answer for answer in list(self.answers) if answer[1] != 200]

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_rolling_rollout_across_two_worker_processes(
    tmp_path: Path, numeric_model: Any, flipped_model: Any
) -> None:
    home = tmp_path / "home"
    ml = mlops.connect(home=str(home))
    example = numeric_frame(5)
    register(ml, "churn", numeric_model, example)
    register(ml, "churn", flipped_model, example)
    ml.deployments.deploy("churn", "churn", 1)
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlops.serving", "--home", str(home), "--port", str(port),
         "--workers", "2", "--poll-interval", "0.2", "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: _ready_workers(ml) == 2, timeout=90, what="two ready workers")
        with Traffic(f"http://127.0.0.1:{port}/v1/endpoints/churn/predict") as traffic:
            wait_for(lambda: len(traffic.answers) >= 10, timeout=30, what="first answers")
            started = time.monotonic()
            deployment = ml.deployments.deploy(
                "churn", "churn", 2, strategy=Rolling(batch_size=1, interval_seconds=0.5)
            )
            assert deployment.params["workers"] == 2
            assert deployment.steps == 2
            deadline = time.monotonic() + 60
            while ml.deployments.status(deployment.id).state.active:
                assert time.monotonic() < deadline, "the rolling rollout did not finish"
                ml.deployments.advance()
                time.sleep(0.05)
            finished = time.monotonic()

            def switched() -> bool:  # both workers picked up the final table
                recent = traffic.between(time.monotonic() - 1.0)
                return len(recent) >= 10 and set(recent) == {2}

            wait_for(switched, timeout=30, what="every worker serving version 2")
            settled = time.monotonic()
            wait_for(lambda: len(traffic.between(settled)) >= 20, timeout=30, what="answers")
        assert traffic.failures() == []
        assert set(traffic.between(started, finished)) == {1, 2}
        assert set(traffic.between(settled)) == {2}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        finally:
            if server.poll() is None:
                server.kill()
            log.close()
    done = ml.deployments.status(deployment.id)
    assert done.state is DeploymentState.SUCCEEDED
    assert done.step == 1
    kinds = [event.kind for event in ml.deployments.history(deployment.id)]
    assert kinds.count("step") == 1
    assert ml.registry.get_version("churn", 2).stage is Stage.PRODUCTION
    assert server.returncode == 0, (tmp_path / "server.log").read_text()
    # Both workers drained their prediction logs: the switched ones logged "rolling-new".
    assert {row.version for row in log_rows(ml, route="rolling-new")} == {2}
    assert {row.status for row in log_rows(ml)} == {200}
    with ml.store.read() as connection:  # each worker removed itself on shutdown
        assert connection.execute(sa.select(serving_workers)).all() == []
    ml.close()
