"""Artifact stores: where run files, models and datasets are kept."""

from mlops.artifacts._base import ArtifactInfo, ArtifactStore, validate_artifact_path
from mlops.artifacts._fsspec import FsspecArtifactStore, open_artifact_store

__all__ = [
    "ArtifactInfo",
    "ArtifactStore",
    "FsspecArtifactStore",
    "open_artifact_store",
    "validate_artifact_path",
]
