"""Windows over the prediction log: parsing, time and count windows, rows, feedback, inputs."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pytest

import mlops
import mlops.monitoring
from mlops.errors import InvalidInput
from mlops.monitoring import (
    Window,
    decode_inputs,
    parse_window,
    read_inputs,
    read_window,
    resolve_window,
)
from mlops.store import Store
from monitoring.conftest import NOW, give_feedback, log_requests


def test_my_names_are_exported_and_all_is_sorted() -> None:
    exported = mlops.monitoring.__all__
    assert exported == sorted(exported, key=lambda name: (not name.isupper(), name))
    for name in ("performance", "read_window", "decode_inputs", "record_prediction"):
        assert name in exported
        assert getattr(mlops.monitoring, name) is not None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("7d", 604800.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        (" 2w ", 1209600.0),
        (90, 90.0),
        (dt.timedelta(minutes=2), 120.0),
    ],
)
def test_parse_window_reads_durations(text: Any, seconds: float) -> None:
    assert parse_window(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5", "1y", "-1h", "h", 0, -3, True, None, "1 hour"])
def test_parse_window_refuses_what_is_not_a_duration(bad: Any) -> None:
    with pytest.raises(InvalidInput, match="window"):
        parse_window(bad)


def test_resolve_window_defaults_combines_and_refuses_contradictions() -> None:
    assert resolve_window(now_ms=NOW) == Window(until_ms=NOW, since_ms=NOW - 3_600_000)
    assert resolve_window("5m", until=NOW - 10, now_ms=NOW) == Window(NOW - 10, NOW - 10 - 300_000)
    assert resolve_window(last=50, now_ms=NOW) == Window(NOW, None, 50)
    both = resolve_window("1d", last=10, now_ms=NOW)
    assert (both.since_ms, both.last) == (NOW - 86_400_000, 10)
    assert resolve_window(since=NOW - 5, now_ms=NOW).seconds == pytest.approx(0.005)
    assert resolve_window("90m", now_ms=NOW).label == "the 90m up to 2025-06-15 15:06:40 UTC"
    assert both.label == "the last 10 requests within the 1d up to 2025-06-15 15:06:40 UTC"
    assert Window(NOW, last=5).label == "the last 5 requests up to 2025-06-15 15:06:40 UTC"
    assert Window(NOW, NOW - 1_500).label.startswith("the 1500ms ")
    with pytest.raises(InvalidInput, match="not both"):
        resolve_window("1h", since=NOW - 5, now_ms=NOW)
    with pytest.raises(InvalidInput, match="swap"):
        resolve_window(since=NOW, until=NOW - 1, now_ms=NOW)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(InvalidInput, match="last"):
            resolve_window(last=bad, now_ms=NOW)
    with pytest.raises(InvalidInput, match="epoch milliseconds"):
        resolve_window(until=1.5, now_ms=NOW)  # type: ignore[arg-type]


def _simple(request_id: str, ts: int, prediction: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"request_id": request_id, "ts": ts, "outputs": {"predictions": [prediction]}, **extra}


def test_time_window_keeps_its_range_oldest_first_and_leaves_shadow_out(
    ml: mlops.MLOps,
) -> None:
    log_requests(
        ml.store,
        [
            _simple("old", NOW - 7_200_000),
            _simple("b", NOW - 60_000),
            _simple("a", NOW - 120_000),
            _simple("b", NOW - 60_000, route="shadow", version=2),
            _simple("future", NOW + 1_000),
            _simple("elsewhere", NOW - 1_000, endpoint="other"),
        ],
    )
    window = read_window(ml.store, "churn", resolve_window("1h", now_ms=NOW))
    assert window.request_id.tolist() == ["a", "b"]
    assert window.route.tolist() == ["stable", "stable"]
    assert window.version.tolist() == [1, 1]
    assert window.ts.tolist() == [NOW - 120_000, NOW - 60_000]
    assert window.span_ms == 3_600_000
    assert window.rows == 2
    assert window.prediction.tolist() == [1, 1]
    assert window.probabilities is None
    assert not window.labelled.any()
    only_v2 = read_window(ml.store, "churn", resolve_window("1h", now_ms=NOW), version=2)
    assert only_v2.requests == 0  # the only version-2 row was a shadow call


def test_count_window_keeps_the_latest_requests_in_order(ml: mlops.MLOps) -> None:
    log_requests(ml.store, [_simple(f"r{i}", NOW - 10_000 + (i // 2)) for i in range(10)])
    window = read_window(ml.store, "churn", resolve_window(last=3, now_ms=NOW))
    assert window.request_id.tolist() == ["r7", "r8", "r9"]  # ties in ts keep insertion order
    assert window.span_ms == 10_000 - 3
    bounded = read_window(ml.store, "churn", resolve_window("1ms", last=3, now_ms=NOW))
    assert bounded.requests == 0
    assert bounded.span_ms == 1


def test_batched_requests_flatten_into_rows_with_their_feedback(ml: mlops.MLOps) -> None:
    log_requests(
        ml.store,
        [
            {
                "request_id": "batch",
                "ts": NOW - 3_000,
                "outputs": {
                    "predictions": [0, 1, 1],
                    "probabilities": [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]],
                },
            },
            {
                "request_id": "one",
                "ts": NOW - 2_000,
                "outputs": {"predictions": 0, "probabilities": [0.7, 0.3]},  # scalar form
            },
            {"request_id": "failed", "ts": NOW - 1_500, "status": 500, "error": "boom"},
            {"request_id": "plain", "ts": NOW - 1_000, "outputs": {"predictions": [1]}},
        ],
    )
    give_feedback(ml.store, [("batch", [0, 1, 0]), ("one", 1), ("failed", 1)])
    window = read_window(ml.store, "churn", resolve_window("1h", now_ms=NOW))
    assert window.requests == 4
    assert window.status.tolist() == [200, 200, 500, 200]
    assert window.row_request.tolist() == [0, 0, 0, 1, 3]
    assert window.row_index.tolist() == [0, 1, 2, 0, 0]
    assert window.prediction.tolist() == [0, 1, 1, 0, 1]
    assert window.probabilities is not None
    np.testing.assert_allclose(
        window.probabilities[:4], [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]]
    )
    assert np.isnan(window.probabilities[4]).all()
    assert window.labelled.tolist() == [True, True, True, True, False]
    assert window.actual.tolist() == [0, 1, 0, 1, None]
    assert (window.mismatched_feedback, window.orphan_feedback, window.undecodable_outputs) == (
        0,
        0,
        0,
    )


def test_feedback_corrections_win_and_mismatched_shapes_are_counted(ml: mlops.MLOps) -> None:
    batch = {"outputs": {"predictions": [1, 2]}, "ts": NOW - 5_000}
    log_requests(
        ml.store,
        [
            {"request_id": "scalar-for-batch", **batch},
            {"request_id": "short-list", **batch},
            {"request_id": "corrected", **batch},
            {"request_id": "one-as-list", "outputs": {"predictions": [7]}, "ts": NOW - 5_000},
        ],
    )
    give_feedback(ml.store, [("scalar-for-batch", 1), ("short-list", [1]), ("corrected", [9, 9])])
    give_feedback(ml.store, [("corrected", [1, 2]), ("one-as-list", [7])], ts=NOW + 1)
    window = read_window(ml.store, "churn", resolve_window("1h", now_ms=NOW))
    assert window.mismatched_feedback == 2
    assert window.actual.tolist() == [None, None, None, None, 1, 2, 7]
    assert window.labelled.sum() == 3


def test_orphan_feedback_is_counted_until_its_prediction_is_logged(ml: mlops.MLOps) -> None:
    log_requests(ml.store, [_simple("known", NOW - 5_000, prediction=1)])
    give_feedback(ml.store, [("known", 1), ("early", 0), ("nobody", 1)], ts=NOW - 4_000)
    give_feedback(ml.store, [("ancient", 1)], ts=NOW - 90_000_000)  # before the window
    window = resolve_window("1h", now_ms=NOW)
    first = read_window(ml.store, "churn", window)
    assert first.orphan_feedback == 2
    assert first.labelled.tolist() == [True]
    # The prediction of "early" is logged after its feedback (the log is written in batches).
    log_requests(ml.store, [_simple("early", NOW - 4_500, prediction=0)])
    second = read_window(ml.store, "churn", window)
    assert second.orphan_feedback == 1
    assert second.request_id.tolist() == ["known", "early"]
    assert second.actual.tolist() == [1, 0]


def test_outputs_without_predictions_are_counted_not_raised(ml: mlops.MLOps) -> None:
    log_requests(
        ml.store,
        [
            {"request_id": "cut", "outputs": {"truncated": True, "bytes": 99_999}},
            {"request_id": "bad", "outputs": "{not json"},
            {"request_id": "none", "outputs": None},
            {"request_id": "rejected", "outputs": None, "status": 422},
            {"request_id": "ok", "outputs": {"predictions": ["yes"]}},
            {"request_id": "ragged", "outputs": {"predictions": [1], "probabilities": [[0.5]]}},
            {"request_id": "no-latency", "latency_ms": -1.0, "outputs": None, "status": 404},
        ],
    )
    window = read_window(ml.store, "churn", resolve_window("1h", now_ms=NOW))
    assert window.requests == 7
    assert window.undecodable_outputs == 3
    assert math.isnan(window.latency_ms[-1])  # recorded without a latency: unknown
    assert window.prediction.tolist() == ["yes", 1]
    assert window.probabilities is None  # one class is not a probability row


def test_read_window_refuses_bad_arguments_before_reading(bare_store: Store) -> None:
    with pytest.raises(InvalidInput, match="endpoint name"):
        read_window(bare_store, "no spaces", resolve_window(now_ms=NOW))
    with pytest.raises(InvalidInput, match="version"):
        read_window(bare_store, "churn", resolve_window(now_ms=NOW), version="1")  # type: ignore[arg-type]


V2_COLUMNS = {
    "inputs": [
        {"name": "tenure", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
        {"name": "plan", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "b"]},
    ]
}
V2_MATRIX = {
    "inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"tenure": 1.0, "plan": "a"}, {"tenure": [1.0], "plan": ["a"]}),
        (
            [{"tenure": 1.0, "plan": "a"}, {"tenure": 2.0}],
            {"tenure": [1.0, 2.0], "plan": ["a", None]},
        ),
        (
            {"columns": ["tenure", "plan"], "data": [[1.0, "a"], [2.0, "b"]]},
            {"tenure": [1.0, 2.0], "plan": ["a", "b"]},
        ),
        ({"tenure": [1.0, 2.0], "plan": ["a", "b"]}, {"tenure": [1.0, 2.0], "plan": ["a", "b"]}),
        (
            {"dataframe_split": {"columns": ["tenure"], "data": [[1.0], [2.0]]}},
            {"tenure": [1.0, 2.0]},
        ),
        ({"dataframe_records": [{"tenure": 1.0}, {"tenure": 2.0}]}, {"tenure": [1.0, 2.0]}),
        ({"instances": [{"tenure": 1.0}, {"tenure": 2.0}]}, {"tenure": [1.0, 2.0]}),
        ({"instances": [[1.0, 5.0], [2.0, 6.0]]}, {"0": [1.0, 2.0], "1": [5.0, 6.0]}),
        ({"inputs": {"tenure": [1.0, 2.0]}, "params": {"x": 1}}, {"tenure": [1.0, 2.0]}),
        ([[1.0, 5.0], [2.0, 6.0]], {"0": [1.0, 2.0], "1": [5.0, 6.0]}),
        (V2_COLUMNS, {"tenure": [1.0, 2.0], "plan": ["a", "b"]}),
        (V2_MATRIX, {"0": [1.0, 3.0], "1": [2.0, 4.0]}),
    ],
    ids=[
        "record",
        "records",
        "split",
        "columns",
        "mlflow-split",
        "mlflow-records",
        "instances-records",
        "instances-rows",
        "inputs-columns",
        "rows",
        "v2-columns",
        "v2-matrix",
    ],
)
def test_decode_inputs_reads_every_protocol_shape(
    body: Any, expected: dict[str, list[Any]]
) -> None:
    decoded = decode_inputs([json.dumps(body)])
    assert (decoded.decoded, decoded.skipped, decoded.missing) == (1, 0, 0)
    assert set(decoded.columns) == set(expected)
    for name, values in expected.items():
        column = decoded.columns[name]
        if all(v is None or isinstance(v, float) for v in values):
            assert column.dtype == np.float64
            np.testing.assert_array_equal(column, [np.nan if v is None else v for v in values])
        else:
            assert column.tolist() == values
    assert decoded.row_index.tolist() == list(range(len(next(iter(expected.values())))))


def test_decode_inputs_skips_what_it_cannot_read_and_aligns_columns() -> None:
    bodies: list[str | bytes | None] = [
        json.dumps({"a": 1, "b": "x"}),
        "{broken",
        json.dumps({"truncated": True, "bytes": 70_000}),
        None,
        json.dumps(42),
        json.dumps([]),
        json.dumps({"a": [1, 2], "b": 3}),  # mixes lists and scalars
        json.dumps({"inputs": [{"name": "t", "shape": [3], "datatype": "FP64", "data": [1]}]}),
        json.dumps([{"a": 2}, {"a": 3, "c": True}]).encode(),
    ]
    decoded = decode_inputs(bodies)
    assert (decoded.decoded, decoded.skipped, decoded.missing) == (2, 6, 1)
    assert decoded.request.tolist() == [0, 8, 8]
    assert decoded.row_index.tolist() == [0, 0, 1]
    np.testing.assert_array_equal(decoded.columns["a"], [1.0, 2.0, 3.0])
    assert decoded.columns["b"].tolist() == ["x", None, None]
    np.testing.assert_array_equal(decoded.columns["c"], [np.nan, np.nan, 1.0])
    named = decode_inputs([json.dumps([[1, 2]])], names=["x", "y"])
    assert sorted(named.columns) == ["x", "y"]
    assert decode_inputs([json.dumps([[1, 2]])], names=["only-one"]).skipped == 1


def test_read_inputs_decodes_a_window_of_the_log(ml: mlops.MLOps) -> None:
    log_requests(
        ml.store,
        [
            {"request_id": "a", "inputs": {"tenure": 3.0}, "outputs": {"predictions": [1]}},
            {"request_id": "b", "inputs": [{"tenure": 4.0}, {"tenure": 5.0}], "version": 2},
            {"request_id": "c", "inputs": None},
            {"request_id": "d", "inputs": {"tenure": 9.0}, "route": "shadow"},
        ],
    )
    window = resolve_window("1h", now_ms=NOW)
    decoded = read_inputs(ml.store, "churn", window)
    np.testing.assert_array_equal(decoded.columns["tenure"], [3.0, 4.0, 5.0])
    assert (decoded.rows, decoded.missing) == (3, 1)
    assert read_inputs(ml.store, "churn", window, version=2).rows == 2
