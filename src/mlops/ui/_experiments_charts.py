"""Plotly figures of the experiment pages: metric curves, param-vs-metric scatter and
parallel coordinates over runs. Pure functions of tracker records; no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlops.tracking import Metric, Run
from mlops.ui._common import finite

__all__ = [
    "MAX_POINTS",
    "as_number",
    "curves_figure",
    "downsample",
    "parcoords_figure",
    "scatter_figure",
]

#: Points per trace at most; longer histories are thinned evenly (the last point kept).
MAX_POINTS = 2000
#: Parallel-coordinates axes for params at most (plus the metric).
MAX_PARCOORDS_PARAMS = 8

Figure = dict[str, Any]


def downsample(points: Sequence[Metric], limit: int = MAX_POINTS) -> list[Metric]:
    """At most ``limit`` of ``points``, evenly spaced, keeping the first and the last."""
    if len(points) <= limit:
        return list(points)
    stride = (len(points) - 1) / (limit - 1)
    return [points[round(index * stride)] for index in range(limit)]


def as_number(text: str | None) -> float | None:
    """A param value as a finite number, or None when it is not one."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def curves_figure(key: str, histories: Mapping[str, Sequence[Metric]]) -> Figure:
    """One metric's history per run (label → points), step on x: one line per run."""
    data = []
    for label, points in histories.items():
        thinned = downsample(points)
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(thinned) <= 50 else "lines",
                "name": label,
                "x": [point.step for point in thinned],
                "y": [finite(point.value) for point in thinned],
                "marker": {"size": 4},
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": key, "font": {"size": 13}},
            "xaxis": {"title": {"text": "step"}},
            "showlegend": len(data) > 1,
            # Below the axis title: the default legend position overlaps it.
            "legend": {"orientation": "h", "y": -0.32},
            "margin": {"l": 56, "r": 16, "t": 36, "b": 84 if len(data) > 1 else 44},
        },
    }


def scatter_figure(runs: Sequence[Run], param: str, metric: str) -> Figure:
    """Each run with both values as a point: ``param`` on x, ``metric`` on y."""
    chosen = [
        run for run in runs if param in run.params and finite(run.metrics.get(metric)) is not None
    ]
    numeric = all(as_number(run.params[param]) is not None for run in chosen)
    xs: list[Any] = [
        as_number(run.params[param]) if numeric else run.params[param] for run in chosen
    ]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "x": xs,
                "y": [finite(run.metrics[metric]) for run in chosen],
                "text": [run.name for run in chosen],
                "hovertemplate": "%{text}<br>" + param + "=%{x}<br>" + metric + "=%{y}"
                "<extra></extra>",
                "marker": {"size": 10, "color": "#4f46e5", "opacity": 0.8},
            }
        ],
        "layout": {
            "title": {"text": f"{metric} by {param}", "font": {"size": 13}},
            "xaxis": {
                "title": {"text": f"params.{param}"},
                "type": "linear" if numeric else "category",
            },
            "yaxis": {"title": {"text": f"metrics.{metric}"}},
        },
    }


def parcoords_figure(runs: Sequence[Run], params: Sequence[str], metric: str) -> Figure | None:
    """Runs as lines across one axis per param and one for ``metric`` (colour = metric);
    None when fewer than two runs have the metric or no param is logged."""
    chosen = [run for run in runs if finite(run.metrics.get(metric)) is not None]
    keys = [key for key in params if any(key in run.params for run in chosen)]
    keys = keys[:MAX_PARCOORDS_PARAMS]
    if len(chosen) < 2 or not keys:
        return None
    dimensions = [_dimension(key, [run.params.get(key) for run in chosen]) for key in keys]
    values = [finite(run.metrics[metric]) for run in chosen]
    dimensions.append({"label": metric, "values": values})
    return {
        "data": [
            {
                "type": "parcoords",
                "line": {
                    "color": values,
                    "colorscale": "Viridis",
                    "showscale": True,
                    "colorbar": {"title": {"text": metric}},
                },
                "dimensions": dimensions,
            }
        ],
        "layout": {"margin": {"l": 70, "r": 70, "t": 60, "b": 30}},
    }


def _dimension(key: str, texts: Sequence[str | None]) -> dict[str, Any]:
    numbers = [as_number(text) for text in texts]
    if all(number is not None for number in numbers):
        return {"label": key, "values": numbers}
    # Text (or partly missing) values: one tick per distinct value, in sorted order.
    labels = sorted({text if text is not None else "—" for text in texts})
    index = {label: position for position, label in enumerate(labels)}
    return {
        "label": key,
        "values": [index[text if text is not None else "—"] for text in texts],
        "tickvals": list(range(len(labels))),
        "ticktext": labels,
    }
