"""Running pipelines on the real tracking store: runs, artifacts, caching, failures, modes."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import mlops
from mlops.errors import InvalidInput, NotFound
from mlops.pipelines import Pipeline, PipelineState, StepState, run_pipeline, step
from mlops.tracking import Run, RunStatus


def _children(ml: mlops.MLOps, run_id: str) -> dict[str, Run]:
    parent = ml.tracking.get_run(run_id)
    found = ml.tracking.search_runs(parent.experiment_id, f"attributes.parent_run_id = '{run_id}'")
    return {run.tags["mlops.step"]: run for run in found}


def _states(result: Any) -> dict[str, str]:
    return {record.name: record.state.value for record in result.steps}


class Calls:
    """Counts the calls of each step, from any thread."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1


def _training_pipeline(calls: Calls, **params: Any) -> Pipeline:
    @step
    def load(rows: int) -> list[float]:
        calls("load")
        return [float(i) for i in range(rows)]

    @step(outputs=("train", "test"))
    def split(load: list[float]) -> dict[str, list[float]]:
        calls("split")
        return {"train": load[:-2], "test": load[-2:]}

    @step(cpu=1, memory="64Mi")
    def fit(train: list[float], scale: float = 1.0) -> float:
        calls("fit")
        return sum(train) * scale

    @step
    def evaluate(fit: float, test: list[float]) -> dict[str, float]:
        calls("evaluate")
        return {"score": fit / (1 + sum(test))}

    return Pipeline("training", [load, split, fit, evaluate], params={"rows": 6, **params})


def test_a_pipeline_runs_as_a_tracked_run_with_a_child_run_per_step(ml: mlops.MLOps) -> None:
    calls = Calls()
    result = run_pipeline(ml, _training_pipeline(calls), experiment="pipelines", executor="threads")

    assert result.state is PipelineState.SUCCEEDED
    assert result.succeeded
    assert [record.name for record in result.steps] == ["load", "split", "fit", "evaluate"]
    assert set(_states(result).values()) == {"succeeded"}
    assert result.output("split") == {"train": [0.0, 1.0, 2.0, 3.0], "test": [4.0, 5.0]}
    assert result.output("evaluate") == {"score": 6.0 / 10.0}

    parent = ml.tracking.get_run(result.run_id)
    assert parent.status is RunStatus.FINISHED
    assert parent.tags["mlops.pipeline"] == "training"
    assert parent.params == {"rows": "6"}
    assert ml.tracking.get_experiment(parent.experiment_id).name == "pipelines"
    children = _children(ml, result.run_id)
    assert set(children) == {"load", "split", "fit", "evaluate"}
    for record in result.steps:
        child = children[record.name]
        assert child.id == record.run_id
        assert child.status is RunStatus.FINISHED
        assert child.tags["mlops.step.cached"] == "false"
        assert child.tags["mlops.step.state"] == "succeeded"
        assert child.tags["mlops.step.output_hash"] == record.output_hash
        assert "duration_ms" in child.metrics
        (artifact,) = ml.tracking.list_artifacts(child.id)
        assert (artifact.path, artifact.sha256) == ("output.pkl", record.output_hash)
        assert record.started_at is not None
        assert record.ended_at is not None
        assert record.started_at <= record.ended_at
        assert record.duration_ms is not None
    assert children["fit"].params == {"scale": "1.0"}
    summary = result.to_dict()
    assert summary["state"] == "succeeded"
    assert summary["steps"][0]["name"] == "load"


