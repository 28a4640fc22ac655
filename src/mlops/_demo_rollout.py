"""The demo's rollout act: a real server, v1 deployed, v2 rolled out as a canary under traffic.

``DemoServer`` is what ``mlops server`` runs — the serving app under uvicorn, with the
deployment controller beside it — on a background thread, so the demo can send prediction
requests to it over HTTP while the controller analyses each canary step, and leave it
running afterwards. A second demo on the same store finds v2 already serving and only
sends it a burst of traffic: nothing is rolled out twice.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mlops._client import MLOps
from mlops.deployment import (
    Analysis,
    Canary,
    Deployment,
    DeploymentController,
    DeploymentEvent,
    DeploymentState,
    Direct,
)
from mlops.errors import Conflict, MLOpsError, NotFound
from mlops.monitoring.alerts import AlertEvaluator
from mlops.orchestration import PipelineScheduler
from mlops.registry import ModelVersion, WebhookDispatcher
from mlops.serving import create_serving_app

__all__ = ["CANARY_STEPS", "DemoServer", "RolloutDemo", "run_rollout_demo"]

CANARY_STEPS = (10, 50, 100)
#: Every analysis needs this many canary requests; 10% of the demo's traffic gets there.
_MIN_REQUESTS = 20
_CLIENTS = 3
#: Paced, not as fast as possible: the monitoring act's drifted hour must stay visible
#: beside this (undrifted) live traffic, and the machine stays responsive.
_REQUESTS_PER_SECOND = 90.0
_BURST_SECONDS = 3.0  # traffic sent when there is nothing new to roll out
_STARTUP_TIMEOUT = 20.0
#: Loading and warming the endpoints' versions can take a while on a busy machine.
_SERVED_TIMEOUT = 90.0
_ANALYSED = {"step", "analysis", "analysis_failed", "succeeded", "rolled_back", "error"}
_Worker = DeploymentController | AlertEvaluator | WebhookDispatcher | PipelineScheduler


class DemoServer:
    """The serving app under uvicorn on a thread, plus the background workers of
    ``mlops server``: the deployment controller from ``start()``, alert evaluation,
    webhooks and the pipeline scheduler from ``start_background()``. Not thread-safe."""

    def __init__(self, ml: MLOps, sock: socket.socket, *, poll_interval: float = 0.5) -> None:
        self._ml = ml
        self._socket = sock
        self._poll_interval = poll_interval
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._workers: list[_Worker] = []

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Serve on the socket and advance rollouts; returns once the server answers."""
        app = create_serving_app(self._ml, poll_interval=self._poll_interval)
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, lifespan="on"
        )
        config.timeout_graceful_shutdown = 5
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="mlops-demo-server",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise MLOpsError(f"the demo server did not start on {self.url}")
            time.sleep(0.02)
        self._start_worker(DeploymentController(self._ml.deployments, self._ml.store))

    def start_background(self) -> None:
        """Also evaluate alert rules, deliver webhooks and run scheduled pipelines."""
        ml = self._ml
        self._start_worker(AlertEvaluator(ml.monitor.alerts, ml.store))
        self._start_worker(WebhookDispatcher(ml.store))
        self._start_worker(PipelineScheduler(ml.pipelines))

    def _start_worker(self, worker: _Worker) -> None:
        worker.start()
        self._workers.append(worker)

    def stop(self) -> None:
        """Stop the workers, then the server (letting requests in flight finish)."""
        for worker in reversed(self._workers):
            worker.stop()
        self._workers.clear()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._server = None


