"""Schemathesis against the live API: generated requests never get a 5xx, and every
answer's body matches the schema the OpenAPI document gives for its status.

A bounded number of examples per operation keeps this a smoke run (seconds), not a
soak; set MLOPS_API_FUZZ_EXAMPLES for a deeper one. (Schemathesis's own pytest plugin
does not run on this pytest, so the cases are drawn with Hypothesis directly.)
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from api.conftest import LiveServer

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

EXAMPLES = int(os.environ.get("MLOPS_API_FUZZ_EXAMPLES", "8"))


def test_generated_requests_never_get_a_server_error(server: LiveServer) -> None:
    from schemathesis.checks import response_schema_conformance
    from schemathesis.core.failures import FailureGroup

    base_url = server.url + "/api/v1"
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:

        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            derandomize=True,
            database=None,
        )
        @hypothesis.given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(base_url=base_url)
            where = f"{case.method} {case.formatted_path}"
            if response.status_code >= 500:
                failures.append(f"{where} -> {response.status_code}: {response.text[:300]}")
                return
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except (AssertionError, FailureGroup) as error:
                failures.append(f"{where} -> {response.status_code} breaks the schema: {error}")
            if response.status_code >= 400:
                try:
                    body = response.json()
                except ValueError:
                    body = {}
                if set(body) != {"error", "request_id"}:
                    failures.append(
                        f"{where} ({response.request.url}) -> {response.status_code} "
                        f"without the error body: {response.text[:200]}"
                    )

        check()
    assert failures == [], "\n".join(failures)
    with httpx.Client(base_url=base_url) as client:  # the server is still healthy
        assert client.get("/experiments").status_code == 200
