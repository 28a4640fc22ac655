"""The tracking contract: every metadata backend (SQLite, PostgreSQL) passes it."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import mlops
from contracts.remote import KINDS, connection_pair
from mlops.errors import (
    AlreadyExists,
    Conflict,
    FilterSyntaxError,
    InvalidInput,
    NotFound,
    RunNotActive,
)
from mlops.tracking import Dataset, LifecycleStage, Metric, RunStatus, dataset_from_data


@pytest.fixture(params=KINDS)
def both(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[tuple[mlops.MLOps, mlops.MLOps]]:
    """Each test runs embedded and through a real server (the remote client)."""
    with connection_pair(request, database_url, tmp_path) as pair:
        yield pair


@pytest.fixture
def ml(both: tuple[mlops.MLOps, mlops.MLOps]) -> mlops.MLOps:
    return both[0]


@pytest.fixture
def server_ml(both: tuple[mlops.MLOps, mlops.MLOps]) -> mlops.MLOps:
    """The embedded connection holding the data (``ml`` itself when embedded)."""
    return both[1]


# -- experiments -------------------------------------------------------------------------


def test_experiment_lifecycle(ml: mlops.MLOps) -> None:
    created = ml.tracking.create_experiment("churn", description="why", tags={"team": "risk"})
    assert created.name == "churn"
    assert created.description == "why"
    assert created.tags == {"team": "risk"}
    assert created.lifecycle_stage is LifecycleStage.ACTIVE
    assert created.artifact_location.endswith(f"/{created.id}")
    assert ml.tracking.get_experiment(created.id) == ml.tracking.get_experiment("churn")

    renamed = ml.tracking.rename_experiment("churn", "churn-v2")
    assert renamed.id == created.id
    assert renamed.name == "churn-v2"
    with pytest.raises(NotFound, match="does not exist"):
        ml.tracking.get_experiment("churn")

    ml.tracking.delete_experiment(created.id)
    assert [e.name for e in ml.tracking.list_experiments()] == []
    assert [e.name for e in ml.tracking.list_experiments(include_deleted=True)] == ["churn-v2"]
    with pytest.raises(AlreadyExists, match="deleted"):
        ml.tracking.create_experiment("churn-v2")
    with pytest.raises(Conflict, match="deleted"):
        ml.tracking.start_run("churn-v2")
    ml.tracking.restore_experiment("churn-v2")
    assert [e.name for e in ml.tracking.list_experiments()] == ["churn-v2"]


def test_experiment_names_are_unique_and_validated(ml: mlops.MLOps) -> None:
    ml.tracking.create_experiment("a")
    with pytest.raises(AlreadyExists, match="already exists"):
        ml.tracking.create_experiment("a")
    ml.tracking.create_experiment("b")
    with pytest.raises(AlreadyExists):
        ml.tracking.rename_experiment("b", "a")
    for bad in ["", "   ", "x" * 251, "tab\there", " padded"]:
        with pytest.raises(InvalidInput):
            ml.tracking.create_experiment(bad)
    with pytest.raises(InvalidInput):
        ml.tracking.create_experiment(42)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="create_experiment"):
        ml.tracking.get_experiment("missing")
    with pytest.raises(NotFound):
        ml.tracking.start_run("missing")
    assert [e.name for e in ml.tracking.list_experiments()] == ["a", "b"]


def test_set_experiment_gets_or_creates(ml: mlops.MLOps) -> None:
    first = ml.tracking.set_experiment("exp")
    assert ml.tracking.set_experiment("exp").id == first.id
    ml.tracking.set_experiment_tag("exp", "owner", "ana")
    assert ml.tracking.get_experiment("exp").tags == {"owner": "ana"}


# -- runs --------------------------------------------------------------------------------


def test_run_lifecycle_and_context_manager(ml: mlops.MLOps) -> None:
    with ml.tracking.start_run(name="first") as run:
        assert ml.tracking.get_run(run.id).status is RunStatus.RUNNING
    snapshot = ml.tracking.get_run(run.id)
    assert snapshot.status is RunStatus.FINISHED
    assert snapshot.name == "first"
    assert snapshot.end_time is not None
    assert snapshot.end_time >= snapshot.start_time
    assert ml.tracking.get_experiment(snapshot.experiment_id).name == "Default"

    with pytest.raises(ZeroDivisionError), ml.tracking.start_run() as failing:
        1 / 0  # noqa: B018
    assert ml.tracking.get_run(failing.id).status is RunStatus.FAILED

    killed = ml.tracking.start_run()
    killed.end("killed")
    assert ml.tracking.get_run(killed.id).status is RunStatus.KILLED
    with pytest.raises(RunNotActive, match="KILLED"):
        killed.end()
    running = ml.tracking.start_run()
    with pytest.raises(InvalidInput, match="FINISHED, FAILED or KILLED"):
        running.end("DONE")
    with pytest.raises(InvalidInput, match="FINISHED, FAILED or KILLED"):
        running.end("RUNNING")
    assert ml.tracking.get_run(running.id).status is RunStatus.RUNNING


def test_nested_runs(ml: mlops.MLOps) -> None:
    ml.tracking.create_experiment("sweep")
    with ml.tracking.start_run("sweep", name="parent") as parent:
        child = parent.start_child(name="trial-1")
        child.end()
    stored = ml.tracking.get_run(child.id)
    assert stored.parent_run_id == parent.id
    assert stored.experiment_id == parent.experiment_id
    children = ml.tracking.search_runs("sweep", f"attributes.parent_run_id = '{parent.id}'")
    assert [r.id for r in children] == [child.id]
    with pytest.raises(NotFound, match="parent run"):
        ml.tracking.start_run(parent="0" * 32)


def test_unknown_and_malformed_run_ids(ml: mlops.MLOps) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        ml.tracking.get_run("f" * 32)
    with pytest.raises(NotFound):
        ml.tracking.log_metric("f" * 32, "m", 1.0)
    with pytest.raises(InvalidInput, match="not a run id"):
        ml.tracking.get_run("../etc")
    with pytest.raises(InvalidInput):
        ml.tracking.log_param("nope", "a", 1)


def test_delete_and_restore_run(ml: mlops.MLOps) -> None:
    run = ml.tracking.start_run(name="gone")
    run.end()
    ml.tracking.delete_run(run.id)
    assert list(ml.tracking.search_runs()) == []
    assert [r.id for r in ml.tracking.search_runs(include_deleted=True)] == [run.id]
    ml.tracking.restore_run(run.id)
    assert [r.id for r in ml.tracking.search_runs()] == [run.id]
    with pytest.raises(NotFound):
        ml.tracking.delete_run("e" * 32)


# -- params ------------------------------------------------------------------------------


def test_params_are_immutable(ml: mlops.MLOps) -> None:
    run = ml.tracking.start_run()
    run.log_params({"lr": 0.1, "model": "rf", "depth": 3})
    run.log_param("lr", 0.1)  # the same value again is fine
    with pytest.raises(Conflict, match="immutable"):
        run.log_param("lr", 0.2)
    with pytest.raises(Conflict):
        run.log_params({"new": "x", "model": "gbm"})
    assert ml.tracking.get_run(run.id).params == {"lr": "0.1", "model": "rf", "depth": "3"}


def test_param_validation(ml: mlops.MLOps) -> None:
    run = ml.tracking.start_run()
    for bad_key in ["", "a" * 251, "semi;colon", "../up", "/abs"]:
        with pytest.raises(InvalidInput):
            run.log_param(bad_key, 1)
    with pytest.raises(InvalidInput, match="limit"):
        run.log_param("big", "x" * 6001)
    with pytest.raises(InvalidInput):
        run.log_params([("a", 1)])  # type: ignore[arg-type]
    assert ml.tracking.get_run(run.id).params == {}


# -- metrics -----------------------------------------------------------------------------


def test_metric_history_and_latest_value(ml: mlops.MLOps) -> None:
    run = ml.tracking.start_run()
    run.log_metric("loss", 0.9, step=0, timestamp=1000)
    run.log_metric("loss", 0.5, step=2, timestamp=1002)
    run.log_metric("loss", 0.7, step=1, timestamp=1003)  # logged late, lower step
    run.log_metrics({"acc": 0.8, "f1": 0.75}, step=1)
    history = ml.tracking.get_metric_history(run.id, "loss")
    assert history == [
        Metric("loss", 0.9, 0, 1000),
        Metric("loss", 0.7, 1, 1003),
        Metric("loss", 0.5, 2, 1002),
    ]
    assert ml.tracking.get_run(run.id).metrics == {"loss": 0.5, "acc": 0.8, "f1": 0.75}
    assert ml.tracking.get_metric_history(run.id, "never") == []


def test_nan_and_infinity_are_stored_faithfully(ml: mlops.MLOps) -> None:
    run = ml.tracking.start_run()
    run.log_metric("loss", float("nan"), step=0)
    run.log_metric("loss", float("inf"), step=1)
    run.log_metric("grad", float("-inf"))
    run.log_metric("nan_last", float("nan"))
    run.log_metric("np", np.float32(0.25))
    values = [m.value for m in ml.tracking.get_metric_history(run.id, "loss")]
    assert math.isnan(values[0])
    assert values[1] == math.inf
    stored = ml.tracking.get_run(run.id).metrics
    assert stored["loss"] == math.inf
    assert stored["grad"] == -math.inf
    assert math.isnan(stored["nan_last"])
    assert stored["np"] == 0.25
    # NaN never satisfies a comparison
    assert list(ml.tracking.search_runs(filter="metrics.nan_last > 0")) == []


def test_metric_validation(ml: mlops.MLOps) -> None:
    run = ml.tracking.start_run()
    for bad in ["0.5", None, True, [1.0]]:
        with pytest.raises(InvalidInput, match="must be a number"):
            run.log_metric("m", bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="step"):
        run.log_metric("m", 1.0, step=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="timestamp"):
        run.log_metric("m", 1.0, timestamp="now")  # type: ignore[arg-type]
    assert ml.tracking.get_metric_history(run.id, "m") == []


def test_logging_to_an_ended_run_is_refused(ml: mlops.MLOps) -> None:
    run = ml.tracking.start_run()
    run.end()
    for call in (
        lambda: run.log_metric("m", 1.0),
        lambda: run.log_param("p", 1),
        lambda: run.set_tag("t", "v"),
        lambda: run.log_batch([("m", 1.0)]),
        lambda: run.log_text("x", "x.txt"),
        lambda: run.log_input(Dataset("d", "abc")),
    ):
        with pytest.raises(RunNotActive, match="FINISHED"):
            call()
    snapshot = ml.tracking.get_run(run.id)
    assert (snapshot.metrics, snapshot.params, snapshot.tags) == ({}, {}, {})
    assert ml.tracking.list_artifacts(run.id) == []


def test_log_batch_is_all_or_nothing(ml: mlops.MLOps) -> None:
    run = ml.tracking.start_run()
    run.log_param("model", "rf")
    points = [Metric("loss", 1.0 / (i + 1), i, 1000 + i) for i in range(500)]
    with pytest.raises(InvalidInput):
        run.log_batch([*points, ("bad", "x")])
    with pytest.raises(Conflict):
        run.log_batch(points, params={"model": "gbm"})
    assert ml.tracking.get_metric_history(run.id, "loss") == []
    run.log_batch(
        [*points, ("acc", 0.9, 3), {"key": "f1", "value": 0.8, "step": 2}],
        params={"model": "rf", "depth": 4},
        tags={"team": "risk"},
    )
    assert len(ml.tracking.get_metric_history(run.id, "loss")) == 500
    snapshot = ml.tracking.get_run(run.id)
    assert snapshot.metrics == {"loss": 1.0 / 500, "acc": 0.9, "f1": 0.8}
    assert snapshot.params == {"model": "rf", "depth": "4"}
    assert snapshot.tags == {"team": "risk"}
    with pytest.raises(InvalidInput, match="mapping needs"):
        run.log_batch([{"key": "x"}])


def test_async_logging_flushes_when_the_run_ends(ml: mlops.MLOps) -> None:
    with ml.tracking.start_run(async_logging=True) as run:
        for step in range(2500):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        with pytest.raises(InvalidInput):
            run.log_metric("loss", "x")  # type: ignore[arg-type]
    history = ml.tracking.get_metric_history(run.id, "loss")
    assert [m.step for m in history] == list(range(2500))
    assert ml.tracking.get_run(run.id).status is RunStatus.FINISHED


def test_async_logging_reports_write_errors(ml: mlops.MLOps, server_ml: mlops.MLOps) -> None:
    run = ml.tracking.start_run(async_logging=True)
    other = mlops.connect(server_ml.store.url, artifacts=server_ml.artifacts.root)
    other.tracking.end_run(run.id, "KILLED")  # another process ends it behind our back
    other.close()
    run.log_metric("loss", 1.0)
    with pytest.raises(RunNotActive):
        run.flush()


def test_ending_a_run_flushes_and_closes_its_buffer(ml: mlops.MLOps) -> None:
    import threading

    def writers() -> int:  # the buffers' threads (a remote test's server has its own)
        return sum(1 for thread in threading.enumerate() if thread.name.startswith("mlops-metr"))

    before = writers()
    runs = [ml.tracking.start_run(async_logging=True) for _ in range(5)]
    assert writers() == before + 5
    for run in runs:
        run.log_metric("loss", 0.5)
        ml.tracking.end_run(run.id)  # through the tracker, not the handle
    assert writers() == before
    for run in runs:
        assert len(ml.tracking.get_metric_history(run.id, "loss")) == 1
        with pytest.raises(RunNotActive):
            run.log_metric("loss", 0.1)


def test_deleted_experiment_hides_and_freezes_its_runs(ml: mlops.MLOps) -> None:
    ml.tracking.create_experiment("gone")
    run = ml.tracking.start_run("gone")
    ml.tracking.delete_experiment("gone")
    with pytest.raises(RunNotActive, match="experiment"):
        run.log_metric("m", 1.0)
    assert list(ml.tracking.search_runs("gone")) == []
    assert [r.id for r in ml.tracking.search_runs("gone", include_deleted=True)] == [run.id]
    ml.tracking.restore_experiment("gone")
    run.log_metric("m", 1.0)


def test_out_of_range_numbers_are_invalid_input(ml: mlops.MLOps) -> None:
    run = ml.tracking.start_run()
    with pytest.raises(InvalidInput):
        run.log_metric("m", 1.0, timestamp=2**63)
    with pytest.raises(InvalidInput):
        run.log_metric("m", 1.0, step=2**64)
    with pytest.raises(InvalidInput):
        run.log_input(Dataset("d", "abc", num_rows=2**70))
    with pytest.raises(InvalidInput):
        ml.tracking.search_runs(filter="attributes.start_time > 1e20")


# -- tags and datasets -------------------------------------------------------------------


def test_tags_are_mutable(ml: mlops.MLOps) -> None:
    run = ml.tracking.start_run(tags={"team": "risk"})
    run.set_tag("team", "growth")
    run.set_tags({"stage": "dev", "n": 3})
    ml.tracking.delete_tag(run.id, "stage")
    assert ml.tracking.get_run(run.id).tags == {"team": "growth", "n": "3"}
    with pytest.raises(NotFound, match="no tag"):
        ml.tracking.delete_tag(run.id, "stage")


def test_dataset_inputs(ml: mlops.MLOps) -> None:
    data = np.arange(20, dtype=np.float64).reshape(10, 2)
    train = dataset_from_data("train", data, source="synthetic")
    assert train == dataset_from_data("train", data.copy(), source="synthetic")
    assert train.digest != dataset_from_data("train", data + 1).digest
    assert train.num_rows == 10
    first = ml.tracking.start_run()
    first.log_input(train, context="training")
    first.log_input(train, context="training")  # idempotent
    first.log_input(dataset_from_data("valid", data[:3]), context="validation")
    second = ml.tracking.start_run()
    second.log_input(train)
    inputs = ml.tracking.get_run(first.id).inputs
    assert [(i.dataset.name, i.context) for i in inputs] == [
        ("train", "training"),
        ("valid", "validation"),
    ]
    assert inputs[0].dataset.schema == {"type": "ndarray", "dtype": "float64", "shape": [-1, 2]}
    with pytest.raises(InvalidInput):
        first.log_input({"name": "x"})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="digest"):
        first.log_input(Dataset("x", ""))


# -- artifacts ---------------------------------------------------------------------------


def test_artifacts_files_and_folders(ml: mlops.MLOps, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"\x00weights" * 100)
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "roc.txt").write_text("roc")
    (folder / "sub" / "pr.txt").write_text("pr")
    run = ml.tracking.start_run()
    run.log_artifact(model)
    run.log_artifact(folder, artifact_path="figures")
    run.log_dict({"f1": 0.8}, "report/summary.json")
    run.log_text("hello", "notes.txt")
    listed = {info.path: info for info in ml.tracking.list_artifacts(run.id)}
    assert sorted(listed) == [
        "figures/plots/roc.txt",
        "figures/plots/sub/pr.txt",
        "model.bin",
        "notes.txt",
        "report/summary.json",
    ]
    import hashlib

    assert listed["model.bin"].sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert listed["model.bin"].size == 800
    assert [i.path for i in ml.tracking.list_artifacts(run.id, "figures")] == [
        "figures/plots/roc.txt",
        "figures/plots/sub/pr.txt",
    ]
    out = ml.tracking.download_artifacts(run.id, "figures", tmp_path / "out")
    assert (out / "plots" / "sub" / "pr.txt").read_text() == "pr"
    summary = ml.tracking.download_artifacts(run.id, "report/summary.json", tmp_path / "out2")
    assert json.loads(summary.read_text()) == {"f1": 0.8}
    with pytest.raises(InvalidInput, match="leaves"):
        run.log_text("x", "../escape.txt")
    with pytest.raises(InvalidInput):
        run.log_artifact(model, artifact_path="/abs")
    with pytest.raises(InvalidInput, match="does not exist"):
        run.log_artifact(tmp_path / "missing.bin")
    with pytest.raises(NotFound):
        ml.tracking.download_artifacts(run.id, "nothing-here", tmp_path / "x")
    # logged artifacts are immutable: a second write is refused and the first one stands
    other = tmp_path / "model.bin.new"
    other.write_bytes(b"other")
    with pytest.raises(Conflict, match="immutable"):
        run.log_text("replaced", "notes.txt")
    with pytest.raises(Conflict, match="immutable"):
        run.log_artifact(folder, artifact_path="figures")
    assert ml.tracking.list_artifacts(run.id, "notes.txt")[0].size == 5
    again = ml.tracking.download_artifacts(run.id, "notes.txt", tmp_path / "out3")
    assert again.read_text() == "hello"


# -- search ------------------------------------------------------------------------------


def _populate(ml: mlops.MLOps) -> list[str]:
    ml.tracking.create_experiment("search")
    ids = []
    for index in range(12):
        with ml.tracking.start_run(
            "search", name=f"run-{index:02d}", tags={"team": "risk" if index % 2 else "growth"}
        ) as run:
            run.log_params({"model": "rf" if index % 3 == 0 else "gbm", "idx": index})
            run.log_metric("f1", index / 10)
            ids.append(run.id)
    return ids


def test_search_filters(ml: mlops.MLOps) -> None:
    ids = _populate(ml)

    def names(filter_string: str, **kwargs: object) -> list[str]:
        return sorted(r.name for r in ml.tracking.search_runs("search", filter_string, **kwargs))  # type: ignore[arg-type]

    assert names("metrics.f1 > 0.8") == ["run-09", "run-10", "run-11"]
    assert names("metrics.f1 >= 0.8 and params.model = 'rf'") == ["run-09"]
    assert names("params.model = 'rf' and tags.team = 'risk'") == ["run-03", "run-09"]
    assert names("attributes.status = 'FINISHED' and metrics.f1 < 0.15") == ["run-00", "run-01"]
    assert names("metrics.f1 < 0.1 or metrics.f1 > 1.05") == ["run-00", "run-11"]
    assert names("attributes.name like 'run-1%'") == ["run-10", "run-11"]
    assert names("params.idx in ('1', '2')") == ["run-01", "run-02"]
    assert names("metrics.missing > 0") == []
    ordered = ml.tracking.search_runs("search", order_by=["metrics.f1 DESC"], max_results=3)
    assert [r.name for r in ordered] == ["run-11", "run-10", "run-09"]
    assert ordered[0].params == {"model": "gbm", "idx": "11"}
    assert ordered[0].metrics == {"f1": 1.1}
    assert ordered[0].tags == {"team": "risk"}
    assert set(ids) == {r.id for r in ml.tracking.search_runs()}


def test_search_pagination_visits_every_run_once(ml: mlops.MLOps) -> None:
    ids = _populate(ml)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = ml.tracking.search_runs(
            "search", order_by="metrics.f1", max_results=5, page_token=token
        )
        seen.extend(r.id for r in page)
        pages += 1
        token = page.next_page_token
        if token is None:
            break
    assert pages == 3
    assert seen == ids  # f1 grows with the index
    first = ml.tracking.search_runs("search", max_results=5)
    with pytest.raises(InvalidInput, match="different search"):
        ml.tracking.search_runs("search", "metrics.f1 > 0", page_token=first.next_page_token)
    with pytest.raises(InvalidInput, match="page_token"):
        ml.tracking.search_runs("search", page_token="garbage!!")
    with pytest.raises(InvalidInput, match="max_results"):
        ml.tracking.search_runs("search", max_results=0)


def test_malformed_filters_point_at_the_problem(ml: mlops.MLOps) -> None:
    ml.tracking.create_experiment("search")
    with pytest.raises(FilterSyntaxError) as caught:
        ml.tracking.search_runs("search", "metrics.f1 > 0.8 and params.model = ")
    assert caught.value.position > 30
    assert "^" in str(caught.value)
    with pytest.raises(FilterSyntaxError):
        ml.tracking.search_runs("search", "metrics.f1 >> 1")
    with pytest.raises(FilterSyntaxError):
        ml.tracking.search_runs("search", "colour = 'red'")
    with pytest.raises(InvalidInput):
        ml.tracking.search_runs("search", 42)  # type: ignore[arg-type]


# -- the module-level convenience layer --------------------------------------------------


def test_fluent_layer(ml: mlops.MLOps) -> None:
    mlops.set_connection(ml)
    try:
        mlops.set_experiment("fluent")
        with mlops.start_run(name="outer") as outer:
            mlops.log_param("lr", 0.1)
            mlops.log_metric("loss", 0.5)
            with pytest.raises(Conflict, match="nested=True"):
                mlops.start_run()
            with mlops.start_run(name="inner", nested=True) as inner:
                assert mlops.active_run() is inner
                mlops.log_metrics({"acc": 0.9})
            assert mlops.active_run() is outer
        assert mlops.active_run() is None
        stored_inner = ml.tracking.get_run(inner.id)
        assert stored_inner.parent_run_id == outer.id
        assert stored_inner.metrics == {"acc": 0.9}
        assert ml.tracking.get_run(outer.id).params == {"lr": "0.1"}
        assert ml.tracking.get_experiment(stored_inner.experiment_id).name == "fluent"
    finally:
        mlops.set_connection(None)


@pytest.mark.s3
def test_run_artifacts_on_s3(
    s3_server: str, s3_bucket_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    settings = mlops.Settings(home=tmp_path / "home", s3_endpoint_url=s3_server)
    ml = mlops.connect(artifacts=s3_bucket_url, settings=settings)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w" * 4096)
    (folder / "config.json").write_text('{"a": 1}')
    with ml.tracking.start_run() as run:
        run.log_artifact(folder)
        run.log_text("hello", "notes.txt")
    stored = ml.tracking.get_run(run.id)
    assert stored.artifact_uri.startswith(s3_bucket_url)
    assert [i.path for i in ml.tracking.list_artifacts(run.id)] == [
        "model/config.json",
        "model/weights.bin",
        "notes.txt",
    ]
    out = ml.tracking.download_artifacts(run.id, "model", tmp_path / "out")
    assert (out / "weights.bin").read_bytes() == b"w" * 4096
    assert ml.artifacts.exists(f"{stored.experiment_id}/{run.id}/artifacts/notes.txt")
    ml.close()


def test_async_metrics_are_flushed_at_process_exit(database_url: str, tmp_path: Path) -> None:
    """A script that never ends its run still gets its buffered metrics written."""
    import subprocess
    import sys

    artifacts = str(tmp_path / "artifacts")
    script = f"""
import mlops
ml = mlops.connect({database_url!r}, artifacts={artifacts!r}, upgrade_schema=True)
run = ml.tracking.start_run(async_logging=True)
for step in range(777):
    run.log_metric("loss", 1.0 / (step + 1), step=step)
print(run.id)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    ml = mlops.connect(database_url, artifacts=artifacts)
    assert len(ml.tracking.get_metric_history(run_id, "loss")) == 777
    ml.close()


#: The remote runs use SQLite behind the server (see tests/conftest.py): the embedded runs
#: cover both stores, and the remote ones show the HTTP client gives the same results.
SQLITE_ONLY = "remote"
