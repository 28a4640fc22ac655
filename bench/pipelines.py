"""Pipeline benchmark: step overhead, schedule latency, the bundled training pipeline.

    python bench/pipelines.py                    # a table
    python bench/pipelines.py --json             # one JSON object
    python bench/pipelines.py --prefect-python /path/to/venv/bin/python   # + Prefect 3

Figures (each in a fresh store under a temporary folder, SQLite unless --database-url):
- step_overhead_ms: the marginal wall time of one empty step (cache off) on the local
  executor: (time of a 101-step chain - time of a 1-step chain) / 100, best of --repeat.
  Each step is a tracked child run with its params, state tags and duration metric.
  Printed for every executor given with --executors (default: threads, local).
  Reference: Prefect 3's task call (an empty task called 101 times inside a flow, timed
  inside the flow, best of --repeat; ephemeral API, default result persistence off) with
  the Python given by --prefect-python, in its own process.
- schedule_latency_s: --schedule-samples pipelines registered with the cron schedule
  "* * * * *", run by the orchestrator's background scheduler (1 s interval, a worker per
  pipeline): the worst (and the median) of execution started - due time, at the next
  minute (so this part waits up to a minute).
- training_pipeline_s: wall time of the bundled sample training pipeline (churn.yaml:
  ingest, validate, preprocess, features, train, evaluate, register, deploy, monitor) with
  20 Optuna trials x 5 folds, on the local executor.
Targets: step overhead <= 5 ms; schedule latency <= 1 s.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_STEP_MS = 5.0
TARGET_SCHEDULE_S = 1.0
CHAIN = 101

_PREFECT_SCRIPT = r"""
import json, sys, time
from prefect import flow, task

@task
def empty():
    return None

@flow
def chain(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        empty()
    return (time.perf_counter() - start) / n * 1000

n, repeat = int(sys.argv[1]), int(sys.argv[2])
chain(1)  # starts the ephemeral API
print(json.dumps({"per_task_ms": min(chain(n) for _ in range(repeat))}))
"""


def _connect(root: Path, database_url: str | None) -> Any:
    import mlops

    return mlops.connect(database_url, artifacts=str(root / "artifacts"), home=str(root))


def _empty(**_: Any) -> None:
    return None


def _chain(length: int) -> Any:
    """``length`` empty steps, each taking the previous one's output (cache off)."""
    from mlops.pipelines import Pipeline, step

    steps = []
    for index in range(length):

        def body(**kwargs: Any) -> None:
            return _empty(**kwargs)

        inputs = [] if index == 0 else [f"s{index - 1}"]
        body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in inputs]
        )
        steps.append(step(name=f"s{index}", cache=False)(body))
    return Pipeline(f"chain{length}", steps)


def step_overhead(executor: str, repeat: int, database_url: str | None) -> float:
    """Marginal ms per empty step on ``executor``."""
    from mlops.pipelines import run_pipeline

    with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as folder:
        ml = _connect(Path(folder), database_url)
        try:
            short, long = _chain(1), _chain(CHAIN)
            run_pipeline(ml, short, executor=executor)  # warm: experiment, pools, imports
            best_short = best_long = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                assert run_pipeline(ml, short, executor=executor).succeeded
                best_short = min(best_short, time.perf_counter() - start)
                start = time.perf_counter()
                assert run_pipeline(ml, long, executor=executor).succeeded
                best_long = min(best_long, time.perf_counter() - start)
        finally:
            ml.close()
    return (best_long - best_short) / (CHAIN - 1) * 1000


