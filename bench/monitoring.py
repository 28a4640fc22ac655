"""Monitoring analytics over the prediction log: how long reports take as the log grows.

    python bench/monitoring.py                 # a table
    python bench/monitoring.py --json          # one JSON object
    python bench/monitoring.py --requests 10000,100000 --database-url postgresql://…

Logs N one-row requests of a 10-feature classifier (inputs, predictions, probabilities,
latency) plus feedback for every request into a fresh store with
``ml.monitor.record_predictions``, then times ``ml.monitor.performance`` over the window
(metrics from feedback, label-free estimates, latency percentiles) and ``ml.monitor.drift``
over the logged inputs against a 1,000-row reference. No reference tool runs here:
Evidently's drift figures are in bench/drift.py; there is no target in BENCHMARKS.md yet.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

import numpy as np

import mlops

FEATURES = [f"f{i}" for i in range(10)]


def _log(ml: mlops.MLOps, requests: int, now: int) -> None:
    rng = np.random.default_rng(0)
    batch = 10_000
    for start in range(0, requests, batch):
        rows = min(batch, requests - start)
        values = rng.normal(size=(rows, len(FEATURES)))
        probability = 1 / (1 + np.exp(-values[:, 0]))
        inputs = [dict(zip(FEATURES, row, strict=True)) for row in values.tolist()]
        ids = ml.monitor.record_predictions(
            "bench",
            inputs,
            (probability > 0.5).astype(int).tolist(),
            probabilities=np.c_[1 - probability, probability].tolist(),
            version=1,
            latency_ms=rng.gamma(4.0, 1.0, rows).tolist(),
            ts=np.linspace(now - 3_000_000, now - 1000, rows).astype(int).tolist(),
        )
        actual = (rng.random(rows) < probability).astype(int).tolist()
        ml.monitor.record_feedback_batch("bench", ids, actual, ts=now)


def _time(call: Any, repeat: int) -> float:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def run(requests: int, database_url: str | None, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mlops-bench-monitoring-") as folder:
        ml = mlops.connect(database_url, home=folder, upgrade_schema=True)
        try:
            now = int(time.time() * 1000)
            start = time.perf_counter()
            _log(ml, requests, now)
            log_seconds = time.perf_counter() - start
            rng = np.random.default_rng(1)
            reference = {name: rng.normal(size=1000) for name in FEATURES}
            monitor = ml.monitor
            report = monitor.performance("bench", window="1h", now_ms=now, baseline=None)
            assert report.requests == requests, report.requests
            performance_s = _time(
                lambda: monitor.performance("bench", window="1h", now_ms=now, baseline=None),
                repeat,
            )
            drift_s = _time(
                lambda: monitor.drift(
                    "bench", window="1h", now_ms=now, reference=reference, predictions=False
                ),
                repeat,
            )
        finally:
            ml.close()
    return {
        "requests": requests,
        "record_per_s": requests / log_seconds,
        "performance_s": performance_s,
        "drift_from_log_s": drift_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", default="10000,100000", help="comma-separated counts")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per report (median)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = [
        run(int(count), args.database_url, args.repeat) for count in args.requests.split(",")
    ]
    if args.json:
        print(json.dumps({"results": results}))
        return
    print(f"{'requests':>10} {'record/s':>10} {'performance s':>14} {'drift (log) s':>14}")
    for item in results:
        print(
            f"{item['requests']:>10} {item['record_per_s']:>10.0f} "
            f"{item['performance_s']:>14.3f} {item['drift_from_log_s']:>14.3f}"
        )


if __name__ == "__main__":
    main()
