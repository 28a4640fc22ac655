"""``mlops k8s``: render Kubernetes manifests and the Grafana dashboard of a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlops.cluster import (
    ClusterOptions,
    dashboard_json,
    grafana_dashboard,
    manifests_yaml,
    render_manifests,
    write_manifests,
)
from mlops.errors import InvalidInput

__all__ = ["k8s_app"]

k8s_app = typer.Typer(
    help="Kubernetes: render the manifests of a control plane plus autoscaled serving "
    "replicas, and the Grafana dashboard of their metrics.",
    no_args_is_help=True,
)

_DEFAULTS = ClusterOptions()


def _option(help_text: str, field: str, *names: str, metavar: str | None = None) -> Any:
    """An option whose default (shown in the help) is the ClusterOptions field's."""
    default = getattr(_DEFAULTS, field)
    shown = "" if default is None else f" [default: {default}]"
    return typer.Option(*names, help=help_text + shown, show_default=False, metavar=metavar)


@k8s_app.command("render")
def render(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR",
            help="Write one NN-kind-name.yaml file per manifest into DIR instead of "
            "printing one multi-document YAML stream.",
        ),
    ] = None,
    name: Annotated[
        str | None, _option("Prefix of every object's name.", "name", metavar="NAME")
    ] = None,
    namespace: Annotated[
        str | None, _option("Namespace of every object.", "namespace", metavar="NAME")
    ] = None,
    image: Annotated[
        str | None,
        _option("Server image, built from the repository's Dockerfile.", "image", metavar="REF"),
    ] = None,
    image_pull_policy: Annotated[
        str | None, _option("Always, IfNotPresent or Never.", "image_pull_policy")
    ] = None,
    secret_name: Annotated[
        str | None,
        _option(
            "Secret (created by you) holding the database URL, the API token and the S3 "
            "credentials; the manifests only reference it.",
            "secret_name",
            metavar="NAME",
        ),
    ] = None,
    database_url_key: Annotated[
        str | None, _option("Key of the database URL in the Secret.", "database_url_key")
    ] = None,
    api_token_key: Annotated[
        str | None,
        _option("Key of the API token (MLOPS_TOKEN) in the Secret.", "api_token_key"),
    ] = None,
    artifact_root: Annotated[
        str | None,
        _option("Artifact store every pod shares.", "artifact_root", metavar="URL"),
    ] = None,
    s3_endpoint_url: Annotated[
        str | None,
        _option(
            "S3-compatible endpoint (MinIO, Ceph); AWS when left out.",
            "s3_endpoint_url",
            metavar="URL",
        ),
    ] = None,
    api_replicas: Annotated[
        int | None, _option("Control-plane replicas.", "api_replicas", metavar="N")
    ] = None,
    pipeline_workers: Annotated[
        int | None,
        _option(
            "Pipeline executions each control-plane pod runs at once.",
            "pipeline_workers",
            metavar="N",
        ),
    ] = None,
    min_replicas: Annotated[
        int | None,
        _option("Fewest serving replicas (HPA).", "serving_min_replicas", metavar="N"),
    ] = None,
    max_replicas: Annotated[
        int | None,
        _option("Most serving replicas (HPA).", "serving_max_replicas", metavar="N"),
    ] = None,
    cpu_target: Annotated[
        int | None,
        _option(
            "Average CPU use, in % of the request, the HPA keeps serving replicas at.",
            "serving_cpu_target",
            metavar="PERCENT",
        ),
    ] = None,
    serving_cpu: Annotated[
        str | None, _option("CPU request of a serving replica.", "serving_cpu_request")
    ] = None,
    serving_memory: Annotated[
        str | None, _option("Memory request of a serving replica.", "serving_memory_request")
    ] = None,
    serving_cpu_limit: Annotated[
        str | None, _option("CPU limit of a serving replica.", "serving_cpu_limit")
    ] = None,
    serving_memory_limit: Annotated[
        str | None, _option("Memory limit of a serving replica.", "serving_memory_limit")
    ] = None,
    api_cpu: Annotated[
        str | None, _option("CPU request of a control-plane pod.", "api_cpu_request")
    ] = None,
    api_memory: Annotated[
        str | None, _option("Memory request of a control-plane pod.", "api_memory_request")
    ] = None,
    pipeline: Annotated[
        str | None,
        _option(
            "Registered pipeline the CronJob triggers on --schedule.", "pipeline", metavar="NAME"
        ),
    ] = None,
    no_cronjob: Annotated[
        bool, typer.Option("--no-cronjob", help="Render no pipeline CronJob.")
    ] = False,
    schedule: Annotated[
        str | None, _option("Cron expression of the CronJob.", "schedule", metavar="CRON")
    ] = None,
    timezone: Annotated[
        str | None, _option("IANA time zone of --schedule.", "timezone", metavar="ZONE")
    ] = None,
    monitoring: Annotated[
        bool,
        typer.Option(
            help="Render the ServiceMonitor and PrometheusRule (prometheus-operator CRDs)."
        ),
    ] = True,
    prometheus_release: Annotated[
        str | None,
        _option(
            "Add the label release=NAME, which kube-prometheus-stack selects by.",
            "prometheus_release",
            metavar="NAME",
        ),
    ] = None,
    error_ratio: Annotated[
        float | None,
        _option("Alert above this fraction of 5xx responses.", "error_ratio_threshold"),
    ] = None,
    latency_p95: Annotated[
        float | None,
        _option("Alert above this p95 latency, in seconds.", "latency_p95_threshold"),
    ] = None,
) -> None:
    """Render the cluster's manifests: namespace, config, control plane, serving replicas
    with their autoscaler, the pipeline CronJob and the Prometheus objects."""
    if no_cronjob and pipeline is not None:
        raise InvalidInput("give either --pipeline NAME or --no-cronjob, not both")
    given = {
        "name": name,
        "namespace": namespace,
        "image": image,
        "image_pull_policy": image_pull_policy,
        "secret_name": secret_name,
        "database_url_key": database_url_key,
        "api_token_key": api_token_key,
        "artifact_root": artifact_root,
        "s3_endpoint_url": s3_endpoint_url,
        "api_replicas": api_replicas,
        "pipeline_workers": pipeline_workers,
        "serving_min_replicas": min_replicas,
        "serving_max_replicas": max_replicas,
        "serving_cpu_target": cpu_target,
        "serving_cpu_request": serving_cpu,
        "serving_memory_request": serving_memory,
        "serving_cpu_limit": serving_cpu_limit,
        "serving_memory_limit": serving_memory_limit,
        "api_cpu_request": api_cpu,
        "api_memory_request": api_memory,
        "pipeline": pipeline,
        "schedule": schedule,
        "timezone": timezone,
        "prometheus_release": prometheus_release,
        "error_ratio_threshold": error_ratio,
        "latency_p95_threshold": latency_p95,
    }
    options: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
    options["monitoring"] = monitoring
    if no_cronjob:
        options["pipeline"] = None
    manifests = render_manifests(ClusterOptions(**options))
    if output is None:
        typer.echo(manifests_yaml(manifests), nl=False)
        return
    for path in write_manifests(manifests, output):
        typer.echo(f"wrote {path}", err=True)


@k8s_app.command("grafana")
def grafana(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write the JSON to FILE instead of stdout."
        ),
    ] = None,
) -> None:
    """Print the Grafana dashboard (JSON) of request rate, errors and latency per endpoint."""
    text = dashboard_json(grafana_dashboard())
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}", err=True)
