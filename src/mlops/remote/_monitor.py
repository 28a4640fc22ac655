"""``RemoteModelMonitor``: ``ml.monitor`` over a server's REST API, with the embedded
results (performance and drift reports are computed by the server)."""

import builtins
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from mlops.errors import InvalidInput
from mlops.models._payload import is_dataframe
from mlops.monitoring import (
    Degradation,
    EstimatedPerformance,
    ModelMonitor,
    PerformanceGroup,
    PerformanceReport,
    ProbabilityCalibrator,
    Window,
)
from mlops.monitoring import _records as records
from mlops.monitoring._window import check_endpoint_name
from mlops.monitoring.drift import ColumnDrift, DriftReport, MultivariateDrift
from mlops.remote._alerts import RemoteAlertManager
from mlops.remote._http import ApiClient
from mlops.remote._operations import _float
from mlops.remote._tracking import path_part

__all__ = ["RemoteModelMonitor", "drift_report_of", "performance_report_of"]

#: Rows per request when recording predictions or feedback (one transaction each).
BATCH = 10_000


def _window_text(window: str | float | dt.timedelta | None) -> str | None:
    """A window as the API's query takes it ("1h", or seconds as "90s")."""
    if window is None or isinstance(window, str):
        return window
    if isinstance(window, dt.timedelta):
        window = window.total_seconds()
    if isinstance(window, bool) or not isinstance(window, (int, float)):
        raise InvalidInput(f"window {window!r} is not a duration like '1h', seconds or a timedelta")
    return f"{np.format_float_positional(float(window), trim='-')}s"


def _group_of(body: Mapping[str, Any]) -> PerformanceGroup:
    estimated = body["estimated"]
    metrics = body["metrics"]
    return PerformanceGroup(
        key=body["key"],
        requests=body["requests"],
        errors=body["errors"],
        client_errors=body["client_errors"],
        error_rate=_float(body["error_rate"]),
        client_error_rate=_float(body["client_error_rate"]),
        throughput=_float(body["throughput"]),
        latency_p50_ms=_float(body["latency_p50_ms"]),
        latency_p95_ms=_float(body["latency_p95_ms"]),
        latency_p99_ms=_float(body["latency_p99_ms"]),
        rows=body["rows"],
        labelled=body["labelled"],
        status=body["status"],
        reason=body["reason"],
        metrics=None if metrics is None else {k: _float(v) for k, v in metrics.items()},
        estimated=None
        if estimated is None
        else EstimatedPerformance(
            rows=estimated["rows"],
            classes=estimated["classes"],
            calibrated=estimated["calibrated"],
            metrics={k: _float(v) for k, v in estimated["metrics"].items()},
            confusion=tuple(
                tuple(float(value) for value in row) for row in estimated.get("confusion", [])
            ),
        ),
        degradation={
            metric: Degradation(
                metric=metric,
                baseline=float(item["baseline"]),
                current=float(item["current"]),
                delta=float(item["delta"]),
                change=_float(item["change"]),
                degradation=_float(item["degradation"]),
                higher_is_better=item["higher_is_better"],
            )
            for metric, item in body["degradation"].items()
        },
    )


def performance_report_of(body: Mapping[str, Any]) -> PerformanceReport:
    window = body["window"]
    baseline = body["baseline"]
    return PerformanceReport(
        endpoint=body["endpoint"],
        window=Window(
            until_ms=window["until_ms"], since_ms=window["since_ms"], last=window["last"]
        ),
        version=body["version"],
        by=body["by"],
        task=body["task"],
        min_labels=body["min_labels"],
        overall=_group_of(body["overall"]),
        groups=tuple(_group_of(group) for group in body["groups"]),
        orphan_feedback=body["orphan_feedback"],
        mismatched_feedback=body["mismatched_feedback"],
        baseline=None if baseline is None else {k: float(v) for k, v in baseline.items()},
    )


