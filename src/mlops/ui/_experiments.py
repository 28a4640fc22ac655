"""Dashboard pages: experiments, their runs (search, charts), a run, and runs compared.

Routes (relative to /ui): ``/experiments``, ``/experiments/{id}`` (the runs table with the
tracker's filter syntax), ``/experiments/{id}/compare?runs=…`` (also ``/runs/compare``),
``/runs/{run_id}``. Figures are built in ``_experiments_charts``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mlops._client import MLOps
from mlops.api._artifacts import download_artifact
from mlops.errors import FilterSyntaxError, InvalidInput, NotFound
from mlops.tracking import Experiment, Run
from mlops.ui._common import connection, render
from mlops.ui._experiments_charts import (
    as_number,
    curves_figure,
    parcoords_figure,
    scatter_figure,
)

__all__ = ["routes"]

#: Runs one page of the runs table shows (the rest through "next page").
RUNS_PER_PAGE = 500
#: Runs counted per experiment on the list page (more show as "1000+").
COUNT_CAP = 1000
#: Param and metric columns of the runs table at most (the rest are named in a note).
MAX_COLUMNS = 15
#: Metric charts on the run and compare pages at most.
MAX_METRIC_CHARTS = 24
#: Runs one comparison takes at most.
MAX_COMPARED = 20
DEFAULT_ORDER = "attributes.start_time DESC"


@dataclass(frozen=True, slots=True)
class ExperimentRow:
    experiment: Experiment
    run_count: int
    more: bool
    last_activity: int


@dataclass(frozen=True, slots=True)
class RunRow:
    run: Run
    depth: int
    parent_name: str | None


@dataclass(frozen=True, slots=True)
class CompareRow:
    key: str
    values: list[Any]
    differs: bool


def index(request: Request) -> Response:
    """Every active experiment with its run count and last activity."""
    ml = connection(request)
    rows = [_summary(ml, experiment) for experiment in ml.tracking.list_experiments()]
    return render(request, "experiments/index.html", {"rows": rows}, title="Experiments")


def _summary(ml: MLOps, experiment: Experiment) -> ExperimentRow:
    # The tracker has no per-experiment run count: count one capped page of runs.
    found = ml.tracking.search_runs(experiment.id, order_by=DEFAULT_ORDER, max_results=COUNT_CAP)
    moments = [experiment.updated_at]
    moments += [run.end_time or run.start_time for run in found]
    return ExperimentRow(experiment, len(found), found.next_page_token is not None, max(moments))


def experiment_page(request: Request) -> Response:
    """The runs of one experiment: a searchable table, a scatter and parallel coordinates."""
    ml = connection(request)
    experiment = ml.tracking.get_experiment(_experiment_id(request))
    query = request.query_params
    filter_text = query.get("filter", "").strip()
    order = query.get("order", "").strip() or DEFAULT_ORDER
    page_token = query.get("page") or None
    error: str | None = None
    runs: list[Run] = []
    next_token: str | None = None
    try:
        found = ml.tracking.search_runs(
            experiment.id,
            filter_text or None,
            order_by=order,
            max_results=RUNS_PER_PAGE,
            page_token=page_token,
        )
        runs, next_token = list(found), found.next_page_token
    except FilterSyntaxError as exc:
        error = str(exc)
    param_keys = sorted({key for run in runs for key in run.params})
    metric_keys = sorted({key for run in runs for key in run.metrics})
    x_param = query.get("x") or _default_param(runs, param_keys)
    y_metric = query.get("y") or _default_metric(runs, metric_keys)
    scatter = parcoords = None
    if x_param in param_keys and y_metric in metric_keys:
        scatter = scatter_figure(runs, x_param, y_metric)
    if y_metric in metric_keys:
        parcoords = parcoords_figure(runs, param_keys, y_metric)
    context = {
        "experiment": experiment,
        "rows": _grouped(runs),
        "run_count": len(runs),
        "param_keys": param_keys[:MAX_COLUMNS],
        "metric_keys": metric_keys[:MAX_COLUMNS],
        "hidden_keys": param_keys[MAX_COLUMNS:] + metric_keys[MAX_COLUMNS:],
        "filter": filter_text,
        "order": order,
        "order_options": _order_options(order, param_keys, metric_keys),
        "next_token": next_token,
        "paged": page_token is not None,
        "error": error,
        "x_param": x_param,
        "y_metric": y_metric,
        "scatter": scatter,
        "parcoords": parcoords,
        "breadcrumbs": [("Experiments", "/experiments"), (experiment.name, None)],
        "sort_value": sort_value,
    }
    return render(
        request,
        "experiments/experiment.html",
        context,
        status_code=400 if error else 200,
        title=experiment.name,
    )


def sort_value(value: float | None) -> str:
    """A number as the table script sorts it (no ``e+``); empty (sorted last) for NaN/inf."""
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.17g}".replace("e+", "e")


def _experiment_id(request: Request) -> int:
    text = request.path_params["experiment_id"]
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput(
            f"{text!r} is not an experiment id (a whole number); "
            "pick an experiment from the experiments list"
        )
    return int(text)


def _default_param(runs: Sequence[Run], keys: Sequence[str]) -> str | None:
    """The numeric param with the most distinct values across the runs (what the sweep
    varied), else the first param."""
    best, best_count = None, 1
    for key in keys:
        values = [run.params[key] for run in runs if key in run.params]
        if values and all(as_number(value) is not None for value in values):
            count = len(set(values))
            if count > best_count:
                best, best_count = key, count
    return best or (keys[0] if keys else None)


def _default_metric(runs: Sequence[Run], keys: Sequence[str]) -> str | None:
    """The metric most runs have (ties: the first by name)."""
    if not keys:
        return None
    return max(keys, key=lambda key: (sum(key in run.metrics for run in runs), -keys.index(key)))


def _order_options(current: str, params: Sequence[str], metrics: Sequence[str]) -> list[str]:
    options = [DEFAULT_ORDER, "attributes.start_time ASC", "attributes.name ASC"]
    for key in metrics:
        options += [f"metrics.{_quoted(key)} DESC", f"metrics.{_quoted(key)} ASC"]
    options += [f"params.{_quoted(key)} ASC" for key in params]
    return options if current in options else [current, *options]


def _quoted(key: str) -> str:
    return key if key.replace("_", "").replace(".", "").isalnum() else f"`{key}`"


def _grouped(runs: Sequence[Run]) -> list[RunRow]:
    """Runs in search order, each run's children (on this page) right under it."""
    names = {run.id: run.name for run in runs}
    children: dict[str, list[Run]] = {}
    for run in runs:
        if run.parent_run_id in names:
            children.setdefault(run.parent_run_id, []).append(run)
    rows: list[RunRow] = []

    def add(run: Run, depth: int) -> None:
        parent = run.parent_run_id
        parent_name = None if parent is None else names.get(parent, parent[:8])
        rows.append(RunRow(run, depth, parent_name))
        for child in children.get(run.id, []):
            if depth < 20:
                add(child, depth + 1)

    for run in runs:
        if run.parent_run_id not in names:
            add(run, 0)
    return rows


