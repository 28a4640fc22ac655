"""Drift-detection benchmark: mlops `detect_drift` beside Evidently's DataDriftPreset.

    python bench/drift.py                        # a table, with Evidently if importable
    python bench/drift.py --json                 # one JSON object
    python bench/drift.py --skip-evidently-1m    # Evidently at 1M rows takes minutes, ~2 GB

Data: 20 numeric and 5 categorical columns (3 to 40 string values), seeded, reference and
current of equal size (100,000 and 1,000,000 rows), 1% nulls in a few columns. Shifted in
the current data: num_00 (mean +0.3 sd), num_01 (sd x1.5), num_02 (scale x1.3), num_03
(mean +0.5 sd) and cat_1 (re-weighted). Each size and each library runs in its own process.
Only the drift call is timed (median of --repeat runs; Evidently's time covers
`Report([DataDriftPreset()]).run`). Peak MB is the peak RSS during the drift call with the
data resident (the kernel's mark is reset after the data is generated); the process-wide
peak, generator included, is in the JSON as `process_peak_mb_*`.
Targets: 100k rows ≤ 0.5 s; 1M rows ≤ 5 s with ≤ 1 GB peak RSS.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

SIZES = {"100k": 100_000, "1m": 1_000_000}
TARGET_SECONDS = {"100k": 0.5, "1m": 5.0}
TARGET_PEAK_MB = 1024
NUMERIC, CATEGORICAL = 20, 5
CATEGORY_SIZES = (3, 5, 8, 20, 40)
SHIFTED = ("num_00", "num_01", "num_02", "num_03", "cat_1")


def generate(rows: int, seed: int, *, shifted: bool) -> Any:
    """One side of the data as a pandas DataFrame, built column by column."""
    import pandas as pd

    generator = np.random.default_rng([seed, int(shifted)])
    columns: dict[str, Any] = {}
    for index in range(NUMERIC):
        name = f"num_{index:02d}"
        shape = index % 4
        if shape == 0:
            values = generator.normal(10.0, 2.0, rows)
        elif shape == 1:
            values = generator.lognormal(0.0, 0.5, rows)
        elif shape == 2:
            values = generator.uniform(-1.0, 1.0, rows)
        else:
            values = generator.poisson(40.0, rows).astype(np.float64)
        if shifted and name in SHIFTED:
            spread = float(values.std())
            center = float(values.mean())
            values = {
                "num_00": values + 0.3 * spread,
                "num_01": center + (values - center) * 1.5,
                "num_02": values * 1.3,
                "num_03": values + 0.5 * spread,
            }[name]
        if index % 5 == 4:
            values[generator.random(rows) < 0.01] = np.nan
        columns[name] = values
    for index, size in enumerate(CATEGORY_SIZES):
        name = f"cat_{index}"
        labels = np.array([f"{name}_value_{value}" for value in range(size)], dtype=object)
        weights = 1.0 / np.arange(1, size + 1)
        if shifted and name in SHIFTED:
            weights = weights[::-1]  # the rare values become the common ones
        codes = generator.choice(size, rows, p=weights / weights.sum())
        columns[name] = labels[codes]
    return pd.DataFrame(columns, copy=False)


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux; getrusage's too), so the peak measured next
    is the timed call's (with the data resident), not the data generator's temporaries."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _peak_mb() -> float:
    """Peak RSS since the last reset (VmHWM), or of the whole process where unavailable."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_mlops(rows: int, seed: int, repeat: int) -> dict[str, Any]:
    from mlops.monitoring.drift import detect_drift

    warm_reference = generate(2_000, seed + 1, shifted=False)
    detect_drift(warm_reference, generate(2_000, seed + 1, shifted=True))  # imports, caches
    reference = generate(rows, seed, shifted=False)
    current = generate(rows, seed, shifted=True)
    generation_peak = _peak_mb()
    _reset_peak()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        report = detect_drift(reference, current)
        times.append(time.perf_counter() - start)
    return {
        "seconds": statistics.median(times),
        "peak_mb": _peak_mb(),
        "process_peak_mb": max(generation_peak, _peak_mb()),
        "drifted": list(report.drifted_columns),
        "verdicts": {column.name: bool(column.drifted) for column in report.columns},
        "methods": {column.name: column.method for column in report.columns},
    }


