"""The write side for models served elsewhere: predictions and feedback, validated."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import mlops
from mlops.errors import InvalidInput
from mlops.monitoring import (
    read_window,
    record_feedback,
    record_feedback_batch,
    record_prediction,
    record_predictions,
    resolve_window,
)
from mlops.serving._predlog import MAX_LOGGED_JSON
from mlops.store import Store
from mlops.store._schema import prediction_feedback, prediction_log
from monitoring.conftest import NOW


def _rows(ml: mlops.MLOps) -> list[Any]:
    with ml.store.read() as connection:
        return list(
            connection.execute(sa.select(prediction_log).order_by(prediction_log.c.id)).all()
        )


def test_record_prediction_logs_one_external_request(ml: mlops.MLOps) -> None:
    request_id = record_prediction(
        ml.store,
        "churn",
        {"tenure": np.float64(3.0), "plan": "pro"},
        np.int64(1),
        probabilities=np.array([0.25, 0.75]),
        ts=NOW - 10,
    )
    (row,) = _rows(ml)
    assert len(request_id) == 32
    assert (row.request_id, row.endpoint, row.version, row.route, row.status) == (
        request_id,
        "churn",
        None,
        "external",
        200,
    )
    assert row.ts == NOW - 10
    assert json.loads(row.inputs) == {"tenure": 3.0, "plan": "pro"}
    assert json.loads(row.outputs) == {"predictions": [1], "probabilities": [[0.25, 0.75]]}
    window = read_window(ml.store, "churn", resolve_window("1h", now_ms=NOW))
    assert np.isnan(window.latency_ms[0])  # no latency given: unknown, not zero
    assert window.version.tolist() == [-1]
    given = record_prediction(
        ml.store,
        "churn",
        None,
        "yes",
        request_id="mine-1",
        version=3,
        route="batch-job",
        latency_ms=12.5,
    )
    assert given == "mine-1"
    row = _rows(ml)[-1]
    assert (row.version, row.route, row.latency_ms, row.inputs) == (3, "batch-job", 12.5, None)
    record_prediction(ml.store, "churn", {"text": "x" * (MAX_LOGGED_JSON + 10)}, 0)
    row = _rows(ml)[-1]
    assert json.loads(row.inputs)["truncated"] is True  # bounded, as the serving log is
    assert json.loads(row.outputs) == {"predictions": [0]}


def test_a_dataframe_of_rows_is_one_batched_request(ml: mlops.MLOps) -> None:
    frame = pd.DataFrame({"tenure": [1.0, 2.0, 3.0], "plan": ["a", "b", "c"]})
    request_id = record_prediction(
        ml.store, "churn", frame, [0, 1, 1], probabilities=[[0.9, 0.1], [0.3, 0.7], [0.4, 0.6]]
    )
    record_feedback(ml.store, "churn", request_id, [0, 1, 0])
    (row,) = _rows(ml)
    assert json.loads(row.inputs) == {
        "columns": ["tenure", "plan"],
        "data": [[1.0, "a"], [2.0, "b"], [3.0, "c"]],
    }
    window = read_window(ml.store, "churn", resolve_window("1h"))
    assert window.row_index.tolist() == [0, 1, 2]
    assert window.actual.tolist() == [0, 1, 0]
    with pytest.raises(InvalidInput, match="one prediction per input row"):
        record_prediction(ml.store, "churn", frame, [0, 1])
    with pytest.raises(InvalidInput, match="3 predictions"):
        record_prediction(ml.store, "churn", frame, [0, 1, 1], probabilities=[[0.5, 0.5]])


def test_record_predictions_writes_many_requests_at_once(ml: mlops.MLOps) -> None:
    frame = pd.DataFrame({"x": np.arange(500, dtype=float)})
    predictions = (np.arange(500) % 2).astype(np.int64)
    ids = record_predictions(
        ml.store,
        "churn",
        frame,
        predictions,
        probabilities=np.c_[1 - predictions * 0.8, predictions * 0.8],
        version=2,
        latency_ms=np.full(500, 3.0),
        ts=[NOW - 1_000 + i for i in range(500)],
    )
    assert len(set(ids)) == 500
    window = read_window(ml.store, "churn", resolve_window("1h", now_ms=NOW), inputs=True)
    assert window.request_id.tolist() == ids
    assert window.prediction.tolist() == predictions.tolist()
    assert window.version.tolist() == [2] * 500
    assert window.inputs is not None
    assert json.loads(window.inputs[7]) == {"x": 7.0}
    stored = record_feedback_batch(ml.store, "churn", ids[:100], predictions[:100])
    assert stored == 100
    labelled = read_window(ml.store, "churn", resolve_window("1h", now_ms=NOW))
    assert labelled.labelled.sum() == 100
    no_inputs = record_predictions(
        ml.store,
        "churn",
        None,
        pd.Series(["a", "b"]),
        probabilities=pd.DataFrame({"a": [0.9, 0.2], "b": [0.1, 0.8]}),
        request_ids=["p", "q"],
    )
    assert no_inputs == ["p", "q"]
    assert json.loads(_rows(ml)[-1].outputs) == {
        "predictions": ["b"],
        "probabilities": [[0.2, 0.8]],
    }


def test_feedback_may_arrive_before_its_prediction(ml: mlops.MLOps) -> None:
    record_feedback(ml.store, "churn", "late-one", 1, ts=NOW - 2_000)
    window = resolve_window("1h", now_ms=NOW)
    assert read_window(ml.store, "churn", window).orphan_feedback == 1
    record_prediction(ml.store, "churn", {"x": 1}, 1, request_id="late-one", ts=NOW - 1_000)
    found = read_window(ml.store, "churn", window)
    assert (found.orphan_feedback, found.labelled.tolist()) == (0, [True])
    record_feedback(ml.store, "churn", "a", np.array([1, 0]))
    record_feedback(ml.store, "churn", "b", np.float32(2.5), ts=NOW)
    assert record_feedback_batch(ml.store, "churn", [], []) == 0
    with ml.store.read() as connection:
        query = sa.select(prediction_feedback.c.actual).order_by(prediction_feedback.c.id)
        actual = connection.execute(query).scalars().all()
    assert [json.loads(value) for value in actual] == [1, [1, 0], 2.5]


class _Opaque:
    pass


@pytest.mark.parametrize(
    ("arguments", "options", "message"),
    [
        (("bad name", {"x": 1}, 1), {}, "endpoint name"),
        (("churn", {"x": 1}, 1), {"route": "has space"}, "route"),
        (("churn", {"x": 1}, 1), {"version": 0}, "version"),
        (("churn", {"x": 1}, 1), {"version": True}, "version"),
        (("churn", {"x": 1}, 1), {"latency_ms": -1}, "latency_ms"),
        (("churn", {"x": 1}, 1), {"latency_ms": float("nan")}, "latency_ms"),
        (("churn", {"x": 1}, 1), {"ts": True}, "ts must be"),
        (("churn", {"x": 1}, 1), {"request_id": "x" * 65}, "request id"),
        (("churn", {"x": 1}, 1), {"request_id": ""}, "request id"),
        (("churn", {"x": 1}, 1), {"probabilities": [0.5]}, "at least two"),
        (("churn", {"x": 1}, 1), {"probabilities": [0.5, 1.5]}, "outside"),
        (("churn", {"x": 1}, 1), {"probabilities": [0.5, "a"]}, "not a number"),
        (("churn", {"x": 1}, 1), {"probabilities": [[0.5, 0.5], [0.5, 0.5]]}, "2 rows"),
        (("churn", {"x": 1}, float("nan")), {}, "finite"),
        (("churn", {"x": 1}, None), {}, "number, string or bool"),
        (("churn", {"x": 1}, [[1, 2]]), {}, "number, string or bool"),
        (("churn", {"x": 1}, []), {}, "empty"),
        (("churn", {}, 1), {}, "empty"),
        (("churn", "text", 1), {}, "give a record"),
        (("churn", [], 1), {}, "no rows"),
        (("churn", {"x": _Opaque()}, 1), {}, "JSON"),
        (("churn", [{"x": 1}, {"x": 2}], [1]), {}, "one prediction per input row"),
    ],
)
def test_record_prediction_says_what_is_wrong(
    bare_store: Store, arguments: tuple[Any, ...], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        record_prediction(bare_store, *arguments, **options)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: record_predictions(s, "churn", None, []), "empty"),
        (lambda s: record_predictions(s, "churn", None, 5), "list"),
        (lambda s: record_predictions(s, "churn", [{"x": 1}], [1, 2]), "2"),
        (lambda s: record_predictions(s, "churn", None, [1, 2], request_ids=["a"]), "one each"),
        (lambda s: record_predictions(s, "churn", None, [1, 2], ts=[1]), "one each"),
        (lambda s: record_predictions(s, "churn", None, [1], probabilities=[[1.0]]), "two"),
        (
            lambda s: record_predictions(
                s, "churn", None, [1, 2], probabilities=[[0.5, 0.5], [1.0, 0, 0]]
            ),
            "same classes",
        ),
        (lambda s: record_feedback(s, "churn", "r1", None), "outcome is known"),
        (lambda s: record_feedback(s, "churn", "r1", []), "empty"),
        (lambda s: record_feedback(s, "churn", "r1", {"a": 1}), "number, string or bool"),
        (lambda s: record_feedback(s, "churn", "r1", float("inf")), "finite"),
        (lambda s: record_feedback(s, "churn", 7, 1), "request id"),
        (lambda s: record_feedback(s, "bad/name", "r1", 1), "endpoint name"),
        (lambda s: record_feedback_batch(s, "churn", ["a", "b"], [1]), "one actual value"),
        (lambda s: record_feedback_batch(s, "churn", "ab", [1, 2]), "list"),
    ],
)
def test_batch_and_feedback_validation(bare_store: Store, call: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call(bare_store)
