"""Two scheduler processes on one PostgreSQL database: each due time and each event
queues exactly one execution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import mlops
from mlops.orchestration import PipelineOrchestrator, Trigger
from mlops.registry._webhooks import record_event
from orchestration.flows import Control

MINUTE = 60_000
TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_two_scheduler_processes_fire_each_due_time_and_event_once(
    ml: mlops.MLOps, database_url: str, tmp_path: Path, control: Control
) -> None:
    orchestrator = PipelineOrchestrator(ml, clock=control.clock)
    start = control.clock.ms // MINUTE * MINUTE - 30 * MINUTE
    control.clock.set(start)
    pipelines = [f"p{index}" for index in range(4)]
    for name in pipelines:
        orchestrator.register(
            name, "orchestration.flows:hello", schedule="* * * * *", catchup=True, max_active=10**6
        )
    orchestrator.register(
        "evaluate",
        "orchestration.flows:hello",
        max_active=10**6,
        triggers=[Trigger.model_registered("churn")],
    )
    minutes = 30
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    go_at = time.time() + 3.0
    tickers = [
        subprocess.Popen(
            [
                sys.executable, "-m", "orchestration.ticker", database_url, str(tmp_path),
                "--go-at", str(go_at), "--start", str(start), "--minutes", str(minutes),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]  # fmt: skip
    # Meanwhile: events from four writers at once, so ids commit out of order.
    event_ids: list[int] = []
    lock = threading.Lock()

    def write_events() -> None:
        for _ in range(25):
            with ml.store.write() as connection:
                event_id = record_event(
                    connection,
                    kind="model.version_created",
                    subject="models:/churn",
                    payload={"model": "churn", "version": 0},
                    actor=None,
                )
            with lock:
                event_ids.append(event_id)

    time.sleep(max(0.0, go_at - time.time()))  # write while the tickers tick
    writers = [threading.Thread(target=write_events) for _ in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    (tmp_path / "done").touch()
    outputs = [ticker.communicate(timeout=120) for ticker in tickers]
    for ticker, (_, stderr) in zip(tickers, outputs, strict=True):
        assert ticker.returncode == 0, stderr

    for name in pipelines:
        due = sorted(e.scheduled_for or 0 for e in orchestrator.executions(name, limit=1000))
        assert due == [start + minute * MINUTE for minute in range(1, minutes + 1)], name
    triggered = orchestrator.executions("evaluate", limit=1000)
    assert sum(e.trigger_detail["count"] for e in triggered) == len(event_ids) == 100
    listed = [event["event_id"] for e in triggered for event in e.trigger_detail["events"]]
    assert len(listed) == len(set(listed))
    created = sum(json.loads(stdout)["created"] for stdout, _ in outputs)
    assert created == len(pipelines) * minutes + len(triggered)
