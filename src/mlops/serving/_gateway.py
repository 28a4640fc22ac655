"""The serving app's state: live routers per endpoint, swapped in once their versions load."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from mlops.serving._batching import MicroBatcher, batching_options
from mlops.serving._endpoints import Endpoint, EndpointStore
from mlops.serving._metrics import ServingMetrics
from mlops.serving._pool import ModelPool, VersionKey
from mlops.serving._predlog import PredictionLogWriter
from mlops.serving._routes import Router, RouteTable
from mlops.serving._served import ServedVersion

__all__ = ["EndpointRuntime", "ServingState"]

logger = logging.getLogger("mlops.serving")

#: How long a routing table that failed to load waits before the poller tries it again.
_RETRY_FAILED_SECONDS = 30.0
PREVIEW_ROUTE = "preview"
SHADOW_ROUTE = "shadow"
PINNED_ROUTE = "pinned"


@dataclass(frozen=True, slots=True)
class EndpointRuntime:
    """An endpoint as requests see it: its table, router and warm versions. Immutable."""

    name: str
    revision: int
    table: RouteTable
    router: Router
    versions: Mapping[int, ServedVersion]
    batchers: Mapping[int, MicroBatcher]
    preview_header: str
    sticky_header: str | None
    labels: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def build(cls, endpoint: Endpoint, versions: Mapping[int, ServedVersion]) -> EndpointRuntime:
        table = endpoint.routes
        options = batching_options(table.batching)
        batchers = {}
        if options is not None:
            size, latency = options
            batchers = {
                number: MicroBatcher(served, max_batch_size=size, max_latency_ms=latency)
                for number, served in versions.items()
                if served.batchable
            }
        # A version named in a request (OIP's /versions/{v}) logs under its route's label.
        labels = {number: PINNED_ROUTE for number in [table.shadow_version] if number is not None}
        if table.preview_version is not None:
            labels[table.preview_version] = PREVIEW_ROUTE
        labels.update({route.version: route.label for route in reversed(table.routes)})
        return cls(
            name=endpoint.name,
            revision=endpoint.revision,
            table=table,
            router=Router(table),
            versions=dict(versions),
            batchers=batchers,
            preview_header=table.preview_header.lower(),
            sticky_header=None if table.sticky_header is None else table.sticky_header.lower(),
            labels=labels,
        )

    @property
    def main_version(self) -> int:
        """The version with the largest share of traffic (metadata describes it)."""
        return max(self.table.routes, key=lambda route: route.weight).version


class ServingState:
    """What a serving app holds: endpoints, the model pool, the log writer, metrics.

    ``endpoints`` maps a name to its ``EndpointRuntime``; a routing change builds a new
    runtime only after every version it needs is loaded and warm, then replaces the whole
    dict in one assignment, so a request sees the old table or the new one, never half.
    ``refresh()`` does one poll now; ``poll_forever()`` runs it every ``poll_interval``.
    """

    def __init__(
        self,
        ml: Any,
        *,
        poll_interval: float,
        max_body_bytes: int,
        log_inputs: bool,
        keep_unused_seconds: float,
        writer: PredictionLogWriter,
    ) -> None:
        self.ml = ml
        self.poll_interval = poll_interval
        self.max_body_bytes = max_body_bytes
        self.log_inputs = log_inputs
        self.keep_unused_seconds = keep_unused_seconds
        self.writer = writer
        self.metrics = ServingMetrics(writer)
        self.endpoint_store = EndpointStore(ml.store)
        self.pool = ModelPool(
            ml.registry, on_load=lambda s: self.metrics.model_loaded(s.model, s.load_seconds)
        )
        self.endpoints: dict[str, EndpointRuntime] = {}
        #: Endpoints whose table is loading, with the versions it needs.
        self.loading: dict[str, list[int]] = {}
        #: Endpoints whose latest table failed to load: (revision, error, retry at).
        self.failed: dict[str, tuple[int, str, float]] = {}
        self.known: set[str] = set()
        self.polled = False
        #: The event loop serving requests (set when the app starts).
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        # Request ids need uniqueness, not secrecy: a seeded generator costs far less
        # per request than uuid4's system call.
        self._ids = random.Random(os.urandom(32))
        self._tasks: set[asyncio.Task[None]] = set()

    def new_request_id(self) -> str:
        """A fresh request id: 32 hex digits, like ``uuid4().hex``."""
        return f"{self._ids.getrandbits(128):032x}"

    # -- routing changes ------------------------------------------------------------

    async def refresh(self) -> None:
        """Read every endpoint's revision; load and swap in the tables that changed."""
        async with self._lock:
            revisions: dict[str, int] = await anyio.to_thread.run_sync(
                self.endpoint_store.revisions
            )
            self.known = set(revisions)
            retired = [name for name in self.endpoints if name not in revisions]
            if retired:
                self._swap(dict.fromkeys(retired))
            for name, revision in sorted(revisions.items()):
                current = self.endpoints.get(name)
                if current is not None and current.revision == revision:
                    continue
                failure = self.failed.get(name)
                if failure and failure[0] == revision and time.monotonic() < failure[2]:
                    continue
                await self._load_endpoint(name)
            for name in list(self.failed):
                if name not in revisions:
                    del self.failed[name]
            self.polled = True
            needed: set[VersionKey] = {
                (runtime.table.model, number)
                for runtime in self.endpoints.values()
                for number in runtime.versions
            }
            self.pool.retain(needed, delay=self.keep_unused_seconds)

    async def _load_endpoint(self, name: str) -> None:
        revision = -1
        try:
            endpoint = await anyio.to_thread.run_sync(self.endpoint_store.get, name)
            revision = endpoint.revision
            table = endpoint.routes
            self.loading[name] = sorted(table.versions)
            versions = {}
            for number in sorted(table.versions):
                versions[number] = await anyio.to_thread.run_sync(
                    self.pool.load, table.model, number
                )
            runtime = EndpointRuntime.build(endpoint, versions)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            logger.error("endpoint %r (revision %d) did not load: %s", name, revision, message)
            self.failed[name] = (revision, message, time.monotonic() + _RETRY_FAILED_SECONDS)
            return
        finally:
            self.loading.pop(name, None)
        self.failed.pop(name, None)
        self._swap({name: runtime})
        logger.info(
            "endpoint %r now at revision %d: %s",
            name,
            runtime.revision,
            ", ".join(f"v{r.version} {r.label} {r.weight:g}" for r in runtime.table.routes),
        )

    def _swap(self, changes: Mapping[str, EndpointRuntime | None]) -> None:
        endpoints = dict(self.endpoints)
        replaced = []
        for name, runtime in changes.items():
            old = endpoints.pop(name, None)
            if old is not None:
                replaced.append(old)
            if runtime is not None:
                endpoints[name] = runtime
        self.endpoints = endpoints  # the one assignment requests observe
        for old in replaced:
            for batcher in old.batchers.values():
                task = asyncio.get_running_loop().create_task(batcher.close())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def poll_forever(self) -> None:
        """Refresh every ``poll_interval`` seconds until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception as error:  # the database may be down: keep serving what we have
                logger.error("could not read the routing tables: %s", error)
            await asyncio.sleep(self.poll_interval)

    async def close(self) -> None:
        """Answer what the batchers hold, then drain the prediction log."""
        for runtime in self.endpoints.values():
            for batcher in runtime.batchers.values():
                await batcher.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await anyio.to_thread.run_sync(self.writer.close)

    # -- health ---------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether every endpoint answers, and what is still loading or failed."""
        missing = sorted(name for name in self.known if name not in self.endpoints)
        ready = self.polled and not missing
        report: dict[str, Any] = {
            "ready": ready,
            "endpoints": {
                name: {"revision": runtime.revision, "versions": sorted(runtime.versions)}
                for name, runtime in sorted(self.endpoints.items())
            },
        }
        if not self.polled:
            report["loading"] = {"routing tables": "not read yet"}
        if self.loading:
            report["loading"] = dict(self.loading)
        if self.failed:
            report["failed"] = {
                name: {"revision": revision, "error": error}
                for name, (revision, error, _) in self.failed.items()
            }
        if missing:
            report["waiting_for"] = missing
        return ready, report
