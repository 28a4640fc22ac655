"""``POST /v1/pipelines/{name}/trigger``: an outside system asks ``mlops server`` for a run.

The call is signed like the registry's outgoing webhooks: the header
``X-MLOps-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, keyed with the secret of
one of the pipeline's ``Trigger.webhook(secret=...)`` triggers. The body is optional
JSON: ``{"params": {...}, "reason": "..."}``. Answers: 202 with the execution, 401 for a
missing or wrong signature, 404 for an unknown pipeline, 409 when the pipeline takes no
signed webhook calls, 413 over 64 KiB, 422 for a body or params it cannot use.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlops.errors import Conflict, InvalidInput, NotFound
from mlops.orchestration._spec import Trigger
from mlops.registry._webhooks import webhook_signature

__all__ = ["MAX_WEBHOOK_BODY", "SIGNATURE_HEADER", "pipeline_webhook"]

MAX_WEBHOOK_BODY = 64 * 1024
SIGNATURE_HEADER = "X-MLOps-Signature"
_BODY_KEYS = ("params", "reason")


async def pipeline_webhook(request: Request) -> Response:
    """The Starlette endpoint; the app's ``state.serving.ml`` is the connection."""
    ml = request.app.state.serving.ml
    name = request.path_params["name"]
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_WEBHOOK_BODY:
            return _error(413, f"the body is over {MAX_WEBHOOK_BODY // 1024} KiB")
    signature = request.headers.get(SIGNATURE_HEADER)
    status, document = await anyio.to_thread.run_sync(_trigger, ml, name, body, signature)
    return JSONResponse(document, status_code=status)


def _trigger(ml: Any, name: str, body: bytes, signature: str | None) -> tuple[int, Any]:
    orchestrator = ml.pipelines
    try:
        definition = orchestrator.get(name)
    except (NotFound, InvalidInput) as error:
        return 404, {"error": str(error)}
    secrets = [
        trigger.secret
        for trigger in definition.triggers
        if trigger.kind == Trigger.WEBHOOK and trigger.secret is not None
    ]
    if not secrets:
        return 409, {
            "error": f"pipeline {name!r} takes no signed webhook calls; register it with "
            "triggers=[Trigger.webhook(secret=...)]"
        }
    if signature is None:
        return 401, {"error": f"the {SIGNATURE_HEADER} header is missing"}
    if not any(hmac.compare_digest(webhook_signature(s, body), signature) for s in secrets):
        return 401, {
            "error": f"the {SIGNATURE_HEADER} header does not match: sign the exact body "
            "with HMAC-SHA256 and the trigger's secret, as sha256=<hex digest>"
        }
    try:
        params, reason = _read(body)
        execution = orchestrator.trigger(name, params, reason=reason, source=Trigger.WEBHOOK)
    except InvalidInput as error:
        return 422, {"error": str(error)}
    except Conflict as error:
        return 409, {"error": str(error)}
    return 202, {
        "execution": execution.id,
        "pipeline": execution.pipeline,
        "state": execution.state.value,
    }


def _read(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    if not body.strip():
        return None, None
    try:
        document = json.loads(body)
    except ValueError as error:
        raise InvalidInput(f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidInput('the body is a JSON object: {"params": {...}, "reason": "..."}')
    unknown = sorted(set(document) - set(_BODY_KEYS))
    if unknown:
        raise InvalidInput(
            f"the body has no key {unknown[0]!r}; its keys are {', '.join(_BODY_KEYS)}"
        )
    params = document.get("params")
    if params is not None and not isinstance(params, dict):
        raise InvalidInput("params is a JSON object of param names to values")
    reason = document.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise InvalidInput("reason is a string")
    return params, reason


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
