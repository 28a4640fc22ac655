"""The write side for models served elsewhere: log predictions and feedback to the store."""

from __future__ import annotations

import datetime as dt
import math
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from mlops.errors import InvalidInput
from mlops.models._payload import is_dataframe
from mlops.monitoring._window import check_endpoint_name
from mlops.serving._predlog import MAX_LOGGED_JSON
from mlops.store import Store
from mlops.store._schema import prediction_feedback, prediction_log

__all__ = [
    "EXTERNAL_ROUTE",
    "record_feedback",
    "record_feedback_batch",
    "record_prediction",
    "record_predictions",
]

#: The route label of predictions recorded with ``record_prediction``.
EXTERNAL_ROUTE = "external"
#: Stored in ``latency_ms`` when no latency was given; readers treat it as unknown.
UNKNOWN_LATENCY = -1.0

_ROUTE = re.compile(r"^[A-Za-z0-9][\w\-.]{0,31}$")
_LOG_COLUMNS = (
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
_FEEDBACK_COLUMNS = ("request_id", "endpoint", "actual", "ts")
_SCALARS = (str, bool, int, float)


def record_prediction(
    store: Store,
    endpoint: str,
    inputs: Any,
    prediction: Any,
    *,
    probabilities: Any = None,
    request_id: str | None = None,
    version: int | None = None,
    route: str = EXTERNAL_ROUTE,
    latency_ms: float | None = None,
    ts: int | None = None,
) -> str:
    """Log one request answered by a model served elsewhere; return its request id.

    ``inputs`` is one record (a dict or a pandas Series), several (a list of dicts or a
    DataFrame: one batched request) or None; ``prediction`` is one value for one row, or
    one per row; ``probabilities`` one list of class probabilities per row.
    """
    check_endpoint_name(endpoint)
    body, rows = _inputs(inputs)
    predictions = _predictions(prediction, rows)
    outputs: dict[str, Any] = {"predictions": predictions}
    if probabilities is not None:
        outputs["probabilities"] = _probabilities(probabilities, len(predictions))
    row = (
        _request_id(request_id) if request_id is not None else uuid.uuid4().hex,
        endpoint,
        _version(version),
        _route(route),
        _ts(ts),
        _latency(latency_ms),
        200,
        body,
        _dumps("outputs", outputs),
        None,
    )
    _insert(store, prediction_log, _LOG_COLUMNS, [row])
    return str(row[0])


def record_predictions(
    store: Store,
    endpoint: str,
    inputs: Any,
    predictions: Any,
    *,
    probabilities: Any = None,
    request_ids: Sequence[str] | None = None,
    version: int | None = None,
    route: str = EXTERNAL_ROUTE,
    latency_ms: float | Sequence[float] | None = None,
    ts: int | Sequence[int] | None = None,
) -> list[str]:
    """Log many one-row requests in one transaction; return their request ids.

    ``inputs`` is a DataFrame or a list of dicts (one row per request) or None;
    ``predictions`` one value per request; ``probabilities`` one list per request;
    ``request_ids``, ``latency_ms`` and ``ts`` one per request (or one for all).
    """
    check_endpoint_name(endpoint)
    values = _sequence("predictions", predictions)
    count = len(values)
    if count == 0:
        raise InvalidInput("predictions is empty; give one prediction per request")
    records = _records(inputs, count)
    probability_rows = (
        [None] * count if probabilities is None else _probabilities(probabilities, count)
    )
    ids = _request_ids(request_ids, count)
    latencies = _per_request("latency_ms", latency_ms, count, _latency)
    stamps = _per_request("ts", ts, count, _ts)
    number, label = _version(version), _route(route)
    rows = []
    for index in range(count):
        outputs: dict[str, Any] = {"predictions": [_label_value("prediction", values[index])]}
        if probability_rows[index] is not None:
            outputs["probabilities"] = [probability_rows[index]]
        body = None if records is None else _dumps_inputs(records[index])
        row = (ids[index], endpoint, number, label, stamps[index], latencies[index], 200)
        rows.append((*row, body, _dumps("outputs", outputs), None))
    _insert(store, prediction_log, _LOG_COLUMNS, rows)
    return ids


def record_feedback(
    store: Store, endpoint: str, request_id: str, actual: Any, *, ts: int | None = None
) -> None:
    """Store the actual outcome of a request (its prediction may be logged later).

    ``actual`` is one value for a one-row request, or a list with one value per row.
    """
    record_feedback_batch(store, endpoint, [request_id], [actual], ts=ts)


def record_feedback_batch(
    store: Store,
    endpoint: str,
    request_ids: Sequence[str],
    actuals: Sequence[Any],
    *,
    ts: int | Sequence[int] | None = None,
) -> int:
    """Store many actual outcomes in one transaction; return how many were stored."""
    check_endpoint_name(endpoint)
    ids = _sequence("request_ids", request_ids)
    values = _sequence("actuals", actuals)
    if len(ids) != len(values):
        raise InvalidInput(
            f"{len(ids)} request ids and {len(values)} actual values; give one actual value "
            "per request id"
        )
    stamps = _per_request("ts", ts, len(ids), _ts)
    rows = [
        (_request_id(ids[i]), endpoint, _dumps("actual", _actual(values[i])), stamps[i])
        for i in range(len(ids))
    ]
    if rows:
        _insert(store, prediction_feedback, _FEEDBACK_COLUMNS, rows)
    return len(rows)


# -- validation -----------------------------------------------------------------------------


def _insert(store: Store, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    statement = store.prepare(table.insert(), list(columns))
    order = [columns.index(name) for name in statement.names]
    with store.cursor(write=True) as cursor:
        cursor.executemany(statement.sql, [tuple(row[i] for i in order) for row in rows])


def _inputs(inputs: Any) -> tuple[str | None, int | None]:
    """The inputs as logged JSON text, and their row count (None: no inputs)."""
    if inputs is None:
        return None, None
    if isinstance(inputs, Mapping):
        return _dumps_inputs(_record(inputs, 0)), 1
    if type(inputs).__name__ == "Series" and type(inputs).__module__.startswith("pandas"):
        return _dumps_inputs(_record(inputs.to_dict(), 0)), 1
    if is_dataframe(inputs):
        if len(inputs) == 0:
            raise InvalidInput("the inputs DataFrame has no rows; give at least one")
        columns = [str(name) for name in inputs.columns]
        data = inputs.to_numpy(dtype=object).tolist()
        return _dumps_inputs({"columns": columns, "data": data}), len(data)
    records = _records(inputs, None)
    assert records is not None
    return _dumps_inputs(records), len(records)


def _records(inputs: Any, count: int | None) -> list[dict[str, Any]] | None:
    """Inputs as a list of records (``count`` of them when given)."""
    if inputs is None:
        return None
    if is_dataframe(inputs):
        records = [_record(row, i) for i, row in enumerate(inputs.to_dict("records"))]
    elif isinstance(inputs, (list, tuple)) and all(isinstance(r, Mapping) for r in inputs):
        records = [_record(row, i) for i, row in enumerate(inputs)]
    else:
        raise InvalidInput(
            f"inputs is a {type(inputs).__name__}; give a record (a dict of column values), "
            "a list of records or a pandas DataFrame"
        )
    if not records:
        raise InvalidInput("inputs holds no rows; give at least one record")
    if count is not None and len(records) != count:
        raise InvalidInput(
            f"inputs has {len(records)} rows and predictions {count}; give one prediction "
            "per input row"
        )
    return records


def _record(row: Mapping[Any, Any], index: int) -> dict[str, Any]:
    if not row:
        raise InvalidInput(f"input record {index} is empty; give its column values")
    return {str(name): value for name, value in row.items()}


def _dumps_inputs(value: Any) -> str:
    text = _dumps("inputs", value)
    if len(text) > MAX_LOGGED_JSON:  # as the serving log does: keep the log bounded
        return _dumps("inputs", {"truncated": True, "bytes": len(text)})
    return text


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    raise TypeError(f"a {type(value).__name__} is not JSON")


def _dumps(name: str, value: Any) -> str:
    try:
        text: bytes = orjson.dumps(
            value, default=_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        )
    except TypeError as error:
        raise InvalidInput(
            f"{name} cannot be stored as JSON ({error}); give numbers, strings, booleans, "
            "None, lists and dicts"
        ) from None
    return text.decode("utf-8")


def _sequence(name: str, value: Any) -> list[Any]:
    if isinstance(value, np.ndarray):
        return list(value.tolist())
    if is_dataframe(value):  # e.g. probabilities with one column per class
        return list(value.to_numpy().tolist())
    if type(value).__name__ == "Series" and type(value).__module__.startswith("pandas"):
        return list(value.tolist())
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise InvalidInput(f"{name} must be a list (or array) with one item per request")
    return list(value)


def _label_value(name: str, value: Any) -> Any:
    """A prediction or actual value for one row: a number, string or bool."""
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, _SCALARS):
        raise InvalidInput(
            f"{name} {value!r} is a {type(value).__name__}; give one number, string or bool per row"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{name} {value!r} is not a finite number")
    return value


def _predictions(prediction: Any, rows: int | None) -> list[Any]:
    if isinstance(prediction, (list, tuple, np.ndarray)) or (
        type(prediction).__name__ == "Series" and type(prediction).__module__.startswith("pandas")
    ):
        values = [_label_value("prediction", v) for v in _sequence("prediction", prediction)]
        if not values:
            raise InvalidInput("prediction is an empty list; give one prediction per row")
    else:
        values = [_label_value("prediction", prediction)]
    if rows is not None and len(values) != rows:
        raise InvalidInput(
            f"inputs has {rows} rows and prediction {len(values)} values; give one "
            "prediction per input row"
        )
    return values


def _probabilities(probabilities: Any, rows: int) -> list[list[float]]:
    """One list of class probabilities per row, all of the same length."""
    values = _sequence("probabilities", probabilities)
    if rows == 1 and values and not isinstance(values[0], (list, tuple, np.ndarray)):
        values = [values]  # one row given flat: [0.2, 0.8]
    if len(values) != rows:
        raise InvalidInput(
            f"probabilities has {len(values)} rows for {rows} predictions; give one list of "
            "class probabilities per row"
        )
    width: int | None = None
    result = []
    for index, row in enumerate(values):
        if not isinstance(row, (list, tuple, np.ndarray)):
            raise InvalidInput(
                f"probabilities row {index} is not a list; give one probability per class, "
                "as in [0.3, 0.7]"
            )
        numbers = [_probability(v) for v in _sequence("row", row)]
        if len(numbers) < 2:
            raise InvalidInput(
                f"probabilities row {index} has {len(numbers)} value(s); give one probability "
                "per class (at least two, as in [0.3, 0.7])"
            )
        if width is not None and len(numbers) != width:
            raise InvalidInput(
                f"probabilities row {index} has {len(numbers)} classes, row 0 has {width}; "
                "give every row the same classes"
            )
        width = len(numbers)
        result.append(numbers)
    return result


def _probability(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise InvalidInput(f"probability {value!r} is not a number; give numbers in [0, 1]")
    number = float(value)
    if not 0.0 <= number <= 1.0:  # also refuses NaN
        raise InvalidInput(f"probability {value!r} is outside [0, 1]")
    return number


def _actual(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if not value:
            raise InvalidInput("an actual value is an empty list; give one value per row")
        return [_label_value("actual", item) for item in value]
    if value is None:
        raise InvalidInput("an actual value is None; record feedback once the outcome is known")
    return _label_value("actual", value)


def _request_id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not value.isprintable():
        raise InvalidInput(
            f"request id {value!r} is not valid; use a printable string of 1 to 64 characters "
            "(or leave it out to have one generated)"
        )
    return value


def _request_ids(values: Sequence[str] | None, count: int) -> list[str]:
    if values is None:
        return [uuid.uuid4().hex for _ in range(count)]
    ids = [_request_id(value) for value in _sequence("request_ids", values)]
    if len(ids) != count:
        raise InvalidInput(f"{len(ids)} request ids for {count} predictions; give one each")
    return ids


def _version(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInput(f"version must be a registry version number (>= 1), got {value!r}")
    return int(value)


def _route(value: Any) -> str:
    if not isinstance(value, str) or _ROUTE.match(value) is None:
        raise InvalidInput(
            f"route {value!r} is not valid; use 1-32 letters, digits, '_', '-' or '.' "
            f"(the default is {EXTERNAL_ROUTE!r})"
        )
    return value


def _latency(value: Any) -> float:
    if value is None:
        return UNKNOWN_LATENCY
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise InvalidInput(f"latency_ms must be a number of milliseconds, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise InvalidInput(f"latency_ms must be a finite number >= 0, got {value!r}")
    return number


def _ts(value: Any) -> int:
    if value is None:
        return time.time_ns() // 1_000_000
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidInput(f"ts must be a timestamp in epoch milliseconds (an int), got {value!r}")
    return int(value)


def _per_request(name: str, value: Any, count: int, check: Any) -> list[Any]:
    if value is None or isinstance(value, (int, float, np.number)):
        return [check(value)] * count
    values = _sequence(name, value)
    if len(values) != count:
        raise InvalidInput(f"{name} has {len(values)} values for {count} requests; give one each")
    return [check(item) for item in values]
