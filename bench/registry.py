"""Model registration benchmark: mlops beside MLflow's log + register, in the same run.

    python bench/registry.py            # a table, with MLflow's figures if it is importable
    python bench/registry.py --json     # one JSON object

Registers a small scikit-learn model (LogisticRegression on 30 features, with an input
example, so the signature is inferred and every file's SHA-256 recorded) N times on a
fresh embedded store, and times load + verify + first predict from a cold cache.
Target (see shared/BENCHMARKS.md): ≤ 100 ms per registration; MLflow 3.17 took 4.5 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import mlops

TARGET_REGISTER_MS = 100.0


def _model() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(500, 30)), columns=[f"f{i}" for i in range(30)])
    labels = (frame["f0"] + frame["f1"] > 0).astype(int)
    return LogisticRegression(max_iter=200).fit(frame, labels), frame


def bench_mlops(folder: Path, count: int) -> dict[str, float]:
    model, frame = _model()
    ml = mlops.connect(home=str(folder / "mlops"))
    ml.registry.register_model("warmup", model, input_example=frame[:5])  # imports, schema
    times = []
    for _ in range(count):
        start = time.perf_counter()
        ml.registry.register_model("bench", model, input_example=frame[:5], metrics={"f1": 0.9})
        times.append((time.perf_counter() - start) * 1000)
    loads = []
    records = frame[:1].to_dict(orient="records")
    for number in range(1, min(count, 5) + 1):
        shutil.rmtree(folder / "mlops" / "cache", ignore_errors=True)
        start = time.perf_counter()
        loaded = ml.registry.load_model("bench", number)
        loaded.predict(records)
        loads.append((time.perf_counter() - start) * 1000)
    ml.close()
    return {
        "register_ms": statistics.mean(times),
        "register_p50_ms": statistics.median(times),
        "load_verify_predict_ms": statistics.median(loads),
    }


def bench_mlflow(folder: Path, count: int) -> dict[str, float] | None:
    try:
        import mlflow
        import mlflow.sklearn
    except ImportError:
        return None
    import logging
    import warnings

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    model, frame = _model()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    times = []
    for _ in range(count):
        start = time.perf_counter()
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                model, name="model", input_example=frame[:5], registered_model_name="bench"
            )
        times.append((time.perf_counter() - start) * 1000)
    return {"register_ms": statistics.mean(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-n", type=int, default=30, help="registrations to time")
    parser.add_argument("--mlflow-n", type=int, default=3, help="MLflow registrations to time")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow reference")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as temp:
        ours = bench_mlops(Path(temp), args.n)
        reference = None if args.no_mlflow else bench_mlflow(Path(temp), args.mlflow_n)
    if args.json:
        output = {
            "register_ms": round(ours["register_ms"], 2),
            "load_verify_predict_ms": round(ours["load_verify_predict_ms"], 2),
        }
        if reference is not None:
            output["mlflow_register_ms"] = round(reference["register_ms"], 2)
        print(json.dumps(output))
        return
    met = "yes" if ours["register_ms"] <= TARGET_REGISTER_MS else "NO"
    print(
        f"register (mean of {args.n})        {ours['register_ms']:8.1f} ms   target ≤ 100 ms: {met}"
    )
    print(f"register (median)                {ours['register_p50_ms']:8.1f} ms")
    print(f"load + verify + first predict    {ours['load_verify_predict_ms']:8.1f} ms")
    if reference is not None:
        ratio = reference["register_ms"] / ours["register_ms"]
        print(
            f"MLflow log_model + register      {reference['register_ms']:8.1f} ms   "
            f"({ratio:.0f}x slower than mlops, mean of {args.mlflow_n})"
        )


if __name__ == "__main__":
    main()
