"""Secure by default: the auth policy chosen from the listening host, and a real server in
each mode (required, anonymous read, off), including `mlops server` itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import mlops
from api.conftest import LiveServer, assert_error, unique
from mlops.api import AuthPolicy, is_loopback, resolve_auth
from mlops.config import Settings
from mlops.errors import InvalidInput
from mlops.serving import create_serving_app
from mlops.serving._server import bind_socket

REQUIRED, ANONYMOUS_READ, OFF = AuthPolicy.REQUIRED, AuthPolicy.ANONYMOUS_READ, AuthPolicy.OFF


@pytest.mark.parametrize(
    ("mode", "host", "anonymous_read", "expected"),
    [
        ("auto", "127.0.0.1", False, OFF),
        ("auto", "127.8.9.10", False, OFF),
        ("auto", "::1", False, OFF),
        ("auto", "[::1]", False, OFF),
        ("auto", "localhost", False, OFF),
        ("auto", "LocalHost", True, OFF),
        ("auto", "0.0.0.0", False, REQUIRED),
        ("auto", "::", False, REQUIRED),
        ("auto", "192.168.1.20", False, REQUIRED),
        ("auto", "10.0.0.1", True, ANONYMOUS_READ),
        ("auto", "mlops.example.com", False, REQUIRED),
        ("auto", "128.0.0.1", False, REQUIRED),
        ("auto", None, False, OFF),
        ("required", "127.0.0.1", False, REQUIRED),
        ("required", "127.0.0.1", True, ANONYMOUS_READ),
        ("REQUIRED", "0.0.0.0", False, REQUIRED),
        ("off", "0.0.0.0", False, OFF),
        ("off", "0.0.0.0", True, OFF),
        (REQUIRED, "127.0.0.1", True, REQUIRED),
    ],
)
def test_policy_follows_mode_and_host(
    mode: str | AuthPolicy, host: str | None, anonymous_read: bool, expected: AuthPolicy
) -> None:
    assert resolve_auth(mode, host, allow_anonymous_read=anonymous_read) is expected


def test_loopback_and_bad_modes() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("")
    assert not is_loopback("::")
    with pytest.raises(InvalidInput, match="auto, required, off"):
        resolve_auth("sometimes", "0.0.0.0")


def test_settings_read_auth_from_the_environment() -> None:
    assert (Settings.from_env({}).auth, Settings.from_env({}).allow_anonymous_read) == (
        "auto",
        False,
    )
    settings = Settings.from_env({"MLOPS_AUTH": "Required", "MLOPS_ALLOW_ANONYMOUS_READ": "yes"})
    assert (settings.auth, settings.allow_anonymous_read) == ("required", True)
    with pytest.raises(InvalidInput, match="MLOPS_AUTH"):
        Settings.from_env({"MLOPS_AUTH": "maybe"})
    with pytest.raises(InvalidInput, match="MLOPS_ALLOW_ANONYMOUS_READ"):
        Settings.from_env({"MLOPS_ALLOW_ANONYMOUS_READ": "perhaps"})


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def token_for(ml: Any, role: str) -> str:
    user = unique(role)
    ml.access.create_user(user, role)
    token, _ = ml.access.create_token(user, name="security-tests")
    return str(token)


@pytest.fixture(scope="module")
def serve_with(ml: Any) -> Iterator[Callable[[AuthPolicy], LiveServer]]:
    """Start `mlops server`'s app with a policy carried in the settings, as the CLI does."""
    started: list[tuple[LiveServer, Any]] = []

    def start(policy: AuthPolicy) -> LiveServer:
        settings = ml.settings.with_overrides(
            auth="off" if policy is OFF else "required",
            allow_anonymous_read=policy is ANONYMOUS_READ,
        )
        connection = mlops.connect(settings=settings)
        live = LiveServer(create_serving_app(connection, poll_interval=5.0), "/health/live")
        started.append((live.start(), connection))
        return live

    yield start
    for live, connection in started:
        live.stop()
        connection.close()


@pytest.fixture(scope="module")
def servers(serve_with: Callable[[AuthPolicy], LiveServer]) -> dict[AuthPolicy, LiveServer]:
    return {policy: serve_with(policy) for policy in AuthPolicy}


def api_client(servers: dict[AuthPolicy, LiveServer], policy: AuthPolicy) -> httpx.Client:
    return httpx.Client(base_url=servers[policy].url + "/api/v1", timeout=30.0)


def test_required_refuses_requests_without_a_valid_token(
    servers: dict[AuthPolicy, LiveServer], ml: Any
) -> None:
    with api_client(servers, REQUIRED) as api:
        missing = api.get("/experiments")
        assert "requires an API token" in assert_error(missing, 401, "unauthenticated")["message"]
        assert missing.headers["www-authenticate"].startswith("Bearer")
        # Refused before the body is parsed or the route looked up.
        garbage = api.post("/experiments", content=b"{nope", headers={"content-type": "x"})
        assert_error(garbage, 401, "unauthenticated")
        assert_error(api.get("/no/such/route"), 401, "unauthenticated")
        assert_error(api.get("/experiments", headers=bearer("mlops_nope")), 401, "unauthenticated")

        user = unique("revoked")
        ml.access.create_user(user, "admin")
        token, info = ml.access.create_token(user, name="soon-revoked")
        assert api.get("/experiments", headers=bearer(token)).status_code == 200
        ml.access.revoke_token(info.id)
        revoked = api.get("/experiments", headers=bearer(token))
        assert "revoked" in assert_error(revoked, 401, "unauthenticated")["message"]
        assert revoked.headers["www-authenticate"].startswith("Bearer")


