"""The request handlers: predict (three protocols), shadow, feedback, health, metadata."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio.to_thread
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from mlops.errors import InvalidInput, StorageError, Unauthenticated
from mlops.serving._gateway import PREVIEW_ROUTE, SHADOW_ROUTE, EndpointRuntime, ServingState
from mlops.serving._metrics import CONTENT_TYPE
from mlops.serving._predlog import PredictionRecord
from mlops.serving._protocols import MLFLOW, NATIVE, V2, Protocol, dumps, loads, v2_metadata
from mlops.serving._served import Prediction, ServedVersion
from mlops.store._schema import prediction_feedback

__all__ = [
    "feedback",
    "infer_v2",
    "live",
    "metrics",
    "predict_mlflow",
    "predict_native",
    "ready",
    "v2_model",
    "v2_model_ready",
    "v2_ready",
    "v2_server",
]

logger = logging.getLogger("mlops.serving")

#: Bodies larger than this are converted and predicted in a worker thread, not on the loop.
INLINE_BODY_BYTES = 16 * 1024
_UNROUTED = "unrouted"
_JSON = "application/json"
_CHALLENGE = 'Bearer realm="mlops"'


class _Rejected(Exception):
    """A request the server refuses: its HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class JSONResponse(Response):
    """A response whose body is already JSON bytes; headers are built without parsing."""

    media_type = _JSON

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            *headers,
        ]


def _json(status: int, body: Any, request_id: str | None = None, **headers: str) -> Response:
    raw = [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]
    if request_id is not None:
        raw.append((b"x-request-id", request_id.encode("latin-1")))
    return JSONResponse(status, dumps(body), raw)


def _error(status: int, message: str, request_id: str) -> Response:
    return _json(status, {"error": message, "request_id": request_id}, request_id)


