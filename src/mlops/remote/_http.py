"""The HTTP side of the remote client: one pooled ``httpx.Client``, retries where they are
safe, and the API's error bodies turned back into the ``MLOpsError`` they came from."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from mlops import errors
from mlops.errors import (
    FilterSyntaxError,
    InvalidInput,
    MLOpsError,
    StorageError,
)

__all__ = ["ApiClient", "error_from_response"]

#: Methods whose repetition changes nothing more than the first call did.
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Answers that mean "the server could not take this now", worth another try.
_TRANSIENT_STATUS = frozenset({502, 503, 504})
_POSITION = re.compile(r" at position (\d+):\n  (.*)\n", re.DOTALL)


def _codes() -> dict[str, type[MLOpsError]]:
    found: dict[str, type[MLOpsError]] = {}
    pending: list[type[MLOpsError]] = [MLOpsError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


_BY_CODE = _codes()
_BY_STATUS: dict[int, type[MLOpsError]] = {
    400: InvalidInput,
    401: errors.Unauthenticated,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: InvalidInput,
    422: InvalidInput,
    501: errors.MissingDependency,
    503: StorageError,
}


def error_from_response(response: httpx.Response) -> MLOpsError:
    """The ``MLOpsError`` an error answer of the API stands for, with the server's message
    (and request id, so an operator can find the server's log line)."""
    try:
        body = response.json()
        detail = body["error"]
        code, message = str(detail["code"]), str(detail["message"])
        request_id = str(body.get("request_id") or "")
    except (ValueError, KeyError, TypeError):
        code, message, request_id = "", response.text[:500] or response.reason_phrase, ""
    cls = _BY_CODE.get(code) or _BY_STATUS.get(response.status_code, MLOpsError)
    if code == "internal_error":
        cls = MLOpsError
    if cls is FilterSyntaxError:
        return _filter_error(message)
    error = cls(message)
    error.request_id = request_id  # type: ignore[attr-defined]
    error.status_code = response.status_code  # type: ignore[attr-defined]
    return error


def _filter_error(message: str) -> FilterSyntaxError:
    """FilterSyntaxError's constructor builds its message; rebuild it from the parts."""
    found = _POSITION.search(message)
    error = FilterSyntaxError.__new__(FilterSyntaxError)
    Exception.__init__(error, message)
    error.position = int(found.group(1)) if found else 0
    error.text = found.group(2) if found else ""
    return error


class ApiClient:
    """Requests to one server's ``/api/v1``, over a pooled keep-alive connection.

    Calls whose repetition is harmless (GET, PUT, DELETE) are retried on connection
    failures and 502/503/504 answers, with exponential backoff and jitter, honouring
    ``Retry-After``; any call is retried when the connection could not even be opened
    (nothing reached the server). Error answers raise the matching ``MLOpsError``.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInput(f"retries must be a non-negative int, got {retries!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InvalidInput(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        headers = {"User-Agent": "mlops-client"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_keepalive_connections=8, max_connections=16),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"<ApiClient {self.url}>"

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> httpx.Response:
        """Send one request (retried as the class says); raise on an error answer."""
        sent_headers = dict(headers or {})
        if actor is not None:
            sent_headers["X-MLOps-Actor"] = actor
        cleaned = None if params is None else {k: v for k, v in params.items() if v is not None}
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    path,
                    json=json,
                    params=cleaned,
                    content=content,
                    headers=sent_headers,
                    files=files,
                    data=data,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                if attempt < self.retries:
                    attempt += 1
                    self._pause(attempt, None)
                    continue
                raise StorageError(
                    f"cannot reach the mlops server at {self.url} ({error}); check that "
                    "`mlops server` runs there and the URL is right"
                ) from None
            except httpx.TransportError as error:
                if method in _IDEMPOTENT and files is None and attempt < self.retries:
                    attempt += 1
                    self._pause(attempt, None)
                    continue
                raise StorageError(
                    f"the connection to the mlops server at {self.url} failed during "
                    f"{method} {path} ({type(error).__name__}: {error}); "
                    + (
                        "it was retried"
                        if method in _IDEMPOTENT
                        else "it was not retried, since it may have been applied: "
                        "check before repeating it"
                    )
                ) from None
            if (
                response.status_code in _TRANSIENT_STATUS
                and method in _IDEMPOTENT
                and files is None
                and attempt < self.retries
            ):
                attempt += 1
                self._pause(attempt, response.headers.get("retry-after"))
                continue
            if response.status_code >= 400:
                raise error_from_response(response)
            return response

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * 2 ** (attempt - 1) * (0.5 + random.random())
        if retry_after is not None and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), 10.0))
        time.sleep(delay)

    def get(self, path: str, **options: Any) -> Any:
        return self.request("GET", path, **options).json()

    def post(self, path: str, **options: Any) -> Any:
        response = self.request("POST", path, **options)
        return None if response.status_code == 204 or not response.content else response.json()

    def put(self, path: str, **options: Any) -> Any:
        response = self.request("PUT", path, **options)
        return None if response.status_code == 204 or not response.content else response.json()

    def patch(self, path: str, **options: Any) -> Any:
        response = self.request("PATCH", path, **options)
        return None if response.status_code == 204 or not response.content else response.json()

    def delete(self, path: str, **options: Any) -> None:
        self.request("DELETE", path, **options)

    def pages(self, path: str, key: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Every item of a paginated list, page after page."""
        query = {**(params or {}), "limit": 1000}
        while True:
            body = self.get(path, params=query)
            yield from body[key]
            token = body.get("next_page_token")
            if not token:
                return
            query["page_token"] = token

    @contextmanager
    def stream(self, path: str) -> Iterator[httpx.Response]:
        """A streamed GET (retried while nothing was received); raises on an error answer."""
        attempt = 0
        while True:
            try:
                with self._http.stream("GET", path) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise error_from_response(response)
                    yield response
                    return
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                if attempt < self.retries:
                    attempt += 1
                    self._pause(attempt, None)
                    continue
                raise StorageError(
                    f"cannot reach the mlops server at {self.url} ({error})"
                ) from None
