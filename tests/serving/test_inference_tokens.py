"""Endpoints that require an inference token, through a real server on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

import mlops
from mlops.cli import app as cli_app
from mlops.errors import InvalidInput, NotFound, Unauthenticated
from mlops.serving import RouteTable
from serving.conftest import feedback_rows, numeric_frame, put, register, single, wait_for

PREDICT = "/v1/endpoints/{}/predict"


@pytest.fixture
def rows(ml: mlops.MLOps, numeric_model: Any) -> list[dict[str, Any]]:
    """Endpoints "churn" and "fraud" serving one model; a request body for them."""
    register(ml, "churn", numeric_model, numeric_frame().head(5))
    single(ml, "churn")
    put(ml, "fraud", RouteTable.single("churn", 1))  # another endpoint, the same model
    records: list[dict[str, Any]] = numeric_frame(rows=1, seed=9).to_dict("records")
    return records


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _assert_401(response: httpx.Response, words: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == "unauthenticated"
    assert words in body["error"]["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["www-authenticate"] == 'Bearer realm="mlops"'


def test_a_required_token_guards_every_prediction_route(
    ml: mlops.MLOps, rows: Any, serve: Any
) -> None:
    churn, _ = ml.access.create_inference_token("churn", name="app")
    fraud, _ = ml.access.create_inference_token("fraud", name="other")
    api_token = _admin_api_token(ml)
    assert ml.access.require_inference_token("churn") is True
    assert ml.access.require_inference_token("churn") is False  # already so
    server = serve(ml, token_cache_seconds=0.0)
    with server.client() as client:
        open_answer = client.post(PREDICT.format("fraud"), json=rows)
        assert open_answer.status_code == 200  # "fraud" requires nothing

        missing = client.post(PREDICT.format("churn"), json=rows, headers={"x-request-id": "r1"})
        _assert_401(missing, "requires an inference token")
        assert missing.json()["request_id"] == "r1"

        answer = client.post(PREDICT.format("churn"), json=rows, headers=_bearer(churn))
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 1

        other = client.post(PREDICT.format("churn"), json=rows, headers=_bearer(fraud))
        _assert_401(other, "is for endpoint 'fraud', not 'churn'")
        _assert_401(
            client.post(PREDICT.format("churn"), json=rows, headers=_bearer(api_token)),
            "an API token does not open prediction routes",
        )
        _assert_401(
            client.post(PREDICT.format("churn"), json=rows, headers=_bearer("mlinf_madeup")),
            "not known",
        )
        _assert_401(
            client.post(
                PREDICT.format("churn"), json=rows, headers={"authorization": f"Basic {churn}"}
            ),
            "'Basic' scheme",
        )
        # The other protocols and the feedback route are guarded alike.
        mlflow = {"dataframe_records": rows}
        _assert_401(client.post("/v1/endpoints/churn/invocations", json=mlflow), "requires")
        invoked = client.post(
            "/v1/endpoints/churn/invocations", json=mlflow, headers=_bearer(churn)
        )
        assert invoked.status_code == 200, invoked.text
        v2 = {"inputs": [{"name": "tenure", "shape": [1], "datatype": "FP64", "data": [3.0]}]}
        _assert_401(client.post("/v2/models/churn/infer", json=v2), "requires")
        actual = {"request_id": answer.json()["request_id"], "actual": 1}
        _assert_401(client.post("/v1/endpoints/churn/feedback", json=actual), "requires")
        stored = client.post("/v1/endpoints/churn/feedback", json=actual, headers=_bearer(churn))
        assert stored.status_code == 202
    assert len(feedback_rows(ml)) == 1


def test_revoked_and_expired_tokens_are_refused(ml: mlops.MLOps, rows: Any, serve: Any) -> None:
    token, info = ml.access.create_inference_token("churn", name="app")
    short, _ = ml.access.create_inference_token("churn", name="brief", expires_in=0.5)
    ml.access.require_inference_token("churn")
    server = serve(ml, token_cache_seconds=0.2)

    def status(given: str | None) -> int:
        headers = {} if given is None else _bearer(given)
        with server.client() as client:
            return client.post(PREDICT.format("churn"), json=rows, headers=headers).status_code

    assert status(token) == 200
    # Expiry is checked on every request, cached or not.
    wait_for(lambda: status(short) == 401, what="the short-lived token to expire")
    ml.access.revoke_inference_token(info.id)
    wait_for(lambda: status(token) == 401, what="the revocation to reach the server")
    with server.client() as client:
        _assert_401(
            client.post(PREDICT.format("churn"), json=rows, headers=_bearer(token)), "was revoked"
        )
        _assert_401(
            client.post(PREDICT.format("churn"), json=rows, headers=_bearer(short)), "has expired"
        )
    # Switching the requirement off opens the endpoint again.
    ml.access.require_inference_token("churn", False)
    wait_for(lambda: status(None) == 200, what="the endpoint to open")


def test_tokens_are_stored_hashed_listed_without_secrets_and_audited(
    ml: mlops.MLOps, rows: Any
) -> None:
    token, info = ml.access.create_inference_token("churn", name="app", expires_in="30d")
    assert token.startswith("mlinf_")
    assert info.prefix == token[: len("mlinf_") + 8]
    listed = ml.access.list_inference_tokens("churn")
    assert [item.id for item in listed] == [info.id]
    assert token not in json.dumps([item.to_json() for item in listed])
    assert ml.access.list_inference_tokens("fraud") == []
    assert ml.access.check_inference_token("churn", token).id == info.id
    with pytest.raises(Unauthenticated, match="not 'fraud'"):
        ml.access.check_inference_token("fraud", token)
    revoked = ml.access.revoke_inference_token(info.id)
    assert revoked.status() == "revoked"
    assert ml.access.revoke_inference_token(info.id) == revoked  # again: no change
    with pytest.raises(Unauthenticated, match="was revoked"):
        ml.access.check_inference_token("churn", token)
    with pytest.raises(NotFound, match="no inference token 999"):
        ml.access.revoke_inference_token(999)
    with pytest.raises(NotFound, match="endpoint 'nowhere' does not exist"):
        ml.access.require_inference_token("nowhere")
    with pytest.raises(InvalidInput):
        ml.access.create_inference_token("churn", name="")
    ml.access.require_inference_token("churn")
    assert ml.access.endpoints_requiring_tokens() == {"churn"}
    actions = [entry.action for entry in ml.audit.list(target=None, limit=10)]
    assert actions[:3] == [
        "endpoint.token_requirement_changed",
        "inference_token.revoked",
        "inference_token.created",
    ]


def test_the_endpoints_cli_manages_tokens(
    ml: mlops.MLOps, database_url: str, rows: Any, serve: Any, tmp_path: Path
) -> None:
    def run(*args: str) -> Result:
        result = CliRunner().invoke(
            cli_app,
            ["--database-url", database_url, "--home", str(tmp_path / "home"), *args],
            env={"COLUMNS": "250", "MLOPS_USER": "ops"},
        )
        assert result.exit_code == 0, result.output
        return result

    created = json.loads(run("endpoints", "token", "create", "churn", "-n", "app", "--json").stdout)
    token = created["token"]
    assert created["endpoint"] == "churn"
    assert created["status"] == "active"
    plain = run("endpoints", "token", "create", "churn", "--expires", "2w").stdout.strip()
    assert plain.startswith("mlinf_")
    assert (
        "requires an inference token" in run("endpoints", "require-token", "churn", "--on").stdout
    )
    listed = run("endpoints", "token", "list", "churn").stdout
    assert "app" in listed
    assert created["prefix"] in listed
    assert token not in listed
    assert plain not in listed
    server = serve(ml, token_cache_seconds=0.0)
    with server.client() as client:
        assert client.post(PREDICT.format("churn"), json=rows).status_code == 401
        allowed = client.post(PREDICT.format("churn"), json=rows, headers=_bearer(token))
        assert allowed.status_code == 200
        run("endpoints", "token", "revoke", str(created["id"]))
        refused = client.post(PREDICT.format("churn"), json=rows, headers=_bearer(token))
        _assert_401(refused, "was revoked")
        assert "open to every caller" in run("endpoints", "require-token", "churn", "--off").stdout
        assert client.post(PREDICT.format("churn"), json=rows).status_code == 200
    statuses = json.loads(run("endpoints", "token", "list", "--json").stdout)
    assert [item["status"] for item in statuses] == ["revoked", "active"]
    entries = ml.audit.list(action="inference_token.*")
    assert {entry.actor for entry in entries} == {"ops"}
    failed = CliRunner().invoke(
        cli_app,
        ["--database-url", database_url, "endpoints", "require-token", "churn"],
    )
    assert failed.exit_code == 1
    assert "--on" in failed.output


def _admin_api_token(ml: mlops.MLOps) -> str:
    ml.access.create_user("root", "admin")
    token, _ = ml.access.create_token("root", name="admin")
    return token
