"""ServiceMonitor, PrometheusRule and Grafana dashboard: well-formed for the
prometheus-operator, valid PromQL over the series `/metrics` really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from cluster._cli import parse_command_line
from mlops.cluster import ClusterOptions, alert_rules, dashboard_json, grafana_dashboard
from mlops.cluster import render_manifests as render
from mlops.serving._gateway import SHADOW_ROUTE
from mlops.serving._metrics import ServingMetrics
from mlops.serving._predlog import PredictionLogWriter
from mlops.store import Store

SQLITE_ONLY = True

REPO = Path(__file__).resolve().parents[2]
# Labels Prometheus and the prometheus-operator add to every scraped series.
_TARGET_LABELS = {"namespace", "pod", "job", "service", "instance", "container", "endpoint"}

# The prometheus-operator's documented fields (monitoring.coreos.com/v1) of what we render:
# {key: schema}, a schema being a type, [schema] (a list), or a dict; "!" marks required.
_LABELS = {str: str}
_OBJECT_META = {"!name": str, "!namespace": str, "labels": _LABELS, "annotations": _LABELS}
_LABEL_SELECTOR = {"matchLabels": _LABELS, "matchExpressions": [dict]}
_SERVICE_MONITOR = {
    "!apiVersion": str,
    "!kind": str,
    "!metadata": _OBJECT_META,
    "!spec": {
        "!selector": _LABEL_SELECTOR,
        "!endpoints": [
            {
                "port": str,
                "targetPort": (str, int),
                "path": str,
                "scheme": str,
                "params": dict,
                "interval": str,
                "scrapeTimeout": str,
                "honorLabels": bool,
                "honorTimestamps": bool,
                "relabelings": [dict],
                "metricRelabelings": [dict],
                "bearerTokenSecret": dict,
                "authorization": dict,
                "tlsConfig": dict,
                "followRedirects": bool,
                "enableHttp2": bool,
            }
        ],
        "namespaceSelector": {"any": bool, "matchNames": [str]},
        "jobLabel": str,
        "targetLabels": [str],
        "podTargetLabels": [str],
        "sampleLimit": int,
    },
}
_RULE = {
    "alert": str,
    "record": str,
    "!expr": str,
    "for": str,
    "keep_firing_for": str,
    "labels": _LABELS,
    "annotations": _LABELS,
}
_PROMETHEUS_RULE = {
    "!apiVersion": str,
    "!kind": str,
    "!metadata": _OBJECT_META,
    "!spec": {
        "!groups": [
            {
                "!name": str,
                "interval": str,
                "limit": int,
                "partial_response_strategy": str,
                "!rules": [_RULE],
            }
        ]
    },
}


def schema_problems(value: Any, schema: Any, path: str = "") -> list[str]:
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [
            p
            for i, item in enumerate(value)
            for p in schema_problems(item, schema[0], f"{path}[{i}]")
        ]
    if isinstance(schema, dict) and schema and all(isinstance(k, type) for k in schema):
        ((key_type, value_type),) = schema.items()
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping"]
        return [
            f"{path}.{key}: expected {value_type.__name__}"
            for key, item in value.items()
            if not (isinstance(key, key_type) and isinstance(item, value_type))
        ]
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping"]
        fields = {key.lstrip("!"): sub for key, sub in schema.items()}
        problems = [
            f"{path}.{key[1:]}: required"
            for key in schema
            if key.startswith("!") and key[1:] not in value
        ]
        for key, item in value.items():
            if key not in fields:
                problems.append(f"{path}.{key}: not a documented field")
            else:
                problems += schema_problems(item, fields[key], f"{path}.{key}")
        return problems
    return [] if isinstance(value, schema) else [f"{path}: expected {schema}, got {value!r}"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Every series name a serving app's /metrics shows, with its labels."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('metrics') / 'mlops.db'}")
    try:
        metrics = ServingMetrics(PredictionLogWriter(store))
        metrics.observe("churn", 1, "primary", 200, 0.01)
        metrics.observe("churn", 2, SHADOW_ROUTE, 500, 0.2)
        metrics.model_loaded("churn", 1.5)
        text = metrics.render().decode()
    finally:
        store.dispose()
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def _rule_manifest(options: ClusterOptions | None = None) -> dict[str, Any]:
    return next(m for m in render(options) if m["kind"] == "PrometheusRule")


def _dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in grafana_dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def _rule_exprs() -> list[str]:
    return [rule["expr"] for rule in alert_rules(ClusterOptions())["rules"]]


def test_operator_objects_match_the_documented_fields() -> None:
    manifests = {m["kind"]: m for m in render(ClusterOptions(prometheus_release="kps"))}
    monitor, rule = manifests["ServiceMonitor"], manifests["PrometheusRule"]
    assert schema_problems(monitor, _SERVICE_MONITOR) == []
    assert schema_problems(rule, _PROMETHEUS_RULE) == []
    assert monitor["apiVersion"] == rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    # The monitor selects both Services by their labels and scrapes their named port.
    for service in (m for m in render() if m["kind"] == "Service"):
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"]["labels"].items()
        )
        assert service["spec"]["ports"][0]["name"] == monitor["spec"]["endpoints"][0]["port"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert schema_problems({"a": "x"}, {"!a": str}) == []  # the checker itself
    assert schema_problems({"b": 1}, {"!a": str}) == [".a: required", ".b: not a documented field"]


def test_no_monitoring_objects_without_monitoring() -> None:
    kinds = {m["kind"] for m in render(ClusterOptions(monitoring=False))}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}


def test_queries_use_the_series_and_labels_metrics_exports(exported: dict[str, set[str]]) -> None:
    exprs = _rule_exprs() + _dashboard_exprs()
    used = {name for expr in exprs for name in re.findall(r"\bmlops_[a-z0-9_]+", expr)}
    assert used <= set(exported), f"not exported: {used - set(exported)}"
    assert {
        "mlops_requests_total",
        "mlops_request_latency_seconds_bucket",
        "mlops_prediction_log_dropped_total",
        "mlops_prediction_log_failed_total",
        "mlops_prediction_log_queue_size",
    } <= used
    known_labels = set().union(*exported.values()) | _TARGET_LABELS
    for expr in exprs:
        for grouping in re.findall(r"by \(([^)]*)\)", expr):
            labels = {label.strip() for label in grouping.split(",")}
            assert labels <= known_labels, f"{expr}: unknown labels {labels - known_labels}"
        for label in re.findall(r"([a-z_]+)\s*(?:=~|!=|=)\s*\"", expr):
            assert label in known_labels, f"{expr}: unknown label {label}"
    assert all(f'route!="{SHADOW_ROUTE}"' in expr for expr in _rule_exprs()[1:3])


def test_every_expression_parses_as_promql() -> None:
    promql_parser = pytest.importorskip("promql_parser")
    for expr in _rule_exprs():
        promql_parser.parse(expr)
    for expr in _dashboard_exprs():
        # Grafana fills these in before Prometheus sees the query.
        concrete = expr.replace("$__rate_interval", "1m").replace("$namespace", ".*")
        promql_parser.parse(concrete.replace("$endpoint", ".*"))
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (endpoint (rate(x[5m]))")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return path


def test_promtool_accepts_the_rules(promtool: str, tmp_path: Path) -> None:
    groups = {"groups": _rule_manifest()["spec"]["groups"]}
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(groups, sort_keys=False))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout + result.stderr


def test_alerts_fire_on_failing_and_slow_endpoints(promtool: str, tmp_path: Path) -> None:
    """promtool's rule unit tests: real series in, the alerts we expect out."""
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": [alert_rules(ClusterOptions())]})
    )
    scope = 'namespace="mlops", job="mlops-serving", pod="p1", endpoint="churn", version="3"'
    requests, bucket = "mlops_requests_total", "mlops_request_latency_seconds_bucket"
    dropped = 'mlops_prediction_log_dropped_total{namespace="mlops", job="mlops-serving", pod="p1"}'
    series = [
        # 10 requests a minute, 4 of them 500s: a 40% error ratio.
        (f'{requests}{{{scope}, route="stable", status="200"}}', "0+6x30"),
        (f'{requests}{{{scope}, route="stable", status="500"}}', "0+4x30"),
        # Every request takes between 1 and 2.5 seconds.
        (f'{bucket}{{{scope}, route="stable", le="1.0"}}', "0x30"),
        (f'{bucket}{{{scope}, route="stable", le="2.5"}}', "0+10x30"),
        (f'{bucket}{{{scope}, route="stable", le="+Inf"}}', "0+10x30"),
        (dropped, "0 0 0 0 0 5 10 10 10 10 10"),
    ]
    endpoint_labels = {"endpoint": "churn", "namespace": "mlops", "severity": "warning"}
    pod_labels = {"namespace": "mlops", "pod": "p1", "severity": "warning"}

    def expected(alert: str, labels: dict[str, str], summary: str) -> dict[str, Any]:
        description = rules[alert]["annotations"]["description"]
        for name, value in labels.items():
            description = description.replace(f"{{{{ $labels.{name} }}}}", value)
        return {
            "exp_labels": labels,
            "exp_annotations": {"summary": summary, "description": description},
        }

    rules = {rule["alert"]: rule for rule in alert_rules(ClusterOptions())["rules"]}
    checks = [
        ("20m", "MLOpsHighErrorRatio",
         [expected("MLOpsHighErrorRatio", endpoint_labels,
                   "endpoint churn fails 40% of requests")]),
        # Linear interpolation inside the 1-2.5 s bucket: 1 + 1.5 * 0.95.
        ("20m", "MLOpsHighLatencyP95",
         [expected("MLOpsHighLatencyP95", endpoint_labels,
                   "endpoint churn p95 latency is 2.425s")]),
        ("8m", "MLOpsPredictionLogDropping",
         [expected("MLOpsPredictionLogDropping", pod_labels, "p1 drops prediction log records")]),
        ("3m", "MLOpsPredictionLogDropping", []),
        ("20m", "MLOpsPredictionLogWriteFailures", []),
    ]  # fmt: skip
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": name, "values": values} for name, values in series],
                "alert_rule_test": [
                    {"eval_time": at, "alertname": alert, "exp_alerts": alerts}
                    for at, alert, alerts in checks
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_panels_and_variables() -> None:
    dashboard = grafana_dashboard()
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert "Request rate by endpoint and version" in titles
    assert "Error ratio (5xx) by endpoint and version" in titles
    for percentile in ("p50", "p95", "p99"):
        assert f"{percentile} latency by endpoint and version" in titles
    assert [v["name"] for v in dashboard["templating"]["list"]] == [
        "datasource",
        "namespace",
        "endpoint",
    ]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24


def test_committed_dashboard_is_the_generated_one() -> None:
    committed = (REPO / "deploy" / "grafana" / "mlops-dashboard.json").read_text()
    assert committed == dashboard_json(grafana_dashboard()), (
        "deploy/grafana/mlops-dashboard.json is stale; regenerate it: "
        "mlops k8s grafana --output deploy/grafana/mlops-dashboard.json"
    )
    json.loads(committed)


def test_commands_suggested_by_alerts_exist() -> None:
    suggested = [
        command.replace("{{ $labels.endpoint }}", "churn")
        for rule in alert_rules(ClusterOptions())["rules"]
        for command in re.findall(r"`(mlops [^`]+)`", rule["annotations"]["description"])
    ]
    assert suggested
    for command in suggested:
        parse_command_line(command.split())
