"""Experiment-tracking benchmark: mlops beside MLflow's SQLite store, in the same run.

    python bench/tracking.py            # a table, with MLflow's figures if it is importable
    python bench/tracking.py --json     # one JSON object

Figures (see shared/BENCHMARKS.md): single log_metric calls/s, batched metrics/s
(1,000 per call), single log_param calls/s, reading a 20,000-point history (ms), and
searching 500 runs by a metric filter (ms). Both stores are fresh SQLite files in a
temporary folder; each call commits (durable across a process crash).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlops
from mlops.tracking import Metric

TARGETS = {
    "single_metrics_per_s": (5_000, "≥"),
    "batched_metrics_per_s": (200_000, "≥"),
    "single_params_per_s": (5_000, "≥"),
    "history_20k_ms": (30, "≤"),
    "search_500_ms": (10, "≤"),
}
HISTORY_POINTS = 20_000
SEARCH_RUNS = 500
BATCH = 1_000


def _rate(count: int, seconds: float) -> float:
    return count / seconds


def _median_ms(call: Callable[[], Any], repeats: int = 7) -> float:
    call()  # warm caches the way a second request would find them
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _search_fixture(index: int) -> tuple[dict[str, str], dict[str, float]]:
    params = {"model": "rf" if index % 2 else "gbm", "depth": str(index % 7)}
    metrics = {"acc": (index % 100) / 100, "f1": (index % 50) / 50, "loss": 1 / (index + 1)}
    return params, metrics


def bench_mlops(folder: Path, scale: float) -> dict[str, float]:
    ml = mlops.connect(home=str(folder / "mlops"))
    tracking = ml.tracking
    tracking.create_experiment("bench")
    results: dict[str, float] = {}

    run = tracking.start_run("bench")
    count = int(5_000 * scale)
    start = time.perf_counter()
    for step in range(count):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    results["single_metrics_per_s"] = _rate(count, time.perf_counter() - start)

    calls = int(100 * scale)
    batches = [
        [
            Metric(f"m{i % 10}", i * 0.001, call * 100 + i // 10, 1_700_000_000_000 + i)
            for i in range(BATCH)
        ]
        for call in range(calls)
    ]
    start = time.perf_counter()
    for batch in batches:
        run.log_batch(batch)
    results["batched_metrics_per_s"] = _rate(calls * BATCH, time.perf_counter() - start)

    count = int(3_000 * scale)
    start = time.perf_counter()
    for index in range(count):
        run.log_param(f"p{index}", index)
    results["single_params_per_s"] = _rate(count, time.perf_counter() - start)
    run.end()

    history_run = tracking.start_run("bench")
    points = [
        Metric("loss", 1.0 / (s + 1), s, 1_700_000_000_000 + s) for s in range(HISTORY_POINTS)
    ]
    for offset in range(0, HISTORY_POINTS, BATCH):
        history_run.log_batch(points[offset : offset + BATCH])
    assert len(tracking.get_metric_history(history_run.id, "loss")) == HISTORY_POINTS
    results["history_20k_ms"] = _median_ms(
        lambda: tracking.get_metric_history(history_run.id, "loss")
    )

    tracking.create_experiment("search")
    for index in range(SEARCH_RUNS):
        params, metrics = _search_fixture(index)
        with tracking.start_run("search") as search_run:
            search_run.log_batch(metrics=list(metrics.items()), params=params)
    found = tracking.search_runs("search", "metrics.acc > 0.5", max_results=1000)
    results["search_500_matches"] = len(found)
    results["search_500_ms"] = _median_ms(
        lambda: tracking.search_runs("search", "metrics.acc > 0.5", max_results=1000)
    )
    ml.close()
    return results


def bench_mlflow(folder: Path, scale: float) -> dict[str, float] | None:
    try:
        import mlflow  # noqa: F401
        from mlflow.entities import Metric as MlflowMetric
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(
        "bench", artifact_location=(folder / "mlruns").as_uri()
    )
    results: dict[str, float] = {}

    run_id = client.create_run(experiment_id).info.run_id
    count = max(50, int(300 * scale))  # MLflow is ~150 calls/s: keep its share of the time sane
    start = time.perf_counter()
    for step in range(count):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    results["single_metrics_per_s"] = _rate(count, time.perf_counter() - start)

    calls = max(3, int(10 * scale))
    start = time.perf_counter()
    for call in range(calls):
        client.log_batch(
            run_id,
            metrics=[
                MlflowMetric(f"m{i % 10}", i * 0.001, 1_700_000_000_000 + i, call * 100 + i // 10)
                for i in range(BATCH)
            ],
        )
    results["batched_metrics_per_s"] = _rate(calls * BATCH, time.perf_counter() - start)

    count = max(50, int(300 * scale))
    start = time.perf_counter()
    for index in range(count):
        client.log_param(run_id, f"p{index}", index)
    results["single_params_per_s"] = _rate(count, time.perf_counter() - start)

    history_run = client.create_run(experiment_id).info.run_id
    for offset in range(0, HISTORY_POINTS, BATCH):
        client.log_batch(
            history_run,
            metrics=[
                MlflowMetric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s)
                for s in range(offset, offset + BATCH)
            ],
        )
    results["history_20k_ms"] = _median_ms(
        lambda: client.get_metric_history(history_run, "loss"), repeats=3
    )

    search_experiment = client.create_experiment(
        "search", artifact_location=(folder / "mlruns").as_uri()
    )
    for index in range(SEARCH_RUNS):
        params, metrics = _search_fixture(index)
        search_run = client.create_run(search_experiment).info.run_id
        client.log_batch(
            search_run,
            metrics=[MlflowMetric(k, v, 1_700_000_000_000, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(search_run)
    found = client.search_runs([search_experiment], "metrics.acc > 0.5", max_results=1000)
    results["search_500_matches"] = len(found)
    results["search_500_ms"] = _median_ms(
        lambda: client.search_runs([search_experiment], "metrics.acc > 0.5", max_results=1000),
        repeats=5,
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the call counts")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow reference")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as temp:
        folder = Path(temp)
        ours = bench_mlops(folder, args.scale)
        reference = None if args.no_mlflow else bench_mlflow(folder, args.scale)
    if reference is not None and reference["search_500_matches"] != ours["search_500_matches"]:
        raise SystemExit(
            f"search results differ: mlops {ours['search_500_matches']}, "
            f"MLflow {reference['search_500_matches']}"
        )
    if args.json:
        output: dict[str, Any] = {key: round(ours[key], 3) for key in TARGETS}
        if reference is not None:
            output.update({f"mlflow_{key}": round(reference[key], 3) for key in TARGETS})
        print(json.dumps(output))
        return
    _print_table(ours, reference)


def _print_table(ours: dict[str, float], reference: dict[str, float] | None) -> None:
    header = f"{'figure':<24}{'mlops':>14}{'target':>12}{'met':>6}"
    if reference is not None:
        header += f"{'MLflow':>14}{'ratio':>10}"
    print(header)
    for key, (target, sense) in TARGETS.items():
        value = ours[key]
        met = value >= target if sense == "≥" else value <= target
        line = (
            f"{key:<24}{value:>14,.1f}{sense + format(target, ','):>12}{'yes' if met else 'NO':>6}"
        )
        if reference is not None:
            other = reference[key]
            ratio = value / other if sense == "≥" else other / value
            line += f"{other:>14,.1f}{ratio:>9.1f}x"
        print(line)
    matched = int(ours["search_500_matches"])
    print(f"(search matched {matched} of {SEARCH_RUNS} runs; a ratio above 1 favours mlops)")


if __name__ == "__main__":
    main()
