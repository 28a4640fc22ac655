"""The prediction log, feedback and metrics: nothing lost on shutdown, drops counted."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import prometheus_client
import pytest

import mlops
from mlops.serving import PredictionLogWriter, PredictionRecord
from mlops.serving._predlog import MAX_LOGGED_JSON
from serving.conftest import (
    feedback_rows,
    is_ready,
    log_rows,
    numeric_frame,
    register,
    single,
    wait_for,
)

PATH = "/v1/endpoints/churn/predict"


@pytest.fixture
def churn(ml: mlops.MLOps, numeric_model: Any) -> list[dict[str, float]]:
    """Endpoint "churn" on one version; a row to send."""
    register(ml, "churn", numeric_model, numeric_frame().head(5))
    single(ml, "churn")
    return numeric_frame(rows=1, seed=4).to_dict("records")


def test_graceful_shutdown_writes_every_record(
    ml: mlops.MLOps, churn: Any, numeric_model: Any, serve: Any
) -> None:
    server = serve(ml, log_flush_interval=600)  # only the shutdown drain writes
    with server.client() as client:
        ids = [client.post(PATH, json=churn).json()["request_id"] for _ in range(40)]
    assert log_rows(ml) == []
    server.stop()
    rows = log_rows(ml)
    assert sorted(row.request_id for row in rows) == sorted(ids)
    row = rows[0]
    assert (row.endpoint, row.version, row.route, row.status, row.error) == (
        "churn",
        1,
        "stable",
        200,
        None,
    )
    assert json.loads(row.inputs) == churn
    outputs = json.loads(row.outputs)
    assert outputs["predictions"] == numeric_model.predict(numeric_frame(rows=1, seed=4)).tolist()
    assert len(outputs["probabilities"][0]) == 2
    assert row.latency_ms > 0
    assert row.ts > 0


def test_sigterm_to_a_server_process_loses_no_record(
    ml: mlops.MLOps, churn: Any, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "mlops.serving",
        "--database-url",
        ml.store.url,
        "--artifacts",
        str(ml.artifacts.root),
        "--home",
        str(tmp_path / "home"),
        "--port",
        "0",
        "--log-flush-interval",
        "600",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        found = wait_for(
            lambda: re.search(r"serving on http://127\.0\.0\.1:(\d+)", "".join(lines)),
            timeout=60,
            what="the server process to listen",
        )
        url = f"http://127.0.0.1:{found.group(1)}"
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_for(lambda: is_ready(client), timeout=60, what="the server process to load")
            ids = [client.post(PATH, json=churn).json()["request_id"] for _ in range(25)]
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(10)
    assert sorted(row.request_id for row in log_rows(ml)) == sorted(ids)


def test_a_full_queue_drops_records_without_failing_requests(
    ml: mlops.MLOps, churn: Any, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(ml, log_queue_size=3, log_flush_interval=0.01)
    writer = server.state.writer
    release = threading.Event()
    entered = threading.Event()
    original = writer._write_batch

    def paused(rows: list[Any]) -> None:
        entered.set()
        release.wait(30)
        original(rows)

    monkeypatch.setattr(writer, "_write_batch", paused)
    with server.client() as client:
        assert client.post(PATH, json=churn).status_code == 200
        entered.wait(10)  # the writer now holds that record and is stuck
        statuses = [client.post(PATH, json=churn).status_code for _ in range(20)]
        assert statuses == [200] * 20
        assert writer.dropped == 17
        metrics = client.get("/metrics").text
        assert "mlops_prediction_log_dropped_total 17.0" in metrics
        assert "mlops_prediction_log_queue_size 3.0" in metrics
    release.set()
    server.stop()
    assert len(log_rows(ml)) == 21 - 17


def test_feedback_is_stored_by_request_id(ml: mlops.MLOps, churn: Any, serve: Any) -> None:
    server = serve(ml)
    feedback = "/v1/endpoints/churn/feedback"
    with server.client() as client:
        one = client.post(feedback, json={"request_id": "r-1", "actual": 1})
        assert one.status_code == 202
        assert one.json() == {"accepted": 1}
        many = [{"request_id": "r-2", "actual": "yes"}, {"request_id": "r-3", "actual": [0.5]}]
        assert client.post(feedback, json=many).json() == {"accepted": 2}
        refused = client.post(feedback, json=[{"request_id": "r-4"}])
        assert refused.status_code == 422
        assert "actual" in refused.json()["error"]
        assert client.post("/v1/endpoints/nope/feedback", json=many).status_code == 404
    rows = feedback_rows(ml)
    assert [(r.request_id, r.endpoint, json.loads(r.actual)) for r in rows] == [
        ("r-1", "churn", 1),
        ("r-2", "churn", "yes"),
        ("r-3", "churn", [0.5]),
    ]


def test_metrics_come_from_the_apps_own_registry(ml: mlops.MLOps, churn: Any, serve: Any) -> None:
    server = serve(ml)
    with server.client() as client:
        for _ in range(3):
            client.post(PATH, json=churn)
        client.post(PATH, json=[{"tenure": "x"}])
        response = client.get("/metrics")
        assert client.get("/health/live").json() == {"live": True}
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'mlops_requests_total{endpoint="churn",route="stable",status="200",version="1"} 3.0' in (
        text
    )
    assert 'status="422"' in text
    assert "mlops_request_latency_seconds_bucket{" in text
    assert (
        'mlops_request_latency_seconds_count{endpoint="churn",route="stable",version="1"} 4.0'
        in (text)
    )
    assert 'mlops_model_load_seconds_count{model="churn"} 1.0' in text
    assert "mlops_prediction_log_dropped_total 0.0" in text
    assert "mlops_prediction_log_queue_size" in text
    assert prometheus_client.REGISTRY.get_sample_value("mlops_requests_total") is None


def test_the_writer_serializes_off_the_request_path(ml: mlops.MLOps) -> None:
    writer = PredictionLogWriter(ml.store, batch_size=2)
    big = [{"text": "x" * 1000}] * (MAX_LOGGED_JSON // 1000 + 1)
    records = [
        PredictionRecord("a", "e", 1, "stable", 1, 0.5, 200, b'[{"x":1}]', {"p": [1]}, None),
        PredictionRecord("b", "e", 1, "stable", 2, 0.5, 200, big, None, None),
        PredictionRecord("c", "e", None, "unrouted", 3, 0.1, 413, None, None, "too large"),
    ]
    for record in records:
        assert writer.submit(record)
    assert writer.queue_size == 3
    writer.close()  # never started: close() still drains
    rows = {row.request_id: row for row in log_rows(ml)}
    assert rows["a"].inputs == '[{"x":1}]'
    assert json.loads(rows["a"].outputs) == {"p": [1]}
    assert json.loads(rows["b"].inputs)["truncated"] is True
    assert (rows["c"].version, rows["c"].status, rows["c"].error) == (None, 413, "too large")
    assert writer.written == 3


def test_one_bad_record_does_not_cost_its_batch(ml: mlops.MLOps) -> None:
    writer = PredictionLogWriter(ml.store, batch_size=100)
    for index in range(5):
        writer.submit(
            PredictionRecord(f"r{index}", "churn", 1, "stable", 1, 0.5, 200, None, None, None)
        )
    writer.submit(PredictionRecord("bad", None, 1, "stable", 1, 0.5, 200, None, None, None))  # type: ignore[arg-type]
    writer.flush()
    assert (writer.written, writer.failed) == (5, 1)
    assert [row.request_id for row in log_rows(ml)] == [f"r{index}" for index in range(5)]


def test_unprintable_request_ids_are_replaced(
    ml: mlops.MLOps, serve: Any, churn: list[dict[str, float]]
) -> None:
    server = serve(ml)
    with server.client() as client:
        answer = client.post(
            "/v2/models/churn/infer",
            json={
                "id": "evil\u0000id",
                "inputs": [
                    {"name": name, "shape": [1], "datatype": "FP64", "data": [churn[0][name]]}
                    for name in churn[0]
                ],
            },
        )
    assert answer.status_code == 200, answer.text
    assert "\u0000" not in answer.headers["x-request-id"]
    server.state.writer.flush()
    assert all("\u0000" not in row.request_id for row in log_rows(ml))
