"""Adaptive micro-batching: concurrent requests for one version share one predict call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from mlops.errors import InvalidInput
from mlops.serving._served import Prediction, ServedVersion

__all__ = ["MicroBatcher", "batching_options"]

logger = logging.getLogger("mlops.serving")


def batching_options(batching: Mapping[str, float] | None) -> tuple[int, float] | None:
    """``(max_batch_size, max_latency_ms)`` from a routing table, or None when off."""
    if not batching:
        return None
    size = int(batching.get("max_batch_size", 0) or 0)
    latency = float(batching.get("max_latency_ms", 0.0) or 0.0)
    if size <= 1:
        return None
    if latency < 0:
        raise InvalidInput(f"max_latency_ms must not be negative, got {latency}")
    return size, latency


@dataclass(slots=True)
class _Pending:
    model_input: Any
    rows: int
    future: asyncio.Future[Prediction]
    enqueued: float


class MicroBatcher:
    """Collects converted inputs for one version and predicts them together.

    A batch closes when it holds ``max_batch_size`` rows or when its oldest request has
    waited ``max_latency_ms``; a request is never split, and one larger than the batch
    size goes alone. Under load, requests pile up while a batch predicts, so batches grow
    with the load and an idle version answers at once. The predict call runs in a
    worker thread; if a batch fails, its requests are retried one by one so that one bad
    request fails alone. Use from one event loop.
    """

    def __init__(self, served: ServedVersion, *, max_batch_size: int, max_latency_ms: float):
        self.served = served
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000.0
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Number of predict calls and the rows of the largest (for metrics and tests).
        self.calls = 0
        self.largest = 0

    async def predict(self, model_input: Any) -> Prediction:
        """The prediction for one request's converted input."""
        if self._closed:  # a request that raced a routing change: answer it alone
            return await anyio.to_thread.run_sync(self.served.predict, model_input)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        self._queue.put_nowait(_Pending(model_input, len(model_input), future, loop.time()))
        if self._task is None:
            self._task = loop.create_task(self._collect(), name="mlops-batcher")
        return await future

    async def close(self) -> None:
        """Answer what is queued, then stop collecting."""
        self._closed = True
        if self._task is not None:
            self._queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        carry: _Pending | None = None
        stopping = False
        while True:
            first: _Pending | None
            if carry is not None:
                first, carry = carry, None
            elif stopping:
                if queue.empty():
                    return
                first = queue.get_nowait()
            else:
                first = await queue.get()
            if first is None:
                stopping = True
                continue
            batch, size = [first], first.rows
            deadline = first.enqueued + self.max_latency
            while size < self.max_batch_size:
                item: _Pending | None
                if not queue.empty():
                    item = queue.get_nowait()
                elif stopping or (timeout := deadline - loop.time()) <= 0:
                    break
                else:
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        break
                if item is None:
                    stopping = True
                    continue
                if size + item.rows > self.max_batch_size:
                    carry = item
                    break
                batch.append(item)
                size += item.rows
            await self._run(batch)

    async def _run(self, batch: list[_Pending]) -> None:
        inputs = [pending.model_input for pending in batch]
        sizes = [pending.rows for pending in batch]
        try:
            results = await anyio.to_thread.run_sync(self._predict_batch, inputs, sizes)
        except BaseException as error:  # cancelled at shutdown: fail the waiting requests
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(RuntimeError(f"batch not predicted: {error!r}"))
            raise
        for pending, result in zip(batch, results, strict=True):
            if pending.future.done():  # the caller went away
                continue
            if isinstance(result, Exception):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)

    def _predict_batch(self, inputs: list[Any], sizes: list[int]) -> list[Prediction | Exception]:
        served = self.served
        self.calls += 1
        self.largest = max(self.largest, sum(sizes))
        if len(inputs) == 1:
            return [_guarded(served, inputs[0])]
        try:
            joined = served.predict(served.concat(inputs))
            total = sum(sizes)
            if not _has_rows(joined.predictions, total) or not (
                joined.probabilities is None or _has_rows(joined.probabilities, total)
            ):
                raise InvalidInput(f"the model did not answer one row per input row ({total})")
        except Exception as error:
            logger.debug(
                "a batch of %d requests failed (%s); retrying one by one", len(sizes), error
            )
            self.calls += len(inputs)
            return [_guarded(served, model_input) for model_input in inputs]
        answers: list[Prediction | Exception] = []
        start = 0
        for size in sizes:
            answers.append(joined.slice(start, start + size))
            start += size
        return answers


def _guarded(served: ServedVersion, model_input: Any) -> Prediction | Exception:
    try:
        return served.predict(model_input)
    except Exception as error:
        return error


def _has_rows(values: Any, rows: int) -> bool:
    return isinstance(values, list) and len(values) == rows
