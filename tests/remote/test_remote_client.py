"""The remote client beyond the contract suites: what it covers, retries, errors, tokens,
actors, integrity of downloads, batched logging — against real servers."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

import mlops
from live_server import LiveServer
from mlops.api import api_routes
from mlops.deployment import DeploymentManager
from mlops.errors import (
    IntegrityError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StorageError,
    Unauthenticated,
)
from mlops.governance import AccessControl, AuditLog
from mlops.monitoring import ModelMonitor
from mlops.monitoring.alerts import AlertManager
from mlops.orchestration import PipelineOrchestrator
from mlops.registry import ModelRegistry
from mlops.remote import (
    RemoteDeploymentManager,
    RemoteMLOps,
    RemoteModelMonitor,
    RemoteRegistry,
    RemoteTracker,
)
from mlops.remote._alerts import RemoteAlertManager
from mlops.remote._governance import RemoteAccessControl, RemoteAuditLog
from mlops.remote._pipelines import RemotePipelines
from mlops.serving._server import bind_socket
from mlops.tracking import ExperimentTracker


class Flaky:
    """ASGI middleware answering 503 to the first ``failures`` requests of each method."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.failures: dict[str, int] = {}
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method = scope["method"]
            self.seen.append(method)
            if self.failures.get(method, 0) > 0:
                self.failures[method] -= 1
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                body = b'{"error":{"code":"storage_error","message":"busy"},"request_id":"x"}'
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def server_ml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mlops.MLOps]:
    folder = tmp_path_factory.mktemp("remote")
    ml = mlops.connect(
        f"sqlite:///{folder / 'mlops.db'}",
        artifacts=str(folder / "artifacts"),
        home=str(folder / "home"),
        upgrade_schema=True,
    )
    try:
        yield ml
    finally:
        ml.close()


@pytest.fixture(scope="module")
def flaky(server_ml: mlops.MLOps) -> Iterator[tuple[Flaky, LiveServer]]:
    app = Flaky(Starlette(routes=api_routes(server_ml, auth="off")))
    live = LiveServer(app).start()
    try:
        yield app, live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def secured(server_ml: mlops.MLOps) -> Iterator[LiveServer]:
    live = LiveServer(
        Starlette(routes=api_routes(server_ml, auth="required")), ready_status=401
    ).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def remote(flaky: tuple[Flaky, LiveServer], tmp_path: Path) -> Iterator[mlops.MLOps]:
    ml = mlops.connect(flaky[1].url, home=str(tmp_path / "client"))
    try:
        yield ml
    finally:
        ml.close()


@pytest.mark.parametrize(
    ("embedded", "remote_class"),
    [
        (ExperimentTracker, RemoteTracker),
        (ModelRegistry, RemoteRegistry),
        (PipelineOrchestrator, RemotePipelines),
        (AuditLog, RemoteAuditLog),
        (AccessControl, RemoteAccessControl),
        (DeploymentManager, RemoteDeploymentManager),
        (ModelMonitor, RemoteModelMonitor),
        (AlertManager, RemoteAlertManager),
    ],
)
def test_every_public_method_has_a_remote_implementation(
    embedded: type, remote_class: type
) -> None:
    public = {
        name
        for name, member in inspect.getmembers(embedded)
        if not name.startswith("_") and (callable(member) or isinstance(member, property))
    }
    missing = sorted(name for name in public if name not in vars(remote_class))
    assert missing == [], f"{remote_class.__name__} inherits embedded code for {missing}"


