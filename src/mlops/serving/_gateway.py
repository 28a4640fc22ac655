"""The serving app's state: live routers per endpoint, swapped in once their versions load."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mlops.serving._batching import MicroBatcher, batching_options
from mlops.serving._endpoints import Endpoint, EndpointStore
from mlops.serving._metrics import ServingMetrics
from mlops.serving._pool import ModelPool, VersionKey
from mlops.serving._predlog import PredictionLogWriter
from mlops.serving._routes import Route, Router, RouteTable
from mlops.serving._served import ServedVersion
from mlops.serving._tokens import DEFAULT_TOKEN_CACHE_SECONDS, InferenceGuard
from mlops.store._schema import serving_workers

__all__ = ["WORKER_LIVE_SECONDS", "EndpointRuntime", "ServingState", "live_workers"]

logger = logging.getLogger("mlops.serving")

#: How long a routing table that failed to load waits before the poller tries it again.
_RETRY_FAILED_SECONDS = 30.0
PREVIEW_ROUTE = "preview"
SHADOW_ROUTE = "shadow"
PINNED_ROUTE = "pinned"
ROLLING_NEW_ROUTE = "rolling-new"
#: A serving worker whose last heartbeat is older than this is not live.
WORKER_LIVE_SECONDS = 5.0
#: Rows of workers silent this long are deleted by the heartbeat of any other worker.
_FORGET_WORKER_SECONDS = 3600.0


def live_workers(connection: Connection, now: int) -> list[Row[Any]]:
    """The live serving workers at ``now`` (ms), in rank order (``started_at``, ``id``)."""
    return list(
        connection.execute(
            sa.select(serving_workers)
            .where(serving_workers.c.last_seen >= now - int(WORKER_LIVE_SECONDS * 1000))
            .order_by(serving_workers.c.started_at, serving_workers.c.id)
        ).all()
    )


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
        token_cache_seconds: float = DEFAULT_TOKEN_CACHE_SECONDS,
    ) -> None:
        self.ml = ml
        self.poll_interval = poll_interval
        self.max_body_bytes = max_body_bytes
        self.log_inputs = log_inputs
        self.keep_unused_seconds = keep_unused_seconds
        self.writer = writer
        self.metrics = ServingMetrics(writer)
        self.endpoint_store = EndpointStore(ml.store)
        #: Checks inference tokens for the endpoints that require them.
        self.tokens = InferenceGuard(ml.access, cache_seconds=token_cache_seconds)
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
        #: This process in ``serving_workers``; its rank orders it among live workers
        #: (None until the first heartbeat), which a rolling table switches by.
        self.worker_id = uuid.uuid4().hex
        self.started_at = int(time.time() * 1000)
        self.rank: int | None = None
        self._reported: dict[str, int] | None = None

    def new_request_id(self) -> str:
        """A fresh request id: 32 hex digits, like ``uuid4().hex``."""
        return f"{self._ids.getrandbits(128):032x}"

    # -- routing changes ------------------------------------------------------------

    async def refresh(self) -> None:
        """Read every endpoint's revision; load and swap in the tables that changed."""
        async with self._lock:
            await self._heartbeat()
            revisions: dict[str, int] = await anyio.to_thread.run_sync(
                self.endpoint_store.revisions
            )
            self.known = set(revisions)
            retired = [name for name in self.endpoints if name not in revisions]
            if retired:
                self._swap(dict.fromkeys(retired))
            for name, revision in sorted(revisions.items()):
                current = self.endpoints.get(name)
                if (
                    current is not None
                    and current.revision == revision
                    and self._on_right_side(current)
                ):
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
            if self._served_revisions() != self._reported:
                await self._heartbeat()  # report what was just swapped in without waiting

    # -- the worker's heartbeat (rolling rollouts) -------------------------------------

    def _served_revisions(self) -> dict[str, int]:
        return {name: runtime.revision for name, runtime in self.endpoints.items()}

    async def _heartbeat(self) -> None:
        """Upsert this worker's row and recompute its rank; a failure only logs."""
        revisions = self._served_revisions()
        ready = self.readiness()[0]
        try:
            self.rank = await anyio.to_thread.run_sync(self._beat, revisions, ready)
            self._reported = revisions
        except Exception as error:  # serving goes on with the rank it had
            logger.warning("serving worker heartbeat failed: %s", error)

    def _beat(self, revisions: dict[str, int], ready: bool) -> int:
        now = int(time.time() * 1000)
        values = {
            "last_seen": now,
            "revisions": json.dumps(revisions, sort_keys=True),
            "ready": int(ready),
        }
        with self.ml.store.write() as connection:
            updated = connection.execute(
                serving_workers.update()
                .where(serving_workers.c.id == self.worker_id)
                .values(**values)
            ).rowcount
            if not updated:
                connection.execute(
                    serving_workers.insert().values(
                        id=self.worker_id, started_at=self.started_at, **values
                    )
                )
                connection.execute(
                    serving_workers.delete().where(
                        serving_workers.c.last_seen < now - int(_FORGET_WORKER_SECONDS * 1000)
                    )
                )
            ids = [row.id for row in live_workers(connection, now)]
        return ids.index(self.worker_id) if self.worker_id in ids else len(ids)

    def _leave(self) -> None:
        with self.ml.store.write() as connection:
            connection.execute(
                serving_workers.delete().where(serving_workers.c.id == self.worker_id)
            )

    def _serves_new(self, workers_on_new: int) -> bool:
        return self.rank is not None and self.rank < workers_on_new

    def _on_right_side(self, runtime: EndpointRuntime) -> bool:
        """Whether a rolling endpoint's runtime serves the version this worker's rank asks."""
        rolling = runtime.table.rolling
        if rolling is None:
            return True
        return (runtime.main_version == rolling[1]) == self._serves_new(rolling[2])

    def _worker_table(self, table: RouteTable) -> RouteTable:
        """A rolling table as this worker applies it: one version for every request."""
        rolling = table.rolling
        if rolling is None:
            return table
        old, new, workers_on_new = rolling
        route = (
            Route(new, 1.0, ROLLING_NEW_ROUTE)
            if self._serves_new(workers_on_new)
            else Route(old, 1.0, "stable")
        )
        return RouteTable(
            model=table.model, routes=(route,), batching=table.batching, extra=table.extra
        )

    async def _load_endpoint(self, name: str) -> None:
        revision = -1
        try:
            endpoint = await anyio.to_thread.run_sync(self.endpoint_store.get, name)
            revision = endpoint.revision
            table = self._worker_table(endpoint.routes)
            endpoint = dataclasses.replace(endpoint, routes=table)
            # A rolling worker loads (and warms) only the one version it is to serve.
            needed = (
                {route.version for route in table.routes}
                if table.rolling is not None
                else table.versions
            )
            self.loading[name] = sorted(needed)
            versions = {}
            for number in sorted(needed):
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
        try:
            await anyio.to_thread.run_sync(self._leave)
        except Exception as error:  # it ages out of the live workers anyway
            logger.warning("could not remove serving worker %s: %s", self.worker_id, error)
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
