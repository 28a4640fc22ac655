"""The OpenAPI schema at /api/v1/openapi.json and the offline docs page at /api/docs."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from api.conftest import LiveServer
from mlops.api._app import ROUTER_MODULES


def api_operations() -> set[tuple[str, str]]:
    """(METHOD, path) of every route of the API's routers, as OpenAPI writes paths."""
    operations = set()
    for module in ROUTER_MODULES:
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            path = route.path.replace(":path}", "}")
            operations |= {(method, path) for method in route.methods}
    return operations


def test_schema_is_valid_openapi_with_every_route(server: LiveServer, ml: Any) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    with server.client() as client:
        response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    validator.validate(schema)
    assert schema["servers"] == [{"url": "/api/v1"}]
    served = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    }
    expected = api_operations()
    assert served == expected
    assert len(expected) >= 90
    assert ("POST", "/runs/{run_id}/log-batch") in served
    assert ("PUT", "/runs/{run_id}/artifacts/{path}") in served
    error_body = schema["paths"]["/experiments"]["post"]["responses"]["409"]
    assert error_body["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


def test_docs_page_lists_every_operation_and_loads_nothing_remote(
    server: LiveServer, ml: Any
) -> None:
    with server.client() as client:
        response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert "<script" not in page
    assert re.search(r"""(src|href)=["']?(https?:)?//""", page) is None
    for method, path in api_operations():
        assert f"<code>/api/v1{path}</code>" in page.replace("&#x27;", "'"), (method, path)
    assert 'href="/api/v1/openapi.json"' in page


def test_serving_routes_still_answer_beside_the_api(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/health/live").status_code == 200
        assert client.get("/api/v1/experiments").status_code == 200
