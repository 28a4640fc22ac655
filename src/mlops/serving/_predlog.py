"""The prediction log writer: requests hand records to a bounded queue, a thread writes them."""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any, NamedTuple

from mlops.serving._protocols import dumps_text
from mlops.store import Store
from mlops.store._engine import Prepared
from mlops.store._schema import prediction_log

__all__ = ["MAX_LOGGED_JSON", "PredictionLogWriter", "PredictionRecord"]

logger = logging.getLogger("mlops.serving")

#: Inputs or outputs longer than this (as JSON text) are logged as a truncation marker.
MAX_LOGGED_JSON = 64 * 1024

_COLUMNS = (
    "request_id",
    "endpoint",
    "version",
    "route",
    "ts",
    "latency_ms",
    "status",
    "inputs",
    "outputs",
    "error",
)


class PredictionRecord(NamedTuple):
    """One logged request; ``inputs``/``outputs`` stay Python objects (or JSON bytes)."""

    request_id: str
    endpoint: str
    version: int | None
    route: str
    ts: int
    latency_ms: float
    status: int
    inputs: Any
    outputs: Any
    error: str | None


class PredictionLogWriter:
    """Writes prediction records to ``prediction_log`` in batches, off the request path.

    ``submit`` never blocks: past ``max_queue`` pending records it drops the record and
    counts it in ``dropped``. A thread (``start()``) writes up to ``batch_size`` records per
    transaction with one prepared executemany, every ``flush_interval`` seconds or as soon
    as a batch is full; ``flush()`` writes everything now and ``close()`` drains and stops.
    Thread-safe.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_queue: int = 100_000,
        batch_size: int = 2_000,
        flush_interval: float = 0.25,
    ) -> None:
        self._store = store
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._queue: collections.deque[PredictionRecord] = collections.deque()
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._statement: Prepared | None = None
        self._order: list[int] | None = None
        #: Records dropped because the queue was full.
        self.dropped = 0
        #: Records lost because the database refused a batch.
        self.failed = 0
        #: Records written.
        self.written = 0

    @property
    def queue_size(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        """Start the background writer thread (idempotent)."""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(
                target=self._loop, name="mlops-prediction-log", daemon=True
            )
            self._thread.start()

    def submit(self, record: PredictionRecord) -> bool:
        """Queue a record; False when the queue is full and the record was dropped."""
        queue = self._queue
        if len(queue) >= self.max_queue:
            self.dropped += 1
            return False
        queue.append(record)
        if len(queue) == self.batch_size:  # wake the writer once, as a batch fills
            self._wake.set()
        return True

    def flush(self) -> None:
        """Write every queued record now, in the calling thread."""
        while self._queue:
            self._write_next_batch()

    def close(self) -> None:
        """Stop the thread after writing everything queued (graceful shutdown)."""
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # pragma: no cover - _write_batch already counts and logs
                logger.exception("the prediction log writer failed")

    def _write_next_batch(self) -> None:
        # One batch at a time keeps records in order when flush() races the thread.
        with self._write_lock:
            queue = self._queue
            batch = []
            popleft = queue.popleft
            try:
                for _ in range(self.batch_size):
                    batch.append(popleft())
            except IndexError:
                pass
            if not batch:
                return
            rows = [_row(record) for record in batch]
            try:
                self._write_batch(rows)
            except Exception as error:
                # One bad row must not cost the whole batch: write them one by one.
                logger.warning("a prediction log batch failed (%s); writing it row by row", error)
                for row in rows:
                    try:
                        self._write_batch([row])
                    except Exception as row_error:
                        self.failed += 1
                        logger.error("could not write a prediction log record: %s", row_error)
                    else:
                        self.written += 1
            else:
                self.written += len(batch)

    def _write_batch(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert rows (in ``_COLUMNS`` order) in one transaction."""
        statement = self._statement
        if statement is None:
            statement = self._store.prepare(prediction_log.insert(), list(_COLUMNS))
            positions = [_COLUMNS.index(name) for name in statement.names]
            self._order = None if positions == list(range(len(_COLUMNS))) else positions
            self._statement = statement
        order = self._order
        if order is not None:
            rows = [tuple(row[i] for i in order) for row in rows]
        with self._store.cursor(write=True) as cursor:
            cursor.executemany(statement.sql, rows)


def _row(record: PredictionRecord) -> tuple[Any, ...]:
    return (
        record.request_id,
        record.endpoint,
        record.version,
        record.route,
        record.ts,
        record.latency_ms,
        record.status,
        _json_text(record.inputs),
        _json_text(record.outputs),
        record.error,
    )


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        size = len(value)
        text = None if size > MAX_LOGGED_JSON else bytes(value).decode("utf-8", "replace")
    else:
        try:
            text = dumps_text(value)
        except (TypeError, ValueError) as error:
            return dumps_text({"unloggable": str(error)})
        size = len(text)
    if text is None or size > MAX_LOGGED_JSON:
        return dumps_text({"truncated": True, "bytes": size})
    return text
