"""Model packages over HTTP: registering a version from an uploaded package archive, and
reading a version's package files back (what ``load_model`` of a remote client does).

The upload is one ``POST /models/{name}/versions`` whose body is a tar archive (gzip
allowed) holding the package folder under ``package/`` and ``registration.json`` (the
version's metrics, metadata, lineage and an optional signature made by the client). The
body is streamed to a temporary file, never held in memory; the archive is unpacked with
the ``data`` filter (no absolute paths, no ``..``, no links out, no devices) after its
declared sizes are checked, and the package is verified file by file before anything is
stored.
"""

from __future__ import annotations

import json
import mimetypes
import posixpath
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from mlops.api._deps import ML, Actor, require
from mlops.api._errors import ApiError
from mlops.api._models import VersionPath, _selector
from mlops.api._registry_schemas import Registration, VersionOut
from mlops.artifacts._base import CHUNK_SIZE
from mlops.errors import InvalidInput
from mlops.registry._rows import check_model_name
from mlops.tracking import Dataset

__all__ = ["REGISTRATION_FILE", "is_package_upload", "router"]

REGISTRATION_FILE = "registration.json"
_MAX_MEMBERS = 10_000

router = APIRouter(prefix="/models", tags=["models"], dependencies=[require("models.register")])


def is_package_upload(method: str, path: str) -> bool:
    """Whether a request uploads a package (its body is streamed, not buffered)."""
    parts = path.rstrip("/").split("/")
    return method == "POST" and len(parts) >= 3 and parts[-1] == "versions" and "models" in parts


@router.post(
    "/{name}/versions",
    status_code=201,
    summary="Register a version from a package archive (tar, gzip allowed; streamed)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def register_version(name: str, request: Request, ml: ML, who: Actor) -> VersionOut:
    check_model_name(name)
    limit: int = request.app.state.max_artifact_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    with tempfile.TemporaryDirectory(prefix="mlops-package-") as temp:
        archive = Path(temp) / "upload.tar"
        with archive.open("wb") as file:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                await run_in_threadpool(file.write, chunk)
        if size == 0:
            raise ApiError(
                400, "bad_request", "the request body is empty; send the package as a tar archive"
            )
        folder, registration = await run_in_threadpool(_unpack, archive, Path(temp), limit)
        version = await run_in_threadpool(_register, ml, name, folder, registration, who)
    return VersionOut.of(version)


def _unpack(archive: Path, temp: Path, limit: int) -> tuple[Path, Registration]:
    target = temp / "unpacked"
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            if len(members) > _MAX_MEMBERS:
                raise InvalidInput(f"the archive holds more than {_MAX_MEMBERS} files")
            if sum(member.size for member in members) > 4 * limit:
                raise _too_large(limit)
            tar.extractall(target, filter="data")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise InvalidInput(
            f"the body is not a readable tar archive ({error}); send the package folder "
            f"under package/ and {REGISTRATION_FILE} as a tar (gzip allowed)"
        ) from None
    meta = target / REGISTRATION_FILE
    package = target / "package"
    if not meta.is_file() or not package.is_dir():
        raise InvalidInput(
            f"the archive needs {REGISTRATION_FILE} and a package/ folder (the model package "
            "made by mlops.models.save_model)"
        )
    try:
        registration = Registration.model_validate(json.loads(meta.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as error:
        raise InvalidInput(f"{REGISTRATION_FILE} is invalid: {error}") from None
    return package, registration


def _register(
    ml: Any, name: str, folder: Path, registration: Registration, actor: str | None
) -> Any:
    signed = (registration.signature, registration.signing_key)
    if (signed[0] is None) != (signed[1] is None):
        raise InvalidInput("a signature needs its signing_key (the key fingerprint), and back")
    datasets = [
        (Dataset(d.name, d.digest, d.schema_, d.num_rows, d.source), d.context)
        for d in registration.datasets
    ]
    return ml.registry.register_model(
        name,
        folder,
        metrics=registration.metrics,
        metadata=registration.metadata,
        run=registration.run_id,
        datasets=datasets,
        parent_version=None
        if registration.parent_version is None
        else _parent(registration.parent_version),
        version=registration.version,
        description=registration.description,
        presigned=None if signed[0] is None else signed,
        actor=actor,
    )


def _parent(selector: str) -> int | str:
    return int(selector) if selector.isdigit() else selector


@router.get(
    "/{name}/versions/{version}/files/{path:path}",
    summary="Download one file of a version's package (check it against the manifest)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}},
)
def package_file(name: str, version: VersionPath, path: str, ml: ML) -> StreamingResponse:
    stream = ml.registry.open_package_file(name, _selector(version), path)
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    filename = posixpath.basename(path).replace('"', "")
    return StreamingResponse(
        _chunks(stream),
        media_type=media_type,
        headers={
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
        f"the package is larger than this server's limit of {limit} bytes; register it "
        "with a client connected to the stores directly",
    )
