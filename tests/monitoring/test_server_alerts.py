"""`mlops server` evaluates alert rules in the background and notifies their channels."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mlops
from http_receiver import Receiver
from mlops.monitoring.alerts import AlertRule, SlackNotifier


def test_the_server_fires_a_due_rule_and_notifies(tmp_path: Path) -> None:
    home = tmp_path / "home"
    receiver = Receiver()
    with mlops.connect(home=str(home)) as ml:
        alerts = ml.monitor.alerts
        alerts.create_channel("ops", SlackNotifier(receiver.url + "/slack"))
        alerts.create_rule(
            AlertRule(
                name="slow",
                signal="latency_p95_ms",
                threshold=1000.0,
                window="5m",
                evaluation_interval=1.0,
                channels=["ops"],
            )
        )
        now = int(time.time() * 1000)
        ml.monitor.record_predictions(
            "churn", None, [1] * 20, latency_ms=[1500.0] * 20, ts=[now - 1000] * 20
        )
    command = [sys.executable, "-m", "mlops", "--home", str(home), "server", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--alert-interval", "0.2", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not receiver.requests:
            if server.poll() is not None or time.monotonic() > deadline:
                output = server.stdout.read().decode() if server.stdout else ""
                pytest.fail(f"no notification from the server (exit {server.poll()}): {output}")
            time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        receiver.close()
    body = json.loads(receiver.requests[0].body)
    assert "slow" in json.dumps(body)
    with mlops.connect(home=str(home)) as ml:
        firing = ml.monitor.alerts.alerts(state="firing")
        assert [(alert.rule, alert.labels["endpoint"]) for alert in firing] == [("slow", "churn")]
