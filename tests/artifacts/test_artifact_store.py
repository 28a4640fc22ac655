"""The artifact store contract, run against a local folder and a real S3 server."""

from __future__ import annotations

import hashlib
import os
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import mlops.artifacts
from mlops.artifacts import (
    ArtifactInfo,
    ArtifactStore,
    FsspecArtifactStore,
    _fsspec,
    open_artifact_store,
    validate_artifact_path,
)
from mlops.errors import InvalidInput, MissingDependency, NotFound, StorageError
from s3server import BUCKET, MIN_PART_SIZE, s3_client, s3_storage_options

BAD_PATHS = [
    pytest.param("", id="empty"),
    pytest.param("/x", id="absolute"),
    pytest.param("C:\\x", id="windows-absolute"),
    pytest.param("C:/x", id="windows-drive"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("../x", id="dotdot-leading"),
    pytest.param("a/../b", id="dotdot-inner"),
    pytest.param("a/..", id="dotdot-trailing"),
    pytest.param("./a", id="dot-leading"),
    pytest.param("a/./b", id="dot-inner"),
    pytest.param("a//b", id="empty-segment"),
    pytest.param("a/", id="trailing-slash"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\x7fb", id="delete-char"),
    pytest.param("a" * 1025, id="too-long"),
    pytest.param("model-*.pkl", id="glob-star"),
    pytest.param("model?.pkl", id="glob-question"),
    pytest.param("model[1].pkl", id="glob-bracket"),
]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tree(folder: Path) -> dict[str, bytes]:
    files = {
        "MLmodel": b"flavor: sklearn\n",
        "model.pkl": os.urandom(3000),
        "data/train.csv": b"a,b\n1,2\n",
        "data/deep/er/x.bin": b"\x00\x01\x02",
        "empty.txt": b"",
    }
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


# -- validate_artifact_path -----------------------------------------------------------


def test_public_names() -> None:
    assert mlops.artifacts.__all__ == sorted(mlops.artifacts.__all__)
    assert set(mlops.artifacts.__all__) == {
        "ArtifactInfo",
        "ArtifactStore",
        "FsspecArtifactStore",
        "open_artifact_store",
        "validate_artifact_path",
    }


@pytest.mark.parametrize("path", ["a", "model/model.pkl", "a/b/c.d", ".hidden", "a..b", "é/ü"])
def test_valid_paths_are_returned_unchanged(path: str) -> None:
    assert validate_artifact_path(path) == path


@pytest.mark.parametrize("path", BAD_PATHS)
def test_invalid_paths_are_rejected(path: str) -> None:
    with pytest.raises(InvalidInput):
        validate_artifact_path(path)


def test_invalid_path_messages_say_what_to_do() -> None:
    with pytest.raises(InvalidInput, match=r"'\.\./x' leaves the run's folder.*model/model\.pkl"):
        validate_artifact_path("../x")
    with pytest.raises(InvalidInput, match="is absolute"):
        validate_artifact_path("/etc/passwd")
    with pytest.raises(InvalidInput, match=r"backslash.*'a/b'"):
        validate_artifact_path("a\\b")
    with pytest.raises(InvalidInput, match=r"1025 characters.*1024"):
        validate_artifact_path("a" * 1025)


# -- the contract every backend passes ------------------------------------------------


def test_store_satisfies_the_protocol(store: ArtifactStore) -> None:
    assert isinstance(store, ArtifactStore)


def test_bytes_round_trip(store: ArtifactStore) -> None:
    data = b"hello artifacts"
    info = store.put_bytes(data, "notes/hello.txt")
    assert info == ArtifactInfo("notes/hello.txt", len(data), sha(data))
    assert store.get_bytes("notes/hello.txt") == data


def test_empty_bytes_round_trip(store: ArtifactStore) -> None:
    assert store.put_bytes(b"", "empty") == ArtifactInfo("empty", 0, sha(b""))
    assert store.get_bytes("empty") == b""
    assert store.size("empty") == 0


def test_overwrite_replaces_content(store: ArtifactStore) -> None:
    store.put_bytes(b"first version", "a.txt")
    store.put_bytes(b"second", "a.txt")
    assert store.get_bytes("a.txt") == b"second"
    assert store.list() == ["a.txt"]


def test_file_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(5000))
    info = store.put_file(source, "model/weights.bin")
    assert info == ArtifactInfo("model/weights.bin", 5000, sha(source.read_bytes()))
    target = store.get_file("model/weights.bin", tmp_path / "new" / "folders" / "w.bin")
    assert target == tmp_path / "new" / "folders" / "w.bin"
    assert target.read_bytes() == source.read_bytes()


def test_large_file_streams_both_ways(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(MIN_PART_SIZE + 3 * 1024 * 1024 + 17)  # a multipart upload on S3
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    info = store.put_file(str(source), "big/big.bin")
    assert (info.size, info.sha256) == (len(data), sha(data))
    assert store.size("big/big.bin") == len(data)
    assert store.sha256("big/big.bin") == sha(data)
    with store.open("big/big.bin") as stream:
        assert stream.read(10) == data[:10]
        assert stream.read() == data[10:]
    assert store.get_file("big/big.bin", tmp_path / "back.bin").read_bytes() == data


def test_dir_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src")
    infos = store.put_dir(tmp_path / "src", "model")
    assert [info.path for info in infos] == sorted(f"model/{name}" for name in files)
    for info in infos:
        content = files[info.path.removeprefix("model/")]
        assert (info.size, info.sha256) == (len(content), sha(content))
    target = store.get_dir("model", tmp_path / "out")
    downloaded = {
        path.relative_to(target).as_posix(): path.read_bytes()
        for path in target.rglob("*")
        if path.is_file()
    }
    assert downloaded == files


def test_put_dir_at_root_and_get_dir_of_subfolder(store: ArtifactStore, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src")
    assert [info.path for info in store.put_dir(tmp_path / "src")] == sorted(files)
    target = store.get_dir("data/", tmp_path / "out")
    assert (target / "train.csv").read_bytes() == files["data/train.csv"]
    assert (target / "deep" / "er" / "x.bin").read_bytes() == files["data/deep/er/x.bin"]
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == ["train.csv", "x.bin"]


def test_put_empty_dir_stores_nothing(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert store.put_dir(tmp_path / "empty", "x") == []
    assert store.list() == []


def test_list(store: ArtifactStore) -> None:
    for path in ["a/1.txt", "a/b/2.txt", "a/b/c/3.txt", "ab/4.txt", "top.txt"]:
        store.put_bytes(path.encode(), path)
    assert store.list() == ["a/1.txt", "a/b/2.txt", "a/b/c/3.txt", "ab/4.txt", "top.txt"]
    assert store.list("a") == ["a/1.txt", "a/b/2.txt", "a/b/c/3.txt"]
    assert store.list("a/") == store.list("a")
    assert store.list("a", recursive=False) == ["a/1.txt"]
    assert store.list("", recursive=False) == ["top.txt"]
    assert store.list("a/b/c") == ["a/b/c/3.txt"]
    assert store.list("missing") == []
    assert store.list("top.txt") == []


def test_exists(store: ArtifactStore) -> None:
    assert not store.exists("")
    store.put_bytes(b"x", "a/b/c.txt")
    assert store.exists("a/b/c.txt")
    assert store.exists("a/b")
    assert store.exists("a")
    assert store.exists("")
    assert not store.exists("a/b/c.tx")
    assert not store.exists("a/b/c.txt/d")
    assert not store.exists("zzz")


def test_size_and_sha256_match_hashlib(store: ArtifactStore) -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)
    store.put_bytes(data, "blob")
    assert store.size("blob") == len(data)
    assert store.sha256("blob") == sha(data)


def test_delete_file_and_prefix(store: ArtifactStore) -> None:
    for path in ["keep.txt", "a/1", "a/b/2", "ab"]:
        store.put_bytes(b"x", path)
    store.delete("a/1")
    assert store.list() == ["a/b/2", "ab", "keep.txt"]
    store.delete("a")
    assert store.list() == ["ab", "keep.txt"]
    assert not store.exists("a")
    store.delete("a")  # absent: no error
    store.delete("never/was")
    store.delete("")
    assert store.list() == []
    store.delete("")  # an empty or missing root is fine too


@pytest.mark.parametrize("path", BAD_PATHS)
def test_every_method_rejects_invalid_paths(
    store: ArtifactStore, tmp_path: Path, path: str
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    calls = [
        lambda: store.put_bytes(b"x", path),
        lambda: store.put_file(source, path),
        lambda: store.get_bytes(path),
        lambda: store.get_file(path, tmp_path / "out"),
        lambda: store.open(path),
        lambda: store.size(path),
        lambda: store.sha256(path),
    ]
    if path not in ("", "a/"):  # "" is the root and one trailing '/' is fine for prefixes
        calls += [
            lambda: store.exists(path),
            lambda: store.list(path),
            lambda: store.delete(path),
            lambda: store.get_dir(path, tmp_path / "out"),
            lambda: store.put_dir(tmp_path, path),
            lambda: store.url(path),
        ]
    for call in calls:
        with pytest.raises(InvalidInput):
            call()
    assert store.list() == []


def test_missing_artifacts_raise_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    store.put_bytes(b"x", "folder/file")
    for path in ["nope", "folder/nope", "folder"]:
        for call in [
            store.get_bytes,
            lambda p: store.get_file(p, tmp_path / "out"),
            store.open,
            store.size,
            store.sha256,
        ]:
            with pytest.raises(NotFound, match=f"'{path}' does not exist under"):
                call(path)
    with pytest.raises(NotFound, match="no artifacts exist under 'nope'"):
        store.get_dir("nope", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_get_dir_of_empty_root_gives_empty_folder(store: ArtifactStore, tmp_path: Path) -> None:
    target = store.get_dir("", tmp_path / "out")
    assert target.is_dir()
    assert list(target.iterdir()) == []


def test_put_file_of_missing_local_file_is_invalid_input(
    store: ArtifactStore, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="does not exist or is not a file"):
        store.put_file(tmp_path / "missing", "x")
    with pytest.raises(InvalidInput, match="does not exist or is not a folder"):
        store.put_dir(tmp_path / "missing", "x")


def test_put_dir_failure_removes_what_it_wrote(
    store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path / "src")
    store.put_bytes(b"old", "other/kept.txt")
    real_put = store._put_local_file  # type: ignore[attr-defined]
    calls = []

    def fail_on_third(source: Path, dest: str) -> ArtifactInfo:
        calls.append(dest)
        if len(calls) == 3:
            raise OSError("disk on fire")
        return real_put(source, dest)  # type: ignore[no-any-return]

    monkeypatch.setattr(store, "_put_local_file", fail_on_third)
    with pytest.raises(StorageError, match=r"disk on fire.*2 files already written were removed"):
        store.put_dir(tmp_path / "src", "model")
    assert store.list() == ["other/kept.txt"]


def test_put_dir_with_broken_symlink_writes_nothing(store: ArtifactStore, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    (tmp_path / "src" / "zz-broken").symlink_to(tmp_path / "nowhere")
    with pytest.raises(StorageError, match="zz-broken"):
        store.put_dir(tmp_path / "src", "model")
    assert store.list() == []


def test_put_dir_rejects_unstorable_names_before_writing(
    store: ArtifactStore, tmp_path: Path
) -> None:
    make_tree(tmp_path / "src")
    (tmp_path / "src" / "bad\\name").write_bytes(b"x")
    with pytest.raises(InvalidInput, match="backslash"):
        store.put_dir(tmp_path / "src", "model")
    assert store.list() == []


def test_failed_put_leaves_nothing_and_keeps_old_content(
    store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"new")
    store.put_bytes(b"old", "kept")

    def broken_reader(path: Path) -> Iterator[bytes]:
        yield os.urandom(MIN_PART_SIZE + 1024)  # past the first S3 multipart part
        raise OSError("source vanished")

    monkeypatch.setattr(_fsspec, "iter_local_file", broken_reader)
    with pytest.raises(StorageError, match="source vanished"):
        store.put_file(source, "fresh")
    with pytest.raises(StorageError, match="source vanished"):
        store.put_file(source, "kept")
    assert store.list() == ["kept"]
    assert store.get_bytes("kept") == b"old"


def test_concurrent_writers_and_readers(store: ArtifactStore) -> None:
    def work(index: int) -> str:
        data = f"payload {index}".encode()
        info = store.put_bytes(data, f"many/{index:03d}.txt")
        assert store.get_bytes(info.path) == data
        return info.path

    with ThreadPoolExecutor(max_workers=8) as pool:
        paths = list(pool.map(work, range(40)))
    assert store.list("many") == sorted(paths)


def test_url_names_the_artifact(store: ArtifactStore) -> None:
    assert store.url() == store.root
    assert store.url("a/b.txt") == f"{store.root}/a/b.txt"


# -- local folder specifics ------------------------------------------------------------


def test_local_root_is_normalized_and_constructor_does_no_io(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"
    for given in [str(root), f"file://{root}", f"{root}/", root]:
        store = FsspecArtifactStore(given)
        assert store.root == f"file://{root}"
    assert not (tmp_path / "not").exists()
    store.put_bytes(b"x", "a/b")
    assert (root / "a" / "b").read_bytes() == b"x"
    assert store.url("a/b") == f"file://{root}/a/b"


def test_local_relative_root_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert FsspecArtifactStore("runs").root == f"file://{tmp_path}/runs"


def test_local_writes_leave_no_partial_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FsspecArtifactStore(tmp_path / "root")
    store.put_bytes(b"x" * 10, "a/b.bin")
    source = tmp_path / "source"
    source.write_bytes(os.urandom(3 * 1024 * 1024))
    store.put_file(source, "a/c.bin")
    make_tree(tmp_path / "tree")
    store.put_dir(tmp_path / "tree", "t")

    def broken_reader(path: Path) -> Iterator[bytes]:
        yield b"partial content"
        raise OSError("read error")

    monkeypatch.setattr(_fsspec, "iter_local_file", broken_reader)
    with pytest.raises(StorageError):
        store.put_file(source, "a/failed.bin")
    names = [p.name for p in (tmp_path / "root").rglob("*")]
    assert not [name for name in names if "partial" in name]
    assert "failed.bin" not in names
    assert store.get_bytes("a/b.bin") == b"x" * 10


def test_local_listing_hides_in_flight_partial_files(tmp_path: Path) -> None:
    store = FsspecArtifactStore(tmp_path)
    store.put_bytes(b"x", "a.txt")
    (tmp_path / ".b.txt.0123abcd.mlops-partial").write_bytes(b"half")
    assert store.list() == ["a.txt"]


def test_local_delete_of_a_folder_removes_it(tmp_path: Path) -> None:
    store = FsspecArtifactStore(tmp_path / "root")
    store.put_bytes(b"x", "a/b/c")
    store.delete("a")
    assert not (tmp_path / "root" / "a").exists()
    store.put_bytes(b"x", "d")
    store.delete("")
    assert not (tmp_path / "root").exists()
    assert store.put_bytes(b"y", "d").path == "d"


def test_local_storage_failure_is_storage_error(tmp_path: Path) -> None:
    store = FsspecArtifactStore(tmp_path)
    store.put_bytes(b"x", "file")
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(StorageError, match=r"downloading file://.*/file to '.*a-folder' failed"):
        store.get_file("file", tmp_path / "a-folder")
    with pytest.raises(StorageError, match=r"writing file://.*/file/under failed"):
        store.put_bytes(b"y", "file/under")


# -- memory:// ------------------------------------------------------------------------


def test_memory_store_round_trips(tmp_path: Path) -> None:
    store = open_artifact_store(f"memory://tests-{uuid.uuid4().hex}")
    assert store.root.startswith("memory:///tests-")
    make_tree(tmp_path / "src")
    store.put_dir(tmp_path / "src", "m")
    assert store.get_bytes("m/data/train.csv") == b"a,b\n1,2\n"
    assert store.sha256("m/model.pkl") == sha((tmp_path / "src" / "model.pkl").read_bytes())
    with pytest.raises(NotFound):
        store.get_bytes("m/nope")
    with store.open("m/MLmodel") as first, store.open("m/MLmodel") as second:
        assert first.read(6) == b"flavor"
        assert second.read() == b"flavor: sklearn\n"  # independent positions
    assert store.list("m", recursive=False) == ["m/MLmodel", "m/empty.txt", "m/model.pkl"]
    store.delete("")
    assert store.list() == []


# -- factory and configuration --------------------------------------------------------


@pytest.mark.parametrize("url", ["gs://bucket/x", "http://example.com/x", "hdfs://n/x"])
def test_unknown_scheme_names_the_supported_ones(url: str) -> None:
    with pytest.raises(InvalidInput, match=r"unsupported scheme.*file://.*s3://.*memory://"):
        open_artifact_store(url)


@pytest.mark.parametrize("url", ["", "s3://", "s3:///prefix", "s3://bucket/../x"])
def test_malformed_urls_are_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput):
        open_artifact_store(url)


def test_endpoint_url_is_for_s3_only(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="endpoint_url applies to s3://"):
        open_artifact_store(str(tmp_path), endpoint_url="http://127.0.0.1:9000")


def test_s3_without_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(MissingDependency, match=r"pip install 'mlops\[s3\]'"):
        open_artifact_store("s3://bucket/prefix")


# -- S3 specifics ---------------------------------------------------------------------


@pytest.mark.s3
def test_s3_store_via_factory_with_endpoint_url(s3_server: str, s3_bucket_url: str) -> None:
    options = s3_storage_options(s3_server)
    del options["client_kwargs"]["endpoint_url"]
    store = open_artifact_store(s3_bucket_url, endpoint_url=s3_server, storage_options=options)
    assert store.root == s3_bucket_url
    store.put_bytes(b"via endpoint_url", "x/y.txt")
    key = f"{s3_bucket_url.removeprefix(f's3://{BUCKET}/')}/x/y.txt"
    body = s3_client(s3_server).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body == b"via endpoint_url"
    assert store.url("x/y.txt") == f"{s3_bucket_url}/x/y.txt"


@pytest.mark.s3
def test_s3_constructor_does_no_io(s3_bucket_url: str) -> None:
    options = s3_storage_options("http://127.0.0.1:9")  # nothing listens there
    store = FsspecArtifactStore(s3_bucket_url, storage_options=options)
    assert store.root == s3_bucket_url


@pytest.mark.s3
def test_s3_failed_multipart_upload_is_aborted(
    s3_server: str, s3_bucket_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {**s3_storage_options(s3_server), "default_block_size": MIN_PART_SIZE}
    store = FsspecArtifactStore(s3_bucket_url, storage_options=options)
    source = tmp_path / "source"
    source.write_bytes(b"x")

    def broken_reader(path: Path) -> Iterator[bytes]:
        yield os.urandom(MIN_PART_SIZE + 1024)
        yield os.urandom(MIN_PART_SIZE + 1024)
        raise OSError("source vanished")

    monkeypatch.setattr(_fsspec, "iter_local_file", broken_reader)
    with pytest.raises(StorageError, match="source vanished"):
        store.put_file(source, "big.bin")
    assert not store.exists("big.bin")
    uploads = s3_client(s3_server).list_multipart_uploads(Bucket=BUCKET)
    prefix = s3_bucket_url.removeprefix(f"s3://{BUCKET}/")
    assert [u for u in uploads.get("Uploads", []) if u["Key"].startswith(prefix)] == []


@pytest.mark.s3
def test_s3_missing_bucket_is_a_storage_error(s3_server: str) -> None:
    store = FsspecArtifactStore(
        "s3://no-such-bucket/x", storage_options=s3_storage_options(s3_server)
    )
    with pytest.raises(StorageError, match=r"s3://no-such-bucket/x/a\.txt"):
        store.put_bytes(b"x", "a.txt")
    with pytest.raises(NotFound):
        store.get_bytes("a.txt")


@pytest.mark.s3
def test_s3_get_dir_refuses_keys_that_escape_the_folder(
    s3_server: str, s3_bucket_url: str, tmp_path: Path
) -> None:
    store = FsspecArtifactStore(s3_bucket_url, storage_options=s3_storage_options(s3_server))
    prefix = s3_bucket_url.removeprefix(f"s3://{BUCKET}/")
    s3_client(s3_server).put_object(Bucket=BUCKET, Key=f"{prefix}/m/a\\b", Body=b"x")
    with pytest.raises(StorageError, match="not a safe local path"):
        store.get_dir("m", tmp_path / "out")