def test_an_unchanged_run_comes_from_the_cache_and_a_changed_param_reruns_its_steps(
    ml: mlops.MLOps,
) -> None:
    calls = Calls()
    pipeline = _training_pipeline(calls)
    first = run_pipeline(ml, pipeline, executor="threads")
    second = run_pipeline(ml, pipeline, executor="threads")

    assert set(_states(second).values()) == {"cached"}
    assert calls.counts == {"load": 1, "split": 1, "fit": 1, "evaluate": 1}
    assert second.output("evaluate") == first.output("evaluate")  # read from the artifact
    for before, after in zip(first.steps, second.steps, strict=True):
        assert after.output_run_id == before.run_id
        assert after.output_hash == before.output_hash
    cached_child = _children(ml, second.run_id)["fit"]
    assert cached_child.status is RunStatus.FINISHED
    assert cached_child.tags["mlops.step.cached"] == "true"
    assert cached_child.tags["mlops.step.output_run"] == first.step("fit").run_id

    third = run_pipeline(ml, pipeline, params={"scale": 2.0}, executor="threads")
    assert _states(third) == {
        "load": "cached",
        "split": "cached",
        "fit": "succeeded",
        "evaluate": "succeeded",
    }
    assert third.output("evaluate") == {"score": 12.0 / 10.0}


def test_a_step_without_cache_always_runs_and_an_expired_output_is_computed_again(
    ml: mlops.MLOps,
) -> None:
    calls = Calls()

    @step(cache=False)
    def always() -> int:
        calls("always")
        return 1

    @step(cache_expiry=0.001)
    def brief() -> int:
        calls("brief")
        return 2

    @step(cache_expiry="1d")
    def lasting() -> int:
        calls("lasting")
        return 3

    pipeline = Pipeline("expiry", [always, brief, lasting])
    run_pipeline(ml, pipeline, max_workers=1, executor="threads")
    time.sleep(0.01)  # past brief's expiry, whatever the clock's resolution
    second = run_pipeline(ml, pipeline, max_workers=1, executor="threads")
    assert _states(second) == {"always": "succeeded", "brief": "succeeded", "lasting": "cached"}
    assert calls.counts == {"always": 2, "brief": 2, "lasting": 1}


def test_a_failing_step_fails_the_run_and_skips_what_depends_on_it(ml: mlops.MLOps) -> None:
    @step
    def source() -> int:
        return 1

    @step
    def broken(source: int) -> int:
        raise ValueError(f"cannot use {source}")

    @step
    def after(broken: int) -> int:
        return broken

    @step
    def later(after: int) -> int:
        return after

    @step
    def independent(source: int) -> int:
        return source + 1

    pipeline = Pipeline("failing", [source, broken, after, later, independent])
    result = run_pipeline(ml, pipeline)

    assert result.state is PipelineState.FAILED
    assert _states(result) == {
        "source": "succeeded",
        "broken": "failed",
        "after": "skipped",
        "later": "skipped",
        "independent": "succeeded",
    }
    assert result.step("broken").error == "ValueError: cannot use 1"
    assert result.step("after").error == "upstream step 'broken' failed"
    assert result.step("later").error == "upstream step 'after' was skipped"
    assert result.step("after").run_id is None
    assert [record.name for record in result.failed_steps] == ["broken"]
    with pytest.raises(NotFound, match=r"step 'broken' .* has no output: it failed"):
        result.output("broken")

    assert ml.tracking.get_run(result.run_id).status is RunStatus.FAILED
    assert ml.tracking.get_run(result.run_id).tags["mlops.pipeline.state"] == "failed"
    children = _children(ml, result.run_id)
    assert set(children) == {"source", "broken", "independent"}
    assert children["broken"].status is RunStatus.FAILED
    assert children["broken"].tags["mlops.step.error"] == "ValueError: cannot use 1"
    assert "mlops.step.output_run" not in children["broken"].tags
    assert ml.tracking.list_artifacts(children["broken"].id) == []


def test_retries_rerun_a_failing_step(ml: mlops.MLOps) -> None:
    calls = Calls()

    @step(retries=2, cache=False)
    def flaky() -> str:
        calls("flaky")
        if calls.counts["flaky"] < 3:
            raise ConnectionError("try again")
        return "done"

    @step(retries=1, cache=False)
    def hopeless() -> str:
        calls("hopeless")
        raise ConnectionError("never")

    result = run_pipeline(
        ml, Pipeline("retries", [flaky, hopeless]), max_workers=1, executor="threads"
    )
    assert result.step("flaky").state is StepState.SUCCEEDED
    assert result.step("flaky").attempts == 3
    assert result.output("flaky") == "done"
    assert result.step("hopeless").state is StepState.FAILED
    assert result.step("hopeless").attempts == 2
    assert calls.counts == {"flaky": 3, "hopeless": 2}
    children = _children(ml, result.run_id)
    assert children["flaky"].tags["mlops.step.attempts"] == "3"


