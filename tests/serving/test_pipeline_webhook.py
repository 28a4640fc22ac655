"""`POST /v1/pipelines/{name}/trigger` on a real server: signed calls queue executions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import mlops
from mlops.errors import InvalidInput
from mlops.orchestration import ExecutionState, Trigger
from mlops.registry._webhooks import webhook_signature

from .conftest import LiveServer

SECRET = "s3cret-shared-with-the-ci-system"


def _post(server: LiveServer, name: str, body: bytes, signature: str | None) -> Any:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["X-MLOps-Signature"] = signature
    with server.client() as client:
        return client.post(f"/v1/pipelines/{name}/trigger", content=body, headers=headers)


def test_a_signed_call_queues_an_execution_and_anything_else_is_refused(
    ml: mlops.MLOps, serve: Callable[..., LiveServer]
) -> None:
    ml.pipelines.register(
        "hello", "orchestration.flows:hello", triggers=[Trigger.webhook(secret=SECRET)]
    )
    ml.pipelines.register("manual-only", "orchestration.flows:hello")
    server = serve(ml)
    body = json.dumps({"params": {"rows": 4}, "reason": "new data landed"}).encode()

    accepted = _post(server, "hello", body, webhook_signature(SECRET, body))

    assert accepted.status_code == 202, accepted.text
    execution = ml.pipelines.execution(accepted.json()["execution"])
    assert (execution.state, execution.trigger) == (ExecutionState.QUEUED, "webhook")
    assert execution.params == {"rows": 4}
    assert execution.trigger_detail["reason"] == "new data landed"
    empty = _post(server, "hello", b"", webhook_signature(SECRET, b""))
    assert empty.status_code == 202, empty.text  # no body: the registered params

    refusals = [
        ("hello", body, None, 401, "header is missing"),
        ("hello", body, webhook_signature("another-secret-of-16", body), 401, "does not match"),
        ("hello", body + b" ", webhook_signature(SECRET, body), 401, "does not match"),
        ("nope", body, webhook_signature(SECRET, body), 404, "nope"),
        ("manual-only", body, webhook_signature(SECRET, body), 409, "no signed webhook"),
        ("hello", b"{not json", webhook_signature(SECRET, b"{not json"), 422, "not valid JSON"),
        ("hello", b'{"param": {}}', webhook_signature(SECRET, b'{"param": {}}'), 422, "'param'"),
    ]
    bad_params = json.dumps({"params": {"rowz": 1}}).encode()
    refusals.append(("hello", bad_params, webhook_signature(SECRET, bad_params), 422, "rowz"))
    huge = json.dumps({"reason": "x" * 70_000}).encode()
    refusals.append(("hello", huge, webhook_signature(SECRET, huge), 413, "64 KiB"))
    for name, sent, signature, status, message in refusals:
        response = _post(server, name, sent, signature)
        assert response.status_code == status, (name, sent[:40], response.text)
        assert message in response.json()["error"]
    assert len(ml.pipelines.executions("hello")) == 2  # the two accepted calls, no more


def test_a_webhook_secret_is_long_enough_and_never_listed(ml: mlops.MLOps) -> None:
    with pytest.raises(InvalidInput, match="at least 16 characters"):
        Trigger.webhook(secret="short")
    registered = ml.pipelines.register(
        "hello", "orchestration.flows:hello", triggers=[Trigger.webhook(secret=SECRET)]
    )
    assert SECRET not in json.dumps(registered.to_json())
    assert SECRET not in registered.triggers[0].describe()
    assert SECRET not in repr(registered)
    assert ml.pipelines.get("hello").triggers[0].secret == SECRET  # stored to verify calls
