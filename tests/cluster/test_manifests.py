"""Rendered Kubernetes manifests: valid objects of the Kubernetes API, wired together,
free of secret values, and identical to the committed deploy/k8s/."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

import mlops.cluster
from mlops.cluster import ClusterOptions, manifests_yaml, render_manifests, write_manifests
from mlops.errors import InvalidInput

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client as k8s  # noqa: E402

from cluster._cli import parse_command_line  # noqa: E402

SQLITE_ONLY = True

REPO = Path(__file__).resolve().parents[2]
MODEL_OF_KIND = {
    "Namespace": "V1Namespace",
    "ServiceAccount": "V1ServiceAccount",
    "ConfigMap": "V1ConfigMap",
    "Deployment": "V1Deployment",
    "Service": "V1Service",
    "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler",
    "CronJob": "V1CronJob",
}
_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
    "object": (object,),
    "datetime": (str,),
    "date": (str,),
}
_LIST = re.compile(r"^[lL]ist\[(.+)\]$")
_DICT = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")


def unknown_keys(value: Any, type_name: str, path: str = "") -> list[str]:
    """Keys (and mistyped values) of ``value`` that the Kubernetes model ``type_name``
    does not have, walking every nested object."""
    if match := _LIST.match(type_name):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [
            problem
            for index, item in enumerate(value)
            for problem in unknown_keys(item, match.group(1), f"{path}[{index}]")
        ]
    if match := _DICT.match(type_name):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping"]
        return [
            problem
            for key, item in value.items()
            for problem in unknown_keys(item, match.group(1) or match.group(2), f"{path}.{key}")
        ]
    if type_name in _PRIMITIVES:
        if type_name != "bool" and isinstance(value, bool) and type_name != "object":
            return [f"{path}: expected {type_name}, got a bool"]
        ok = isinstance(value, _PRIMITIVES[type_name])
        return [] if ok else [f"{path}: expected {type_name}, got {value!r}"]
    model = getattr(k8s, type_name)
    if not isinstance(value, dict):
        return [f"{path}: expected a {type_name} mapping"]
    by_json_key = {key: attribute for attribute, key in model.attribute_map.items()}
    problems = []
    for key, item in value.items():
        attribute = by_json_key.get(key)
        if attribute is None:
            problems.append(f"{path}.{key}: not a field of {type_name}")
        else:
            problems += unknown_keys(item, model.openapi_types[attribute], f"{path}.{key}")
    return problems


def deserialize(manifest: dict[str, Any]) -> Any:
    """The manifest as the kubernetes client's model object; a missing required field
    raises ValueError (client-side validation)."""
    text, model_name = json.dumps(manifest), MODEL_OF_KIND[manifest["kind"]]
    with k8s.ApiClient() as api:
        # kubernetes >= 35 takes the text and its content type, older releases a response.
        if "content_type" in inspect.signature(api.deserialize).parameters:
            return api.deserialize(text, model_name, "application/json")
        return api.deserialize(SimpleNamespace(data=text), model_name)


def check_manifest(manifest: dict[str, Any]) -> None:
    model_name = MODEL_OF_KIND[manifest["kind"]]
    problems = unknown_keys(manifest, model_name, manifest["kind"])
    assert not problems, "\n".join(problems)
    model = deserialize(manifest)
    assert type(model).__name__ == model_name
    assert model.metadata.name


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render_manifests()


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [manifest for manifest in manifests if manifest["kind"] == kind]


def test_public_names() -> None:
    assert mlops.cluster.__all__ == sorted(mlops.cluster.__all__)
    assert set(mlops.cluster.__all__) == {
        "ClusterOptions",
        "alert_rules",
        "dashboard_json",
        "grafana_dashboard",
        "manifests_yaml",
        "render_manifests",
        "write_manifests",
    }


def test_default_render_has_every_object(manifests: list[dict[str, Any]]) -> None:
    kinds = [manifest["kind"] for manifest in manifests]
    assert kinds == [
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "CronJob",
        "ServiceMonitor",
        "PrometheusRule",
    ]


@pytest.mark.parametrize(
    "options",
    [
        ClusterOptions(),
        ClusterOptions(
            name="ml-prod",
            namespace="ml",
            image="registry.example/mlops:1.2.3",
            s3_endpoint_url="http://minio.storage:9000",
            pipeline=None,
            monitoring=False,
            serving_min_replicas=1,
            serving_max_replicas=1,
        ),
    ],
    ids=["default", "custom"],
)
def test_every_core_manifest_is_a_valid_kubernetes_object(options: ClusterOptions) -> None:
    for manifest in render_manifests(options):
        if manifest["kind"] in MODEL_OF_KIND:
            check_manifest(manifest)
        assert manifest["metadata"].get("namespace", options.namespace) == options.namespace


def test_the_validator_catches_a_typo_and_a_missing_required_field(
    manifests: list[dict[str, Any]],
) -> None:
    deployment = json.loads(json.dumps(by_kind(manifests, "Deployment")[0]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    assert unknown_keys(deployment, "V1Deployment") == [
        ".spec.template.spec.containers[0].readinessprobe: not a field of V1Container"
    ]
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "x"
    assert len(unknown_keys(deployment, "V1Deployment")) == 2
    with pytest.raises(ValueError, match=r"containerPort|container_port"):
        deserialize(deployment)
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 8000
    del deployment["spec"]["selector"]
    with pytest.raises(ValueError, match="selector"):
        deserialize(deployment)


def test_services_and_autoscaler_point_at_their_deployments(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = {d["metadata"]["name"]: d for d in by_kind(manifests, "Deployment")}
    assert set(deployments) == {"mlops-api", "mlops-serving"}
    for deployment in deployments.values():
        spec = deployment["spec"]
        pod_labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
        pod = spec["template"]["spec"]
        assert pod["serviceAccountName"] == "mlops"
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["securityContext"]["runAsNonRoot"] is True
        # Serving replicas wait for their models; the control plane stays reachable.
        ready = "/health/ready" if "serving" in deployment["metadata"]["name"] else "/health/live"
        assert container["readinessProbe"]["httpGet"] == {"path": ready, "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        assert set(container["resources"]) == {"requests", "limits"}
        assert container["envFrom"] == [{"configMapRef": {"name": "mlops-config"}}]
    for service in by_kind(manifests, "Service"):
        target = deployments[service["metadata"]["name"]]
        selector = service["spec"]["selector"]
        assert selector.items() <= target["spec"]["template"]["metadata"]["labels"].items()
        (port,) = service["spec"]["ports"]
        container_ports = target["spec"]["template"]["spec"]["containers"][0]["ports"]
        assert port["targetPort"] in {p["name"] for p in container_ports}
    (hpa,) = by_kind(manifests, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "mlops-serving"
    assert "replicas" not in deployments["mlops-serving"]["spec"]  # the HPA owns it
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 70,
    }


def test_roles_run_the_real_server_commands(manifests: list[dict[str, Any]]) -> None:
    commands = {}
    for manifest in manifests:
        for container in _containers(manifest):
            commands[manifest["metadata"]["name"]] = container["command"]
            parse_command_line(container["command"])  # raises on an unknown flag
    assert commands["mlops-api"][:2] == ["mlops", "server"]
    assert "--no-controller" not in commands["mlops-api"]
    assert "--no-controller" in commands["mlops-serving"]
    assert commands["mlops-pipeline"][:4] == ["mlops", "pipeline", "trigger", "training"]
    (cron,) = by_kind(manifests, "CronJob")
    assert cron["spec"]["schedule"] == "0 3 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def _containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    spec = manifest.get("spec", {})
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = spec.get("template", {}).get("spec", {})
    return list(pod.get("containers", []))


def test_secrets_are_referenced_never_included(manifests: list[dict[str, Any]]) -> None:
    assert not by_kind(manifests, "Secret")
    options = ClusterOptions(secret_name="prod-credentials", database_url_key="db")
    rendered = render_manifests(options)
    for manifest in rendered:
        for container in _containers(manifest):
            env = {item["name"]: item for item in container["env"]}
            assert set(env) == {
                "MLOPS_DATABASE_URL",
                "MLOPS_TOKEN",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
            }
            for item in env.values():
                assert "value" not in item
                assert item["valueFrom"]["secretKeyRef"]["name"] == "prod-credentials"
            assert env["MLOPS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "db"
    (config,) = by_kind(rendered, "ConfigMap")
    assert not any("DATABASE_URL" in key or "TOKEN" in key for key in config["data"])


def test_config_map_and_env_use_variables_mlops_reads(manifests: list[dict[str, Any]]) -> None:
    from mlops.config import Settings

    class Recording(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            read.add(key)
            return super().get(key, default)

    read: set[str] = set()
    Settings.from_env(Recording())
    read.add("MLOPS_TOKEN")  # the remote client's (mlops.connect("http://…"))
    (config,) = by_kind(
        render_manifests(ClusterOptions(s3_endpoint_url="http://s3:9000")), "ConfigMap"
    )
    Settings.from_env(config["data"])  # values mlops accepts
    names = set(config["data"])
    for manifest in manifests:
        for container in _containers(manifest):
            names |= {item["name"] for item in container["env"]}
    assert {name for name in names if name.startswith("MLOPS_")} <= read


def test_yaml_round_trips(manifests: list[dict[str, Any]]) -> None:
    assert list(yaml.safe_load_all(manifests_yaml(manifests))) == manifests


def test_committed_deploy_k8s_is_the_default_render(tmp_path: Path) -> None:
    expected = {p.name: p.read_text() for p in write_manifests(render_manifests(), tmp_path)}
    committed = {p.name: p.read_text() for p in (REPO / "deploy" / "k8s").glob("*.yaml")}
    assert committed == expected, (
        "deploy/k8s is stale; regenerate it: rm deploy/k8s/*.yaml && "
        "mlops k8s render --output deploy/k8s"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"namespace": "ML_Prod"}, "namespace 'ML_Prod' is not a DNS-1123 label"),
        ({"namespace": "a" * 64}, "is not a DNS-1123 label"),
        ({"name": "-mlops"}, "name '-mlops' is not a DNS-1123 label"),
        ({"image": ""}, "is not an image reference"),
        ({"image": "   "}, "is not an image reference"),
        ({"api_replicas": 0}, "api replicas is 0; give at least 1"),
        ({"serving_min_replicas": 0}, "serving minimum replicas is 0"),
        ({"serving_min_replicas": 5, "serving_max_replicas": 3}, "is below the minimum"),
        ({"serving_cpu_target": 0}, "CPU target 0% is out of range"),
        ({"serving_cpu_target": 101}, "give a percentage"),
        ({"schedule": "every day"}, "is not a five-field cron expression"),
        ({"schedule": "61 * * * *"}, "is not a five-field cron expression"),
        ({"timezone": "Mars/Olympus"}, "time zone 'Mars/Olympus' is unknown"),
        ({"serving_cpu_request": "lots"}, "is not a Kubernetes quantity"),
        ({"api_memory_limit": "2 GB"}, "is not a Kubernetes quantity"),
        ({"secret_name": "My Secret"}, "is not a DNS-1123 label"),
        ({"database_url_key": "db url"}, "is not a Secret key"),
        ({"s3_endpoint_url": "minio:9000"}, "is not an http(s) URL"),
        ({"error_ratio_threshold": 5.0}, "is not a fraction"),
        ({"latency_p95_threshold": 0.0}, "is not a positive number"),
        ({"scrape_interval": "30"}, "is not a duration"),
        ({"image_pull_policy": "Sometimes"}, "is not one of Always"),
        ({"pipeline": "two words"}, "is not a pipeline name"),
    ],
)
def test_bad_options_say_what_is_wrong(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        ClusterOptions(**changes)
