"""The versions a serving process holds in memory, loaded once and warmed up."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from mlops.models import LoadedModel
from mlops.serving._served import ServedVersion, compile_version

__all__ = ["ModelPool", "VersionKey"]

logger = logging.getLogger("mlops.serving")

#: A loaded version's key: (model name, version number).
VersionKey = tuple[str, int]


class _Loader(Protocol):
    def load_model(self, reference: str) -> LoadedModel: ...


class ModelPool:
    """A thread-safe cache of loaded versions keyed by (model, version).

    ``load`` returns the cached version or loads, compiles and warms it up (one load per
    key even when threads ask at once); ``retain`` lets go of versions no routing table
    needs any more once they have been unused for ``delay`` seconds, so that switching
    back (a blue-green rollback) finds them still warm. Returned versions are shared.
    """

    def __init__(
        self,
        registry: _Loader,
        *,
        on_load: Callable[[ServedVersion], None] | None = None,
    ) -> None:
        self._registry = registry
        self._on_load = on_load
        self._loaded: dict[VersionKey, ServedVersion] = {}
        self._key_locks: dict[VersionKey, threading.Lock] = {}
        self._lock = threading.Lock()
        self._unused_since: dict[VersionKey, float] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._loaded

    def __len__(self) -> int:
        return len(self._loaded)

    def keys(self) -> list[VersionKey]:
        return list(self._loaded)

    def get(self, model: str, version: int) -> ServedVersion | None:
        """The loaded version, or None without loading it."""
        return self._loaded.get((model, version))

    def load(self, model: str, version: int) -> ServedVersion:
        """The version ready to answer: loaded, verified, compiled and warmed up."""
        key = (model, version)
        served = self._loaded.get(key)
        if served is not None:
            return served
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            served = self._loaded.get(key)
            if served is not None:
                return served
            started = time.perf_counter()
            loaded = self._registry.load_model(f"models:/{model}/{version}")
            served = compile_version(model, version, loaded)
            served.load_seconds = time.perf_counter() - started
            with self._lock:
                self._loaded[key] = served
                self._unused_since.pop(key, None)
        logger.info(
            "loaded model %r version %d in %.3f s (numpy fast path: %s)",
            model,
            version,
            served.load_seconds,
            served.fast_path,
        )
        if self._on_load is not None:
            self._on_load(served)
        return served

    def retain(self, keys: Iterable[VersionKey], *, delay: float = 0.0) -> list[VersionKey]:
        """Drop (and return) versions outside ``keys`` that went unneeded ``delay`` s ago."""
        # The first call only marks them; the poller calls again every interval.
        needed = set(keys)
        now = time.monotonic()
        dropped: list[VersionKey] = []
        with self._lock:
            for key in list(self._loaded):
                if key in needed:
                    self._unused_since.pop(key, None)
                    continue
                since = self._unused_since.setdefault(key, now)
                if now - since >= delay:
                    del self._loaded[key]
                    del self._unused_since[key]
                    self._key_locks.pop(key, None)
                    dropped.append(key)
        for model, version in dropped:
            logger.info("unloaded model %r version %d: no routing table needs it", model, version)
        return dropped