def _column_of(body: Mapping[str, Any]) -> ColumnDrift:
    return ColumnDrift(
        name=body["name"],
        kind=body["kind"],
        method=body["method"],
        statistic=_float(body["statistic"]),
        threshold=_float(body["threshold"]),
        p_value=_float(body["p_value"]),
        drifted=body["drifted"],
        status=body["status"],
        reference_rows=body["reference_rows"],
        current_rows=body["current_rows"],
        nulls=dict(body["nulls"]),
        new_categories=tuple(body["new_categories"]),
        message=body["message"],
        histogram=body["histogram"],
    )


def drift_report_of(body: Mapping[str, Any]) -> DriftReport:
    found = body["multivariate"]
    return DriftReport(
        columns=tuple(_column_of(column) for column in body["columns"]),
        drift_share=float(body["drift_share"]),
        drifted_count=body["drifted_count"],
        tested_count=body["tested_count"],
        share=float(body["share"]),
        dataset_drift=body["dataset_drift"],
        reference_rows=body["reference_rows"],
        current_rows=body["current_rows"],
        prediction=None if body["prediction"] is None else _column_of(body["prediction"]),
        multivariate=None
        if found is None
        else MultivariateDrift(
            columns=tuple(found["columns"]),
            components=found["components"],
            explained_variance=float(found["explained_variance"]),
            reference_error=_float(found["reference_error"]),
            lower=_float(found["lower"]),
            upper=_float(found["upper"]),
            current_error=_float(found["current_error"]),
            drifted=found["drifted"],
            status=found["status"],
            reference_rows=found["reference_rows"],
            current_rows=found["current_rows"],
            chunk_rows=found.get("chunk_rows", 0),
            chunk_errors=tuple(float(value) for value in found.get("chunk_errors", [])),
            message=found["message"],
        ),
        warnings=tuple(body["warnings"]),
    )


def _json(name: str, value: Any) -> Any:
    """``value`` as the JSON the embedded log stores (numpy, dates and NaN included)."""
    return orjson.loads(records._dumps(name, value))


def _chunks(count: int) -> Iterator[slice]:
    for start in range(0, count, BATCH):
        yield slice(start, min(start + BATCH, count))


_PREDICTION_OPTIONS = frozenset(
    {"probabilities", "request_id", "version", "route", "latency_ms", "ts"}
)


