"""The artifact store interface, its record type and the artifact path rules."""

from __future__ import annotations

import builtins
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from mlops.errors import InvalidInput

__all__ = ["MAX_PATH_LENGTH", "ArtifactInfo", "ArtifactStore", "validate_artifact_path"]

#: Longest artifact path accepted, in characters.
MAX_PATH_LENGTH = 1024

_EXAMPLE = "give a path relative to it such as 'model/model.pkl'"
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:([\\/]|$)")
# fsspec expands these as glob patterns in rm/get/put, so a name holding them could
# select other artifacts than the one meant.
_GLOB_CHARACTERS = ("*", "?", "[")


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """One stored artifact: its path relative to the store root, size in bytes and digest."""

    path: str
    size: int
    sha256: str


@runtime_checkable
class ArtifactStore(Protocol):
    """A place that keeps artifact files under relative POSIX paths.

    Implementations are thread-safe: one instance may serve many threads at once.
    Returned objects (``ArtifactInfo``, lists, paths) are immutable or fresh copies.
    Every failure is raised as an ``MLOpsError``: ``InvalidInput`` for a malformed path,
    ``NotFound`` for a missing artifact, ``MissingDependency`` for a backend whose extra
    is not installed and ``StorageError`` for anything the backend reports.
    """

    @property
    def root(self) -> str:
        """The normalized URL of the store root."""
        ...

    def url(self, path: str = "") -> str:
        """Return the full URL of ``path``."""
        ...

    def put_file(self, local_path: str | os.PathLike[str], dest: str) -> ArtifactInfo:
        """Store a local file at ``dest`` atomically."""
        ...

    def put_bytes(self, data: bytes, dest: str) -> ArtifactInfo:
        """Store ``data`` at ``dest`` atomically."""
        ...

    def put_dir(
        self, local_dir: str | os.PathLike[str], dest_prefix: str = ""
    ) -> builtins.list[ArtifactInfo]:
        """Store every file below ``local_dir``; all or nothing."""
        ...

    def get_bytes(self, path: str) -> bytes:
        """Return the content of the artifact at ``path``."""
        ...

    def get_file(self, path: str, local_path: str | os.PathLike[str]) -> Path:
        """Download the artifact at ``path`` to ``local_path``."""
        ...

    def get_dir(self, prefix: str, local_dir: str | os.PathLike[str]) -> Path:
        """Download every artifact below ``prefix`` into ``local_dir``."""
        ...

    def open(self, path: str) -> BinaryIO:
        """Open the artifact at ``path`` for reading."""
        ...

    def exists(self, path: str) -> bool:
        """Tell whether ``path`` is an artifact or a folder holding artifacts."""
        ...

    def list(self, prefix: str = "", *, recursive: bool = True) -> builtins.list[str]:
        """Return the sorted paths of the artifacts below ``prefix``."""
        ...

    def size(self, path: str) -> int:
        """Return the size in bytes of the artifact at ``path``."""
        ...

    def sha256(self, path: str) -> str:
        """Return the hex SHA-256 digest of the artifact at ``path``."""
        ...

    def delete(self, prefix: str) -> None:
        """Remove the artifact at ``prefix`` or everything below it; absent is fine."""
        ...


def validate_artifact_path(path: str) -> str:
    """Return ``path`` as a normalized relative POSIX path or raise ``InvalidInput``.

    A valid path is already in normal form, so the return value equals the argument.
    """
    given: object = path
    if not isinstance(given, str):
        raise InvalidInput(
            f"artifact path must be a string, not {type(given).__name__}; {_EXAMPLE}"
        )
    if not path:
        raise InvalidInput(f"artifact path is empty; {_EXAMPLE}")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidInput(
            f"artifact path is {len(path)} characters long; the limit is "
            f"{MAX_PATH_LENGTH}, so use shorter folder and file names"
        )
    control = _CONTROL_CHARACTER.search(path)
    if control:
        raise InvalidInput(
            f"artifact path {path!r} contains the control character "
            f"{control.group()!r}; remove it from the name"
        )
    if path.startswith("/") or _WINDOWS_DRIVE.match(path):
        raise InvalidInput(
            f"artifact path {path!r} is absolute; give a path relative to the run's "
            "folder such as 'model/model.pkl'"
        )
    if "\\" in path:
        raise InvalidInput(
            f"artifact path {path!r} contains a backslash; separate folders with '/' "
            f"as in {path.replace(chr(92), '/')!r}"
        )
    for char in _GLOB_CHARACTERS:
        if char in path:
            raise InvalidInput(
                f"artifact path {path!r} contains {char!r}; the glob characters "
                f"{' '.join(_GLOB_CHARACTERS)} are not allowed in artifact names"
            )
    for segment in path.split("/"):
        if segment == "..":
            raise InvalidInput(f"artifact path {path!r} leaves the run's folder; {_EXAMPLE}")
        if segment == ".":
            raise InvalidInput(
                f"artifact path {path!r} has a '.' segment; drop it, as in "
                f"{'/'.join(s for s in path.split('/') if s != '.')!r}"
            )
        if not segment:
            raise InvalidInput(
                f"artifact path {path!r} has an empty segment (a leading, doubled or "
                f"trailing '/'); {_EXAMPLE}"
            )
    return path