def artifact(request: Request) -> Response:
    """An artifact's bytes, as the REST API sends them, for the signed-in browser (the
    API itself takes Bearer tokens, not the dashboard's cookie)."""
    params = request.path_params
    return download_artifact(params["run_id"], params["path"], connection(request))


def run_page(request: Request) -> Response:
    """One run: attributes, params, metrics and their curves, inputs, artifacts, models."""
    ml = connection(request)
    run = ml.tracking.get_run(request.path_params["run_id"])
    experiment = ml.tracking.get_experiment(run.experiment_id)
    parent = None
    if run.parent_run_id is not None:
        try:
            parent = ml.tracking.get_run(run.parent_run_id)
        except NotFound:
            parent = None
    children = ml.tracking.search_runs(
        run.experiment_id,
        f"attributes.parent_run_id = '{run.id}'",
        order_by="attributes.start_time ASC",
        max_results=RUNS_PER_PAGE,
    )
    charts = [
        (key, curves_figure(key, {run.name: ml.tracking.get_metric_history(run.id, key)}))
        for key in sorted(run.metrics)[:MAX_METRIC_CHARTS]
    ]
    root = request.scope.get("root_path", "") or ""
    artifacts = [
        (info, f"{root}/runs/{run.id}/artifacts/{quote(info.path)}")
        for info in ml.tracking.list_artifacts(run.id)
    ]
    context = {
        "run": run,
        "experiment": experiment,
        "parent": parent,
        "parent_id": run.parent_run_id,
        "children": list(children),
        "charts": charts,
        "artifacts": artifacts,
        "versions": _versions_from(ml, run.id),
        "breadcrumbs": [
            ("Experiments", "/experiments"),
            (experiment.name, f"/experiments/{experiment.id}"),
            (run.name, None),
        ],
    }
    return render(request, "experiments/run.html", context, title=run.name)


