"""Control-plane API benchmark: the remote client through a real `mlops server`, beside
the embedded connection, in the same run (and MLflow's tracking server, if given).

    python bench/api.py                                   # a table
    python bench/api.py --json                            # one JSON object
    python bench/api.py --mlflow-python /venv/bin/python  # + MLflow's server, same run

Figures (SQLite + local files in a temporary folder; the server is `mlops server` in its
own process on 127.0.0.1, auth off as on loopback):
- remote_batched_metrics_per_s: metric points per second logged with `log_batch`, 1,000
  points per call, through the server (each call one HTTP request, one transaction).
- remote_async_metrics_per_s: points per second from a run with async_logging=True (the
  background writer sends batches of up to 5,000 points per request), until flushed.
- embedded_batched_metrics_per_s: the same `log_batch` calls on an embedded connection.
- remote_registry_read_ms / embedded_registry_read_ms: median latency of resolving
  "models:/bench/production" (get the version a stage points at), warm.
Reference (--mlflow-python): MLflow's tracking server (`mlflow server`, SQLite backend,
in its own process) driven by MlflowClient from that Python: `log_batch` with 1,000
metrics per call (MLflow's per-request maximum) and `get_model_version_by_alias`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

import mlops

BATCH = 1_000
ASYNC_POINTS = 50_000

_MLFLOW_SCRIPT = r"""
import json, statistics, sys, time
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
url, calls, reads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = MlflowClient(tracking_uri=url, registry_uri=url)
experiment = client.create_experiment("bench")
run_id = client.create_run(experiment).info.run_id
def batch(call):
    return [Metric(f"m{i % 10}", i * 0.001, 1_700_000_000_000 + i, call * 100 + i // 10)
            for i in range(1000)]
client.log_batch(run_id, metrics=batch(-1))
start = time.perf_counter()
for call in range(calls):
    client.log_batch(run_id, metrics=batch(call))
rate = calls * 1000 / (time.perf_counter() - start)
client.create_registered_model("bench")
source = client.get_run(run_id).info.artifact_uri + "/model"
version = client.create_model_version("bench", source=source, run_id=run_id)
client.set_registered_model_alias("bench", "production", version.version)
client.get_model_version_by_alias("bench", "production")
times = []
for _ in range(reads):
    start = time.perf_counter()
    client.get_model_version_by_alias("bench", "production")
    times.append((time.perf_counter() - start) * 1000)
print(json.dumps({"batched_metrics_per_s": rate, "registry_read_ms": statistics.median(times)}))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait(url: str, process: subprocess.Popen[bytes], seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"the server at {url} did not start within {seconds} s")


@contextmanager
def _process(command: list[str], ready_url: str, env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait(ready_url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def _median_ms(call: Callable[[], Any], repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _batch(call: int) -> list[tuple[str, float, int, int]]:
    return [
        (f"m{i % 10}", i * 0.001, call * 100 + i // 10, 1_700_000_000_000 + i) for i in range(BATCH)
    ]


def _batched_rate(ml: mlops.MLOps, calls: int) -> float:
    run = ml.tracking.start_run()
    ml.tracking.log_batch(run.id, _batch(-1))  # warm: connection, prepared statements
    start = time.perf_counter()
    for call in range(calls):
        ml.tracking.log_batch(run.id, _batch(call))
    elapsed = time.perf_counter() - start
    run.end()
    return calls * BATCH / elapsed


def _async_rate(ml: mlops.MLOps) -> float:
    run = ml.tracking.start_run(async_logging=True)
    start = time.perf_counter()
    for step in range(ASYNC_POINTS):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.flush()
    elapsed = time.perf_counter() - start
    run.end()
    return ASYNC_POINTS / elapsed


def _register_production(ml: mlops.MLOps) -> None:
    from sklearn.linear_model import LogisticRegression

    features = [[0.0], [1.0], [2.0], [3.0]]
    model = LogisticRegression().fit(features, [0, 0, 1, 1])
    ml.registry.register_model("bench", model)
    ml.registry.promote_to_stage("bench", 1, "production")


def bench_mlops(folder: Path, calls: int, reads: int) -> dict[str, float]:
    out: dict[str, float] = {}
    port = _free_port()
    env = {**os.environ, "MLOPS_HOME": str(folder / "server"), "MLOPS_AUTH": "off"}
    env.pop("MLOPS_DATABASE_URL", None)
    env.pop("MLOPS_ARTIFACT_ROOT", None)
    command = [
        sys.executable,
        "-m",
        "mlops",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-controller",
    ]
    url = f"http://127.0.0.1:{port}"
    with _process(command, f"{url}/health/live", env):
        remote = mlops.connect(url, home=str(folder / "client"))
        out["remote_batched_metrics_per_s"] = _batched_rate(remote, calls)
        out["remote_async_metrics_per_s"] = _async_rate(remote)
        _register_production(remote)
        out["remote_registry_read_ms"] = _median_ms(
            lambda: remote.registry.resolve("models:/bench/production"), reads
        )
        remote.close()
    embedded = mlops.connect(home=str(folder / "embedded"))
    out["embedded_batched_metrics_per_s"] = _batched_rate(embedded, calls)
    out["embedded_async_metrics_per_s"] = _async_rate(embedded)
    _register_production(embedded)
    out["embedded_registry_read_ms"] = _median_ms(
        lambda: embedded.registry.resolve("models:/bench/production"), reads
    )
    embedded.close()
    return out


def bench_mlflow(python: str, folder: Path, calls: int, reads: int) -> dict[str, float]:
    port = _free_port()
    store = folder / "mlflow"
    store.mkdir()
    command = [
        python,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{store / 'mlflow.db'}",
        "--default-artifact-root",
        (store / "artifacts").as_uri(),
        "--workers",
        "1",
    ]
    url = f"http://127.0.0.1:{port}"
    with _process(command, f"{url}/health", dict(os.environ)):
        result = subprocess.run(
            [python, "-c", _MLFLOW_SCRIPT, url, str(calls), str(reads)],
            capture_output=True,
            text=True,
            timeout=900,
        )
    if result.returncode != 0:
        raise RuntimeError(f"the MLflow reference failed:\n{result.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--calls", type=int, default=40, help="log_batch calls of 1,000 points")
    parser.add_argument("--reads", type=int, default=200, help="registry reads timed")
    parser.add_argument("--mlflow-python", default=None, help="a Python with mlflow installed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-api-") as temp:
        folder = Path(temp)
        out: dict[str, Any] = {
            k: round(v, 3) for k, v in bench_mlops(folder, args.calls, args.reads).items()
        }
        if args.mlflow_python:
            reference = bench_mlflow(args.mlflow_python, folder, args.calls, args.reads)
            out["mlflow_server_batched_metrics_per_s"] = round(
                reference["batched_metrics_per_s"], 1
            )
            out["mlflow_server_registry_read_ms"] = round(reference["registry_read_ms"], 3)
            out["remote_vs_mlflow_batched_ratio"] = round(
                out["remote_batched_metrics_per_s"] / reference["batched_metrics_per_s"], 2
            )
            out["mlflow_vs_remote_read_ratio"] = round(
                reference["registry_read_ms"] / out["remote_registry_read_ms"], 2
            )
    if args.json:
        print(json.dumps(out))
        return
    width = max(len(key) for key in out)
    for key, value in out.items():
        print(f"{key:<{width}}  {value:,}")


if __name__ == "__main__":
    main()
