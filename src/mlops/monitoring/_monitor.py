"""``ml.monitor``: one facade over predictions, feedback, performance, drift and alerts."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from mlops.errors import InvalidInput, MLOpsError, NotFound
from mlops.monitoring import _records
from mlops.monitoring._baseline import baseline_from_registry
from mlops.monitoring._estimate import ProbabilityCalibrator
from mlops.monitoring._inputs import column_array, decode_inputs
from mlops.monitoring._performance import PerformanceReport, performance
from mlops.monitoring._window import check_endpoint_name, read_window, resolve_window
from mlops.monitoring.alerts import AlertManager
from mlops.monitoring.drift import DEFAULT_MIN_ROWS, DriftReport, detect_drift
from mlops.registry import ModelRegistry, Stage
from mlops.serving._endpoints import EndpointStore
from mlops.store import Store
from mlops.store._schema import prediction_log

__all__ = ["PREDICTION_COLUMN", "ModelMonitor"]

#: The column that carries the model's outputs in endpoint drift reports.
PREDICTION_COLUMN = "prediction"

WindowSpec = str | float | dt.timedelta | None


class ModelMonitor:
    """Predictions and feedback in, performance, drift and alerts out.

    Reads the prediction log that ``mlops server`` writes, plus what
    ``record_prediction`` logs for models served elsewhere. Thread-safe.
    ``alerts`` is the AlertManager whose rules measure this monitor's signals.
    """

    def __init__(self, store: Store, registry: ModelRegistry, *, actor: str | None = None) -> None:
        from mlops.monitoring._signals import MonitorSignals

        self._store = store
        self._registry = registry
        self._lock = threading.Lock()
        self._reference_cache: dict[tuple[str, int], dict[str, np.ndarray[Any, Any]] | None] = {}
        self.alerts = AlertManager(store, signals=MonitorSignals(self), actor=actor)

    def close(self) -> None:
        """Close the connections kept for alert notifications."""
        self.alerts.close()

    def endpoints(self, *, since: int | None = None) -> list[str]:
        """The endpoints there is something to monitor on, sorted: every serving endpoint,
        and every endpoint with predictions logged (at or after ``since``, epoch ms)."""
        query = sa.select(prediction_log.c.endpoint).distinct()
        if since is not None:
            query = query.where(prediction_log.c.ts >= since)
        with self._store.read() as connection:
            logged = {str(row[0]) for row in connection.execute(query)}
        served = {endpoint.name for endpoint in EndpointStore(self._store).list()}
        return sorted(logged | served)

    # -- write side ----------------------------------------------------------------------

    def record_prediction(self, endpoint: str, inputs: Any, prediction: Any, **options: Any) -> str:
        """Log one request of a model served elsewhere; returns its request id.

        Options: ``probabilities``, ``request_id``, ``version``, ``route`` (default
        "external"), ``latency_ms``, ``ts`` (epoch ms). See ``record_predictions`` for many.
        """
        return _records.record_prediction(self._store, endpoint, inputs, prediction, **options)

    def record_predictions(
        self, endpoint: str, inputs: Any, predictions: Any, **options: Any
    ) -> list[str]:
        """Log many one-row requests in one transaction; returns their request ids."""
        return _records.record_predictions(self._store, endpoint, inputs, predictions, **options)

    def record_feedback(
        self, endpoint: str, request_id: str, actual: Any, *, ts: int | None = None
    ) -> None:
        """Store a request's actual outcome; it may arrive before or long after the request."""
        _records.record_feedback(self._store, endpoint, request_id, actual, ts=ts)

    def record_feedback_batch(
        self,
        endpoint: str,
        request_ids: Sequence[str],
        actuals: Sequence[Any],
        *,
        ts: int | None = None,
    ) -> int:
        """Store many actual outcomes in one transaction; return how many were stored."""
        return _records.record_feedback_batch(self._store, endpoint, request_ids, actuals, ts=ts)

    # -- performance ---------------------------------------------------------------------

    def performance(
        self,
        endpoint: str,
        *,
        window: WindowSpec = "1h",
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
        """Traffic and model quality of an endpoint over a window, against a baseline.

        ``baseline="auto"`` takes the metrics of the version the endpoint serves (or the
        production version of ``model``, default: the endpoint's model or a model named
        like the endpoint) and reports nothing to compare when there is none; a stage,
        "@alias" or version number picks another version; a mapping gives the numbers.
        ``window`` is None when ``last`` or ``since`` choose the requests. ``calibrator``
        (``calibrator_from_log`` on a labelled window) calibrates the label-free estimates.
        """
        if window is not None and (last is not None or since is not None):
            window = None
        chosen = self._baseline(endpoint, baseline, model, version)
        return performance(
            self._store,
            endpoint,
            window=window,
            last=last,
            since=since,
            until=until,
            version=version,
            by=by,
            task=task,
            baseline=chosen,
            min_labels=min_labels,
            calibrator=calibrator,
            now_ms=now_ms,
        )

    def _baseline(
        self,
        endpoint: str,
        baseline: Mapping[str, float] | str | None,
        model: str | None,
        version: int | None,
    ) -> Mapping[str, float] | None:
        if baseline is None or isinstance(baseline, Mapping):
            return baseline
        if not isinstance(baseline, str):
            raise InvalidInput(
                f"baseline must be 'auto', a version selector, a mapping or None; got {baseline!r}"
            )
        if baseline == "auto":
            name, number = self.target(endpoint, model=model, version=version)
            if name is None or number is None:
                return None
            try:
                return baseline_from_registry(self._store, name, number)
            except NotFound:
                return None
        name, _ = self.target(endpoint, model=model, version=version)
        if name is None:
            raise NotFound(
                f"endpoint {endpoint!r} serves no registered model and no model is named "
                f"like it; pass model='…' to take the baseline {baseline!r} from"
            )
        return baseline_from_registry(self._store, name, baseline)

    def target(
        self, endpoint: str, *, model: str | None = None, version: int | None = None
    ) -> tuple[str | None, int | None]:
        """The registered model and version an endpoint's reports compare against.

        The serving endpoint's model and its stable version; for a model served
        elsewhere, ``model`` (default: a registered model named like the endpoint) and its
        production version, else its latest. (None, None) when there is no such model.
        """
        check_endpoint_name(endpoint)
        name = model
        number = version
        if name is None:
            try:
                served = EndpointStore(self._store).get(endpoint)
            except NotFound:
                served = None
            if served is not None:
                name = served.model
                if number is None:
                    routes = served.routes.routes
                    stable = [r for r in routes if r.role == "stable"] or list(routes)
                    if stable:
                        number = max(stable, key=lambda r: r.weight).version
        if name is None:
            try:
                self._registry.get_model(endpoint)
            except NotFound:
                return None, None
            name = endpoint
        if number is None:
            versions = self._registry.list_versions(name)
            if not versions:
                return name, None
            production = [v for v in versions if v.stage == Stage.PRODUCTION]
            number = (production or versions)[-1].number
        return name, number

    # -- drift ---------------------------------------------------------------------------

    def drift(
        self,
        endpoint: str,
        *,
        window: WindowSpec = "1d",
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
        min_rows: int = DEFAULT_MIN_ROWS,
        now_ms: int | None = None,
    ) -> DriftReport:
        """Drift of an endpoint's inputs (and predictions) against its model's reference.

        ``current`` defaults to the inputs logged in the window (``window``, ``last`` or
        ``since``/``until``); ``reference`` to the reference profile of the version the
        endpoint serves (its training-data sample). With ``predictions``, the model's
        outputs are compared too (``report.prediction``): the logged ones against the
        version's predictions on the reference sample, or a ``prediction`` column given
        in both frames.
        """
        name, number = (None, None)
        if reference is None or current is None:
            name, number = self.target(endpoint, model=model, version=version)
        reference_columns: Any = reference
        if reference is None:
            reference_columns = self._reference(endpoint, name, number, predictions)
        if current is None:
            if window is not None and (last is not None or since is not None):
                window = None
            names = list(reference_columns) if isinstance(reference_columns, dict) else None
            current = self._current(
                endpoint, window, last, since, until, version, names, now_ms, predictions
            )
        prediction = _prediction_column(reference_columns, current) if predictions else None
        return detect_drift(
            reference_columns,
            current,
            method=method,
            threshold=threshold,
            drift_share=drift_share,
            prediction=prediction,
            min_rows=min_rows,
            multivariate=multivariate,
        )

    def _reference(
        self, endpoint: str, name: str | None, number: int | None, predictions: bool
    ) -> dict[str, np.ndarray[Any, Any]]:
        if name is None or number is None:
            raise NotFound(
                f"endpoint {endpoint!r} has no registered model version to take a reference "
                "from; pass reference=<a DataFrame of training data> (--reference FILE on the "
                "command line), or model='…'"
            )
        key = (name, number)
        with self._lock:
            cached = self._reference_cache.get(key)
        if cached is None:
            cached = self._load_reference(name, number)
            with self._lock:
                self._reference_cache[key] = cached
        if not predictions:
            cached = {k: v for k, v in cached.items() if k != PREDICTION_COLUMN}
        return dict(cached)

    def _load_reference(self, name: str, number: int) -> dict[str, np.ndarray[Any, Any]]:
        profile = self._registry.reference_profile(name, number)
        if profile is None or not profile.get("sample", {}).get("data"):
            raise NotFound(
                f"version {number} of model {name!r} has no reference profile to compare "
                "with; register it with reference_data=<training features>, or pass "
                "reference=<a DataFrame> (--reference FILE on the command line)"
            )
        sample = profile["sample"]
        names = [str(column) for column in sample["columns"]]
        rows = sample["data"]
        columns = {
            column: column_array([row[index] for row in rows]) for index, column in enumerate(names)
        }
        if PREDICTION_COLUMN not in columns:
            predicted = self._reference_predictions(name, number, names, rows)
            if predicted is not None:
                columns[PREDICTION_COLUMN] = predicted
        return columns

    def _reference_predictions(
        self, name: str, number: int, names: list[str], rows: list[list[Any]]
    ) -> np.ndarray[Any, Any] | None:
        """The version's own predictions on its reference sample (None if it cannot load)."""
        try:
            loaded = self._registry.load_model(name, number)
            records = [dict(zip(names, row, strict=True)) for row in rows]
            try:
                output = loaded.predict(records)
            except MLOpsError:
                output = loaded.predict(rows)
        except MLOpsError:
            return None
        except Exception:  # a model's own failure must not break a drift report
            return None
        values = output.get("predictions") if isinstance(output, Mapping) else None
        if values is None:
            return None
        array = np.asarray(values)
        if array.ndim != 1 or len(array) != len(rows):
            return None
        return column_array(array.tolist())

    def _current(
        self,
        endpoint: str,
        window: WindowSpec,
        last: int | None,
        since: int | None,
        until: int | None,
        version: int | None,
        names: list[str] | None,
        now_ms: int | None,
        predictions: bool,
    ) -> dict[str, np.ndarray[Any, Any]]:
        span = resolve_window(window, last=last, since=since, until=until, now_ms=now_ms)
        data = read_window(
            self._store,
            endpoint,
            span,
            version=version,
            outputs=predictions,
            feedback=False,
            inputs=True,
        )
        assert data.inputs is not None
        features = [n for n in names or () if n != PREDICTION_COLUMN] or None
        # Only what the model answered: a rejected request's inputs (422) never reached it.
        answered = np.flatnonzero(data.status < 400)
        decoded = decode_inputs(data.inputs[answered].tolist(), names=features)
        if decoded.rows == 0:
            raise InvalidInput(
                f"endpoint {endpoint!r} logged no decodable inputs of answered requests in "
                f"{span.label} ({data.requests} requests, {len(answered)} answered, "
                f"{decoded.skipped} undecodable, {decoded.missing} without inputs); widen the "
                "window, or pass current=…"
            )
        columns = dict(decoded.columns)
        if predictions and data.rows:
            columns[PREDICTION_COLUMN] = _align_predictions(
                answered[decoded.request], decoded.row_index, data.row_request, data.row_index, data
            )
        return columns


def _align_predictions(
    input_request: np.ndarray[Any, Any],
    input_row: np.ndarray[Any, Any],
    output_request: np.ndarray[Any, Any],
    output_row: np.ndarray[Any, Any],
    data: Any,
) -> np.ndarray[Any, Any]:
    """Each decoded input row's prediction (None where the request has none)."""
    width = int(max(input_row.max(initial=0), output_row.max(initial=0))) + 1
    input_keys = input_request.astype(np.int64) * width + input_row
    output_keys = output_request.astype(np.int64) * width + output_row
    _, at_input, at_output = np.intersect1d(
        input_keys, output_keys, assume_unique=True, return_indices=True
    )
    values = np.empty(len(input_keys), dtype=object)
    values[:] = None
    values[at_input] = data.prediction[at_output]
    return column_array(values.tolist())


def _prediction_column(reference: Any, current: Any) -> str | None:
    """PREDICTION_COLUMN when both sides carry it."""

    def has(table: Any) -> bool:
        if isinstance(table, Mapping):
            return PREDICTION_COLUMN in table
        columns = getattr(table, "columns", None)
        return columns is not None and PREDICTION_COLUMN in list(columns)

    return PREDICTION_COLUMN if has(reference) and has(current) else None