@dataclass(slots=True)
class _Traffic:
    """Prediction requests sent by a few client threads, and how they were answered."""

    url: str
    endpoint: str
    sent: int = 0
    failed: int = 0
    by_version: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for seed in range(_CLIENTS):
            thread = threading.Thread(target=self._send, args=(seed,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _send(self, seed: int) -> None:
        rng = np.random.default_rng(100 + seed)
        path = f"/v1/endpoints/{self.endpoint}/predict"
        interval = _CLIENTS / _REQUESTS_PER_SECOND
        due = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                due = max(due + interval, time.monotonic() - interval)
                try:
                    answer = client.post(path, json=rng.normal(size=(1, 8)).tolist())
                    version = int(answer.json()["version"]) if answer.is_success else None
                except (httpx.HTTPError, ValueError, KeyError):
                    version = None
                with self._lock:
                    self.sent += 1
                    if version is None:
                        self.failed += 1
                    else:
                        self.by_version[version] = self.by_version.get(version, 0) + 1


@dataclass(frozen=True, slots=True)
class RolloutDemo:
    """What the rollout act did: the canary (None when nothing new was rolled out), its
    analyses, and the prediction requests sent over HTTP."""

    deployment: Deployment | None
    analyses: list[DeploymentEvent]
    requests: int
    failed: int
    serving_version: int


def run_rollout_demo(
    ml: MLOps,
    console: Console,
    server: DemoServer,
    endpoint: str,
    stable: ModelVersion,
    candidate: ModelVersion,
    *,
    step_seconds: float = 4.0,
    timeout: float = 120.0,
) -> RolloutDemo:
    """Deploy ``stable`` to ``endpoint``, then roll ``candidate`` out as a canary while
    sending it prediction traffic over HTTP; the server's controller analyses each step."""
    deployments = ml.deployments
    model = stable.model_name
    serving = _settle(ml, endpoint)
    if serving == candidate.number:
        console.print(
            f"endpoint '{endpoint}' already serves v{candidate.number}, promoted by the canary "
            f"of an earlier demo: nothing new to roll out; sending it {_BURST_SECONDS:.0f}s "
            "of live traffic"
        )
        traffic = _Traffic(server.url, endpoint)
        _wait_until_served(server.url, endpoint)
        traffic.start()
        time.sleep(_BURST_SECONDS)
        traffic.stop()
        _print_traffic(console, traffic)
        return RolloutDemo(None, [], traffic.sent, traffic.failed, candidate.number)
    if serving != stable.number:
        deployments.deploy(endpoint, model, stable.number, strategy=Direct(), actor="mlops demo")
        console.print(f"deployed {model} v{stable.number} to endpoint '{endpoint}' (100%)")
    _wait_until_served(server.url, endpoint)
    # Latency is bounded loosely: on a busy laptop the demo's own threads make p99 noisy.
    gate = Analysis(
        max_error_rate=0.01, max_p99_ms=500.0, max_p99_ratio=None, min_requests=_MIN_REQUESTS
    )
    strategy = Canary(
        steps_percent=CANARY_STEPS, interval_seconds=step_seconds, gate=gate, failure_limit=2
    )
    traffic = _Traffic(server.url, endpoint)
    traffic.start()
    try:
        rollout = deployments.deploy(
            endpoint, model, candidate.number, strategy=strategy, actor="mlops demo"
        )
        console.print(
            f"rolling out v{candidate.number} as a canary on '{endpoint}': "
            f"{' → '.join(f'{p}%' for p in CANARY_STEPS)}, each step analysed after "
            f"{step_seconds:g}s of live traffic (deployment {rollout.id})"
        )
        final, analyses = _follow(ml, console, rollout, traffic, timeout)
    finally:
        traffic.stop()
    _print_traffic(console, traffic)
    console.print(f"deployment {final.id} {final.state.value}: {final.reason}")
    return RolloutDemo(
        final,
        analyses,
        traffic.sent,
        traffic.failed,
        _settle(ml, endpoint) or stable.number,
    )


def _follow(
    ml: MLOps, console: Console, rollout: Deployment, traffic: _Traffic, timeout: float
) -> tuple[Deployment, list[DeploymentEvent]]:
    """Show the canary's progress and each analysis until it ends (or abort at timeout)."""
    deployments = ml.deployments
    analyses: list[DeploymentEvent] = []
    seen = 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps · {task.fields[requests]} requests"),
        TimeElapsedColumn(),
    )
    deadline = time.monotonic() + timeout
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"canary {CANARY_STEPS[0]}%", total=len(CANARY_STEPS), requests=0)
        while True:
            status = deployments.status(rollout.id)
            events = deployments.history(rollout.id)
            for event in events[seen:]:
                if event.kind in _ANALYSED:
                    analyses.append(event)
                    progress.console.print(_describe(event))
            seen = len(events)
            done = sum(1 for e in analyses if e.kind in {"step", "succeeded"})
            share = CANARY_STEPS[min(status.step, len(CANARY_STEPS) - 1)]
            progress.update(
                task, completed=done, description=f"canary {share}%", requests=traffic.sent
            )
            if not status.state.active:
                break
            if time.monotonic() > deadline:
                progress.console.print(f"the canary did not finish in {timeout:.0f}s; aborting it")
                with contextlib.suppress(Conflict):  # it ended meanwhile
                    deployments.abort(rollout.id, actor="mlops demo")
            time.sleep(0.25)
    if deployments.status(rollout.id).state is DeploymentState.SUCCEEDED:
        # The registry's promotion is recorded just after the rollout's last transition.
        _wait_for(lambda: any(e.kind == "registry" for e in deployments.history(rollout.id)))
    return deployments.status(rollout.id), analyses


