"""RequestContext: a request id for every request, the body size limit, and the last line
of defence that turns an unexpected exception into a generic 500."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops.api._errors import unexpected_error_body
from mlops.governance import request_id_scope

__all__ = ["RequestContext"]

logger = logging.getLogger("mlops.api")

# A caller's own id is echoed only when it is short and plain (it lands in logs).
_CALLER_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    """ASGI middleware: ``X-Request-ID`` in and out (and on the request's audit entries),
    413 over ``max_body_bytes``, 500s.

    Requests for which ``streamed(scope)`` is true (artifact uploads) are passed through
    unread: their handler streams the body and enforces its own limit.
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, streamed: Callable[[Scope], bool]
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _CALLER_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            if not self.streamed(scope):
                body = await self._read_body(scope, receive)
                if body is None:
                    await _send_json(send_with_id, 413, self._too_large(request_id))
                    return
                receive = _replay(body, receive)
            # Audit entries appended while handling this request record its id.
            with request_id_scope(request_id):
                await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("request %s failed unexpectedly", request_id)
            if not started:
                await _send_json(send_with_id, 500, unexpected_error_body(request_id))

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when it is larger than the limit (read no further)."""
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self, request_id: str) -> dict[str, object]:
        return {
            "error": {
                "code": "payload_too_large",
                "message": f"the request body is larger than {self.max_body_bytes} bytes; "
                "send less per request (split a batch into several)",
            },
            "request_id": request_id,
        }


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the app the body already read, then the connection's own messages (so a
    streaming response still learns when the client goes away)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_json(send: Send, status: int, content: dict[str, object]) -> None:
    body = json.dumps(content, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
