"""Prometheus metrics of one serving app, in its own registry."""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from mlops.serving._predlog import PredictionLogWriter

__all__ = ["CONTENT_TYPE", "ServingMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_STATUS = {code: str(code) for code in (200, 400, 404, 413, 422, 500, 503)}
_LOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class _LogCollector(Collector):
    """Reads the prediction log writer's counters when scraped (nothing on the hot path)."""

    def __init__(self, writer: PredictionLogWriter) -> None:
        self._writer = writer

    def collect(self) -> Iterator[Any]:
        writer = self._writer
        yield CounterMetricFamily(
            "mlops_prediction_log_dropped",
            "Prediction log records dropped because the queue was full.",
            value=writer.dropped,
        )
        yield CounterMetricFamily(
            "mlops_prediction_log_failed",
            "Prediction log records lost because the database refused their batch.",
            value=writer.failed,
        )
        yield GaugeMetricFamily(
            "mlops_prediction_log_queue_size",
            "Prediction log records waiting to be written.",
            value=writer.queue_size,
        )


class _RequestCollector(Collector):
    """Request counts and latency buckets in plain dicts, turned into metrics on scrape."""

    # prometheus_client's labelled children take a lock and walk the buckets in Python on
    # every observation; this costs one lock, one bisect and three additions.

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str, str], int] = {}
        self._latency: dict[tuple[str, str, str], list[float]] = {}

    def observe(self, endpoint: str, version: str, route: str, status: str, seconds: float) -> None:
        key = (endpoint, version, route)
        with self._lock:
            counted = (endpoint, version, route, status)
            self._counts[counted] = self._counts.get(counted, 0) + 1
            series = self._latency.get(key)
            if series is None:  # buckets..., +Inf, then the sum
                series = self._latency[key] = [0.0] * (len(_LATENCY_BUCKETS) + 2)
            series[bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1
            series[-1] += seconds

    def collect(self) -> Iterator[Any]:
        with self._lock:
            counts = dict(self._counts)
            latency = {key: list(series) for key, series in self._latency.items()}
        requests = CounterMetricFamily(
            "mlops_requests",
            "Prediction requests answered, by endpoint, version, route and HTTP status.",
            labels=["endpoint", "version", "route", "status"],
        )
        for counted, value in sorted(counts.items()):
            requests.add_metric(list(counted), value)
        yield requests
        histogram = HistogramMetricFamily(
            "mlops_request_latency_seconds",
            "Time from reading a prediction request to its response, in seconds.",
            labels=["endpoint", "version", "route"],
        )
        bounds = [*(repr(b) for b in _LATENCY_BUCKETS), "+Inf"]
        for labels, series in sorted(latency.items()):
            cumulative = list(itertools.accumulate(series[:-1]))
            histogram.add_metric(
                list(labels), list(zip(bounds, cumulative, strict=True)), series[-1]
            )
        yield histogram


class ServingMetrics:
    """Request counters and latency histograms of one app, and its model load times."""

    def __init__(self, writer: PredictionLogWriter) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = _RequestCollector()
        self.registry.register(self._requests)
        self._load = Histogram(
            "mlops_model_load_seconds",
            "Time to load, verify, compile and warm up a model version, in seconds.",
            ["model"],
            buckets=_LOAD_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LogCollector(writer))
        self._labels: dict[int | None, str] = {None: ""}

    def observe(
        self, endpoint: str, version: int | None, route: str, status: int, seconds: float
    ) -> None:
        """Count one request and its latency (thread-safe)."""
        label = self._labels.get(version)
        if label is None:
            label = self._labels[version] = str(version)
        self._requests.observe(endpoint, label, route, _STATUS.get(status) or str(status), seconds)

    def model_loaded(self, model: str, seconds: float) -> None:
        self._load.labels(model).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of this app's metrics."""
        return generate_latest(self.registry)
