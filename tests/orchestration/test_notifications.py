"""Notifications of an execution's end through monitoring's channels, to a real receiver."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

import mlops
from http_receiver import Receiver
from mlops.monitoring.alerts import SlackNotifier, WebhookNotifier
from mlops.orchestration import ExecutionState, PipelineOrchestrator
from mlops.registry._webhooks import webhook_signature


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def broken() -> Iterator[Receiver]:
    server = Receiver(fail_first=1000)
    try:
        yield server
    finally:
        server.close()


def test_a_failure_goes_to_every_channel_and_a_failing_channel_is_only_logged(
    ml: mlops.MLOps,
    orchestrator: PipelineOrchestrator,
    receiver: Receiver,
    broken: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mlops")
    alerts = ml.monitor.alerts
    hook = alerts.create_channel("ops-hook", WebhookNotifier(f"{receiver.url}/hook"))
    alerts.create_channel("ops-slack", SlackNotifier(f"{receiver.url}/slack"))
    # A Slack URL is a credential: failures name the host, never the path.
    alerts.create_channel("down", SlackNotifier(f"{broken.url}/services/T0/B0/s3cr3t"))
    orchestrator.register(
        "etl",
        "orchestration.flows:flaky",
        executor="threads",
        retries=1,
        retry_backoff=1,
        notify={"channels": ["ops-hook", "down", "ops-slack"], "on": ["failure", "success"]},
    )
    orchestrator.trigger("etl")
    [retrying] = orchestrator.work()
    assert retrying.state is ExecutionState.RETRYING
    assert receiver.received() == []  # only an execution's end is told

    [failed] = orchestrator.work(orchestrator.now_ms() + 5_000)  # the retry is due
    assert failed.state is ExecutionState.FAILED  # whatever the channels did
    by_path = {request.path: request for request in receiver.received()}
    assert set(by_path) == {"/hook", "/slack"}

    webhook = by_path["/hook"]
    assert hook.secret is not None
    assert webhook.headers["X-MLOps-Signature"] == webhook_signature(hook.secret, webhook.body)
    assert webhook.headers["X-MLOps-Event"] == "alert.failure"
    body = json.loads(webhook.body)
    [alert] = body["alerts"]
    assert body["kind"] == "failure"
    assert alert["labels"] == {
        "pipeline": "etl",
        "execution": str(failed.id),
        "trigger": "manual",
        "state": "failed",
    }
    assert alert["annotations"]["summary"] == "pipeline 'etl' failed after 2 attempt(s)"
    assert "ValueError: call 2 failed (step 'explode')" in alert["annotations"]["description"]
    slack = json.loads(by_path["/slack"].body)
    assert slack["text"] == "[FAILURE:1] critical pipeline:etl (pipeline=etl)"

    told = [
        (line.state, line.message) for line in failed.log if "notification" in (line.message or "")
    ]
    assert told == [
        ("notified", "failure notification to channel 'ops-hook'"),
        ("notify_failed", "failure notification to channel 'down'"),
        ("notified", "failure notification to channel 'ops-slack'"),
    ]
    [down] = [line for line in failed.log if line.state == "notify_failed"]
    assert down.error == f"HTTPStatusError: HTTP 500 Internal Server Error from {broken.url}/…"
    assert "channel 'down' failed" in caplog.text
    assert "s3cr3t" not in caplog.text


@pytest.mark.parametrize(("on", "told"), [(["failure", "success"], 1), (["failure"], 0)])
def test_a_success_is_told_only_when_asked(
    ml: mlops.MLOps,
    orchestrator: PipelineOrchestrator,
    receiver: Receiver,
    on: list[str],
    told: int,
) -> None:
    ml.monitor.alerts.create_channel("ops-hook", WebhookNotifier(f"{receiver.url}/hook"))
    orchestrator.register(
        "hello",
        "orchestration.flows:hello",
        executor="threads",
        notify={"channels": ["ops-hook"], "on": on},
    )
    orchestrator.trigger("hello")
    [done] = orchestrator.work()
    assert done.state is ExecutionState.SUCCEEDED
    received = receiver.received()
    assert len(received) == told
    if told:
        assert json.loads(received[0].body)["kind"] == "success"
