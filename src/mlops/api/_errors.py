"""One JSON error body for every failure, and the map from the MLOpsError tree to statuses.

Every error answer looks like::

    {"error": {"code": "not_found", "message": "run 'ab…' does not exist …"},
     "request_id": "5f0c…"}

``code`` is the stable, machine-readable ``MLOpsError.code`` (or one of the HTTP-level
codes below); ``message`` says what failed and what to do. Stack traces never leave the
server: an unexpected exception is logged with its request id and answered with a
generic 500 that quotes the id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlops.errors import (
    AlreadyExists,
    Conflict,
    IntegrityError,
    InvalidInput,
    MissingDependency,
    MLOpsError,
    NotFound,
    PermissionDenied,
    StorageError,
    Unauthenticated,
)

__all__ = [
    "STATUS_OF",
    "ApiError",
    "error_response",
    "install_error_handlers",
    "status_of",
    "unexpected_error_body",
]

logger = logging.getLogger("mlops.api")

#: HTTP status of each branch of the MLOpsError tree; the nearest ancestor wins, so
#: FilterSyntaxError answers 422 like InvalidInput and RunNotActive 409 like Conflict.
STATUS_OF: dict[type[MLOpsError], int] = {
    NotFound: 404,
    AlreadyExists: 409,
    InvalidInput: 422,
    Conflict: 409,
    Unauthenticated: 401,
    PermissionDenied: 403,
    # The stored bytes no longer match their digest: nothing the caller can change fixes
    # it, so it is a server error, but a named one (the message says what was damaged).
    IntegrityError: 500,
    StorageError: 503,
    MissingDependency: 501,
    MLOpsError: 500,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An HTTP-level refusal raised by the API itself (bad path, body too large)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def status_of(error: MLOpsError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500  # pragma: no cover - MLOpsError itself is in the map


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return JSONResponse(
        {"error": error, "request_id": request_id_of(request)},
        status_code=status,
        headers=headers,
    )


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "metrics", 0, "value")`` -> ``body.metrics[0].value``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


async def _on_mlops_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, MLOpsError)
    status = status_of(error)
    if status >= 500:
        logger.error("request %s failed with %s: %s", request_id_of(request), error.code, error)
    headers = (
        {"Retry-After": "1"}
        if status == 503
        else {"WWW-Authenticate": 'Bearer realm="mlops"'}
        if status == 401
        else None
    )
    return error_response(request, status, error.code, str(error), headers=headers)


async def _on_api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(request, error.status, error.code, error.message)


async def _on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = list(error.errors())
    if any(problem.get("type") == "json_invalid" for problem in problems):
        first = next(p for p in problems if p.get("type") == "json_invalid")
        position = (first.get("ctx") or {}).get("error", "")
        return error_response(
            request,
            400,
            "invalid_json",
            f"the request body is not valid JSON ({position}); send a JSON object",
        )
    messages = []
    for problem in problems:
        where = _field_name(problem.get("loc", ()))
        messages.append(f"{where}: {problem.get('msg', 'is invalid')}")
    field = _field_name(problems[0].get("loc", ())) if problems else None
    return error_response(request, 422, InvalidInput.code, "; ".join(messages), field=field)


async def _on_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    message = str(error.detail)
    if error.status_code == 404 and message == "Not Found":
        message = f"no API route {request.method} {request.url.path}; see /api/docs"
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; see /api/docs"
    return error_response(request, error.status_code, code, message, headers=error.headers)


def unexpected_error_body(request_id: str) -> dict[str, Any]:
    """The body of a 500 for an exception nobody raised on purpose (no details leak)."""
    return {
        "error": {
            "code": "internal_error",
            "message": f"the server failed to answer this request; report request id "
            f"{request_id} to its operator (the server log has the details)",
        },
        "request_id": request_id,
    }


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MLOpsError, _on_mlops_error)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
