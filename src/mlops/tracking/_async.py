"""Asynchronous metric logging: buffer in memory, write in batches from a thread."""

from __future__ import annotations

import atexit
import threading
import weakref

from mlops.errors import RunNotActive
from mlops.tracking._writer import MetricPoint, RunDataWriter

__all__ = ["MetricBuffer"]

_live_buffers: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for buffer in list(_live_buffers):
        buffer.close(raise_errors=False)


class MetricBuffer:
    """Collects validated metric rows of one run and writes them in the background.

    Rows are flushed every ``interval`` seconds or once ``batch_size`` are pending, on
    ``flush()``, on ``close()`` (the run ending) and when the process exits normally.
    A write error is kept and raised by the next ``add``/``flush``/``close`` call.
    """

    def __init__(
        self,
        writer: RunDataWriter,
        run_id: str,
        *,
        interval: float = 0.5,
        batch_size: int = 10_000,
    ) -> None:
        self._writer = writer
        self._run_id = run_id
        self._interval = interval
        self._batch_size = batch_size
        self._pending: list[MetricPoint] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._loop, name=f"mlops-metrics-{run_id[:8]}", daemon=True
        )
        self._thread.start()
        _live_buffers.add(self)

    def add(self, rows: list[MetricPoint]) -> None:
        self._raise_pending_error()
        with self._lock:
            if self._closed:
                raise RunNotActive(f"run '{self._run_id}' has ended; it no longer accepts data")
            self._pending.extend(rows)
            full = len(self._pending) >= self._batch_size
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write everything pending now, in the calling thread; raise a stored error."""
        self._write_pending()
        self._raise_pending_error()

    def close(self, *, raise_errors: bool = True) -> None:
        """Flush and stop the thread; idempotent."""
        with self._lock:
            already = self._closed
            self._closed = True
        if not already:
            self._wake.set()
            self._thread.join()
            self._write_pending()
            _live_buffers.discard(self)
        if raise_errors:
            self._raise_pending_error()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._write_pending()
            with self._lock:
                if self._closed:
                    return

    def _write_pending(self) -> None:
        # One writer at a time keeps rows in order when flush() races the thread.
        with self._write_lock:
            with self._lock:
                rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                self._writer.log_points(self._run_id, rows)
            except BaseException as error:  # kept and re-raised in the caller's thread
                self._error = error

    def _raise_pending_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error
