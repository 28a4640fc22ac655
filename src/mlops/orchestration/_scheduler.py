"""``PipelineScheduler``: tick and run executions in background threads.

No leader lock: every process on a database may run one. A due time or trigger event
queues exactly one execution whichever processes tick (compare-and-set and a unique
constraint do that, see ``PipelineOrchestrator``), and each attempt is claimed by one
worker, so more schedulers simply mean more workers.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from mlops.errors import InvalidInput
from mlops.orchestration._orchestrator import PipelineOrchestrator

__all__ = ["PipelineScheduler"]

_log = logging.getLogger(__name__)
# The shortest wait between ticks, so a due time that cannot fire does not spin a core.
_MIN_WAIT = 0.02


class PipelineScheduler:
    """One thread ticks every ``interval`` seconds, and at each schedule's due time;
    ``workers`` threads run executions (woken as soon as a tick queues one).

    ``stop()`` asks running executions to stop before their next step (they go back to
    the queue for any worker to run again) and waits up to ``timeout`` for the threads.
    """

    def __init__(
        self, orchestrator: PipelineOrchestrator, *, interval: float = 1.0, workers: int = 2
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise InvalidInput(f"interval must be a positive number of seconds; got {interval!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InvalidInput(f"workers must be a whole number of 1 or more; got {workers!r}")
        self._orchestrator = orchestrator
        self._interval = float(interval)
        self._workers = workers
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._generation = 0
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def start(self) -> None:
        """Start the ticking thread and the workers (idempotent)."""
        if self._threads:
            return
        self._stop.clear()
        self._threads = [threading.Thread(target=self._tick_loop, name="mlops-pipeline-tick")]
        self._threads += [
            threading.Thread(target=self._work_loop, name=f"mlops-pipeline-worker-{index}")
            for index in range(self._workers)
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop ticking and working; running executions go back to the queue once their
        current step ends (waiting up to ``timeout`` seconds in all for that)."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                _log.warning("%s is still in a step after %ss; leaving it", thread.name, timeout)
        self._threads = []

    def __enter__(self) -> PipelineScheduler:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _tick_loop(self) -> None:
        orchestrator = self._orchestrator
        while not self._stop.is_set():
            wait = self._interval
            try:
                if orchestrator.tick():
                    with self._wake:
                        self._generation += 1
                        self._wake.notify_all()
                due = orchestrator.next_due()
                if due is not None:
                    until_due = (due - orchestrator.now_ms()) / 1000
                    wait = min(self._interval, max(until_due, _MIN_WAIT))
            except Exception:  # a database hiccup must not end the loop
                _log.exception("pipeline scheduler tick failed")
            self._stop.wait(wait)

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            seen = self._generation
            try:
                ran = self._orchestrator.work(stopping=self._stop.is_set)
            except Exception:
                _log.exception("pipeline worker failed")
                ran = []
            if not ran:
                self._wait_for_work(seen)

    def _wait_for_work(self, seen: int) -> None:
        """Sleep until a tick queues something after generation ``seen``, or a while."""
        with self._wake:
            self._wake.wait_for(
                lambda: self._generation != seen or self._stop.is_set(), timeout=self._interval
            )
