"""Fixtures for the artifact store contract suite: a local folder and a real S3 server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.artifacts import ArtifactStore, FsspecArtifactStore
from s3server import BUCKET, MIN_PART_SIZE, create_bucket, run_moto_server, s3_storage_options


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Run moto's S3 server for the session; yield its endpoint URL (bucket created)."""
    with run_moto_server() as endpoint_url:
        create_bucket(endpoint_url, BUCKET)
        yield endpoint_url


@pytest.fixture
def s3_bucket_url(s3_server: str) -> str:
    """Return a fresh, empty ``s3://bucket/<uuid>`` URL on the session's S3 server."""
    return f"s3://{BUCKET}/{uuid.uuid4().hex}"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    """Yield an empty artifact store of each backend."""
    if request.param == "local":
        return FsspecArtifactStore(tmp_path / "store")
    endpoint_url = request.getfixturevalue("s3_server")
    root = request.getfixturevalue("s3_bucket_url")
    # The smallest block size makes the large-file tests exercise multipart uploads.
    options = {**s3_storage_options(endpoint_url), "default_block_size": MIN_PART_SIZE}
    return FsspecArtifactStore(root, storage_options=options)
