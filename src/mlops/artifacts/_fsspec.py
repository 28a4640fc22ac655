"""An artifact store on fsspec: local folders, S3 (and S3-compatible stores), memory."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import importlib
import io
import os
import posixpath
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, cast

import fsspec

from mlops.artifacts._base import (
    ArtifactInfo,
    ArtifactStore,
    check_artifact_prefix,
    copy_hashing,
    is_partial_name,
    iter_chunks,
    iter_local_file,
    validate_artifact_path,
    walk_local_files,
    write_local_atomically,
)
from mlops.errors import InvalidInput, MissingDependency, MLOpsError, NotFound, StorageError

__all__ = ["FsspecArtifactStore", "open_artifact_store"]

_SUPPORTED = "file:// URLs or local paths, s3://bucket/prefix, memory://"


class FsspecArtifactStore:
    """An ``ArtifactStore`` on fsspec; the filesystem is created on first use."""

    def __init__(
        self,
        root_url: str | os.PathLike[str],
        *,
        storage_options: Mapping[str, Any] | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self._protocol, self._root_path = _parse_root(os.fspath(root_url))
        options = dict(storage_options or {})
        self._failures: tuple[type[BaseException], ...] = (OSError,)
        if self._protocol == "s3":
            self._failures += _require_s3fs()
            options.setdefault("use_listings_cache", False)  # other writers exist
            if endpoint_url is not None:
                client_kwargs = dict(options.get("client_kwargs") or {})
                client_kwargs["endpoint_url"] = endpoint_url
                options["client_kwargs"] = client_kwargs
        elif endpoint_url is not None:
            raise InvalidInput(
                f"endpoint_url applies to s3:// artifact stores only, not {self._protocol}://; "
                "drop it or use an s3:// URL"
            )
        self._options = options
        self._fs: Any = None
        self._fs_lock = threading.Lock()

    @property
    def root(self) -> str:
        """The normalized URL of the store root (local paths become ``file:///abs``)."""
        return f"{self._protocol}://{self._root_path}"

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self.root!r})"

    def url(self, path: str = "") -> str:
        """Return the full URL of ``path`` ("" is the root)."""
        return self._url(check_artifact_prefix(path))

    def put_file(self, local_path: str | os.PathLike[str], dest: str) -> ArtifactInfo:
        """Stream a local file to ``dest``, hashing it on the way; atomic."""
        return self._put_local_file(Path(local_path), validate_artifact_path(dest))

    def put_bytes(self, data: bytes, dest: str) -> ArtifactInfo:
        """Store ``data`` at ``dest``; atomic."""
        dest = validate_artifact_path(dest)
        payload: object = data
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise InvalidInput(f"put_bytes takes bytes, not {type(payload).__name__}")
        with self._writing(dest):
            size, digest = self._write(self._full(dest), [bytes(payload)])
        return ArtifactInfo(dest, size, digest)

    def put_dir(
        self, local_dir: str | os.PathLike[str], dest_prefix: str = ""
    ) -> builtins.list[ArtifactInfo]:
        """Store every file below ``local_dir`` under ``dest_prefix``; all or nothing."""
        prefix = check_artifact_prefix(dest_prefix)
        folder = Path(local_dir)
        if not folder.is_dir():
            raise InvalidInput(
                f"local folder '{folder}' does not exist or is not a folder; "
                "pass the folder whose files should be stored"
            )
        plan = [(source, _join(prefix, rel)) for rel, source in walk_local_files(folder)]
        for _, dest in plan:
            validate_artifact_path(dest)
        written: builtins.list[ArtifactInfo] = []
        for source, dest in plan:
            try:
                written.append(self._put_local_file(source, dest))
            except BaseException as exc:
                leftovers = self._remove_quietly([info.path for info in written])
                if not isinstance(exc, Exception):
                    raise
                note = f"the {len(written)} files already written were removed"
                if leftovers:
                    note = f"these written files could not be removed: {', '.join(leftovers)}"
                raise StorageError(
                    f"storing folder '{folder}' at {self._url(prefix)} failed on "
                    f"'{source}': {exc}; {note}; fix the cause and store the folder again"
                ) from exc
        return written

    def get_bytes(self, path: str) -> bytes:
        """Return the content of the artifact at ``path``."""
        path = validate_artifact_path(path)
        with self._reading(path):
            return bytes(self._filesystem().cat_file(self._full(path)))

    def get_file(self, path: str, local_path: str | os.PathLike[str]) -> Path:
        """Download ``path`` to ``local_path`` (parents created, replaced atomically)."""
        path = validate_artifact_path(path)
        target = Path(local_path)
        with self._open_file(path) as source:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                write_local_atomically(str(target), iter_chunks(source))
            except self._failures as exc:
                raise StorageError(
                    f"downloading {self._url(path)} to '{target}' failed: {exc!r}"
                ) from exc
        return target

    def get_dir(self, prefix: str, local_dir: str | os.PathLike[str]) -> Path:
        """Download every artifact below ``prefix`` into ``local_dir``; return it."""
        prefix = check_artifact_prefix(prefix)
        folder = Path(local_dir)
        paths = self.list(prefix)
        if prefix and not paths:
            raise NotFound(f"no artifacts exist under '{prefix}' in {self.root}")
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            relative = path[len(prefix) + 1 :] if prefix else path
            try:
                validate_artifact_path(relative)
            except InvalidInput as exc:
                raise StorageError(
                    f"stored key {self._url(path)!r} is not a safe local path ({exc}); "
                    "rename it in the store before downloading"
                ) from exc
            self.get_file(path, folder / relative)
        return folder

    def open(self, path: str) -> BinaryIO:
        """Open the artifact at ``path`` for reading (binary)."""
        return self._open_file(validate_artifact_path(path))

    def exists(self, path: str) -> bool:
        """Tell whether ``path`` is an artifact or a folder holding artifacts."""
        path = check_artifact_prefix(path)
        with self._reading(path):
            if path and self._filesystem().isfile(self._full(path)):
                return True
        return bool(self.list(path))

    def list(self, prefix: str = "", *, recursive: bool = True) -> builtins.list[str]:
        """Return the sorted paths, relative to the root, of the artifacts below ``prefix``."""
        prefix = check_artifact_prefix(prefix)
        folder = self._full(prefix).rstrip("/") + "/"
        root = self._root_path.rstrip("/") + "/"
        with self._reading(prefix):
            try:
                found = self._filesystem().find(
                    self._full(prefix), maxdepth=None if recursive else 1, withdirs=False
                )
            except FileNotFoundError:
                return []
        return sorted(
            name[len(root) :]
            for name in found
            if name.startswith(folder) and not is_partial_name(name)
        )

    def size(self, path: str) -> int:
        """Return the size in bytes of the artifact at ``path``."""
        path = validate_artifact_path(path)
        return int(self._file_info(path)["size"])

    def sha256(self, path: str) -> str:
        """Return the hex SHA-256 digest of the stored artifact, streaming it."""
        path = validate_artifact_path(path)
        digest = hashlib.sha256()
        with self._open_file(path) as source, self._reading(path):
            for chunk in iter_chunks(source):
                digest.update(chunk)
        return digest.hexdigest()

    def delete(self, prefix: str) -> None:
        """Remove the artifact at ``prefix`` or everything below it; absent is fine."""
        prefix = check_artifact_prefix(prefix)
        full = self._full(prefix)
        with self._writing(prefix):
            if self._protocol == "file":
                with contextlib.suppress(FileNotFoundError):
                    if os.path.isdir(full) and not os.path.islink(full):
                        shutil.rmtree(full)
                    else:
                        os.remove(full)
                return
            files = [self._full(path) for path in self.list(prefix)]
            if prefix and self._filesystem().isfile(full):
                files.append(full)
            if files:
                self._filesystem().rm(files)

    # -- internals --------------------------------------------------------------------

    def _filesystem(self) -> Any:
        with self._fs_lock:
            if self._fs is None:
                self._fs = fsspec.filesystem(self._protocol, **self._options)
            return self._fs

    def _url(self, path: str) -> str:
        return f"{self._protocol}://{self._full(path)}"

    def _full(self, path: str) -> str:
        return posixpath.join(self._root_path, path) if path else self._root_path

    def _put_local_file(self, source: Path, dest: str) -> ArtifactInfo:
        if not source.is_file():
            raise InvalidInput(
                f"local file '{source}' does not exist or is not a file; "
                "pass the path of the file to store"
            )
        with self._writing(dest):
            size, digest = self._write(self._full(dest), iter_local_file(source))
        return ArtifactInfo(dest, size, digest)

    def _write(self, full: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Write ``chunks`` to ``full`` so a failure leaves nothing there; size, digest."""
        if self._protocol == "file":
            return write_local_atomically(full, chunks)
        fs = self._filesystem()
        if self._protocol == "memory":
            buffer = io.BytesIO()
            result = copy_hashing(chunks, buffer.write)
            fs.pipe_file(full, buffer.getvalue())  # one dict assignment: atomic
            return result
        # s3: small files go up in one PUT at close; larger ones as a multipart upload
        # that is only completed at close, so discarding aborts it and leaves no object.
        target = fs.open(full, "wb")
        try:
            result = copy_hashing(chunks, target.write)
            target.close()
        except BaseException:
            with contextlib.suppress(Exception):
                target.discard()
            target.closed = True  # so its __del__ does not upload the partial buffer
            raise
        return result

    def _file_info(self, path: str) -> dict[str, Any]:
        with self._reading(path):
            info = cast(dict[str, Any], self._filesystem().info(self._full(path)))
        if info.get("type") != "file":
            raise self._not_found(path, folder=True)
        return info

    def _open_file(self, path: str) -> BinaryIO:
        info = self._file_info(path)
        with self._reading(path):
            if self._protocol == "memory":  # it hands out its stored object: give a copy
                return io.BytesIO(self._filesystem().cat_file(self._full(path)))
            opened = self._filesystem().open(self._full(path), "rb", size=info["size"])
        return cast(BinaryIO, opened)

    def _remove_quietly(self, paths: builtins.list[str]) -> builtins.list[str]:
        leftovers = []
        for path in paths:
            try:
                self.delete(path)
            except MLOpsError:
                leftovers.append(path)
        return leftovers

    def _not_found(self, path: str, *, folder: bool = False) -> NotFound:
        hint = " (it is a folder; use get_dir or list)" if folder else ""
        return NotFound(f"artifact '{path}' does not exist under {self.root}{hint}")

    @contextlib.contextmanager
    def _reading(self, path: str) -> Iterator[None]:
        try:
            yield
        except MLOpsError:
            raise
        except IsADirectoryError as exc:
            raise self._not_found(path, folder=True) from exc
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise self._not_found(path) from exc
        except self._failures as exc:
            raise StorageError(f"reading {self._url(path)} failed: {exc!r}") from exc

    @contextlib.contextmanager
    def _writing(self, path: str) -> Iterator[None]:
        try:
            yield
        except MLOpsError:
            raise
        except self._failures as exc:
            raise StorageError(f"writing {self._url(path)} failed: {exc!r}") from exc


def open_artifact_store(
    url: str | os.PathLike[str],
    *,
    endpoint_url: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> ArtifactStore:
    """Return the artifact store for ``url`` (a local path, file://, s3:// or memory://)."""
    return FsspecArtifactStore(url, storage_options=storage_options, endpoint_url=endpoint_url)


def _parse_root(url: str) -> tuple[str, str]:
    """Split a root URL into an fsspec protocol and the root path in that filesystem."""
    if not url:
        raise InvalidInput(f"artifact store URL is empty; give one of {_SUPPORTED}")
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "file", url
    scheme = scheme.lower()
    if scheme == "file":
        return "file", Path(os.path.abspath(os.path.expanduser(rest or "/"))).as_posix()
    if scheme not in ("s3", "memory"):
        raise InvalidInput(
            f"artifact store URL {url!r} uses the unsupported scheme '{scheme}://'; "
            f"use {_SUPPORTED}"
        )
    # s3 paths start with the bucket; memory paths are absolute below memory://
    path = rest.rstrip("/") if scheme == "s3" else rest.strip("/")
    if scheme == "s3" and not path.partition("/")[0]:
        raise InvalidInput(f"artifact store URL {url!r} names no bucket; use s3://bucket/prefix")
    try:
        check_artifact_prefix(path)
    except InvalidInput as exc:
        raise InvalidInput(f"artifact store URL {url!r} has a bad path: {exc}") from exc
    return scheme, path if scheme == "s3" else "/" + path


def _require_s3fs() -> tuple[type[BaseException], ...]:
    """Import s3fs or explain which extra to install; return botocore's error bases."""
    try:
        importlib.import_module("s3fs")
    except ImportError as exc:
        raise MissingDependency.for_extra("s3fs", "s3", "an s3:// artifact store") from exc
    botocore_errors = importlib.import_module("botocore.exceptions")
    return (botocore_errors.BotoCoreError, botocore_errors.ClientError)


def _join(prefix: str, relative: str) -> str:
    return f"{prefix}/{relative}" if prefix else relative
