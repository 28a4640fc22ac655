"""`mlops k8s render` and `mlops k8s grafana` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner, Result

from mlops.cli._app import app
from mlops.cluster import ClusterOptions, grafana_dashboard, render_manifests

SQLITE_ONLY = True


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["k8s", *args], env={"COLUMNS": "200"})


def test_render_prints_every_manifest_as_yaml() -> None:
    result = invoke("render")
    assert result.exit_code == 0, result.output
    assert list(yaml.safe_load_all(result.stdout)) == render_manifests()


def test_render_options_reach_the_manifests() -> None:
    result = invoke(
        "render",
        "--namespace", "ml-prod",
        "--image", "registry.example/mlops:1.0",
        "--min-replicas", "3",
        "--max-replicas", "12",
        "--cpu-target", "60",
        "--pipeline", "nightly",
        "--schedule", "30 1 * * *",
        "--secret-name", "prod-secrets",
        "--s3-endpoint-url", "http://minio.storage:9000",
        "--prometheus-release", "kps",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = ClusterOptions(
        namespace="ml-prod",
        image="registry.example/mlops:1.0",
        serving_min_replicas=3,
        serving_max_replicas=12,
        serving_cpu_target=60,
        pipeline="nightly",
        schedule="30 1 * * *",
        secret_name="prod-secrets",
        s3_endpoint_url="http://minio.storage:9000",
        prometheus_release="kps",
    )
    assert list(yaml.safe_load_all(result.stdout)) == render_manifests(expected)


def test_render_without_cronjob_and_monitoring() -> None:
    result = invoke("render", "--no-cronjob", "--no-monitoring")
    assert result.exit_code == 0, result.output
    kinds = {manifest["kind"] for manifest in yaml.safe_load_all(result.stdout)}
    assert not kinds & {"CronJob", "ServiceMonitor", "PrometheusRule"}


def test_render_output_writes_one_file_per_manifest(tmp_path: Path) -> None:
    result = invoke("render", "--output", str(tmp_path / "k8s"))
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "k8s").iterdir())
    assert [path.name for path in files][:3] == [
        "00-namespace-mlops.yaml",
        "01-serviceaccount-mlops.yaml",
        "02-configmap-mlops-config.yaml",
    ]
    loaded = [yaml.safe_load(path.read_text()) for path in files]
    assert loaded == render_manifests()
    assert result.stdout == ""


def test_bad_input_is_a_clear_error() -> None:
    for args, message in [
        (["--namespace", "Prod_NS"], "namespace 'Prod_NS' is not a DNS-1123 label"),
        (["--min-replicas", "4", "--max-replicas", "2"], "is below the minimum"),
        (["--cpu-target", "0"], "CPU target 0% is out of range"),
        (["--schedule", "at noon"], "is not a five-field cron expression"),
        (["--image", ""], "is not an image reference"),
        (["--no-cronjob", "--pipeline", "x"], "give either --pipeline NAME or --no-cronjob"),
    ]:
        result = invoke("render", *args)
        assert result.exit_code == 1, (args, result.output)
        assert "error:" in result.stderr
        assert message in result.stderr, result.stderr
        assert result.stdout == ""
    unknown = invoke("render", "--replicas", "3")
    assert unknown.exit_code == 2
    assert "No such option" in unknown.stderr


def test_grafana_prints_or_writes_the_dashboard(tmp_path: Path) -> None:
    printed = invoke("grafana")
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == grafana_dashboard()
    written = invoke("grafana", "--output", str(tmp_path / "dashboard.json"))
    assert written.exit_code == 0, written.output
    assert (tmp_path / "dashboard.json").read_text() == printed.stdout