def test_connect_returns_the_remote_facades(remote: mlops.MLOps) -> None:
    assert isinstance(remote, RemoteMLOps)
    assert isinstance(remote, mlops.MLOps)
    assert isinstance(remote.tracking, RemoteTracker)
    assert isinstance(remote.registry, RemoteRegistry)
    for facade in ("store", "artifacts"):
        with pytest.raises(InvalidInput, match="not available through a remote connection"):
            getattr(remote, facade).anything()


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("http://127.0.0.1:8000/api/v1", {}, "root URL"),
        ("http://", {}, "not a server URL"),
        ("http://127.0.0.1:8000", {"token": "  "}, "API token"),
        ("http://127.0.0.1:8000", {"token": "mlops_…"}, "printable ASCII"),
        ("http://127.0.0.1:8000", {"token": "mlops_a b"}, "no spaces"),
        ("http://127.0.0.1:8000", {"artifacts": "/tmp/x"}, "only the URL"),
        ("sqlite:///x.db", {"token": "mlops_x"}, "token= is for a server"),
    ],
)
def test_bad_connection_arguments(url: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        mlops.connect(url, **options)


def test_an_unreachable_server_is_a_clear_storage_error(tmp_path: Path) -> None:
    probe = bind_socket("127.0.0.1", 0)
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    ml = mlops.connect(f"http://127.0.0.1:{port}", home=str(tmp_path))
    ml.tracking._api.backoff = 0.01  # type: ignore[attr-defined]
    with pytest.raises(StorageError, match="cannot reach the mlops server"):
        ml.tracking.list_experiments()
    ml.close()


def test_idempotent_calls_are_retried_writes_are_not(
    flaky: tuple[Flaky, LiveServer], remote: mlops.MLOps
) -> None:
    app, _ = flaky
    remote.tracking._api.backoff = 0.01  # type: ignore[attr-defined]
    experiment = remote.tracking.create_experiment("retried")
    app.failures["GET"] = 2
    before = len(app.seen)
    assert remote.tracking.get_experiment("retried").id == experiment.id
    assert app.seen[before:] == ["GET", "GET", "GET"]

    app.failures["POST"] = 1
    before = len(app.seen)
    with pytest.raises(StorageError, match="busy"):
        remote.tracking.create_experiment("not-retried")
    assert app.seen[before:] == ["POST"]  # a write may have happened: never sent twice
    with pytest.raises(NotFound):
        remote.tracking.get_experiment("not-retried")

    app.failures["GET"] = 10  # more than the retries
    with pytest.raises(StorageError, match="busy"):
        remote.tracking.get_experiment("retried")
    app.failures["GET"] = 0


def test_errors_keep_their_class_message_and_request_id(remote: mlops.MLOps) -> None:
    with pytest.raises(NotFound, match="does not exist") as caught:
        remote.registry.get_model("nope")
    assert len(caught.value.request_id) == 32  # type: ignore[attr-defined]
    assert caught.value.status_code == 404  # type: ignore[attr-defined]


def test_batched_async_logging_through_the_server(
    remote: mlops.MLOps, server_ml: mlops.MLOps
) -> None:
    with remote.tracking.start_run(async_logging=True) as run:
        for step in range(12_000):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    history = server_ml.tracking.get_metric_history(run.id, "loss")
    assert [point.step for point in history] == list(range(12_000))
    assert remote.tracking.get_run(run.id).metrics["loss"] == 1.0 / 12_000


def test_downloads_are_checked_against_the_recorded_digest(
    remote: mlops.MLOps, server_ml: mlops.MLOps, tmp_path: Path
) -> None:
    with remote.tracking.start_run() as run:
        run.log_text("original", "notes.txt")
    stored = server_ml.tracking.get_run(run.id)
    server_ml.artifacts.put_bytes(
        b"tampered", f"{stored.experiment_id}/{run.id}/artifacts/notes.txt"
    )
    with pytest.raises(IntegrityError, match="SHA-256"):
        remote.tracking.download_artifacts(run.id, "notes.txt", tmp_path / "out")
    assert not (tmp_path / "out" / "notes.txt").exists()  # nothing half-written is left


def test_tokens_roles_and_actors_over_the_remote_client(
    secured: LiveServer, server_ml: mlops.MLOps, tmp_path: Path
) -> None:
    server_ml.access.create_user("ed", "editor")
    server_ml.access.create_user("dee", "deployer")
    editor_token, _ = server_ml.access.create_token("ed", name="laptop")
    deployer_token, _ = server_ml.access.create_token("dee", name="ci")

    anonymous = mlops.connect(secured.url, home=str(tmp_path / "a"))
    with pytest.raises(Unauthenticated, match="requires an API token"):
        anonymous.tracking.list_experiments()
    anonymous.close()

    editor = mlops.connect(secured.url, token=editor_token, home=str(tmp_path / "e"))
    with editor.tracking.start_run(name="by-token") as run:
        run.log_metric("f1", 0.9)
    sklearn = pytest.importorskip("sklearn.linear_model")
    import numpy as np

    features = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = sklearn.LogisticRegression().fit(features, [0, 0, 1, 1])
    version = editor.registry.register_model("secured-model", model, input_example=features[:2])
    assert version.created_by == "ed"
    with pytest.raises(PermissionDenied, match=r"models\.stage"):
        editor.registry.promote_to_stage("secured-model", 1, "production")
    with pytest.raises(PermissionDenied, match="recorded as that user"):
        editor.registry.create_model("other-model", actor="somebody-else")
    editor.close()

    deployer = mlops.connect(secured.url, token=deployer_token, home=str(tmp_path / "d"))
    promoted = deployer.registry.promote_to_stage("secured-model", 1, "production")
    assert promoted.stage == "production"
    assert deployer.registry.history("secured-model")[-1].actor == "dee"
    deployer.close()
    entries = server_ml.audit.list(action="model.stage_changed")
    assert [entry.actor for entry in entries] == ["dee"]

    server_ml.access.delete_user("ed")
    gone = mlops.connect(secured.url, token=editor_token, home=str(tmp_path / "g"))
    with pytest.raises(Unauthenticated):
        gone.tracking.list_experiments()
    gone.close()


def test_the_token_can_come_from_the_environment(
    secured: LiveServer,
    server_ml: mlops.MLOps,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_ml.access.create_user("viv", "viewer")
    token, _ = server_ml.access.create_token("viv", name="env")
    monkeypatch.setenv("MLOPS_TOKEN", token)
    viewer = mlops.connect(secured.url, home=str(tmp_path))
    assert isinstance(viewer.tracking.list_experiments(), list)
    with pytest.raises(PermissionDenied, match=r"experiments\.write"):
        viewer.tracking.create_experiment("viewers-cannot")
    viewer.close()


def test_keep_alive_reuses_one_connection(remote: mlops.MLOps) -> None:
    api = remote.tracking._api  # type: ignore[attr-defined]
    opened: list[Any] = []
    pool = api._http._transport._pool
    remote.tracking.list_experiments()
    for _ in range(20):
        remote.tracking.list_experiments()
        opened.append(len(pool.connections))
    assert max(opened) == 1
    assert isinstance(api._http, httpx.Client)
