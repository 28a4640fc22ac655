"""Serving benchmark: mlops (routing + validation + prediction log, a canary active) beside
a bare Starlette floor and `mlflow models serve`, all loaded by wrk over loopback.

    python bench/serving.py            # a table with ratios
    python bench/serving.py --json     # one JSON object

Each server runs one worker process with a 30-feature LogisticRegression; every request
carries one row of JSON. Targets (shared/BENCHMARKS.md): throughput ≥ 0.6 x floor, p99 ≤
2 x floor's p99 at 16 connections, p50 ≤ 1 ms at 1 connection, prediction-log overhead
≤ 50 µs per request.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import mlops
from mlops.deployment import Canary

ROOT = Path(__file__).resolve().parents[1]
FEATURES = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {url} did not become ready")


def _wrk(url: str, body: str, connections: int, seconds: int, folder: Path) -> dict[str, float]:
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    threads = min(2, connections)
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "rps": rps,
        "p50_ms": _percentile(output, "50%"),
        "p99_ms": _percentile(output, "99%"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def _percentile(output: str, label: str) -> float:
    match = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        raise SystemExit(f"wrk printed no {label} latency:\n{output}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def _start(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env or os.environ.copy()
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def _measure(url: str, body: str, seconds: int, folder: Path) -> dict[str, float]:
    _wrk(url, body, 16, 2, folder)  # warm up
    loaded = _wrk(url, body, 16, seconds, folder)
    single = _wrk(url, body, 1, max(3, seconds // 2), folder)
    return {**loaded, "p50_ms_c1": single["p50_ms"]}


def log_overhead_us(count: int = 200_000) -> float:
    """Request-path cost of one prediction-log record: build it and queue it."""
    from mlops.serving import PredictionLogWriter, PredictionRecord

    with tempfile.TemporaryDirectory() as temp:
        ml = mlops.connect(home=temp)
        writer = PredictionLogWriter(ml.store, max_queue=count + 1)
        row, outputs = [[0.5] * FEATURES], {"predictions": [1]}
        start = time.perf_counter()
        for index in range(count):
            writer.submit(
                PredictionRecord(
                    "0123456789abcdef0123456789abcdef",
                    "bench",
                    1,
                    "stable",
                    1_800_000_000_000 + index,
                    0.4,
                    200,
                    row,
                    outputs,
                    None,
                )
            )
        elapsed = time.perf_counter() - start
        ml.close()
    return elapsed / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    parser.add_argument("--no-mlflow", action="store_true", help="skip mlflow models serve")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = rng.normal(size=(2_000, FEATURES))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    model = LogisticRegression(max_iter=300).fit(features, labels)
    row = [round(float(v), 4) for v in features[0]]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mlops-serving-bench-") as temp:
        folder = Path(temp)
        home = folder / "home"
        ml = mlops.connect(home=str(home))
        for _ in range(2):
            ml.registry.register_model("bench", model, input_example=features[:5])
        ml.deployments.deploy("bench", "bench", 1)
        ml.deployments.deploy("bench", "bench", 2, strategy=Canary(steps_percent=(10, 100)))
        ml.close()

        port = _free_port()
        server = _start(
            [
                sys.executable,
                "-m",
                "mlops.serving",
                "--home",
                str(home),
                "--port",
                str(port),
                "--log-level",
                "warning",
            ]
        )
        try:
            _wait(f"http://127.0.0.1:{port}/health/ready")
            results["mlops"] = _measure(
                f"http://127.0.0.1:{port}/v1/endpoints/bench/predict",
                json.dumps([row]),
                args.seconds,
                folder,
            )
        finally:
            _stop(server)

        pickled = folder / "model.pkl"
        pickled.write_bytes(pickle.dumps(model))
        port = _free_port()
        floor = _start(
            [sys.executable, str(ROOT / "bench" / "_floor_app.py"), str(pickled), str(port)]
        )
        try:
            _wait_post(f"http://127.0.0.1:{port}/predict", {"features": row})
            results["floor"] = _measure(
                f"http://127.0.0.1:{port}/predict",
                json.dumps({"features": row}),
                args.seconds,
                folder,
            )
        finally:
            _stop(floor)

        if not args.no_mlflow:
            results.update(_mlflow(model, row, folder, args.seconds))
    overhead = log_overhead_us()
    _report(results, overhead, args.json)


def _wait_post(url: str, body: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.post(url, json=body, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {url} did not answer")


def _mlflow(
    model: Any, row: list[float], folder: Path, seconds: int
) -> dict[str, dict[str, float]]:
    try:
        import mlflow.sklearn
    except ImportError:
        return {}
    target = folder / "mlflow-model"
    mlflow.sklearn.save_model(model, str(target))
    port = _free_port()
    bin_dir = Path(sys.executable).parent  # MLflow shells out to `uvicorn` from PATH
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"file://{folder / 'mlruns'}",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    mlflow_bin = bin_dir / "mlflow"
    server = _start(
        [
            str(mlflow_bin),
            "models",
            "serve",
            "-m",
            str(target),
            "-p",
            str(port),
            "--env-manager",
            "local",
            "-w",
            "1",
        ],
        env,
    )
    body = {"dataframe_split": {"columns": list(range(FEATURES)), "data": [row]}}
    try:
        _wait_post(f"http://127.0.0.1:{port}/invocations", body, seconds=120)
        return {
            "mlflow": _measure(
                f"http://127.0.0.1:{port}/invocations", json.dumps(body), seconds, folder
            )
        }
    finally:
        _stop(server)


def _report(results: dict[str, dict[str, float]], overhead: float, as_json: bool) -> None:
    ours, floor = results["mlops"], results["floor"]
    if as_json:
        output = {
            "mlops_rps": round(ours["rps"], 1),
            "mlops_p50_ms": ours["p50_ms"],
            "mlops_p99_ms": ours["p99_ms"],
            "mlops_p50_ms_c1": ours["p50_ms_c1"],
            "floor_rps": round(floor["rps"], 1),
            "floor_p50_ms": floor["p50_ms"],
            "floor_p99_ms": floor["p99_ms"],
            "log_overhead_us": round(overhead, 2),
        }
        if "mlflow" in results:
            output["mlflow_rps"] = round(results["mlflow"]["rps"], 1)
            output["mlflow_p99_ms"] = results["mlflow"]["p99_ms"]
        print(json.dumps(output))
        return
    print(f"{'server':<10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p50 c=1':>9}{'non-2xx':>9}")
    for name, figures in results.items():
        print(
            f"{name:<10}{figures['rps']:>10,.0f}{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}"
            f"{figures['p50_ms_c1']:>9.2f}{int(figures['non_2xx']):>9}"
        )
    throughput = ours["rps"] / floor["rps"]
    tail = ours["p99_ms"] / floor["p99_ms"]
    checks = [
        ("throughput vs floor", f"{throughput:.2f}x", "≥ 0.6", throughput >= 0.6),
        ("p99 vs floor", f"{tail:.2f}x", "≤ 2", tail <= 2),
        ("p50 at 1 connection", f"{ours['p50_ms_c1']:.2f} ms", "≤ 1 ms", ours["p50_ms_c1"] <= 1),
        ("prediction-log cost", f"{overhead:.1f} µs", "≤ 50 µs", overhead <= 50),
    ]
    for label, value, target, met in checks:
        print(f"{label:<22}{value:>10}   target {target:<8} {'yes' if met else 'NO'}")
    if "mlflow" in results:
        ratio = ours["rps"] / results["mlflow"]["rps"]
        print(f"mlops vs mlflow models serve: {ratio:.0f}x the throughput")


if __name__ == "__main__":
    main()