def test_required_names_the_missing_permission_and_lets_an_editor_log(
    servers: dict[AuthPolicy, LiveServer], ml: Any
) -> None:
    viewer, editor = token_for(ml, "viewer"), token_for(ml, "editor")
    with api_client(servers, REQUIRED) as api:
        name = unique("secure")
        refused = api.post("/experiments", json={"name": name}, headers=bearer(viewer))
        message = assert_error(refused, 403, "permission_denied")["message"]
        assert "'experiments.write'" in message
        assert "editor" in message
        assert api.get("/experiments", headers=bearer(viewer)).status_code == 200

        created = api.post("/experiments", json={"name": name}, headers=bearer(editor))
        assert created.status_code == 201, created.text
        run = api.post(
            "/runs", json={"experiment_id": created.json()["id"]}, headers=bearer(editor)
        )
        assert run.status_code == 201, run.text
        logged = api.post(
            f"/runs/{run.json()['id']}/metrics",
            json={"metrics": [{"key": "acc", "value": 0.9, "step": 1}]},
            headers=bearer(editor),
        )
        assert logged.status_code == 204, logged.text
        refused = api.post(
            f"/runs/{run.json()['id']}/metrics",
            json={"metrics": [{"key": "acc", "value": 0.1, "step": 2}]},
            headers=bearer(viewer),
        )
        assert "'runs.write'" in assert_error(refused, 403, "permission_denied")["message"]
    assert ml.tracking.get_run(run.json()["id"]).metrics == {"acc": 0.9}


def test_required_hides_the_schema_and_docs_but_not_the_serving_routes(
    servers: dict[AuthPolicy, LiveServer], ml: Any
) -> None:
    viewer = token_for(ml, "viewer")
    with servers[REQUIRED].client() as client:
        for path in ("/api/v1/openapi.json", "/api/docs"):
            assert_error(client.get(path), 401, "unauthenticated")
            assert client.get(path, headers=bearer(viewer)).status_code == 200
        assert client.get("/health/live").status_code == 200
        # Predictions are not token-gated (yet): an unknown endpoint is a 404, not a 401.
        assert client.post("/v1/endpoints/nope/predict", json={"inputs": [1]}).status_code == 404


def test_anonymous_read_lets_reads_through_and_refuses_writes(
    servers: dict[AuthPolicy, LiveServer], ml: Any
) -> None:
    with api_client(servers, ANONYMOUS_READ) as api:
        assert api.get("/experiments").status_code == 200
        assert api.post("/runs/search", json={}).status_code == 200
        refused = api.post("/experiments", json={"name": unique("anon")})
        assert "for a write" in assert_error(refused, 401, "unauthenticated")["message"]
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert_error(api.get("/experiments", headers=bearer("mlops_nope")), 401, "unauthenticated")
        editor = token_for(ml, "editor")
        created = api.post("/experiments", json={"name": unique("anon")}, headers=bearer(editor))
        assert created.status_code == 201
    with servers[ANONYMOUS_READ].client() as client:
        assert client.get("/api/v1/openapi.json").status_code == 200
        assert client.get("/api/docs").status_code == 200


def test_off_lets_everything_through(servers: dict[AuthPolicy, LiveServer]) -> None:
    with api_client(servers, OFF) as api:
        assert api.get("/experiments").status_code == 200
        assert api.post("/experiments", json={"name": unique("open")}).status_code == 201
        # A token given is still checked: a bad one is never silently ignored.
        assert_error(api.get("/experiments", headers=bearer("mlops_nope")), 401, "unauthenticated")
    with servers[OFF].client() as client:
        assert client.get("/api/docs").status_code == 200


def _free_port() -> int:
    probe = bind_socket("127.0.0.1", 0)
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def _run_server(
    home: Path, *args: str, serving_only: bool = False
) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    if serving_only:  # python -m mlops.serving: the serving process without the CLI
        command = [sys.executable, "-m", "mlops.serving", "--home", str(home)]
        command += ["--port", str(port), "--log-level", "info", *args]
    else:
        command = [sys.executable, "-m", "mlops", "--home", str(home), "server"]
        command += ["--port", str(port), "--no-controller", "--log-level", "warning", *args]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200:
                return process, port
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"mlops server did not start:\n{process.communicate()[0]}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def test_mlops_server_on_all_interfaces_requires_a_token(tmp_path: Path) -> None:
    process, port = _run_server(tmp_path / "home", "--host", "0.0.0.0")
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1/experiments")
    finally:
        output = _stop(process)
    assert_error(response, 401, "unauthenticated")
    assert "auth: required (every API request needs a token) on 0.0.0.0" in output


def test_mlops_server_warns_when_auth_is_off_on_all_interfaces(tmp_path: Path) -> None:
    process, port = _run_server(tmp_path / "home", "--host", "0.0.0.0", "--auth", "off")
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1/experiments")
    finally:
        output = _stop(process)
    assert response.status_code == 200
    assert "auth: off" in output
    assert "WARNING: --auth off on 0.0.0.0" in output


def test_the_serving_module_on_all_interfaces_requires_a_token_too(tmp_path: Path) -> None:
    process, port = _run_server(tmp_path / "home", "--host", "0.0.0.0", serving_only=True)
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1/experiments")
        health = httpx.get(f"http://127.0.0.1:{port}/health/live")
    finally:
        output = _stop(process)
    assert_error(response, 401, "unauthenticated")
    assert health.status_code == 200  # serving routes stay open
    assert "control-plane API auth: required" in output
