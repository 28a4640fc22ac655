"""The alert evaluator: ticks the AlertManager in the background, once across replicas."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from mlops.deployment import LeaderLock
from mlops.errors import InvalidInput
from mlops.monitoring.alerts._engine import AlertTransition
from mlops.monitoring.alerts._manager import AlertManager
from mlops.store import Store

__all__ = ["AlertEvaluator"]

_log = logging.getLogger(__name__)

#: The leader lock name: one evaluator per database, whatever the deployment controller does.
LOCK_NAME = "alerts"


class AlertEvaluator:
    """Calls ``manager.evaluate()`` every ``interval`` seconds while this process holds
    the ``"alerts"`` leader lock. Each rule is still measured only as often as its own
    evaluation interval; the tick also retries failed notifications."""

    def __init__(self, manager: AlertManager, store: Store, *, interval: float = 5.0) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise InvalidInput(f"interval must be a positive number of seconds; got {interval!r}")
        self._manager = manager
        self._lock = LeaderLock(store, LOCK_NAME)
        self._interval = float(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()

    @property
    def leading(self) -> bool:
        return self._lock.held

    def run_once(self, now_ms: int | None = None) -> list[AlertTransition] | None:
        """One tick: lead if nobody else does, then evaluate; None if another process leads."""
        with self._tick_lock:  # run_once from a test and the thread must not interleave
            if not self._lock.acquire():
                return None
            return self._manager.evaluate(now_ms)

    def start(self) -> None:
        """Tick in a background daemon thread until ``stop()``."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="mlops-alerts", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a database hiccup must not end the loop; the next tick retries
                _log.exception("alert evaluation tick failed")
            self._stop.wait(self._interval)

    def stop(self) -> None:
        """Stop ticking (after the current tick), wait for the thread, give up leadership."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._tick_lock:
            self._lock.release()

    def __enter__(self) -> AlertEvaluator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
