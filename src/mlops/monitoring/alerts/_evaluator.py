"""The alert evaluator: ticks the AlertManager in the background, once across replicas."""

from __future__ import annotations

from types import TracebackType

from mlops.deployment import LeaderTicker
from mlops.monitoring.alerts._engine import AlertTransition
from mlops.monitoring.alerts._manager import AlertManager
from mlops.store import Store

__all__ = ["AlertEvaluator"]

#: The leader lock name: one evaluator per database, whatever the deployment controller does.
LOCK_NAME = "alerts"


class AlertEvaluator(LeaderTicker):
    """Calls ``manager.evaluate()`` every ``interval`` seconds while this process holds
    the ``"alerts"`` leader lock. Each rule is still measured only as often as its own
    evaluation interval; the tick also retries failed notifications."""

    _description = "alert evaluation"

    def __init__(self, manager: AlertManager, store: Store, *, interval: float = 5.0) -> None:
        super().__init__(store, LOCK_NAME, interval)
        self._manager = manager

    def run_once(self, now_ms: int | None = None) -> list[AlertTransition] | None:
        """One tick: lead if nobody else does, then evaluate; None if another process leads."""
        with self._tick_lock:  # run_once from a test and the thread must not interleave
            if not self._lock.acquire():
                return None
            return self._manager.evaluate(now_ms)

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
