"""One error body for every failure: mapped MLOpsErrors, HTTP-level refusals, and 500s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.conftest import assert_error, unique
from mlops.errors import (
    AlreadyExists,
    Conflict,
    FilterSyntaxError,
    IntegrityError,
    InvalidInput,
    MissingDependency,
    MLOpsError,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    RunNotActive,
    StorageError,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("gone"), 404),
        (AlreadyExists("taken"), 409),
        (InvalidInput("bad"), 422),
        (FilterSyntaxError("bad filter", text="x >", position=2), 422),
        (Conflict("clash"), 409),
        (RunNotActive("ended"), 409),
        (PolicyViolation("rule"), 409),
        (PermissionDenied("no"), 403),
        (IntegrityError("tampered"), 500),
        (StorageError("database down"), 503),
        (MissingDependency("needs extra"), 501),
        (MLOpsError("other"), 500),
    ],
)
def test_each_mlops_error_maps_to_its_status_and_code(
    api: httpx.Client, ml: Any, monkeypatch: pytest.MonkeyPatch, error: MLOpsError, status: int
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(ml.tracking, "list_experiments", fail)
    body = assert_error(api.get("/experiments"), status, error.code)
    assert body["message"] == str(error)
    if status == 503:
        assert api.get("/experiments").headers["retry-after"] == "1"


def test_unexpected_exception_is_a_generic_500_with_the_request_id(
    api: httpx.Client, ml: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret connection string postgres://admin:pw@db")

    monkeypatch.setattr(ml.tracking, "list_experiments", crash)
    response = api.get("/experiments")
    error = assert_error(response, 500, "internal_error")
    assert response.json()["request_id"] in error["message"]
    assert "secret" not in response.text
    assert "RuntimeError" not in response.text


def test_malformed_json_is_400(api: httpx.Client) -> None:
    response = api.post(
        "/experiments", content=b'{"name": "x",', headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in assert_error(response, 400, "invalid_json")["message"]
    not_json = api.post("/experiments", content=b"name=x", headers={"content-type": "text/plain"})
    assert_error(not_json, 422, "invalid_input")
    assert_error(api.post("/experiments", json=["a", "list"]), 422, "invalid_input")


def test_body_over_one_mib_is_413_and_changes_nothing(api: httpx.Client) -> None:
    name = unique("huge")
    big = {"name": name, "description": "x" * (2**20)}
    assert_error(api.post("/experiments", json=big), 413, "payload_too_large")

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while reading
        yield b'{"name": "' + name.encode() + b'", "description": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    streamed = api.post(
        "/experiments", content=chunked(), headers={"content-type": "application/json"}
    )
    assert_error(streamed, 413, "payload_too_large")
    assert_error(api.get(f"/experiments/by-name/{name}"), 404, "not_found")


def test_unknown_route_and_wrong_method(api: httpx.Client) -> None:
    assert "/api/docs" in assert_error(api.get("/no-such-thing"), 404, "not_found")["message"]
    assert_error(api.put("/experiments", json={}), 405, "method_not_allowed")


def test_request_id_is_echoed_when_plain_and_made_up_otherwise(api: httpx.Client) -> None:
    given = api.get("/experiments/987654", headers={"x-request-id": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    assert given.json()["request_id"] == "trace-42"
    hostile = api.get("/experiments/987654", headers={"x-request-id": "a\tb" + "x" * 300})
    assert len(hostile.headers["x-request-id"]) == 32
    assert api.get("/experiments").headers["x-request-id"]