def _versions_from(ml: MLOps, run_id: str) -> list[Any]:
    # The registry has no lookup by run: scan the versions of every model.
    return [
        version
        for model in ml.registry.list_models()
        for version in ml.registry.list_versions(model.name)
        if version.run_id == run_id
    ]


def compare_page(request: Request) -> Response:
    """Several runs: metric curves overlaid (one trace per run), params side by side."""
    ml = connection(request)
    wanted = list(dict.fromkeys(request.query_params.getlist("runs")))
    if len(wanted) < 2:
        raise InvalidInput(
            f"pick at least two runs to compare (tick them in the runs table); got {len(wanted)}"
        )
    if len(wanted) > MAX_COMPARED:
        raise InvalidInput(f"compare at most {MAX_COMPARED} runs at once; got {len(wanted)}")
    runs = [ml.tracking.get_run(run_id) for run_id in wanted]
    if "experiment_id" in request.path_params:
        experiment = ml.tracking.get_experiment(_experiment_id(request))
    else:
        experiment = ml.tracking.get_experiment(runs[0].experiment_id)
    labels = _labels(runs)
    metric_keys = sorted({key for run in runs for key in run.metrics})
    charts = []
    for key in metric_keys[:MAX_METRIC_CHARTS]:
        histories = {
            label: ml.tracking.get_metric_history(run.id, key)
            for run, label in zip(runs, labels, strict=True)
            if key in run.metrics
        }
        charts.append((key, curves_figure(key, histories)))
    context = {
        "experiment": experiment,
        "runs": runs,
        "labels": labels,
        "charts": charts,
        "params": _side_by_side([run.params for run in runs]),
        "metrics": _side_by_side([run.metrics for run in runs]),
        "breadcrumbs": [
            ("Experiments", "/experiments"),
            (experiment.name, f"/experiments/{experiment.id}"),
            ("Compare", None),
        ],
    }
    return render(request, "experiments/compare.html", context, title="Compare runs")


def _labels(runs: Sequence[Run]) -> list[str]:
    """Run names, with an id prefix where two runs share a name."""
    names = [run.name for run in runs]
    return [f"{run.name} ({run.id[:6]})" if names.count(run.name) > 1 else run.name for run in runs]


def _side_by_side(values: Sequence[Any]) -> list[CompareRow]:
    keys = sorted({key for mapping in values for key in mapping})
    rows = []
    for key in keys:
        cells = [mapping.get(key) for mapping in values]
        shown = {repr(cell) for cell in cells}
        rows.append(CompareRow(key, cells, len(shown) > 1))
    return rows


routes: list[BaseRoute] = [
    Route("/experiments", index, methods=["GET"], name="experiments"),
    Route("/experiments/{experiment_id}", experiment_page, methods=["GET"], name="experiment"),
    Route(
        "/experiments/{experiment_id}/compare",
        compare_page,
        methods=["GET"],
        name="experiment_compare",
    ),
    Route("/runs/compare", compare_page, methods=["GET"], name="runs_compare"),
    Route("/runs/{run_id}", run_page, methods=["GET"], name="run"),
    Route("/runs/{run_id}/artifacts/{path:path}", artifact, methods=["GET"], name="artifact"),
]