def _describe(event: DeploymentEvent) -> str:
    """One line per analysis: the verdict, both versions' traffic, and what happened."""
    # A "step" event carries the step it moved to; the others, the step they analysed.
    analysed = (event.step or 0) - (1 if event.kind == "step" else 0)
    last = len(CANARY_STEPS) - 1
    step, share = analysed + 1, CANARY_STEPS[min(analysed, last)]
    result: dict[str, Any] = event.detail.get("analysis") or {}
    outcome = {
        "step": f"→ {CANARY_STEPS[min(analysed + 1, last)]}%",
        "succeeded": "→ promoted",
        "analysis": "→ holding the step",
        "analysis_failed": "→ failure counted",
        "rolled_back": "→ rolled back",
        "error": f"→ error: {event.detail.get('error')}",
    }[event.kind]
    parts = [f"  step {step}/{len(CANARY_STEPS)} at {share}%: {result.get('verdict', '—')}"]
    for role in ("candidate", "stable"):
        stats = result.get(role)
        if stats and stats.get("requests"):
            p99 = stats.get("p99_ms")
            parts.append(
                f"{role} v{stats['version']} {stats['requests']} req, "
                f"{stats['error_rate']:.1%} errors, p99 "
                f"{'—' if p99 is None else f'{p99:.1f} ms'}"
            )
    reasons = [r for r in result.get("reasons", []) if r != "all checks passed"]
    return " · ".join(parts) + f" {outcome}" + (f" ({'; '.join(reasons)})" if reasons else "")


def _print_traffic(console: Console, traffic: _Traffic) -> None:
    split = ", ".join(f"v{v}: {n}" for v, n in sorted(traffic.by_version.items()))
    console.print(
        f"sent {traffic.sent} prediction requests over HTTP to {traffic.url}"
        f"/v1/endpoints/{traffic.endpoint}/predict ({split}; {traffic.failed} failed)"
    )


def _settle(ml: MLOps, endpoint: str) -> int | None:
    """End a rollout an interrupted demo left running; returns the version serving."""
    try:
        for active in ml.deployments.list(endpoint, active=True):
            ml.deployments.abort(active.id, actor="mlops demo")
        latest = ml.deployments.status(endpoint)
    except NotFound:
        return None
    if latest.routes is None or not latest.routes.routes:
        return None
    return max(latest.routes.routes, key=lambda route: route.weight).version


def _wait_until_served(url: str, endpoint: str) -> None:
    """Wait until the server has loaded the endpoint's routing table and answers on it."""
    probe = [[0.0] * 8]
    with httpx.Client(base_url=url, timeout=10.0) as client:

        def answers() -> bool:
            path = f"/v1/endpoints/{endpoint}/predict"
            return client.post(path, json=probe).is_success

        if not _wait_for(answers, timeout=_SERVED_TIMEOUT):
            raise MLOpsError(
                f"the demo server at {url} did not serve endpoint {endpoint!r} within "
                f"{_SERVED_TIMEOUT:.0f}s; see its log above, or try `mlops server`"
            )


def _wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