def test_a_step_past_its_timeout_is_timed_out_and_its_thread_abandoned(ml: mlops.MLOps) -> None:
    release = threading.Event()

    @step(timeout=0.2)
    def stuck() -> int:
        release.wait(30)
        return 1

    @step
    def after(stuck: int) -> int:
        return stuck

    try:
        result = run_pipeline(ml, Pipeline("timeouts", [stuck, after]), executor="threads")
    finally:
        release.set()
    assert result.state is PipelineState.FAILED
    assert _states(result) == {"stuck": "timed_out", "after": "skipped"}
    assert "did not finish within 0.2s; its thread was abandoned" in (
        result.step("stuck").error or ""
    )
    child = _children(ml, result.run_id)["stuck"]
    assert child.status is RunStatus.FAILED
    assert child.tags["mlops.step.state"] == "timed_out"


def test_independent_steps_run_at_the_same_time(ml: mlops.MLOps) -> None:
    # Each step waits for the other at the barrier, so they finish only if they overlap.
    barrier = threading.Barrier(2, timeout=20)

    @step(cache=False)
    def left() -> str:
        barrier.wait()
        return threading.current_thread().name

    @step(cache=False)
    def right() -> str:
        barrier.wait()
        return threading.current_thread().name

    @step(cache=False)
    def join(left: str, right: str) -> list[str]:
        return [left, right]

    result = run_pipeline(
        ml, Pipeline("parallel", [left, right, join]), max_workers=2, executor="threads"
    )
    assert result.state is PipelineState.SUCCEEDED, result.to_dict()
    first, second = result.step("left"), result.step("right")
    assert first.started_at <= second.ended_at
    assert second.started_at <= first.ended_at
    assert len(set(result.output("join"))) == 2


def test_cpu_requirements_limit_what_runs_at_once(ml: mlops.MLOps) -> None:
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def track() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)  # a chance for another step to start, were it allowed to
        with lock:
            running[0] -= 1

    @step(cpu=2, cache=False)
    def one() -> None:
        track()

    @step(cpu=2, cache=False)
    def two() -> None:
        track()

    @step(cpu=4, cache=False)
    def big() -> None:  # more than max_workers: runs alone instead of never
        track()

    result = run_pipeline(ml, Pipeline("cpu", [one, two, big]), max_workers=2, executor="threads")
    assert result.state is PipelineState.SUCCEEDED
    assert peak[0] == 1
    assert result.output("one") is None


def test_a_stage_runs_alone_on_the_latest_outputs_upstream(ml: mlops.MLOps) -> None:
    calls = Calls()
    pipeline = _training_pipeline(calls)
    with pytest.raises(NotFound, match="needs the output of step 'split', which has never"):
        run_pipeline(ml, pipeline, stage="fit", executor="threads")

    run_pipeline(ml, pipeline, executor="threads")
    staged = run_pipeline(ml, pipeline, stage="fit", params={"scale": 3.0}, executor="threads")
    assert [record.name for record in staged.steps] == ["fit"]
    assert staged.step("fit").state is StepState.SUCCEEDED
    assert staged.output("fit") == 18.0
    assert calls.counts["fit"] == 2
    assert calls.counts["load"] == 1
    assert ml.tracking.get_run(staged.run_id).tags["mlops.pipeline.stage"] == "fit"
    with pytest.raises(InvalidInput, match="has no step 'fitt'"):
        run_pipeline(ml, pipeline, stage="fitt")


