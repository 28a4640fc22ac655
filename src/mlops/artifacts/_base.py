"""The artifact store interface, its record type, the path rules and streaming helpers."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import posixpath
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from mlops.errors import InvalidInput

__all__ = [
    "CHUNK_SIZE",
    "MAX_PATH_LENGTH",
    "PARTIAL_SUFFIX",
    "ArtifactInfo",
    "ArtifactStore",
    "check_artifact_prefix",
    "copy_hashing",
    "is_partial_name",
    "iter_chunks",
    "iter_local_file",
    "validate_artifact_path",
    "walk_local_files",
    "write_local_atomically",
]

#: Longest artifact path accepted, in characters.
MAX_PATH_LENGTH = 1024
#: Bytes read or written per step when streaming.
CHUNK_SIZE = 1024 * 1024
#: Local writes go to ".<name>.<uuid><PARTIAL_SUFFIX>" beside the target, then os.replace.
PARTIAL_SUFFIX = ".mlops-partial"

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


def check_artifact_prefix(prefix: str) -> str:
    """Validate a folder prefix: "" is the root and one trailing '/' is dropped."""
    if prefix == "":
        return ""
    if isinstance(prefix, str) and prefix.endswith("/") and len(prefix) > 1:
        prefix = prefix[:-1]
    return validate_artifact_path(prefix)


# -- streaming helpers shared by backends ------------------------------------------


def walk_local_files(folder: Path) -> builtins.list[tuple[str, Path]]:
    """Every file (or link to one, even broken) below ``folder``, sorted by relative path."""
    found = []
    for current, _, names in os.walk(folder):
        for name in names:
            source = Path(current, name)
            found.append((source.relative_to(folder).as_posix(), source))
    return sorted(found)


def is_partial_name(name: str) -> bool:
    """Tell whether ``name`` is an in-flight local write (hidden from listings)."""
    base = posixpath.basename(name)
    return base.startswith(".") and base.endswith(PARTIAL_SUFFIX)


def iter_chunks(source: BinaryIO) -> Iterator[bytes]:
    """Yield ``source`` in ``CHUNK_SIZE`` pieces."""
    while chunk := source.read(CHUNK_SIZE):
        yield chunk


def iter_local_file(source: Path) -> Iterator[bytes]:
    """Yield a local file in ``CHUNK_SIZE`` pieces."""
    with source.open("rb") as handle:
        yield from iter_chunks(handle)


def copy_hashing(chunks: Iterable[bytes], write: Callable[[bytes], object]) -> tuple[int, str]:
    """Write every chunk, hashing on the way; return the size and hex SHA-256."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        write(chunk)
    return size, digest.hexdigest()


def write_local_atomically(full: str, chunks: Iterable[bytes]) -> tuple[int, str]:
    """Write to a partial file beside ``full``, then rename it into place."""
    folder, name = os.path.split(full)
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f".{name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")
    try:
        with open(partial, "wb") as handle:
            result = copy_hashing(chunks, handle.write)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, full)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise
    return result
