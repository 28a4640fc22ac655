"""A Grafana dashboard of the serving metrics: traffic, errors and latency per endpoint
and version, and the prediction log's health."""

from __future__ import annotations

import json
from typing import Any

from mlops.cluster._prometheus import (
    MODEL_LOAD_SECONDS,
    PREDICTION_LOG_DROPPED,
    PREDICTION_LOG_FAILED,
    PREDICTION_LOG_QUEUE,
    REQUEST_LATENCY_SECONDS,
    REQUESTS,
)

__all__ = ["dashboard_json", "grafana_dashboard"]

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_SCOPE = 'namespace=~"$namespace", endpoint=~"$endpoint", route!="shadow"'
_POD_SCOPE = 'namespace=~"$namespace"'
_WIDTH = 24


def grafana_dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (import it, or provision the committed file)."""
    builder = _Panels()
    builder.row("Traffic")
    builder.timeseries(
        "Request rate by endpoint and version",
        "reqps",
        [
            (
                f"sum by (endpoint, version) (rate({REQUESTS}{{{_SCOPE}}}[$__rate_interval]))",
                "{{endpoint}} v{{version}}",
            )
        ],
    )
    builder.timeseries(
        "Responses by status",
        "reqps",
        [
            (
                f"sum by (status) (rate({REQUESTS}{{{_SCOPE}}}[$__rate_interval]))",
                "{{status}}",
            )
        ],
    )
    builder.timeseries(
        "Error ratio (5xx) by endpoint and version",
        "percentunit",
        [
            (
                f"sum by (endpoint, version) (rate({REQUESTS}{{{_SCOPE}, "
                'status=~"5.."}[$__rate_interval]))\n/\n'
                f"sum by (endpoint, version) (rate({REQUESTS}{{{_SCOPE}}}[$__rate_interval]))",
                "{{endpoint}} v{{version}}",
            )
        ],
    )
    builder.timeseries(
        "Traffic split by route",
        "reqps",
        [
            (
                f"sum by (endpoint, route) (rate({REQUESTS}"
                '{namespace=~"$namespace", endpoint=~"$endpoint"}[$__rate_interval]))',
                "{{endpoint}} {{route}}",
            )
        ],
    )
    builder.row("Latency")
    for quantile in ("0.5", "0.95", "0.99"):
        builder.timeseries(
            f"p{float(quantile) * 100:g} latency by endpoint and version",
            "s",
            [(_quantile(quantile, "endpoint, version"), "{{endpoint}} v{{version}}")],
            width=8,
        )
    builder.timeseries(
        "Latency percentiles, all endpoints",
        "s",
        [(_quantile(q, ""), f"p{float(q) * 100:g}") for q in ("0.5", "0.95", "0.99")],
    )
    builder.timeseries(
        "Model load time (p90) by model",
        "s",
        [
            (
                "histogram_quantile(0.9, sum by (model, le) "
                f"(rate({MODEL_LOAD_SECONDS}_bucket{{{_POD_SCOPE}}}[$__rate_interval])))",
                "{{model}}",
            )
        ],
    )
    builder.row("Prediction log")
    builder.timeseries(
        "Prediction log records dropped and failed",
        "short",
        [
            (
                f"sum by (pod) (increase({PREDICTION_LOG_DROPPED}"
                f"{{{_POD_SCOPE}}}[$__rate_interval]))",
                "dropped {{pod}}",
            ),
            (
                f"sum by (pod) (increase({PREDICTION_LOG_FAILED}"
                f"{{{_POD_SCOPE}}}[$__rate_interval]))",
                "failed {{pod}}",
            ),
        ],
    )
    builder.timeseries(
        "Prediction log queue",
        "short",
        [(f"max by (pod) ({PREDICTION_LOG_QUEUE}{{{_POD_SCOPE}}})", "{{pod}}")],
    )
    return {
        "uid": "mlops-serving",
        "title": "mlops serving",
        "description": "Requests, errors and latency of mlops endpoints (mlops k8s grafana).",
        "tags": ["mlops"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": _variables()},
        "annotations": {"list": []},
        "panels": builder.panels,
    }


def dashboard_json(dashboard: dict[str, Any]) -> str:
    """The dashboard as the text of ``deploy/grafana/mlops-dashboard.json``."""
    return json.dumps(dashboard, indent=2) + "\n"


def _quantile(quantile: str, by: str) -> str:
    grouping = f"{by}, le" if by else "le"
    return (
        f"histogram_quantile({quantile}, sum by ({grouping}) "
        f"(rate({REQUEST_LATENCY_SECONDS}_bucket{{{_SCOPE}}}[$__rate_interval])))"
    )


def _variables() -> list[dict[str, Any]]:
    def query(name: str, label: str, selector: str) -> dict[str, Any]:
        expression = f"label_values({REQUESTS}{selector}, {label})"
        return {
            "name": name,
            "label": name.capitalize(),
            "type": "query",
            "datasource": _DATASOURCE,
            "query": {"query": expression, "refId": f"{name}-values"},
            "definition": expression,
            "refresh": 2,
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
        }

    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "refresh": 1,
        },
        query("namespace", "namespace", ""),
        query("endpoint", "endpoint", '{namespace=~"$namespace"}'),
    ]


class _Panels:
    """Lays panels out left to right, top to bottom, on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self._x = 0
        self._y = 0
        self._row_height = 0

    def _place(self, width: int, height: int) -> dict[str, int]:
        if self._x + width > _WIDTH:
            self._x, self._y = 0, self._y + self._row_height
            self._row_height = 0
        position = {"h": height, "w": width, "x": self._x, "y": self._y}
        self._x += width
        self._row_height = max(self._row_height, height)
        return position

    def row(self, title: str) -> None:
        self._x = _WIDTH  # a row starts on a line of its own
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": self._place(_WIDTH, 1),
                "panels": [],
            }
        )
        self._x = _WIDTH

    def timeseries(
        self, title: str, unit: str, queries: list[tuple[str, str]], *, width: int = 12
    ) -> None:
        targets = [
            {
                "refId": chr(ord("A") + index),
                "datasource": _DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "range": True,
            }
            for index, (expr, legend) in enumerate(queries)
        ]
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "timeseries",
                "title": title,
                "datasource": _DATASOURCE,
                "gridPos": self._place(width, 8),
                "fieldConfig": {
                    "defaults": {"unit": unit, "custom": {"fillOpacity": 10}},
                    "overrides": [],
                },
                "options": {
                    "legend": {
                        "displayMode": "table",
                        "placement": "bottom",
                        "calcs": ["mean", "max"],
                    },
                    "tooltip": {"mode": "multi", "sort": "desc"},
                },
                "targets": targets,
            }
        )
