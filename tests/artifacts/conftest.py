"""Fixtures for the artifact store contract suite: a local folder and a real S3 server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3server import create_bucket, run_moto_server, s3_storage_options

from mlops.artifacts import ArtifactStore, FsspecArtifactStore

S3_BUCKET = "mlops-artifacts"
#: s3fs's smallest write block: files above it go up as multipart uploads.
S3_BLOCK_SIZE = 5 * 1024 * 1024


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Run moto's S3 server for the session; yield its endpoint URL (bucket created)."""
    with run_moto_server() as endpoint_url:
        create_bucket(endpoint_url, S3_BUCKET)
        yield endpoint_url


@pytest.fixture
def s3_bucket_url(s3_server: str) -> str:
    """Return a fresh, empty ``s3://bucket/<uuid>`` URL on the session's S3 server."""
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex}"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    """Yield an empty artifact store of each backend."""
    if request.param == "local":
        return FsspecArtifactStore(tmp_path / "store")
    endpoint_url = request.getfixturevalue("s3_server")
    root = request.getfixturevalue("s3_bucket_url")
    options = {**s3_storage_options(endpoint_url), "default_block_size": S3_BLOCK_SIZE}
    return FsspecArtifactStore(root, storage_options=options)
