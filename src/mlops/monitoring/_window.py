"""Windows over the prediction log: parsing them, and reading one as columnar NumPy arrays."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import sqlalchemy as sa

from mlops.errors import InvalidInput
from mlops.registry._rows import check_model_name
from mlops.store import Store
from mlops.store._schema import prediction_feedback, prediction_log

__all__ = [
    "PredictionWindow",
    "Window",
    "check_endpoint_name",
    "parse_window",
    "read_window",
    "resolve_window",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ObjectArray = npt.NDArray[np.object_]

#: The route label of shadow calls: a copy of live traffic, never part of live metrics.
SHADOW_ROUTE = "shadow"

#: Feedback is read from this long before a window's first prediction: feedback cannot
#: precede its prediction, but serving replicas' clocks may disagree by this much.
FEEDBACK_CLOCK_SKEW_MS = 10 * 60_000

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_WINDOW_HINT = 'write a number and a unit such as "30s", "5m", "1h", "1d" or "7d"'


def parse_window(window: str | float | dt.timedelta) -> float:
    """A window's length in seconds: "30s", "5m", "1h", "1d", "7d", a timedelta or seconds."""
    if isinstance(window, dt.timedelta):
        seconds = window.total_seconds()
    elif isinstance(window, bool) or not isinstance(window, (str, int, float)):
        raise InvalidInput(f"window {window!r} is not a duration; {_WINDOW_HINT}")
    elif isinstance(window, str):
        match = _WINDOW.match(window)
        if match is None:
            raise InvalidInput(f"window {window!r} is not a duration; {_WINDOW_HINT}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        seconds = float(window)
    if not np.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(f"window {window!r} must be a positive duration; {_WINDOW_HINT}")
    return seconds


def check_endpoint_name(name: object) -> str:
    """An endpoint name follows the model name rules (it appears in URLs)."""
    try:
        return check_model_name(name)
    except InvalidInput:
        raise InvalidInput(
            f"endpoint name {name!r} is not valid; use 1-250 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (e.g. 'churn')"
        ) from None


def _check_ms(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidInput(
            f"{name} must be a timestamp in epoch milliseconds (an int >= 0), got {value!r}"
        )
    return int(value)


def _duration_text(milliseconds: int) -> str:
    for unit in ("w", "d", "h", "m", "s"):
        size = round(_UNIT_SECONDS[unit] * 1000)
        if milliseconds >= size and milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


@dataclass(frozen=True, slots=True)
class Window:
    """Which logged requests a report covers: those in ``[since_ms, until_ms]``, or the
    ``last`` N up to ``until_ms``, or the last N within the time range."""

    until_ms: int
    since_ms: int | None = None
    last: int | None = None

    @property
    def seconds(self) -> float | None:
        """The time range's length, for a time window."""
        return None if self.since_ms is None else (self.until_ms - self.since_ms) / 1000.0

    @property
    def label(self) -> str:
        """For messages: "the 1h up to 2025-06-15 15:06:40 UTC", "the last 100 requests…"."""
        until = dt.datetime.fromtimestamp(self.until_ms / 1000, dt.UTC)
        end = f"up to {until:%Y-%m-%d %H:%M:%S} UTC"
        if self.since_ms is None:
            return f"the last {self.last} requests {end}"
        span = _duration_text(self.until_ms - self.since_ms)
        if self.last is None:
            return f"the {span} {end}"
        return f"the last {self.last} requests within the {span} {end}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "last": self.last,
            "seconds": self.seconds,
            "label": self.label,
        }


def resolve_window(
    window: str | float | dt.timedelta | None = None,
    *,
    last: int | None = None,
    since: int | None = None,
    until: int | None = None,
    now_ms: int | None = None,
    default: str = "1h",
) -> Window:
    """A Window from the ways callers name one.

    ``window`` ("1h") ends at ``until`` (default: now); ``since``/``until`` are epoch ms;
    ``last=N`` keeps the N latest requests (within the time range, if one is given too).
    With none of ``window``, ``since`` and ``last``, the window is ``default``.
    """
    now = _check_ms("now_ms", now_ms) if now_ms is not None else time.time_ns() // 1_000_000
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
        raise InvalidInput(f"last must be a count of requests (an int >= 1), got {last!r}")
    until_ms = _check_ms("until", until) if until is not None else now
    since_ms = _check_ms("since", since) if since is not None else None
    if window is not None and since_ms is not None:
        raise InvalidInput(
            "give either window (a duration ending at until) or since (a start time), not both"
        )
    if window is None and since_ms is None and last is None:
        window = default
    if window is not None:
        since_ms = until_ms - round(parse_window(window) * 1000)
    if since_ms is not None and since_ms > until_ms:
        raise InvalidInput(f"since ({since_ms}) is after until ({until_ms}); swap them")
    return Window(until_ms=until_ms, since_ms=since_ms, last=last)


@dataclass(frozen=True, slots=True, eq=False)
class PredictionWindow:
    """A window of one endpoint's live (non-shadow) prediction log, column by column.

    Request arrays (one entry per logged request, oldest first): ``request_id``,
    ``version`` (-1 where none was logged), ``route``, ``ts`` (epoch ms), ``latency_ms``
    (NaN where unknown), ``status``, and ``inputs`` (the logged JSON text; only when asked).

    Row arrays (one entry per predicted row: a request with several rows counts each):
    ``row_request`` (index into the request arrays), ``row_index`` (row within its request),
    ``prediction`` (decoded JSON values), ``probabilities`` (rows x classes, NaN rows where
    none were logged; None when no request logged any), ``actual`` (the feedback value
    for the row, None where there is none) and ``labelled``.

    ``orphan_feedback`` counts feedback received in the window whose request id matches
    no logged prediction of the endpoint; ``mismatched_feedback`` counts feedback whose
    shape does not match its request's rows (a scalar for a batch, a list of another
    length); ``undecodable_outputs`` counts successful requests whose outputs held no
    predictions (truncated or malformed).
    """

    endpoint: str
    window: Window
    request_id: ObjectArray
    version: IntArray
    route: ObjectArray
    ts: IntArray
    latency_ms: FloatArray
    status: IntArray
    inputs: ObjectArray | None
    row_request: IntArray
    row_index: IntArray
    prediction: ObjectArray
    probabilities: FloatArray | None
    actual: ObjectArray
    labelled: BoolArray
    orphan_feedback: int = 0
    mismatched_feedback: int = 0
    undecodable_outputs: int = 0

    @property
    def requests(self) -> int:
        return len(self.request_id)

    @property
    def rows(self) -> int:
        return len(self.row_request)

    @property
    def span_ms(self) -> int | None:
        """The time the window spans: its range, or from its oldest request to ``until_ms``."""
        start = self.window.since_ms
        if start is None:
            if not len(self.ts):
                return None
            start = int(self.ts.min())
        span = self.window.until_ms - start
        return span if span > 0 else None


def read_window(
    store: Store,
    endpoint: str,
    window: Window,
    *,
    version: int | None = None,
    route: str | None = None,
    outputs: bool = True,
    feedback: bool = True,
    inputs: bool = False,
) -> PredictionWindow:
    """Read a window of the prediction log (and its feedback) in one query per table."""
    check_endpoint_name(endpoint)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise InvalidInput(f"version must be a version number (an int), got {version!r}")
    log = prediction_log.c
    columns: list[Any] = [log.request_id, log.version, log.route, log.ts, log.latency_ms]
    columns.append(log.status)
    if outputs:
        columns.append(log.outputs)
    if inputs:
        columns.append(log.inputs)
    query = sa.select(*columns).where(
        log.endpoint == endpoint, log.route != SHADOW_ROUTE, log.ts <= window.until_ms
    )
    if window.since_ms is not None:
        query = query.where(log.ts >= window.since_ms)
    if version is not None:
        query = query.where(log.version == version)
    if route is not None:
        query = query.where(log.route == route)
    if window.last is not None:
        query = query.order_by(log.ts.desc(), log.id.desc()).limit(window.last)
    else:
        query = query.order_by(log.ts, log.id)
    with store.cursor(write=False) as cursor:
        cursor.execute(*store.render(query))
        rows = cursor.fetchall()
        if window.last is not None:
            rows.reverse()
        start = window.since_ms
        if rows and (start is None or rows[0][3] < start):
            start = rows[0][3]
        feedback_rows: list[tuple[Any, ...]] = []
        if feedback:
            feedback_rows = _feedback_rows(store, cursor, endpoint, start)
    count = len(rows)
    columns_of: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    request_id = np.array(columns_of[0], dtype=object)
    version_array = np.fromiter(
        (-1 if v is None else v for v in columns_of[1]), dtype=np.int64, count=count
    )
    latency = np.fromiter(columns_of[4], dtype=np.float64, count=count)
    latency[latency < 0] = np.nan  # recorded without a latency
    flat = _Flattened()
    if outputs:
        flat = _flatten_outputs(columns_of[6], columns_of[5])
    actual, labelled, mismatched = _attach_feedback(request_id, flat, feedback_rows)
    orphans = sum(
        1
        for _, _, ts, logged in feedback_rows
        if not logged and (start is None or ts >= start) and ts <= window.until_ms
    )
    return PredictionWindow(
        endpoint=endpoint,
        window=window,
        request_id=request_id,
        version=version_array,
        route=np.array(columns_of[2], dtype=object),
        ts=np.fromiter(columns_of[3], dtype=np.int64, count=count),
        latency_ms=latency,
        status=np.fromiter(columns_of[5], dtype=np.int64, count=count),
        inputs=np.array(columns_of[-1], dtype=object) if inputs else None,
        row_request=np.array(flat.request, dtype=np.int64),
        row_index=np.array(flat.index, dtype=np.int64),
        prediction=_object_array(flat.prediction),
        probabilities=flat.probability_matrix(),
        actual=actual,
        labelled=labelled,
        orphan_feedback=orphans,
        mismatched_feedback=mismatched,
        undecodable_outputs=flat.undecodable,
    )


def _feedback_rows(store: Store, cursor: Any, endpoint: str, start: int | None) -> Any:
    """The endpoint's feedback since ``start`` (less clock skew), oldest first, each with
    whether its request id has a logged prediction."""
    log, fb = prediction_log.c, prediction_feedback.c
    # Pin the request-id index: without statistics SQLite would probe by endpoint and time.
    logged = (
        sa.select(sa.literal(1))
        .select_from(prediction_log)
        .with_hint(prediction_log, "INDEXED BY ix_prediction_log_request", "sqlite")
        .where(log.request_id == fb.request_id, log.endpoint == endpoint)
        .exists()
    )
    query = sa.select(fb.request_id, fb.actual, fb.ts, logged).where(fb.endpoint == endpoint)
    if start is not None:
        query = query.where(fb.ts >= start - FEEDBACK_CLOCK_SKEW_MS)
    cursor.execute(*store.render(query.order_by(fb.ts, fb.id)))
    return cursor.fetchall()


def _loads_many(texts: Sequence[str | None]) -> list[Any]:
    """Parse many JSON texts with one orjson call (None stays None; bad text becomes None)."""
    if not texts:
        return []
    joined = "[" + ",".join("null" if text is None else text for text in texts) + "]"
    try:
        parsed: list[Any] = orjson.loads(joined)
        if len(parsed) == len(texts):
            return parsed
    except orjson.JSONDecodeError:
        pass
    return [_loads_one(text) for text in texts]  # some text is malformed: one by one


def _loads_one(text: str | bytes | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


class _Flattened:
    """Predicted rows gathered from requests' outputs."""

    __slots__ = ("index", "prediction", "probability", "request", "undecodable")

    def __init__(self) -> None:
        self.request: list[int] = []
        self.index: list[int] = []
        self.prediction: list[Any] = []
        self.probability: list[Any] = []  # a list of class probabilities per row, or None
        self.undecodable = 0

    def probability_matrix(self) -> FloatArray | None:
        """Rows x classes; NaN rows where none (or another number of classes) were logged."""
        present = [row for row, values in enumerate(self.probability) if values is not None]
        if not present:
            return None
        values = [self.probability[row] for row in present]
        widths = set(map(_width, values))
        width = _width(values[0])
        try:
            if len(widths) != 1 or width < 2:
                raise ValueError("ragged")
            flat = np.fromiter(chain.from_iterable(values), np.float64, len(values) * width)
            block = flat.reshape(len(values), width)
        except (TypeError, ValueError):  # ragged or not numbers: keep the rows like the first
            keep = [i for i, row in enumerate(values) if _numbers(row, width)]
            present = [present[i] for i in keep]
            block = np.array([values[i] for i in keep], dtype=np.float64).reshape(-1, width)
        if block.ndim != 2 or block.shape[1] < 2:
            return None
        matrix = np.full((len(self.request), block.shape[1]), np.nan)
        matrix[present] = block
        return matrix


def _width(values: Any) -> int:
    return len(values) if type(values) is list else 0


def _numbers(values: Any, width: int) -> bool:
    return (
        type(values) is list
        and len(values) == width > 0
        and all(type(value) is int or type(value) is float for value in values)
    )


def _flatten_outputs(texts: Sequence[str | None], statuses: Sequence[int]) -> _Flattened:
    flat = _Flattened()
    request, index, prediction, probability = (
        flat.request,
        flat.index,
        flat.prediction,
        flat.probability,
    )
    for position, document in enumerate(_loads_many(texts)):
        if type(document) is not dict or "predictions" not in document:
            if statuses[position] < 400:
                flat.undecodable += 1
            continue
        predictions = document["predictions"]
        probabilities = document.get("probabilities")
        if type(predictions) is not list:  # one row, logged as a scalar
            predictions = [predictions]
            if type(probabilities) is list and probabilities and type(probabilities[0]) is not list:
                probabilities = [probabilities]
        count = len(predictions)
        if count == 1:
            request.append(position)
            index.append(0)
        else:
            request.extend([position] * count)
            index.extend(range(count))
        prediction.extend(predictions)
        if type(probabilities) is list and len(probabilities) == count:
            probability.extend(probabilities)  # checked when the matrix is built
        else:
            probability.extend([None] * count)
    return flat


def _attach_feedback(
    request_id: ObjectArray, flat: _Flattened, labels: Sequence[tuple[Any, ...]]
) -> tuple[ObjectArray, BoolArray, int]:
    """Each row's actual value: a request's latest feedback, split over its rows."""
    rows = len(flat.request)
    actual = np.full(rows, None, dtype=object)
    labelled = np.zeros(rows, dtype=bool)
    if not labels or not rows:
        return actual, labelled, 0
    latest = {row[0]: row[1] for row in labels}  # oldest first: a correction wins
    ids = list(latest)
    values = dict(zip(ids, _loads_many([latest[key] for key in ids]), strict=True))
    # The rows of each request are contiguous: find each request's first row and count.
    row_request = np.asarray(flat.request, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, row_request[1:] != row_request[:-1]])
    counts = np.diff(np.r_[starts, rows])
    keys = request_id[row_request[starts]].tolist()
    found = [(j, values[key]) for j, key in enumerate(keys) if key in values]
    first, sizes = starts.tolist(), counts.tolist()
    positions: list[int] = []
    given: list[Any] = []
    mismatched = 0
    for j, value in found:
        start, count = first[j], sizes[j]
        if value is None:
            continue
        if type(value) is not list:
            if count != 1:
                mismatched += 1
                continue
            positions.append(start)
            given.append(value)
        elif len(value) == count:
            positions.extend(range(start, start + count))
            given.extend(value)
        else:
            mismatched += 1
    actual[positions] = _object_array(given)
    labelled[positions] = True
    return actual, labelled, mismatched


def _object_array(values: Sequence[Any]) -> ObjectArray:
    """A 1-D object array whose items may themselves be lists (never broadcast)."""
    return np.fromiter(values, dtype=object, count=len(values))


# -- logged inputs --------------------------------------------------------------------------
