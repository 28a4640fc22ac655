"""The Prometheus side of a cluster: the series `/metrics` exports, a ServiceMonitor that
scrapes them and a PrometheusRule alerting on them (prometheus-operator CRDs)."""

from __future__ import annotations

from typing import Any

from mlops.cluster._options import ClusterOptions

__all__ = [
    "MODEL_LOAD_SECONDS",
    "PREDICTION_LOG_DROPPED",
    "PREDICTION_LOG_FAILED",
    "PREDICTION_LOG_QUEUE",
    "REQUESTS",
    "REQUEST_LATENCY_SECONDS",
    "alert_rules",
    "prometheus_rule",
    "service_monitor",
]

# The series of mlops.serving's ServingMetrics, as Prometheus stores them (counters end
# in _total; a histogram is read through its _bucket series).
REQUESTS = "mlops_requests_total"  # labels: endpoint, version, route, status
REQUEST_LATENCY_SECONDS = "mlops_request_latency_seconds"  # endpoint, version, route
PREDICTION_LOG_DROPPED = "mlops_prediction_log_dropped_total"
PREDICTION_LOG_FAILED = "mlops_prediction_log_failed_total"
PREDICTION_LOG_QUEUE = "mlops_prediction_log_queue_size"
MODEL_LOAD_SECONDS = "mlops_model_load_seconds"  # labels: model

# Shadow calls run after the response is sent: their errors and latency reach no caller.
_ANSWERED = 'route!="shadow"'
# The prediction log writer drops records beyond 100,000 queued (PredictionLogWriter).
_QUEUE_WARNING = 50_000


def service_monitor(opts: ClusterOptions, labels: dict[str, str]) -> dict[str, Any]:
    """Scrape `/metrics` of the control-plane and serving Services."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": opts.name,
            "namespace": opts.namespace,
            "labels": _with_release(opts, labels),
        },
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "mlops",
                    "app.kubernetes.io/instance": opts.name,
                }
            },
            "namespaceSelector": {"matchNames": [opts.namespace]},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "scheme": "http",
                    "interval": opts.scrape_interval,
                    "scrapeTimeout": "10s",
                }
            ],
        },
    }


def prometheus_rule(opts: ClusterOptions, labels: dict[str, str]) -> dict[str, Any]:
    """The alerting rules of :func:`alert_rules` as a PrometheusRule object."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": opts.name,
            "namespace": opts.namespace,
            "labels": _with_release(opts, labels),
        },
        "spec": {"groups": [alert_rules(opts)]},
    }


def _with_release(opts: ClusterOptions, labels: dict[str, str]) -> dict[str, str]:
    if opts.prometheus_release is None:
        return dict(labels)
    return {**labels, "release": opts.prometheus_release}


def alert_rules(opts: ClusterOptions) -> dict[str, Any]:
    """One Prometheus rule group (the format `promtool check rules` reads) of mlops alerts."""
    scope = f'namespace="{opts.namespace}", job=~"{opts.name}-(api|serving)"'
    by_endpoint = "sum by (namespace, endpoint)"
    errors = (
        f'{by_endpoint} (rate({REQUESTS}{{{scope}, {_ANSWERED}, status=~"5.."}}[5m]))\n'
        f"/\n"
        f"{by_endpoint} (rate({REQUESTS}{{{scope}, {_ANSWERED}}}[5m]))\n"
        f"> {opts.error_ratio_threshold:g}"
    )
    latency = (
        "histogram_quantile(0.95,\n"
        f"  sum by (namespace, endpoint, le) (\n"
        f"    rate({REQUEST_LATENCY_SECONDS}_bucket{{{scope}, {_ANSWERED}}}[5m])\n"
        "  )\n"
        f") > {opts.latency_p95_threshold:g}"
    )
    rules = [
        _alert(
            "MLOpsTargetDown",
            f"up{{{scope}}} == 0",
            "5m",
            "critical",
            "mlops server {{ $labels.pod }} cannot be scraped",
            "Prometheus has not reached /metrics of {{ $labels.pod }} in namespace "
            "{{ $labels.namespace }} for 5 minutes; check the pod's events and logs.",
        ),
        _alert(
            "MLOpsHighErrorRatio",
            errors,
            "10m",
            "warning",
            "endpoint {{ $labels.endpoint }} fails {{ $value | humanizePercentage }} of requests",
            "More than "
            f"{opts.error_ratio_threshold:.0%} of prediction requests to endpoint "
            "{{ $labels.endpoint }} end with a 5xx status; see `mlops deployments status "
            "{{ $labels.endpoint }}` and the serving pods' logs.",
        ),
        _alert(
            "MLOpsHighLatencyP95",
            latency,
            "10m",
            "warning",
            "endpoint {{ $labels.endpoint }} p95 latency is {{ $value | humanizeDuration }}",
            f"The 95th percentile latency of endpoint {{{{ $labels.endpoint }}}} is above "
            f"{opts.latency_p95_threshold:g}s; add serving replicas (raise the HPA maximum) "
            "or check the model version's cost.",
        ),
        _alert(
            "MLOpsPredictionLogDropping",
            f"sum by (namespace, pod) (increase({PREDICTION_LOG_DROPPED}{{{scope}}}[10m])) > 0",
            "0m",
            "warning",
            "{{ $labels.pod }} drops prediction log records",
            "The prediction log queue of {{ $labels.pod }} is full, so records are dropped "
            "(predictions are still answered); monitoring sees fewer predictions. Check the "
            "database's write latency or add serving replicas.",
        ),
        _alert(
            "MLOpsPredictionLogWriteFailures",
            f"sum by (namespace, pod) (increase({PREDICTION_LOG_FAILED}{{{scope}}}[10m])) > 0",
            "0m",
            "critical",
            "{{ $labels.pod }} cannot write prediction log records",
            "The database refused prediction log batches of {{ $labels.pod }}; those records "
            "are lost. Check the database and the pod's logs.",
        ),
        _alert(
            "MLOpsPredictionLogBacklog",
            f"max by (namespace, pod) ({PREDICTION_LOG_QUEUE}{{{scope}}}) > {_QUEUE_WARNING}",
            "5m",
            "warning",
            "{{ $labels.pod }} has {{ $value }} prediction log records waiting",
            "The prediction log writer of {{ $labels.pod }} falls behind; past 100000 queued "
            "records it drops them. Check the database's write latency.",
        ),
        _alert(
            "MLOpsSlowModelLoad",
            "histogram_quantile(0.9,\n"
            f"  sum by (namespace, model, le) (rate({MODEL_LOAD_SECONDS}_bucket{{{scope}}}[30m]))\n"
            ") > 60",
            "0m",
            "info",
            "loading model {{ $labels.model }} takes {{ $value | humanizeDuration }}",
            "New serving replicas stay unready while they load model {{ $labels.model }}; "
            "scale-ups react slower. Consider a smaller artifact or a faster artifact store.",
        ),
    ]
    return {"name": f"{opts.name}.rules", "rules": rules}


def _alert(
    name: str, expr: str, duration: str, severity: str, summary: str, description: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }
