"""One pipeline on every executor: threads, the local process pool, Ray.

Steps that run in another process cannot share memory with the test, so they report
through their return values, their tracked runs and files under ``tmp_path``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import mlops
from mlops.errors import InvalidInput, MissingDependency, MLOpsError
from mlops.pipelines import (
    Pipeline,
    PipelineRun,
    PipelineState,
    StepEvent,
    StepState,
    run_pipeline,
    step,
    step_context,
)
from mlops.pipelines._ray import init_options
from mlops.tracking import RunStatus

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(params=["threads", "local", "ray"])
def executor(request: pytest.FixtureRequest) -> str:
    """Every executor (Ray's local instance is started once per session)."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    name: str = request.param
    return name


@pytest.fixture(params=["local", "ray"])
def process_executor(request: pytest.FixtureRequest) -> str:
    """The executors that run steps in other processes."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    name: str = request.param
    return name


def _states(result: PipelineRun) -> dict[str, str]:
    return {record.name: record.state.value for record in result.steps}


def _wait_for_files(paths: list[Path], seconds: float = 30) -> None:
    """Return once every path exists (the other steps got this far), else fail."""
    deadline = time.monotonic() + seconds
    while not all(path.exists() for path in paths):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the other steps never started: {paths}")
        time.sleep(0.005)


def _is_gone(pid: int, seconds: float = 0.0) -> bool:
    """Whether process ``pid`` has exited (and been reaped), waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


# -- the same pipeline everywhere ---------------------------------------------------------


def _pipeline(name: str, *, cache: bool) -> Pipeline:
    @step(cache=cache)
    def load(rows: int) -> list[float]:
        return [float(i) for i in range(rows)]

    @step(cache=cache, outputs=("train", "test"))
    def split(load: list[float]) -> dict[str, list[float]]:
        return {"train": load[:-2], "test": load[-2:]}

    @step(cache=cache, cpu=0.5, memory="64Mi")
    def fit(train: list[float], scale: float = 1.0) -> dict[str, Any]:
        return {"weights": [value * scale for value in train], "bias": sum(train)}

    @step(cache=cache)
    def audit(fit: dict[str, Any]) -> None:
        assert fit["bias"] > 0

    @step(cache=cache)
    def evaluate(fit: dict[str, Any], test: list[float]) -> dict[str, float]:
        return {"score": fit["bias"] / (1 + sum(test))}

    return Pipeline(name, [load, split, fit, audit, evaluate], params={"rows": 6})


def _keys(ml: mlops.MLOps, result: PipelineRun) -> dict[str, tuple[str, str | None, str]]:
    """Per step: its state, output hash and recorded cache key."""
    keys = {}
    for record in result.steps:
        assert record.run_id is not None
        run = ml.tracking.get_run(record.run_id)
        keys[record.name] = (
            record.state.value,
            record.output_hash,
            run.tags["mlops.step.cache_key"],
        )
    return keys


def test_the_same_pipeline_gives_the_same_outputs_and_cache_keys_on_every_executor(
    ml: mlops.MLOps, ray_cluster: Any
) -> None:
    uncached = _pipeline("everywhere", cache=False)
    results = {
        name: run_pipeline(ml, uncached, executor=name, params={"scale": 2.0})
        for name in ("threads", "local", "ray")
    }
    for name, result in results.items():
        assert result.state is PipelineState.SUCCEEDED, (name, result.to_dict())
    expected = _keys(ml, results["threads"])
    assert _keys(ml, results["local"]) == expected
    assert _keys(ml, results["ray"]) == expected
    for result in results.values():
        assert result.output("evaluate") == {"score": 6.0 / 10.0}
        assert result.output("fit") == {"weights": [0.0, 2.0, 4.0, 6.0], "bias": 6.0}
        assert result.output("audit") is None

    # Other rows: the steps above computed these very keys, and would be reused.
    cached = _pipeline("everywhere-cached", cache=True)
    first = run_pipeline(ml, cached, executor="local", params={"rows": 8})
    assert set(_states(first).values()) == {"succeeded"}
    for name in ("ray", "threads"):
        again = run_pipeline(ml, cached, executor=name, params={"rows": 8})
        assert set(_states(again).values()) == {"cached"}, name
        for before, after in zip(first.steps, again.steps, strict=True):
            assert after.output_run_id == before.run_id
        assert again.output("evaluate") == first.output("evaluate")


# -- step_context() -----------------------------------------------------------------------


def test_step_context_outside_a_step_is_an_error() -> None:
    with pytest.raises(MLOpsError, match=r"only available while a pipeline step runs"):
        step_context()


def test_step_context_names_the_step_and_logs_on_its_run(ml: mlops.MLOps, executor: str) -> None:
    @step(cache=False, retries=1)
    def probe(rows: int) -> dict[str, Any]:
        ctx = step_context()
        ctx.run.log_metric("attempted", float(ctx.attempt), step=ctx.attempt)
        if ctx.attempt == 1:
            raise ConnectionError("first attempt fails")
        ctx.run.set_tag("probe.pid", os.getpid())
        parent = ctx.ml.tracking.get_run(ctx.pipeline_run_id)
        return {
            "pipeline": ctx.pipeline,
            "step": ctx.step,
            "run_id": ctx.run_id,
            "pipeline_run_id": ctx.pipeline_run_id,
            "experiment_id": ctx.experiment_id,
            "attempt": ctx.attempt,
            "params": ctx.params,
            "parent_tag": parent.tags["mlops.pipeline"],
            "pid": os.getpid(),
        }

    result = run_pipeline(
        ml, Pipeline("introspect", [probe], params={"rows": 3}), executor=executor
    )
    assert result.state is PipelineState.SUCCEEDED, result.to_dict()
    seen = result.output("probe")
    record = result.step("probe")
    child = ml.tracking.get_run(record.run_id or "")
    assert seen == {
        "pipeline": "introspect",
        "step": "probe",
        "run_id": record.run_id,
        "pipeline_run_id": result.run_id,
        "experiment_id": child.experiment_id,
        "attempt": 2,
        "params": {"rows": 3},
        "parent_tag": "introspect",
        "pid": seen["pid"],
    }
    assert record.attempts == 2
    history = ml.tracking.get_metric_history(child.id, "attempted")
    assert [(point.step, point.value) for point in history] == [(1, 1.0), (2, 2.0)]
    assert child.tags["probe.pid"] == str(seen["pid"])
    assert (seen["pid"] == os.getpid()) is (executor == "threads")


def test_metrics_logged_by_concurrent_workers_are_all_kept(
    ml: mlops.MLOps, process_executor: str, tmp_path: Path
) -> None:
    # Four processes at once on the pool; two on Ray, whose two CPUs keep two warm workers.
    names = ["w0", "w1", "w2", "w3"] if process_executor == "local" else ["w0", "w1"]
    ready = [tmp_path / f"{name}.ready" for name in names]

    def writer(name: str) -> Any:
        @step(name=name, cache=False, cpu=0.5 if process_executor == "local" else 1)
        def write() -> int:
            (tmp_path / f"{name}.ready").touch()
            _wait_for_files(ready)  # they all write at the same time
            run = step_context().run
            for index in range(40):
                run.log_metric("written", float(index), step=index)
            return os.getpid()

        return write

    result = run_pipeline(
        ml,
        Pipeline("writers", [writer(name) for name in names]),
        executor=process_executor,
        max_workers=2,
    )
    assert result.state is PipelineState.SUCCEEDED, result.to_dict()
    assert len({result.output(name) for name in names}) == len(names)  # one process each
    for name in names:
        history = ml.tracking.get_metric_history(result.step(name).run_id or "", "written")
        assert sorted(point.step for point in history) == list(range(40)), name


# -- should_stop and on_step ----------------------------------------------------------------


def _four_steps() -> Pipeline:
    @step(cache=False)
    def first() -> int:
        return 1

    @step(cache=False)
    def second(first: int) -> int:
        return first + 1

    @step(cache=False)
    def third(second: int) -> int:
        return second + 1

    @step(cache=False)
    def aside() -> int:
        return 0

    return Pipeline("stoppable", [first, second, third, aside])


@sqlite_only
@pytest.mark.parametrize("pipeline_executor", ["threads", "local"])
def test_should_stop_cancels_the_steps_not_yet_started(
    ml: mlops.MLOps, pipeline_executor: str
) -> None:
    events: list[StepEvent] = []

    def stop() -> bool:  # once the first step has ended
        return any(event.step == "first" and not event.started for event in events)

    result = run_pipeline(
        ml,
        _four_steps(),
        executor=pipeline_executor,
        max_workers=1,
        should_stop=stop,
        on_step=events.append,
    )
    assert result.state is PipelineState.CANCELLED
    assert not result.succeeded
    assert _states(result) == {
        "first": "succeeded",
        "second": "cancelled",
        "third": "cancelled",
        "aside": "cancelled",
    }
    assert result.step("third").error == "the pipeline run was cancelled"
    assert result.step("third").run_id is None
    assert result.failed_steps == ()
    parent = ml.tracking.get_run(result.run_id)
    assert parent.status is RunStatus.KILLED
    assert parent.tags["mlops.pipeline.state"] == "cancelled"
    children = ml.tracking.search_runs(
        parent.experiment_id, f"attributes.parent_run_id = '{result.run_id}'"
    )
    assert [run.tags["mlops.step"] for run in children] == ["first"]


@sqlite_only
def test_a_run_stopped_after_a_failure_is_failed_not_cancelled(ml: mlops.MLOps) -> None:
    @step(cache=False)
    def broken() -> int:
        raise RuntimeError("no data")

    @step(cache=False)
    def after(broken: int) -> int:
        return broken

    @step(cache=False)
    def aside() -> int:
        return 0

    result = run_pipeline(
        ml,
        Pipeline("stopped-after-failure", [broken, after, aside]),
        max_workers=1,
        should_stop=lambda: True,
    )
    # should_stop is asked before each step: the first one is already cancelled.
    assert _states(result) == {"broken": "cancelled", "after": "cancelled", "aside": "cancelled"}
    assert result.state is PipelineState.CANCELLED

    stops = iter([False, True, True])
    result = run_pipeline(
        ml,
        Pipeline("stopped-after-failure", [broken, after, aside]),
        max_workers=1,
        should_stop=lambda: next(stops),
    )
    assert _states(result) == {"broken": "failed", "after": "skipped", "aside": "cancelled"}
    assert result.state is PipelineState.FAILED
    assert ml.tracking.get_run(result.run_id).status is RunStatus.FAILED


@sqlite_only
def test_on_step_hears_each_step_start_and_end(ml: mlops.MLOps) -> None:
    @step
    def source() -> int:
        return 1

    @step(cache=False)
    def broken(source: int) -> int:
        raise ValueError(f"cannot use {source}")

    @step(cache=False)
    def after(broken: int) -> int:
        return broken

    pipeline = Pipeline("observed", [source, broken, after])
    run_pipeline(ml, pipeline)  # `source` is cached from here on
    events: list[StepEvent] = []
    result = run_pipeline(ml, pipeline, on_step=events.append)

    seen = [(event.step, event.started, event.record and event.record.state) for event in events]
    assert seen == [
        ("source", True, None),
        ("source", False, StepState.CACHED),
        ("broken", True, None),
        ("broken", False, StepState.FAILED),
        ("after", False, StepState.SKIPPED),  # never started, so only its end
    ]
    assert all(event.pipeline == "observed" for event in events)
    assert all(event.pipeline_run_id == result.run_id for event in events)
    assert events[3].record == result.step("broken")


@sqlite_only
def test_a_failing_on_step_callback_does_not_break_the_run(
    ml: mlops.MLOps, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(event: StepEvent) -> None:
        raise RuntimeError(f"display broke on {event.step}")

    with caplog.at_level(logging.ERROR, logger="mlops.pipelines._runner"):
        result = run_pipeline(ml, _four_steps(), on_step=explode)
    assert result.state is PipelineState.SUCCEEDED
    assert result.output("third") == 3
    failures = [r for r in caplog.records if "on_step callback failed" in r.getMessage()]
    assert len(failures) == 8  # a start and an end for each of the four steps
    assert failures[0].exc_info is not None


# -- the process pool -------------------------------------------------------------------------


@sqlite_only
def test_cpu_requirements_are_honoured_in_worker_processes(
    ml: mlops.MLOps, process_executor: str, tmp_path: Path
) -> None:
    # The pool keeps within max_workers=2 CPUs itself. Ray is handed every ready step and
    # keeps within its 2 CPUs only if it is told what each step needs (num_cpus=cpu).
    max_workers = 2 if process_executor == "local" else None

    def timed(name: str, cpu: float, rendezvous: list[Path] | None = None) -> Any:
        @step(name=name, cpu=cpu, cache=False)
        def run() -> tuple[int, float, float]:
            began = time.monotonic()
            if rendezvous is not None:  # finish only once every step of the group started
                (tmp_path / f"{name}.ready").touch()
                _wait_for_files(rendezvous)
            else:
                time.sleep(0.1)  # a window in which another step would start, if it could
            return os.getpid(), began, time.monotonic()

        return run

    wide = Pipeline("wide", [timed("a", 2), timed("b", 2)])
    result = run_pipeline(ml, wide, executor=process_executor, max_workers=max_workers)
    assert result.state is PipelineState.SUCCEEDED, result.to_dict()
    (_, a_start, a_end), (_, b_start, b_end) = result.output("a"), result.output("b")
    assert a_end <= b_start or b_end <= a_start  # one after the other, never together

    both = [tmp_path / "c.ready", tmp_path / "d.ready"]
    narrow = Pipeline("narrow", [timed("c", 1, both), timed("d", 1, both)])
    result = run_pipeline(ml, narrow, executor=process_executor, max_workers=max_workers)
    assert result.state is PipelineState.SUCCEEDED, result.to_dict()
    pids = {result.output("c")[0], result.output("d")[0]}
    assert len(pids) == 2
    assert os.getpid() not in pids


@sqlite_only
def test_the_pool_keeps_one_warm_worker_per_cpu_and_stops_the_rest(
    ml: mlops.MLOps, tmp_path: Path
) -> None:
    names = [f"p{index}" for index in range(4)]

    def rendezvous(name: str, folder: Path) -> Any:
        @step(name=name, cache=False, cpu=0.5)
        def run() -> int:
            (folder / f"{name}.ready").touch()
            _wait_for_files([folder / f"{other}.ready" for other in names])
            return os.getpid()

        return run

    def wide_run(folder: Path) -> set[int]:
        folder.mkdir()
        steps = [rendezvous(name, folder) for name in names]
        result = run_pipeline(ml, Pipeline("wide", steps), executor="local", max_workers=2)
        assert result.state is PipelineState.SUCCEEDED, result.to_dict()
        return {result.output(name) for name in names}

    first = wide_run(tmp_path / "first")
    assert len(first) == 4  # four steps at once: four workers
    warm = {pid for pid in first if not _is_gone(pid)}
    assert len(warm) == min(4, max(2, os.cpu_count() or 1))  # the rest were stopped
    second = wide_run(tmp_path / "second")
    assert warm <= second  # the warm ones were used again


@sqlite_only
def test_a_step_past_its_timeout_has_its_process_killed(
    ml: mlops.MLOps, process_executor: str, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    timeout = 1.0

    @step(timeout=timeout, cache=False)
    def stuck() -> int:
        pid_file.write_text(str(os.getpid()))
        time.sleep(120)
        return 1

    @step(cache=False)
    def after(stuck: int) -> int:
        return stuck

    result = run_pipeline(ml, Pipeline("stuck", [stuck, after]), executor=process_executor)
    assert _states(result) == {"stuck": "timed_out", "after": "skipped"}, result.to_dict()
    assert f"did not finish within {timeout:g}s" in (result.step("stuck").error or "")
    assert "was killed" in (result.step("stuck").error or "")
    child = ml.tracking.get_run(result.step("stuck").run_id or "")
    assert child.status is RunStatus.FAILED
    assert child.tags["mlops.step.state"] == "timed_out"
    pid = int(pid_file.read_text())
    # The pool kills and reaps before it reports; Ray's forced cancel is asynchronous.
    assert _is_gone(pid, 0 if process_executor == "local" else 30)

    @step(cache=False)
    def fine() -> int:
        return os.getpid()

    again = run_pipeline(ml, Pipeline("after-stuck", [fine]), executor=process_executor)
    assert again.succeeded
    assert again.output("fine") != pid


@sqlite_only
def test_a_worker_that_dies_fails_only_its_step(ml: mlops.MLOps, process_executor: str) -> None:
    # Each death costs Ray a new worker (seconds): one there, every kind on the pool.
    on_pool = process_executor == "local"

    @step(cache=False, retries=1 if on_pool else 0)
    def exits() -> int:
        os._exit(3)

    @step(cache=False)
    def crashes() -> int:
        os.kill(os.getpid(), signal.SIGSEGV)
        return 1

    @step(cache=False)
    def after(exits: int) -> int:
        return exits

    @step(cache=False)
    def independent() -> int:
        return 7

    steps = [exits, crashes, after, independent] if on_pool else [exits, after, independent]
    result = run_pipeline(ml, Pipeline("crashing", steps), executor=process_executor)
    assert result.state is PipelineState.FAILED
    assert _states(result) == {
        "exits": "failed",
        **({"crashes": "failed"} if on_pool else {}),
        "after": "skipped",
        "independent": "succeeded",
    }
    assert result.output("independent") == 7
    for failed in result.failed_steps:
        assert (failed.error or "").startswith("WorkerCrashed: the "), failed.error
        assert f"running step {failed.name!r} died" in (failed.error or "")
    if on_pool:
        assert result.step("exits").attempts == 2
        assert "died with exit code 3" in (result.step("exits").error or "")
        assert "died with signal SIGSEGV" in (result.step("crashes").error or "")

    @step(cache=False)
    def fine() -> int:
        return 1

    assert run_pipeline(ml, Pipeline("after-crash", [fine]), executor=process_executor).succeeded


def _parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise LookupError(pid)


def test_workers_see_the_environment_and_folder_of_the_moment(
    ml: mlops.MLOps, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @step(cache=False)
    def surroundings() -> tuple[str | None, str]:
        return os.environ.get("MLOPS_TEST_SURROUNDINGS"), os.getcwd()

    pipeline = Pipeline("surroundings", [surroundings])
    # A first run, so the warm worker exists before the variable and the folder change.
    first = run_pipeline(ml, pipeline, executor="local")
    assert first.output("surroundings")[0] is None
    monkeypatch.setenv("MLOPS_TEST_SURROUNDINGS", "set later")
    monkeypatch.chdir(tmp_path)

    result = run_pipeline(ml, pipeline, executor="local")

    assert result.output("surroundings") == ("set later", str(tmp_path))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@sqlite_only
def test_the_pool_replaces_a_zygote_that_died(ml: mlops.MLOps) -> None:
    @step(cache=False)
    def forked_by() -> int:
        return os.getppid()  # a worker's parent is the zygote that forked it

    pipeline = Pipeline("zygote", [forked_by])
    zygote = run_pipeline(ml, pipeline, executor="local").output("forked_by")
    assert _parent_of(zygote) == os.getpid()  # the zygote is this process's child
    os.kill(zygote, signal.SIGKILL)
    os.waitpid(zygote, 0)  # reap it here, so the pool sees it gone at once

    result = run_pipeline(ml, pipeline, executor="local")
    assert result.succeeded, result.to_dict()
    replacement = result.output("forked_by")
    assert replacement != zygote
    assert _parent_of(replacement) == os.getpid()


class Unloadable:
    """Pickles anywhere, but refuses to be unpickled outside the process that made it."""

    def __init__(self, origin: int | None = None) -> None:
        self.origin = os.getpid() if origin is None else origin

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return _load_unloadable, (self.origin,)


def _load_unloadable(origin: int) -> Unloadable:
    if os.getpid() != origin:
        raise RuntimeError("this value only loads in the process that made it")
    return Unloadable(origin)


class TwoPartError(Exception):
    """An exception that cannot be unpickled: its __init__ takes two arguments."""

    def __init__(self, left: str, right: str) -> None:
        super().__init__(f"{left}/{right}")


@sqlite_only
def test_what_cannot_cross_into_a_worker_fails_its_step_clearly(ml: mlops.MLOps) -> None:
    lock = threading.Lock()

    @step(cache=False, retries=2)
    def holds_a_lock() -> bool:
        with lock:
            return True

    @step(cache=False, retries=2)
    def takes_a_stubborn_param(stubborn: Unloadable) -> int:
        return stubborn.origin

    @step(cache=False)
    def exits_politely() -> int:
        sys.exit(4)

    pipeline = Pipeline(
        "unsendable",
        [holds_a_lock, takes_a_stubborn_param, exits_politely],
        params={"stubborn": Unloadable()},
    )
    result = run_pipeline(ml, pipeline, executor="local")
    assert _states(result) == {
        "holds_a_lock": "failed",
        "takes_a_stubborn_param": "failed",
        "exits_politely": "failed",
    }
    lock_error = result.step("holds_a_lock").error or ""
    assert lock_error.startswith(
        "StepNotSendable: step 'holds_a_lock' cannot be sent to a worker process: its function "
    ), lock_error
    assert "cannot be pickled" in lock_error
    assert "executor='threads'" in lock_error
    param_error = result.step("takes_a_stubborn_param").error or ""
    assert param_error.startswith(
        "StepNotSendable: step 'takes_a_stubborn_param' could not be loaded in its worker "
        "process (RuntimeError: this value only loads in the process that made it)"
    ), param_error
    # Retrying cannot make either of them picklable.
    assert result.step("holds_a_lock").attempts == 1
    assert result.step("takes_a_stubborn_param").attempts == 1
    assert result.step("exits_politely").error == "SystemExit: 4"

    # The same step on threads works: nothing is pickled there.
    threaded = run_pipeline(ml, pipeline, executor="threads", stage="holds_a_lock")
    assert threaded.output("holds_a_lock") is True


@sqlite_only
@pytest.mark.parametrize("pipeline_executor", ["threads", "local"])
def test_an_exception_that_cannot_be_unpickled_is_reported_by_name(
    ml: mlops.MLOps, pipeline_executor: str
) -> None:
    @step(cache=False)
    def odd() -> int:
        raise TwoPartError("left", "right")

    result = run_pipeline(ml, Pipeline("odd", [odd]), executor=pipeline_executor)
    assert result.step("odd").error == "TwoPartError: left/right"


# -- Ray ----------------------------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"cpu": 3}, "needs 3 CPUs at once, which no node .* \\(the most a node has: 2 CPUs\\)"),
        ({"gpu": 1}, "needs 1 CPU, 1 GPU at once, .* \\(the most a node has: 2 CPUs, 0 GPUs\\)"),
        ({"memory": "64Ti"}, "needs 1 CPU, 65536.0 GiB of memory at once"),
    ],
    ids=["cpu", "gpu", "memory"],
)
def test_ray_refuses_a_step_no_node_can_run(
    ml: mlops.MLOps, ray_cluster: Any, resources: dict[str, Any], message: str
) -> None:
    @step(**resources)
    def big() -> int:
        return 1

    with pytest.raises(InvalidInput, match=f"step 'big' {message}"):
        run_pipeline(ml, Pipeline("too-big", [big]), executor="ray")
    assert ml.tracking.search_runs() == []  # refused before anything started


@sqlite_only
def test_without_ray_the_ray_executor_says_what_to_install(
    ml: mlops.MLOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when not installed

    @step
    def anything() -> int:
        return 1

    with pytest.raises(MissingDependency, match=r"pip install 'mlops\[ray\]'"):
        run_pipeline(ml, Pipeline("no-ray", [anything]), executor="ray")
    assert ml.tracking.search_runs() == []


def test_ray_is_reached_at_the_configured_address_or_started_locally() -> None:
    assert init_options({}) == {"include_dashboard": False}
    assert init_options({"RAY_ADDRESS": "ray://head:10001"}) == {"address": "ray://head:10001"}
    both = {"RAY_ADDRESS": "ray://head:10001", "MLOPS_RAY_ADDRESS": "10.0.0.5:6379"}
    assert init_options(both) == {"address": "10.0.0.5:6379"}


def test_a_time_limit_stops_the_running_step_and_starts_no_other(ml: mlops.MLOps) -> None:
    @step(cache=False)
    def quick() -> int:
        return 1

    @step(cache=False)
    def sleepy(quick: int) -> int:
        time.sleep(60)
        return quick

    @step(cache=False)
    def last(sleepy: int) -> int:
        return sleepy

    started = time.monotonic()
    result = run_pipeline(
        ml, Pipeline("limited", [quick, sleepy, last]), executor="local", time_limit="1.5"
    )

    assert time.monotonic() - started < 30
    assert result.state is PipelineState.TIMED_OUT
    assert _states(result) == {"quick": "succeeded", "sleepy": "timed_out", "last": "skipped"}
    assert "stopped at the run's time limit" in (result.step("sleepy").error or "")
    assert ml.tracking.get_run(result.run_id).status is RunStatus.FAILED
    with pytest.raises(InvalidInput, match="time_limit"):
        run_pipeline(ml, Pipeline("limited", [quick]), time_limit="soon")