def run_evidently(rows: int, seed: int) -> dict[str, Any]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = generate(rows, seed, shifted=False)
    current = generate(rows, seed, shifted=True)
    generation_peak = _peak_mb()
    _reset_peak()
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference)
    seconds = time.perf_counter() - start
    prefix = "Value Drift for column "
    verdicts = {
        test["name"][len(prefix) :]: str(test["status"]).endswith("FAIL")
        for test in snapshot.dict()["tests"]
        if test["name"].startswith(prefix)
    }
    return {
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        "process_peak_mb": max(generation_peak, _peak_mb()),
        "drifted": [name for name, drifted in verdicts.items() if drifted],
        "verdicts": verdicts,
    }


def _child(kind: str, rows: int, seed: int, repeat: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--rows",
        str(rows),
        "--seed",
        str(seed),
        "--repeat",
        str(repeat),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the {kind} run at {rows:,} rows failed:\n{result.stderr}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--sizes", default="100k,1m", help="comma-separated sizes: 100k, 1m (default both)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (median)")
    parser.add_argument("--no-evidently", action="store_true", help="skip the reference")
    parser.add_argument(
        "--skip-evidently-1m", action="store_true", help="run Evidently at 100k rows only"
    )
    parser.add_argument("--child", choices=["mlops", "evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "mlops":
            outcome = run_mlops(args.rows, args.seed, args.repeat)
        else:
            outcome = run_evidently(args.rows, args.seed)
        print(json.dumps(outcome))
        return
    sizes = [size.strip().lower() for size in args.sizes.split(",") if size.strip()]
    unknown = [size for size in sizes if size not in SIZES]
    if unknown:
        raise SystemExit(f"unknown sizes {unknown}; choose from {', '.join(SIZES)}")
    with_evidently = not args.no_evidently and importlib.util.find_spec("evidently") is not None
    ours: dict[str, dict[str, Any]] = {}
    theirs: dict[str, dict[str, Any]] = {}
    for size in sizes:
        ours[size] = _child("mlops", SIZES[size], args.seed, args.repeat)
        if with_evidently and not (size == "1m" and args.skip_evidently_1m):
            theirs[size] = _child("evidently", SIZES[size], args.seed, 1)
    if args.json:
        print(json.dumps(_summary(ours, theirs)))
        return
    _print_table(ours, theirs)


def _summary(ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    output: dict[str, Any] = {}
    for size, outcome in ours.items():
        output[f"seconds_{size}"] = round(outcome["seconds"], 3)
        output[f"peak_mb_{size}"] = round(outcome["peak_mb"], 1)
        output[f"process_peak_mb_{size}"] = round(outcome["process_peak_mb"], 1)
    largest = "1m" if "1m" in ours else next(iter(ours))
    output["drifted_columns"] = ours[largest]["drifted"]
    for size, outcome in theirs.items():
        output[f"evidently_seconds_{size}"] = round(outcome["seconds"], 3)
        output[f"evidently_peak_mb_{size}"] = round(outcome["peak_mb"], 1)
    if theirs:
        output["verdicts_agree"] = all(
            ours[size]["verdicts"] == outcome["verdicts"] for size, outcome in theirs.items()
        )
    return output


def _print_table(ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]]) -> None:
    header = f"{'rows':<8}{'mlops s':>10}{'target':>9}{'peak MB':>10}{'met':>6}"
    if theirs:
        header += f"{'Evidently s':>13}{'its MB':>9}{'ratio':>9}{'agree':>7}"
    print(header)
    for size, outcome in ours.items():
        met = outcome["seconds"] <= TARGET_SECONDS[size] and (
            size != "1m" or outcome["peak_mb"] <= TARGET_PEAK_MB
        )
        line = (
            f"{size:<8}{outcome['seconds']:>10.3f}{'≤' + format(TARGET_SECONDS[size], 'g'):>9}"
            f"{outcome['peak_mb']:>10.0f}{'yes' if met else 'NO':>6}"
        )
        other = theirs.get(size)
        if other is not None:
            agree = other["verdicts"] == outcome["verdicts"]
            line += (
                f"{other['seconds']:>13.2f}{other['peak_mb']:>9.0f}"
                f"{other['seconds'] / outcome['seconds']:>8.1f}x{'yes' if agree else 'NO':>7}"
            )
        print(line)
    for size, outcome in ours.items():
        print(f"drifted at {size}: {', '.join(outcome['drifted']) or '(none)'}")
        other = theirs.get(size)
        if other is not None and other["verdicts"] != outcome["verdicts"]:
            differing = sorted(
                name
                for name in set(outcome["verdicts"]) | set(other["verdicts"])
                if outcome["verdicts"].get(name) != other["verdicts"].get(name)
            )
            print(f"  verdicts differ from Evidently's on: {', '.join(differing)}")
    print(f"(expected drift: {', '.join(SHIFTED)}; a ratio above 1 favours mlops)")


if __name__ == "__main__":
    main()
