"""Fixtures for the artifact store contract suite: a local folder and a real S3 server."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.artifacts import ArtifactStore, FsspecArtifactStore
from s3server import MIN_PART_SIZE, s3_storage_options


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