async def _refused(
    state: ServingState, name: str, headers: Any, request_id: str
) -> Response | None:
    """A 401 (the API's error body and challenge) when ``name`` requires an inference
    token this request lacks, 503 when that cannot be told; None to go on."""
    try:
        refusal = await state.tokens.refusal(name, headers.get("authorization"))
    except StorageError as error:
        return _error(503, f"cannot check the request's inference token: {error}", request_id)
    if refusal is None:
        return None
    body = {
        "error": {"code": Unauthenticated.code, "message": refusal},
        "request_id": request_id,
    }
    return _json(401, body, request_id, **{"www-authenticate": _CHALLENGE})


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _Rejected(400, f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise _Rejected(413, f"the body has {declared} bytes; the limit is {limit}")
    receive = request.receive
    chunks = []
    size = 0
    while True:  # the ASGI messages themselves: cheaper than request.stream()
        message = await receive()
        if message["type"] != "http.request":
            raise _Rejected(400, "the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Rejected(413, f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _convert(served: ServedVersion, payload: Any) -> Any:
    try:
        return served.convert(payload)
    except InvalidInput as error:
        raise _Rejected(422, str(error)) from None


def _convert_and_predict(served: ServedVersion, payload: Any) -> Prediction:
    return served.predict(_convert(served, payload))


def _unknown(state: ServingState, name: str, request_id: str) -> Response:
    if name in state.known:
        loading = state.loading.get(name)
        failure = state.failed.get(name)
        detail = (
            f"is loading versions {loading}"
            if loading
            else f"failed to load ({failure[1]})"
            if failure
            else "is loading"
        )
        return _json(
            503,
            {"error": f"endpoint {name!r} {detail}; retry shortly", "request_id": request_id},
            request_id,
            **{"retry-after": "1"},
        )
    known = ", ".join(sorted(state.endpoints)) or "none"
    return _error(404, f"endpoint {name!r} does not exist; known endpoints: {known}", request_id)


async def _predict(
    request: Request, protocol: Protocol, name: str, pinned: int | None = None
) -> Response:
    started = time.perf_counter()
    state: ServingState = request.app.state.serving
    headers = request.headers
    given_id = _clean_id(headers.get("x-request-id"))
    request_id = given_id or state.new_request_id()
    if not state.tokens.is_open(name):
        refused = await _refused(state, name, headers, request_id)
        if refused is not None:
            return refused
    runtime = state.endpoints.get(name)
    if runtime is None:
        return _unknown(state, name, request_id)
    version: int | None = None
    route = _UNROUTED
    payload: Any = None
    logged_inputs: Any = None
    try:
        body = await read_body(request, state.max_body_bytes)
        try:
            document = loads(body)
        except ValueError as error:
            raise _Rejected(400, f"the body is not valid JSON: {error}") from None
        try:
            raw, sticky, body_is_payload = protocol.split(document, runtime.table.sticky_field)
        except InvalidInput as error:
            raise _Rejected(400, str(error)) from None
        if protocol is V2 and not given_id and isinstance(document.get("id"), str):
            request_id = _clean_id(document["id"]) or request_id
        version, route, sticky = _route(runtime, headers, sticky, request_id, pinned)
        served = runtime.versions[version]
        try:
            payload = protocol.payload(raw, served.loaded.signature)
        except InvalidInput as error:
            raise _Rejected(422, str(error)) from None
        if state.log_inputs:
            logged_inputs = body if body_is_payload else payload
        batcher = runtime.batchers.get(version)
        small = len(body) <= INLINE_BODY_BYTES
        if batcher is not None:
            model_input = (
                _convert(served, payload)
                if small
                else await anyio.to_thread.run_sync(_convert, served, payload)
            )
            prediction = await batcher.predict(model_input)
        elif small and served.inline:
            prediction = served.predict(_convert(served, payload))
        else:
            prediction = await anyio.to_thread.run_sync(_convert_and_predict, served, payload)
    except _Rejected as rejected:
        status, message = rejected.status, str(rejected)
        _finish(state, runtime, request_id, version, route, status, started, logged_inputs, message)
        return _error(status, message, request_id)
    except Exception as error:
        message = f"model {runtime.table.model!r} version {version} failed: " + (
            f"{type(error).__name__}: {error}"
        )
        debug = logger.isEnabledFor(logging.DEBUG)
        logger.warning("request %s to %r: %s", request_id, name, message, exc_info=debug)
        _finish(state, runtime, request_id, version, route, 500, started, logged_inputs, message)
        return _error(500, message, request_id)
    assert version is not None
    outputs: dict[str, Any] = {"predictions": prediction.predictions}
    if prediction.probabilities is not None:
        outputs["probabilities"] = prediction.probabilities
    body_out = protocol.render(
        prediction, endpoint=name, version=version, route=route, request_id=request_id
    )
    response = JSONResponse(
        200,
        dumps(body_out),
        [
            (b"x-request-id", request_id.encode("latin-1")),
            (b"x-mlops-version", str(version).encode()),
            (b"x-mlops-route", route.encode()),
        ],
    )
    _finish(state, runtime, request_id, version, route, 200, started, logged_inputs, None, outputs)
    if pinned is None and runtime.table.shadow_version is not None:
        shadow = runtime.router.shadow(sticky or request_id)
        if shadow is not None and shadow in runtime.versions:
            response.background = BackgroundTask(
                _shadow, state, name, runtime.versions[shadow], payload, prediction, request_id
            )
    return response


def _route(
    runtime: EndpointRuntime, headers: Any, sticky: str | None, request_id: str, pinned: int | None
) -> tuple[int, str, str | None]:
    """The version and route label of a request, and its sticky key."""
    if pinned is not None:
        if pinned not in runtime.versions:
            served = ", ".join(str(v) for v in sorted(runtime.versions))
            raise _Rejected(
                404, f"endpoint {runtime.name!r} serves versions {served}, not {pinned}"
            )
        return pinned, runtime.labels[pinned], sticky
    table = runtime.table
    if table.preview_version is not None and runtime.preview_header in headers:
        return table.preview_version, PREVIEW_ROUTE, sticky
    if runtime.sticky_header is not None:
        sticky = headers.get(runtime.sticky_header) or sticky
    picked = runtime.router.pick(sticky or request_id)
    return picked.version, picked.label, sticky


def _finish(
    state: ServingState,
    runtime: EndpointRuntime,
    request_id: str,
    version: int | None,
    route: str,
    status: int,
    started: float,
    inputs: Any,
    error: str | None,
    outputs: Any = None,
) -> None:
    seconds = time.perf_counter() - started
    state.metrics.observe(runtime.name, version, route, status, seconds)
    record = (request_id, runtime.name, version, route, int(time.time() * 1000))
    state.writer.submit(PredictionRecord(*record, seconds * 1000.0, status, inputs, outputs, error))


def _shadow(
    state: ServingState,
    endpoint: str,
    served: ServedVersion,
    payload: Any,
    live: Prediction,
    request_id: str,
) -> None:
    """Predict with the shadow version after the response went out; log, never raise."""
    started = time.perf_counter()
    outputs: Any = None
    error = None
    status = 200
    try:
        prediction = _convert_and_predict(served, payload)
        agree = prediction.predictions == live.predictions
        outputs = {"predictions": prediction.predictions, "agree": agree}
    except _Rejected as rejected:
        status, error = rejected.status, str(rejected)
    except Exception as failure:
        status, error = 500, f"{type(failure).__name__}: {failure}"
    seconds = time.perf_counter() - started
    state.metrics.observe(endpoint, served.version, SHADOW_ROUTE, status, seconds)
    record = (request_id, endpoint, served.version, SHADOW_ROUTE, int(time.time() * 1000))
    state.writer.submit(PredictionRecord(*record, seconds * 1000.0, status, None, outputs, error))


async def predict_native(request: Request) -> Response:
    return await _predict(request, NATIVE, request.path_params["name"])


async def predict_mlflow(request: Request) -> Response:
    return await _predict(request, MLFLOW, request.path_params["name"])


async def infer_v2(request: Request) -> Response:
    params = request.path_params
    return await _predict(request, V2, params["name"], params.get("version"))


async def feedback(request: Request) -> Response:
    """Store actual outcomes by request id (``{"request_id", "actual"}`` or a list)."""
    state: ServingState = request.app.state.serving
    name = request.path_params["name"]
    request_id = state.new_request_id()
    if not state.tokens.is_open(name):
        refused = await _refused(state, name, request.headers, request_id)
        if refused is not None:
            return refused
    if name not in state.endpoints and name not in state.known:
        return _unknown(state, name, request_id)
    try:
        document = loads(await read_body(request, state.max_body_bytes))
    except _Rejected as rejected:
        return _error(rejected.status, str(rejected), request_id)
    except ValueError as error:
        return _error(400, f"the body is not valid JSON: {error}", request_id)
    items = document if isinstance(document, list) else [document]
    now = int(time.time() * 1000)
    rows = []
    for index, item in enumerate(items):
        given = item.get("request_id") if isinstance(item, dict) else None
        if not isinstance(given, str) or not 0 < len(given) <= 64 or "actual" not in item:
            return _error(
                422,
                f"feedback item {index} needs a request_id (a string of 1 to 64 characters) "
                'and an "actual" value, as in {"request_id": "…", "actual": 1}',
                request_id,
            )
        actual = dumps(item["actual"]).decode()
        rows.append({"request_id": given, "endpoint": name, "actual": actual, "ts": now})
    if rows:
        await anyio.to_thread.run_sync(_store_feedback, state, rows)
    return _json(202, {"accepted": len(rows)})


def _store_feedback(state: ServingState, rows: list[dict[str, Any]]) -> None:
    with state.ml.store.write() as connection:
        connection.execute(prediction_feedback.insert(), rows)


async def live(request: Request) -> Response:
    return _json(200, {"live": True})


async def ready(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    is_ready, report = state.readiness()
    return _json(200 if is_ready else 503, report)


async def metrics(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


async def v2_server(request: Request) -> Response:
    from mlops import __version__

    return _json(200, {"name": "mlops", "version": __version__, "extensions": []})


async def v2_ready(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    is_ready, _ = state.readiness()
    return _json(200 if is_ready else 503, {"ready": is_ready})


def _v2_version(request: Request) -> tuple[EndpointRuntime | Response, int | None]:
    state: ServingState = request.app.state.serving
    name = request.path_params["name"]
    runtime = state.endpoints.get(name)
    if runtime is None:
        return _unknown(state, name, state.new_request_id()), None
    number = request.path_params.get("version")
    if number is not None and number not in runtime.versions:
        served = ", ".join(str(v) for v in sorted(runtime.versions))
        message = f"endpoint {name!r} serves versions {served}, not {number}"
        return _json(404, {"error": message}), None
    return runtime, number


async def v2_model(request: Request) -> Response:
    runtime, number = _v2_version(request)
    if isinstance(runtime, Response):
        return runtime
    served = runtime.versions[number if number is not None else runtime.main_version]
    versions = [number] if number is not None else sorted(runtime.versions)
    return _json(200, v2_metadata(runtime.name, versions, served.loaded.signature))


async def v2_model_ready(request: Request) -> Response:
    runtime, number = _v2_version(request)
    if isinstance(runtime, Response):
        return runtime
    body: dict[str, Any] = {"name": runtime.name, "ready": True}
    if number is not None:
        body["version"] = str(number)
    return _json(200, body)


def _clean_id(value: str | None) -> str | None:
    """A caller's request id, if it is short printable text (it is stored and echoed)."""
    if not value or len(value) > 64 or not value.isprintable():
        return None
    return value
