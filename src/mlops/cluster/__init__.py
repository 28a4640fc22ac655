"""Cluster deployment: Kubernetes manifests, Prometheus alerts and a Grafana dashboard
for running mlops as a control plane plus autoscaled serving replicas."""

from mlops.cluster._grafana import dashboard_json, grafana_dashboard
from mlops.cluster._manifests import manifests_yaml, render_manifests, write_manifests
from mlops.cluster._options import ClusterOptions
from mlops.cluster._prometheus import alert_rules

__all__ = [
    "ClusterOptions",
    "alert_rules",
    "dashboard_json",
    "grafana_dashboard",
    "manifests_yaml",
    "render_manifests",
    "write_manifests",
]
