"""/api/v1/runs/{id}/artifacts: streamed upload and download, listing, path safety."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.conftest import LiveServer, assert_error, unique
from mlops.api import api_routes


@pytest.fixture
def run_id(api: httpx.Client) -> str:
    experiment = api.post("/experiments", json={"name": unique("art")}).json()
    run = api.post("/runs", json={"experiment_id": experiment["id"]}).json()
    return str(run["id"])


def test_upload_download_list_round_trip(api: httpx.Client, run_id: str) -> None:
    data = bytes(range(256)) * 5000  # ~1.3 MB: more than one chunk, over the JSON limit
    uploaded = api.put(f"/runs/{run_id}/artifacts/model/weights.bin", content=data)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json() == {
        "path": "model/weights.bin",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    api.put(f"/runs/{run_id}/artifacts/notes.txt", content=b"hello")

    downloaded = api.get(f"/runs/{run_id}/artifacts/model/weights.bin")
    assert downloaded.status_code == 200
    assert downloaded.content == data
    assert downloaded.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert downloaded.headers["content-type"] == "application/octet-stream"
    assert downloaded.headers["x-content-type-options"] == "nosniff"

    listed = api.get(f"/runs/{run_id}/artifacts").json()
    assert [a["path"] for a in listed["artifacts"]] == ["model/weights.bin", "notes.txt"]
    folder = api.get(f"/runs/{run_id}/artifacts", params={"path": "model"}).json()
    assert [a["path"] for a in folder["artifacts"]] == ["model/weights.bin"]
    first = api.get(f"/runs/{run_id}/artifacts", params={"limit": 1}).json()
    second = api.get(
        f"/runs/{run_id}/artifacts", params={"limit": 1, "page_token": first["next_page_token"]}
    ).json()
    assert [a["path"] for a in first["artifacts"] + second["artifacts"]] == [
        "model/weights.bin",
        "notes.txt",
    ]
    assert second["next_page_token"] is None


def test_artifacts_are_immutable(api: httpx.Client, run_id: str) -> None:
    api.put(f"/runs/{run_id}/artifacts/a.txt", content=b"one")
    assert_error(api.put(f"/runs/{run_id}/artifacts/a.txt", content=b"two"), 409, "conflict")
    assert api.get(f"/runs/{run_id}/artifacts/a.txt").content == b"one"


@pytest.mark.parametrize(
    "raw_path",
    ["%2E%2E/escape.txt", "a/%2E%2E/%2E%2E/escape.txt", "%2Fetc/passwd", "a//b", "dir/%2E/x"],
)
def test_unsafe_paths_are_400_before_storage_is_touched(
    api: httpx.Client, run_id: str, raw_path: str
) -> None:
    # Built by hand: httpx would normalize "../" in a URL before sending it.
    url = httpx.URL(str(api.base_url).rstrip("/") + f"/runs/{run_id}/artifacts/").copy_with(
        raw_path=f"/api/v1/runs/{run_id}/artifacts/{raw_path}".encode()
    )
    assert_error(api.put(url, content=b"x"), 400, "invalid_artifact_path")
    assert_error(api.get(url), 400, "invalid_artifact_path")
    assert api.get(f"/runs/{run_id}/artifacts").json()["artifacts"] == []


def test_missing_artifact_folder_and_ended_run(api: httpx.Client, run_id: str) -> None:
    api.put(f"/runs/{run_id}/artifacts/dir/x.txt", content=b"x")
    assert (
        "does not exist"
        in assert_error(api.get(f"/runs/{run_id}/artifacts/nope.txt"), 404, "not_found")["message"]
    )
    assert (
        "folder"
        in assert_error(api.get(f"/runs/{run_id}/artifacts/dir"), 404, "not_found")["message"]
    )
    api.patch(f"/runs/{run_id}", json={"status": "FINISHED"})
    assert_error(api.put(f"/runs/{run_id}/artifacts/late.txt", content=b"x"), 409, "run_not_active")
    assert [a["path"] for a in api.get(f"/runs/{run_id}/artifacts").json()["artifacts"]] == [
        "dir/x.txt"
    ]


@pytest.fixture
def small_limit_server(ml: Any) -> Iterator[LiveServer]:
    app = Starlette(routes=api_routes(ml, max_artifact_bytes=64 * 1024))
    live = LiveServer(app).start()
    yield live
    live.stop()


def test_artifact_over_the_limit_is_413_and_not_stored(
    small_limit_server: LiveServer, api: httpx.Client, run_id: str
) -> None:
    with httpx.Client(base_url=small_limit_server.url + "/api/v1") as client:
        url = f"/runs/{run_id}/artifacts/big.bin"
        assert_error(client.put(url, content=b"x" * (200 * 1024)), 413, "payload_too_large")

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted while streaming
            for _ in range(20):
                yield b"x" * 8192

        assert_error(client.put(url, content=chunked()), 413, "payload_too_large")
        assert client.put(url, content=b"x" * 1024).status_code == 201
    assert [a["size"] for a in api.get(f"/runs/{run_id}/artifacts").json()["artifacts"]] == [1024]
