"""Roll a new model version out as a canary, with real HTTP traffic and analysis steps.

Deploys version 1 of a classifier, starts the serving gateway on an ephemeral port
(uvicorn in a thread), then rolls version 2 out as a canary (25% -> 50% -> 100%) whose
every step is analysed (error rate, p99 latency) against the stable version. Traffic
goes over HTTP with httpx; the deployment controller is ticked by hand after each burst,
as ``mlops server`` does once a second. The canary ends promoted, or rolled back if its
analysis fails.

Run it with ``python examples/03_canary_deploy.py`` (needs ``mlops[sklearn]``). It works
in a fresh temporary MLOPS_HOME unless MLOPS_HOME is set.
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
import tempfile
import threading
import time
from collections import Counter

import httpx
import pandas as pd
import uvicorn
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import mlops
from mlops.deployment import Analysis, Canary, DeploymentController, DeploymentState
from mlops.serving import create_serving_app


def start_gateway(ml: mlops.MLOps) -> tuple[uvicorn.Server, threading.Thread, str]:
    """The serving app under uvicorn in a daemon thread, on a free loopback port, once
    every routed version is loaded and warm."""
    app = create_serving_app(ml, poll_interval=0.1, log_flush_interval=0.05, api=False)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready").status_code == 200:
                return server, thread, url
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    sys.exit("the serving gateway did not become ready")


def main(home: str) -> None:
    features, labels = make_classification(
        n_samples=400, n_features=3, n_redundant=0, random_state=2
    )
    frame = pd.DataFrame(features, columns=["tenure", "charges", "calls"])
    rows = frame.to_dict(orient="records")

    with mlops.connect(home=home) as ml:
        stable, candidate = (
            ml.registry.register_model(
                "churn", LogisticRegression(C=c).fit(frame, labels), input_example=frame.head(5)
            )
            for c in (1.0, 0.5)
        )
        print("deployed:", ml.deployments.deploy("churn", "churn", stable.number).state)
        server, thread, url = start_gateway(ml)
        controller = DeploymentController(ml.deployments, ml.store, interval=1.0)
        try:
            with httpx.Client(base_url=url, timeout=10.0) as client:
                print("gateway ready at", url)
                # A ratio to stable's p99 would measure this machine's load, not the model.
                gate = Analysis(
                    max_error_rate=0.01, max_p99_ms=1000, max_p99_ratio=None, min_requests=10
                )
                strategy = Canary(
                    steps_percent=(25, 50, 100), interval_seconds=0, gate=gate, failure_limit=2
                )
                rollout = ml.deployments.deploy(
                    "churn", "churn", candidate.number, strategy=strategy
                )
                deadline = time.monotonic() + 60
                while rollout.state.active and time.monotonic() < deadline:
                    time.sleep(0.15)  # the gateway swaps in the new routing table
                    routes: Counter[str] = Counter()
                    for row in itertools.islice(itertools.cycle(rows), 400):
                        answer = client.post("/v1/endpoints/churn/predict", json=[row])
                        answer.raise_for_status()
                        routes[answer.json()["route"]] += 1
                        if routes["canary"] >= gate.min_requests and routes.total() >= 20:
                            break
                    time.sleep(0.1)  # the prediction log is written in the background
                    controller.run_once()
                    rollout = ml.deployments.status("churn")
                    print(
                        f"traffic {dict(sorted(routes.items()))} -> {rollout.state}, "
                        f"step {rollout.step + 1}/{rollout.steps}"
                    )
        finally:
            controller.stop()
            server.should_exit = True
            thread.join(10)

        print("history:")
        for event in ml.deployments.history("churn"):
            detail = event.detail
            verdict = detail.get("analysis", {}).get("verdict", "")
            why = detail.get("reason") or detail.get("registry") or detail.get("strategy", "")
            print(f"  {event.kind:<10} {verdict:<12} {why}")
        production = ml.registry.get_version("churn", "production")
        print(f"production is version {production.number}")
        if rollout.state is DeploymentState.SUCCEEDED and production.number == candidate.number:
            print(f"OK: canary promoted, version {candidate.number} serves all traffic")
        elif rollout.state is DeploymentState.ROLLED_BACK:
            print(f"OK: canary aborted ({rollout.reason}); version {stable.number} serves")
        else:
            sys.exit(f"the canary did not finish: {rollout.state} ({rollout.reason})")


if __name__ == "__main__":
    if os.environ.get("MLOPS_HOME"):
        main(os.environ["MLOPS_HOME"])
    else:
        with tempfile.TemporaryDirectory(prefix="mlops-example-") as scratch:
            main(scratch)
