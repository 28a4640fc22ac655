"""Hardening of `mlops server`: request ids on audit entries, CORS only when asked for,
and secrets that never reach the logs."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import mlops
from api.conftest import LiveServer, unique
from conftest import POSTGRES_ADMIN_URL
from mlops.cli import app as cli_app
from mlops.config import Settings
from mlops.errors import InvalidInput
from mlops.governance import current_request_id, request_id_scope
from mlops.serving import create_serving_app
from mlops.serving._server import bind_socket

ORIGIN = "https://app.example"

# -- request ids in the audit log ----------------------------------------------------------


def test_an_api_change_records_the_request_id_in_its_audit_entry(
    ml: Any, api: httpx.Client
) -> None:
    name = unique("audited")
    created = api.post("/models", json={"name": name}, headers={"x-request-id": "abc123"})
    assert created.status_code == 201, created.text
    assert [entry.request_id for entry in _entries(ml, name)] == ["abc123"]
    # Without a caller's id the entry records the one the server made up and echoed.
    changed = api.patch(f"/models/{name}", json={"description": "churn, monthly"})
    assert changed.status_code == 200, changed.text
    entries = _entries(ml, name)
    assert entries[0].request_id == changed.headers["x-request-id"]
    assert entries[1].request_id == "abc123"
    # Changes made outside a request record none.
    ml.registry.update_model(name, description="by hand")
    assert _entries(ml, name)[0].request_id is None

    listed = CliRunner().invoke(
        cli_app,
        ["--database-url", ml.settings.resolved_database_url, "audit", "list", "--limit", "5"],
        env={"COLUMNS": "300"},
    )
    assert listed.exit_code == 0, listed.output
    assert "request" in listed.stdout
    assert changed.headers["x-request-id"] in listed.stdout


def _entries(ml: Any, name: str) -> list[Any]:
    """The audit entries about model ``name``, newest first."""
    return [entry for entry in ml.audit.list(limit=50) if name in entry.target]


def test_the_request_id_scope_nests_and_resets() -> None:
    assert current_request_id() is None
    with request_id_scope("outer"):
        with request_id_scope("inner"):
            assert current_request_id() == "inner"
        assert current_request_id() == "outer"
    assert current_request_id() is None


# -- CORS ----------------------------------------------------------------------------------


def _preflight(client: httpx.Client, path: str) -> httpx.Response:
    return client.options(
        path,
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )


def test_cors_is_off_by_default(server: LiveServer) -> None:
    with server.client() as client:
        for path in ("/api/v1/experiments", "/health/live"):
            response = client.get(path, headers={"origin": ORIGIN})
            assert response.status_code == 200
            assert not [h for h in response.headers if h.lower().startswith("access-control-")]
        preflight = _preflight(client, "/api/v1/experiments")
        assert "access-control-allow-origin" not in preflight.headers


def test_cors_answers_only_the_origins_allowed(ml: Any) -> None:
    live = LiveServer(create_serving_app(ml, poll_interval=5.0, cors_origins=[ORIGIN])).start()
    try:
        with live.client() as client:
            allowed = client.get("/api/v1/experiments", headers={"origin": ORIGIN})
            other = client.get("/api/v1/experiments", headers={"origin": "https://evil.example"})
            preflight = _preflight(client, "/v1/endpoints/churn/predict")
    finally:
        live.stop()
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in other.headers
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()


def test_cors_origins_come_from_the_environment_and_are_checked() -> None:
    settings = Settings.from_env({"MLOPS_CORS_ORIGINS": f"{ORIGIN}, http://localhost:3000,"})
    assert settings.cors_origins == (ORIGIN, "http://localhost:3000")
    assert Settings.from_env({}).cors_origins == ()
    with pytest.raises(InvalidInput, match="not an origin"):
        Settings.from_env({"MLOPS_CORS_ORIGINS": "https://app.example/path"})


# -- secrets never logged -------------------------------------------------------------------

PASSWORD = "pw-" + uuid.uuid4().hex


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres)])
def secret_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database whose URL carries a password (the local server trusts
    loopback, so any password connects); the tokens and secrets checked are the same on
    SQLite, so one run covers them all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mlops.db'}"
        return
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mlops_hardening_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        if os.environ.get("MLOPS_TEST_ALLOW_NO_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL is unreachable: {error}")
        raise
    url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name, password=PASSWORD)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_a_real_server_never_logs_secrets(secret_database_url: str, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from serving.conftest import fit_numeric

    home = tmp_path / "home"
    with mlops.connect(
        secret_database_url, home=str(home), artifacts=str(tmp_path / "art"), upgrade_schema=True
    ) as ml:
        ml.registry.register_model("churn", fit_numeric(), input_example=_rows())
        ml.deployments.deploy("churn", "churn", 1)
        ml.access.create_user("root", "admin")
        api_token, _ = ml.access.create_token("root", name="ci")
        inference_token, _ = ml.access.create_inference_token("churn", name="app")
        ml.access.require_inference_token("churn")
        webhook = ml.registry.webhooks.add("http://127.0.0.1:9/hook", secret="whsec-" + PASSWORD)
    secrets = {
        "API token": api_token,
        "inference token": inference_token,
        "webhook secret": webhook.secret,
        "refused token": "mlops_" + uuid.uuid4().hex,
        "refused inference token": "mlinf_" + uuid.uuid4().hex,
    }
    if "postgresql" in secret_database_url:
        secrets["database password"] = PASSWORD
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env |= {"MLOPS_DATABASE_URL": secret_database_url, "MLOPS_ARTIFACT_ROOT": str(tmp_path / "art")}
    command = [sys.executable, "-m", "mlops", "--home", str(home), "server", "--port", str(port)]
    command += ["--log-level", "debug", "--cors-origin", ORIGIN, "--auth", "required"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(process, url)
        with httpx.Client(base_url=url, timeout=30.0) as client:
            bearer = {"authorization": f"Bearer {api_token}"}
            assert client.get("/api/v1/experiments", headers=bearer).status_code == 200
            refused = {"authorization": f"Bearer {secrets['refused token']}"}
            assert client.get("/api/v1/experiments", headers=refused).status_code == 401
            created = client.post("/api/v1/models", json={"name": "other"}, headers=bearer)
            assert created.status_code == 201  # an event for the webhook (which fails)
            predict = "/v1/endpoints/churn/predict"
            given = {"authorization": f"Bearer {inference_token}"}
            answer = client.post(predict, json=_rows(), headers=given)
            assert answer.status_code == 200, answer.text
            wrong = {"authorization": f"Bearer {secrets['refused inference token']}"}
            assert client.post(predict, json=_rows(), headers=wrong).status_code == 401
            cors = client.get("/health/live", headers={"origin": ORIGIN})
            assert cors.headers["access-control-allow-origin"] == ORIGIN
    finally:
        output = _stop(process)
    assert "CORS allowed for https://app.example" in output
    for what, secret in secrets.items():
        assert secret not in output, f"the {what} was logged:\n{output}"


def test_settings_never_show_a_database_password() -> None:
    settings = Settings(database_url=f"postgresql+psycopg://ops:{PASSWORD}@db.example/mlops")
    assert PASSWORD not in repr(settings)
    assert "ops:***@db.example" in repr(settings)


def test_in_process_logs_hold_no_token(
    ml: Any, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    user = unique("user")
    ml.access.create_user(user, "viewer")
    token, _ = ml.access.create_token(user, name="t")
    made_up = "mlops_" + uuid.uuid4().hex
    with caplog.at_level(logging.DEBUG), server.client() as client:
        client.get("/api/v1/experiments", headers={"authorization": f"Bearer {token}"})
        client.get("/api/v1/experiments", headers={"authorization": f"Bearer {made_up}"})
        client.post(
            "/api/v1/models",
            json={"name": unique("m")},
            headers={"authorization": f"Bearer {token}"},
        )
    logged = caplog.text + json.dumps([record.__dict__ for record in caplog.records], default=str)
    assert token not in logged
    assert made_up not in logged


def _rows() -> Any:
    from serving.conftest import numeric_frame

    return numeric_frame(rows=2, seed=4).to_dict("records")


def _free_port() -> int:
    probe = bind_socket("127.0.0.1", 0)
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def _wait_until_ready(process: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"mlops server did not become ready:\n{process.communicate()[0]}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output