def test_a_volatile_step_runs_again_even_when_a_run_is_resumed(ml: mlops.MLOps) -> None:
    source = {"rows": [1, -2, 3]}

    @step(volatile=True)
    def read() -> list[int]:
        return list(source["rows"])

    @step
    def check(read: list[int]) -> list[int]:
        if min(read) < 0:
            raise ValueError("negative rows")
        return read

    @step
    def total(check: list[int]) -> int:
        return sum(check)

    assert read.volatile
    assert not read.cache  # volatile implies no cache
    pipeline = Pipeline("volatile", [read, check, total])
    failed = run_pipeline(ml, pipeline, executor="threads")
    assert _states(failed) == {"read": "succeeded", "check": "failed", "total": "skipped"}

    source["rows"] = [1, 2, 3]  # the fix is in the data, not in the code
    resumed = run_pipeline(ml, pipeline, resume_from=failed.run_id, executor="threads")

    assert _states(resumed) == {"read": "succeeded", "check": "succeeded", "total": "succeeded"}
    assert resumed.output("total") == 6
    again = run_pipeline(ml, pipeline, executor="threads")
    assert _states(again) == {"read": "succeeded", "check": "cached", "total": "cached"}
    with pytest.raises(InvalidInput, match="volatile"):
        step(volatile="yes")(lambda: None)  # type: ignore[arg-type]


def test_a_failed_run_resumes_from_the_failed_step(ml: mlops.MLOps) -> None:
    calls = Calls()
    broken = {"on": True}

    @step(cache=False)
    def extract() -> list[int]:
        calls("extract")
        return [1, 2, 3]

    @step(cache=False)
    def transform(extract: list[int]) -> list[int]:
        calls("transform")
        if broken["on"]:
            raise RuntimeError("bad row")
        return [value * 2 for value in extract]

    @step(cache=False)
    def report(transform: list[int]) -> int:
        calls("report")
        return sum(transform)

    pipeline = Pipeline("etl", [extract, transform, report])
    failed = run_pipeline(ml, pipeline, max_workers=1, executor="threads")
    assert _states(failed) == {"extract": "succeeded", "transform": "failed", "report": "skipped"}

    broken["on"] = False
    resumed = run_pipeline(ml, pipeline, resume_from=failed.run_id, executor="threads")
    assert _states(resumed) == {
        "extract": "cached",
        "transform": "succeeded",
        "report": "succeeded",
    }
    assert resumed.step("extract").output_run_id == failed.step("extract").run_id
    assert resumed.output("report") == 12
    assert calls.counts == {"extract": 1, "transform": 2, "report": 1}
    parent = ml.tracking.get_run(resumed.run_id)
    assert parent.tags["mlops.pipeline.resumed_from"] == failed.run_id

    with pytest.raises(InvalidInput, match="succeeded, so there is nothing to resume"):
        run_pipeline(ml, pipeline, resume_from=resumed.run_id)
    other = Pipeline("other", [extract])
    with pytest.raises(InvalidInput, match="is a run of pipeline 'etl'"):
        run_pipeline(ml, other, resume_from=failed.run_id)


@pytest.mark.parametrize("executor", ["threads", "local"])
def test_outputs_that_cannot_be_stored_fail_the_step(ml: mlops.MLOps, executor: str) -> None:
    @step
    def lock() -> Any:
        return threading.Lock()

    @step(outputs=("a", "b"))
    def pair() -> dict[str, int]:
        return {"a": 1}

    result = run_pipeline(ml, Pipeline("bad-outputs", [lock, pair]), executor=executor)
    assert _states(result) == {"lock": "failed", "pair": "failed"}
    assert (result.step("lock").error or "").startswith(
        "InvalidInput: step 'lock' returned a lock that cannot be pickled"
    )
    assert result.step("lock").attempts == 1
    assert "declares outputs ['a', 'b'] but returned ['a']" in (result.step("pair").error or "")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"params": {"rowz": 1}}, "takes no param 'rowz'; its params are rows, scale"),
        ({"executor": "dask"}, "executor 'dask' is not available; use one of local, threads, ray"),
        ({"max_workers": 0}, "max_workers must be a whole number of 1 or more"),
        ({"stage": "fit", "resume_from": "0" * 32}, "give stage= or resume_from=, not both"),
    ],
)
def test_bad_run_options_are_refused(
    ml: mlops.MLOps, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        run_pipeline(ml, _training_pipeline(Calls()), **options)
    assert ml.tracking.search_runs() == []  # nothing was started
