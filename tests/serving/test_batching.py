"""Micro-batching: concurrent requests share predict calls and get their own answers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pandas as pd

import mlops
from mlops.serving import MicroBatcher, Route, RouteTable
from serving.conftest import put, register
from serving.models import BatchEcho


def test_concurrent_requests_are_batched_and_answered_one_by_one(
    ml: mlops.MLOps, serve: Any
) -> None:
    register(ml, "echo", BatchEcho(), pd.DataFrame({"x": [1.0, 2.0]}))
    batching = {"max_batch_size": 8, "max_latency_ms": 50}
    put(ml, "echo", RouteTable("echo", (Route(1, 1.0),), batching=batching))
    server = serve(ml)

    async def send_all() -> list[Any]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

            async def one(value: float) -> Any:
                response = await client.post("/v1/endpoints/echo/predict", json=[{"x": value}])
                assert response.status_code == 200, response.text
                return response.json()["predictions"]

            big = client.post(
                "/v1/endpoints/echo/predict", json=[{"x": float(v)} for v in range(12)]
            )
            answers = await asyncio.gather(*(one(float(v)) for v in range(40)), big)
            return [*answers[:-1], answers[-1].json()["predictions"]]

    answers = asyncio.run(send_all())
    singles, big = answers[:-1], answers[-1]
    for value, predictions in enumerate(singles):
        ((doubled, rows),) = predictions
        assert doubled == value * 2
        assert 1 <= rows <= 8
    assert any(predictions[0][1] > 1 for predictions in singles), "no call held two requests"
    # 12 rows are more than a batch: the request goes whole, alone, never split.
    assert [doubled for doubled, _ in big] == [v * 2.0 for v in range(12)]
    assert {rows for _, rows in big} == {12}
    batcher = server.state.endpoints["echo"].batchers[1]
    assert batcher.calls < 41
    assert batcher.largest == 12


class _Counting:
    """A stand-in for a served version: doubles its input, records each call's rows."""

    batchable = True

    def __init__(self, fail_on: float | None = None) -> None:
        self.calls: list[int] = []
        self.fail_on = fail_on

    def predict(self, model_input: Any) -> Any:
        from mlops.serving import Prediction

        self.calls.append(len(model_input))
        if self.fail_on is not None and self.fail_on in model_input:
            raise ValueError("bad row")
        return Prediction((model_input[:, 0] * 2).tolist())

    @staticmethod
    def concat(inputs: list[Any]) -> Any:
        return np.concatenate(inputs)


def test_one_bad_request_fails_alone() -> None:
    served = _Counting(fail_on=-1.0)

    async def run() -> list[Any]:
        batcher = MicroBatcher(served, max_batch_size=8, max_latency_ms=20)  # type: ignore[arg-type]
        values = [1.0, 2.0, -1.0, 4.0]
        tasks = [batcher.predict(np.array([[value]])) for value in values]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.close()
        return results

    results = asyncio.run(run())
    assert [r.predictions for r in results if not isinstance(r, Exception)] == [
        [2.0],
        [4.0],
        [8.0],
    ]
    assert isinstance(results[2], ValueError)
    assert served.calls[0] == 4  # tried together first, then one by one
    assert sorted(served.calls[1:]) == [1, 1, 1, 1]


def test_close_answers_what_is_queued() -> None:
    served = _Counting()

    async def run() -> list[Any]:
        batcher = MicroBatcher(served, max_batch_size=4, max_latency_ms=1000)  # type: ignore[arg-type]
        tasks = [asyncio.ensure_future(batcher.predict(np.array([[float(v)]]))) for v in range(6)]
        await asyncio.sleep(0)
        await batcher.close()
        after = await batcher.predict(np.array([[10.0]]))  # after close: answered alone
        return [*(await asyncio.gather(*tasks)), after]

    results = asyncio.run(run())
    assert [r.predictions for r in results] == [[v * 2.0] for v in [*range(6), 10]]
    assert served.calls[:2] == [4, 2]
