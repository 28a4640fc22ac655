"""Prometheus metrics of one serving app, in its own registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mlops.serving._predlog import PredictionLogWriter

__all__ = ["CONTENT_TYPE", "ServingMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
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


class ServingMetrics:
    """Request counters and latency histograms; labelled children cached per label set."""

    def __init__(self, writer: PredictionLogWriter) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "mlops_requests",
            "Prediction requests answered, by endpoint, version, route and HTTP status.",
            ["endpoint", "version", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "mlops_request_latency_seconds",
            "Time from reading a prediction request to its response, in seconds.",
            ["endpoint", "version", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._load = Histogram(
            "mlops_model_load_seconds",
            "Time to load, verify, compile and warm up a model version, in seconds.",
            ["model"],
            buckets=_LOAD_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LogCollector(writer))
        self._request_children: dict[tuple[str, int | None, str, int], Any] = {}
        self._latency_children: dict[tuple[str, int | None, str], Any] = {}

    def observe(
        self, endpoint: str, version: int | None, route: str, status: int, seconds: float
    ) -> None:
        """Count one request and its latency."""
        key = (endpoint, version, route, status)
        counter = self._request_children.get(key)
        if counter is None:
            label = "" if version is None else str(version)
            counter = self._requests.labels(endpoint, label, route, str(status))
            self._request_children[key] = counter
        counter.inc()
        latency_key = (endpoint, version, route)
        histogram = self._latency_children.get(latency_key)
        if histogram is None:
            label = "" if version is None else str(version)
            histogram = self._latency.labels(endpoint, label, route)
            self._latency_children[latency_key] = histogram
        histogram.observe(seconds)

    def model_loaded(self, model: str, seconds: float) -> None:
        self._load.labels(model).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of this app's metrics."""
        return generate_latest(self.registry)
