"""``/runs/{run_id}/artifacts``: streamed upload and download, and listing.

Paths are checked before anything else happens: a path that is absolute or climbs out
with ``..`` is answered 400 without reading the body or touching storage.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from mlops.api._deps import ML, Caller, require
from mlops.api._errors import ApiError
from mlops.api._pagination import DEFAULT_LIMIT, MAX_LIMIT, fingerprint, page
from mlops.api._tracking_schemas import ArtifactList, ArtifactOut
from mlops.artifacts import validate_artifact_path
from mlops.artifacts._base import CHUNK_SIZE, check_artifact_prefix
from mlops.errors import InvalidInput, NotFound, RunNotActive
from mlops.tracking import RunStatus
from mlops.tracking._tracker import _run_prefix

__all__ = ["is_artifact_upload", "router"]

router = APIRouter(
    prefix="/runs/{run_id}/artifacts", tags=["artifacts"], dependencies=[require("runs.write")]
)

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
PageToken = Annotated[str | None, Query(description="next_page_token of the previous page.")]

_UPLOAD = re.compile(r"/runs/[^/]+/artifacts/")


def is_artifact_upload(method: str, path: str) -> bool:
    """Whether a request is an artifact upload (its body is streamed, not buffered)."""
    return method == "PUT" and _UPLOAD.search(path) is not None


def _checked(path: str, *, folder: bool = False) -> str:
    try:
        return check_artifact_prefix(path) if folder else validate_artifact_path(path)
    except InvalidInput as error:
        raise ApiError(400, "invalid_artifact_path", str(error)) from None


@router.put(
    "/{path:path}",
    status_code=201,
    summary="Upload one artifact file (the raw request body, streamed)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def upload_artifact(
    run_id: str, path: str, request: Request, ml: ML, caller: Caller
) -> ArtifactOut:
    artifact_path = _checked(path)
    limit: int = request.app.state.max_artifact_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    run = await run_in_threadpool(ml.tracking.get_run, run_id)
    if run.status is not RunStatus.RUNNING:  # refuse before reading a large body
        raise RunNotActive(f"run '{run_id}' is {run.status}; it no longer accepts artifacts")
    with tempfile.TemporaryDirectory(prefix="mlops-upload-") as folder:
        spooled = Path(folder) / posixpath.basename(artifact_path)
        with spooled.open("wb") as file:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                await run_in_threadpool(file.write, chunk)
        parent = posixpath.dirname(artifact_path) or None
        written = await run_in_threadpool(ml.tracking.log_artifact, run_id, spooled, parent)
    return ArtifactOut.of(written[0])


@router.get("", summary="List a run's artifact files, by path")
def list_artifacts(
    run_id: str,
    ml: ML,
    path: Annotated[str, Query(description="Only files below this folder.")] = "",
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> ArtifactList:
    folder = _checked(path, folder=True)
    found, token = page(
        ml.tracking.list_artifacts(run_id, folder or None),
        lambda info: info.path,
        limit=limit,
        page_token=page_token,
        query=fingerprint("artifacts", run_id, folder),
    )
    return ArtifactList(artifacts=[ArtifactOut.of(info) for info in found], next_page_token=token)


@router.get(
    "/{path:path}",
    summary="Download one artifact file (streamed; ETag is its SHA-256)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}},
)
def download_artifact(run_id: str, path: str, ml: ML) -> StreamingResponse:
    artifact_path = _checked(path)
    run = ml.tracking.get_run(run_id)
    listed = ml.tracking.list_artifacts(run_id, artifact_path)
    info = next((item for item in listed if item.path == artifact_path), None)
    if info is None:
        what = "is a folder; list it" if listed else "does not exist; list them"
        raise NotFound(
            f"run '{run_id}' artifact {artifact_path!r} {what} with "
            f"GET /api/v1/runs/{run_id}/artifacts?path=..."
        )
    stream = ml.artifacts.open(f"{_run_prefix(run.experiment_id, run.id)}/{artifact_path}")
    media_type = mimetypes.guess_type(artifact_path)[0] or "application/octet-stream"
    filename = posixpath.basename(artifact_path).replace('"', "")
    return StreamingResponse(
        _chunks(stream),
        media_type=media_type,
        headers={
            "content-length": str(info.size),
            "etag": f'"{info.sha256}"',
            "x-content-type-options": "nosniff",
            "content-disposition": f'attachment; filename="{filename}"',
        },
    )


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"the artifact is larger than this server's limit of {limit} bytes; "
        "log it with the Python client against the artifact store directly",
    )