class RemoteModelMonitor(ModelMonitor):
    """Predictions and feedback in, performance, drift and alerts out, on a remote server:
    the same methods and results as the embedded ``ModelMonitor``. Recording sends at
    most 10,000 rows per request (one transaction each)."""

    def __init__(self, api: ApiClient, *, actor: str | None = None) -> None:
        self._api = api
        self.alerts = RemoteAlertManager(api, actor=actor)

    def __repr__(self) -> str:
        return f"<RemoteModelMonitor {self._api.url}>"

    def close(self) -> None:
        """Nothing to close here: the connection's ``close()`` closes the HTTP pool."""
        self.alerts.close()

    # -- write side ----------------------------------------------------------------------

    def record_prediction(self, endpoint: str, inputs: Any, prediction: Any, **options: Any) -> str:
        """Log one one-row request of a model served elsewhere; returns its request id."""
        if unknown := sorted(set(options) - _PREDICTION_OPTIONS):
            raise TypeError(
                f"record_prediction() got an unexpected keyword argument {unknown[0]!r}"
            )
        check_endpoint_name(endpoint)
        _, rows = records._inputs(inputs)  # checks them as embedded
        values = records._predictions(prediction, rows)
        if len(values) != 1:
            raise InvalidInput(
                f"a remote server logs one row per request, and this request has {len(values)}; "
                "log them with record_predictions (one request each)"
            )
        if isinstance(inputs, Mapping):
            inputs = [inputs]
        elif hasattr(inputs, "to_dict") and not is_dataframe(inputs):  # a pandas Series
            inputs = [inputs.to_dict()]
        request_id = options.pop("request_id", None)
        return self.record_predictions(
            endpoint,
            inputs,
            values,
            request_ids=None if request_id is None else [request_id],
            **options,
        )[0]

    def record_predictions(
        self, endpoint: str, inputs: Any, predictions: Any, **options: Any
    ) -> builtins.list[str]:
        """Log many one-row requests (10,000 per HTTP request); returns their request ids.

        Options: ``probabilities``, ``request_ids``, ``version``, ``route``, ``latency_ms``
        and ``ts`` (one for all or one per request), as embedded."""
        allowed = {"probabilities", "request_ids", "version", "route", "latency_ms", "ts"}
        if unknown := sorted(set(options) - allowed):
            raise TypeError(
                f"record_predictions() got an unexpected keyword argument {unknown[0]!r}"
            )
        check_endpoint_name(endpoint)
        values = records._sequence("predictions", predictions)
        count = len(values)
        if count == 0:
            raise InvalidInput("predictions is empty; give one prediction per request")
        labels = [records._label_value("prediction", value) for value in values]
        rows = records._records(inputs, count)
        given = options.get("probabilities")
        probabilities = None if given is None else records._probabilities(given, count)
        ids = records._request_ids(options.get("request_ids"), count)
        latencies = _per_request("latency_ms", options.get("latency_ms"), count, records._latency)
        stamps = _per_request("ts", options.get("ts"), count, records._ts)
        common: dict[str, Any] = {
            "version": records._version(options.get("version")),
            "route": records._route(options.get("route", records.EXTERNAL_ROUTE)),
        }
        path = f"/monitoring/endpoints/{path_part(endpoint)}/predictions"
        for part in _chunks(count):
            body = {
                **common,
                "predictions": labels[part],
                "request_ids": ids[part],
                "inputs": None if rows is None else _json("inputs", rows[part]),
                "probabilities": None if probabilities is None else probabilities[part],
                "latency_ms": latencies if not isinstance(latencies, list) else latencies[part],
                "ts": stamps if not isinstance(stamps, list) else stamps[part],
            }
            self._api.post(path, json={k: v for k, v in body.items() if v is not None})
        return ids

    def record_feedback(
        self, endpoint: str, request_id: str, actual: Any, *, ts: int | None = None
    ) -> None:
        self.record_feedback_batch(endpoint, [request_id], [actual], ts=ts)

    def record_feedback_batch(
        self,
        endpoint: str,
        request_ids: Sequence[str],
        actuals: Sequence[Any],
        *,
        ts: int | None = None,
    ) -> int:
        """Store many actual outcomes (10,000 per HTTP request, one transaction each);
        return how many were stored."""
        check_endpoint_name(endpoint)
        ids = records._sequence("request_ids", request_ids)
        values = records._sequence("actuals", actuals)
        if len(ids) != len(values):
            raise InvalidInput(
                f"{len(ids)} request ids and {len(values)} actual values; give one actual value "
                "per request id"
            )
        items = [
            {"request_id": records._request_id(ids[i]), "actual": records._actual(values[i])}
            for i in range(len(ids))
        ]
        stamp = None if ts is None else records._ts(ts)
        path = f"/monitoring/endpoints/{path_part(endpoint)}/feedback"
        recorded = 0
        for part in _chunks(len(items)):
            body: dict[str, Any] = {"feedback": items[part]}
            if stamp is not None:
                body["ts"] = stamp
            recorded += int(self._api.post(path, json=body)["recorded"])
        return recorded

    # -- reports -------------------------------------------------------------------------

    def endpoints(self, *, since: int | None = None) -> list[str]:
        params = {} if since is None else {"since": since}
        answer = self._api.get("/monitoring/endpoints", params=params)
        return [str(name) for name in answer["endpoints"]]

    def performance(
        self,
        endpoint: str,
        *,
        window: str | float | dt.timedelta | None = "1h",
        last: int | None = None,
        since: int | None = None,
        until: int | None = None,
        version: int | None = None,
        by: str | None = None,
        task: str | None = None,
        baseline: Mapping[str, float] | str | None = "auto",
        model: str | None = None,
        min_labels: int = 30,
        calibrator: ProbabilityCalibrator | None = None,
        now_ms: int | None = None,
    ) -> PerformanceReport:
        """As embedded; ``baseline`` is "auto", None or a version selector (a mapping of
        numbers and ``calibrator`` need the embedded monitor)."""
        check_endpoint_name(endpoint)
        if calibrator is not None:
            raise InvalidInput(
                "a calibrator cannot be sent to the server; leave it out (the server estimates "
                "uncalibrated), or connect to the server's database to use one"
            )
        if isinstance(baseline, Mapping) or not (baseline is None or isinstance(baseline, str)):
            raise InvalidInput(
                "a remote server compares with a registered version's metrics: give baseline "
                "'auto', None or a version selector (3, a stage, @alias), not numbers"
            )
        if window is not None and (last is not None or since is not None):
            window = None
        params = {
            "window": _window_text(window),
            "last": last,
            "since": since,
            "until": now_ms if until is None else until,
            "version": version,
            "by": by,
            "task": task,
            "baseline": "none" if baseline is None else baseline,
            "model": model,
            "min_labels": min_labels,
        }
        path = f"/monitoring/endpoints/{path_part(endpoint)}/performance"
        return performance_report_of(self._api.get(path, params=params))

    def target(
        self, endpoint: str, *, model: str | None = None, version: int | None = None
    ) -> tuple[str | None, int | None]:
        raise InvalidInput(
            "the server does not tell which model version an endpoint's reports compare "
            "against; see the endpoint's deployment (ml.deployments.status(endpoint)) or the "
            "baseline of ml.monitor.performance(endpoint)"
        )

    def drift(
        self,
        endpoint: str,
        *,
        window: str | float | dt.timedelta | None = "1d",
        last: int | None = None,
        since: int | None = None,
        until: int | None = None,
        current: Any = None,
        reference: Any = None,
        model: str | None = None,
        version: int | None = None,
        method: Any = None,
        threshold: float | Mapping[str, float] | None = None,
        drift_share: float = 0.5,
        multivariate: bool = True,
        predictions: bool = True,
        min_rows: int = 30,
        now_ms: int | None = None,
    ) -> DriftReport:
        """As embedded, on the logged inputs against the served version's reference; one
        ``method`` and one ``threshold`` for every column."""
        check_endpoint_name(endpoint)
        if current is not None or reference is not None:
            raise InvalidInput(
                "a remote server compares the inputs it logged with its reference profile; "
                "to compare your own frames call mlops.monitoring.drift.detect_drift(reference, "
                "current) here"
            )
        if method is not None and not isinstance(method, str):
            raise InvalidInput("a remote drift report takes one method name for every column")
        if threshold is not None and (
            isinstance(threshold, (bool, Mapping)) or not isinstance(threshold, (int, float))
        ):
            raise InvalidInput("a remote drift report takes one threshold for every column")
        if window is not None and (last is not None or since is not None):
            window = None
        params = {
            "window": _window_text(window),
            "last": last,
            "since": since,
            "until": now_ms if until is None else until,
            "version": version,
            "model": model,
            "method": method,
            "threshold": threshold,
            "drift_share": drift_share,
            "multivariate": multivariate,
            "predictions": predictions,
            "min_rows": min_rows,
        }
        path = f"/monitoring/endpoints/{path_part(endpoint)}/drift"
        return drift_report_of(self._api.get(path, params=params))


def _per_request(name: str, value: Any, count: int, check: Any) -> Any:
    """One checked value for every request, or a checked list of one per request."""
    if value is None:
        return None
    if isinstance(value, (int, float, np.number)):
        return check(value)
    return records._per_request(name, value, count, check)


# -- alerting ---------------------------------------------------------------------------