def prefect_overhead(python: str, repeat: int) -> float | None:
    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as home:
        env = {
            **os.environ,
            "PREFECT_HOME": home,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "CRITICAL",
        }
        done = subprocess.run(
            [python, "-c", _PREFECT_SCRIPT, str(CHAIN), str(repeat)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return float(json.loads(line)["per_task_ms"])
    print(f"Prefect did not run: {done.stderr[-800:]}", file=sys.stderr)
    return None


def schedule_latency(pipelines: int, database_url: str | None) -> list[float]:
    """Seconds from due time to run start for ``pipelines`` pipelines due every minute,
    run by the background scheduler (1 s interval, one worker per pipeline)."""
    from mlops.orchestration import PipelineScheduler

    with tempfile.TemporaryDirectory(prefix="bench-schedule-") as folder:
        ml = _connect(Path(folder), database_url)
        try:
            names = [f"tick-{index}" for index in range(pipelines)]
            for name in names:
                ml.pipelines.register(
                    name, "_pipeline_fixtures:TICK", schedule="* * * * *", executor="threads"
                )
            due = ml.pipelines.next_due()
            assert due is not None
            scheduler = PipelineScheduler(ml.pipelines, interval=1.0, workers=pipelines)
            latencies: list[float] = []
            with scheduler:
                deadline = time.monotonic() + max(0.0, due / 1000 - time.time()) + 30
                while time.monotonic() < deadline:
                    started = [
                        e
                        for e in ml.pipelines.executions(limit=100)
                        if e.started_at is not None and e.scheduled_for is not None
                    ]
                    if len(started) >= pipelines:
                        latencies = [(e.started_at - e.scheduled_for) / 1000 for e in started]
                        break
                    time.sleep(0.2)
        finally:
            ml.close()
    if len(latencies) < pipelines:
        raise RuntimeError(f"only {len(latencies)} of {pipelines} due schedules started")
    return latencies


def training_pipeline(trials: int, folds: int, executor: str) -> float:
    import yaml

    from mlops.pipelines import run_pipeline
    from mlops.pipelines.training import PipelineConfig, sample_config_path

    raw = yaml.safe_load(sample_config_path().read_text())
    raw["train"].update(trials=trials, folds=folds)
    pipeline = PipelineConfig.from_dict(raw).pipeline()
    with tempfile.TemporaryDirectory(prefix="bench-training-") as folder:
        ml = _connect(Path(folder), None)
        try:
            start = time.perf_counter()
            result = run_pipeline(ml, pipeline, executor=executor)
            elapsed = time.perf_counter() - start
        finally:
            ml.close()
    if not result.succeeded:
        raise RuntimeError(f"the training pipeline failed: {result.failed_steps}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--executors", default="threads,local")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--prefect-python", default=None, help="a Python with prefect 3")
    parser.add_argument(
        "--schedule-samples", type=int, default=2, help="pipelines due at the same minute"
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip", default="", help="comma list of: steps,schedule,training")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    executors = [e for e in args.executors.split(",") if e]
    out: dict[str, Any] = {}
    if "steps" not in skip:
        per_executor = {e: step_overhead(e, args.repeat, args.database_url) for e in executors}
        out["step_overhead_ms_by_executor"] = {k: round(v, 3) for k, v in per_executor.items()}
        main_executor = "local" if "local" in per_executor else executors[0]
        out["step_overhead_ms"] = round(per_executor[main_executor], 3)
        if args.prefect_python:
            reference = prefect_overhead(args.prefect_python, args.repeat)
            if reference is not None:
                out["prefect_task_ms"] = round(reference, 3)
                out["ratio_vs_prefect"] = round(reference / out["step_overhead_ms"], 2)
    if "schedule" not in skip:
        latencies = schedule_latency(args.schedule_samples, args.database_url)
        out["schedule_latency_s"] = round(max(latencies), 3)
        out["schedule_latency_median_s"] = round(statistics.median(latencies), 3)
    if "training" not in skip:
        out["training_pipeline_s"] = round(training_pipeline(args.trials, args.folds, "local"), 2)
        out["training_trials"], out["training_folds"] = args.trials, args.folds
    if args.json:
        print(json.dumps(out))
        return
    for key, value in out.items():
        print(f"{key:32} {value}")
    if "step_overhead_ms" in out:
        print(f"target: step overhead <= {TARGET_STEP_MS} ms")
    if "schedule_latency_s" in out:
        print(f"target: schedule latency <= {TARGET_SCHEDULE_S} s")


if __name__ == "__main__":
    main()
