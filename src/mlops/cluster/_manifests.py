"""Kubernetes manifests of an mlops cluster, as plain dicts: control plane, serving
replicas with an autoscaler, a pipeline CronJob and the Prometheus objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlops.cluster._options import ClusterOptions
from mlops.cluster._prometheus import prometheus_rule, service_monitor

__all__ = ["manifests_yaml", "render_manifests", "write_manifests"]

Manifest = dict[str, Any]

_UID = 10001  # the image's non-root user (see the Dockerfile)
_TMP = "/tmp"  # an emptyDir volume: the only writable path in the pod


def render_manifests(options: ClusterOptions | None = None) -> list[Manifest]:
    """Every object of the cluster, in the order `kubectl apply` should create them."""
    opts = options if options is not None else ClusterOptions()
    manifests = [
        _namespace(opts),
        _service_account(opts),
        _config_map(opts),
        _deployment(opts, "api"),
        _service(opts, "api"),
        _deployment(opts, "serving"),
        _service(opts, "serving"),
        _autoscaler(opts),
    ]
    if opts.pipeline is not None:
        manifests.append(_cron_job(opts))
    if opts.monitoring:
        manifests += [service_monitor(opts, labels(opts)), prometheus_rule(opts, labels(opts))]
    return manifests


# A SafeDumper of our own (not a change to PyYAML's): it writes multi-line strings, the
# PromQL expressions, as literal blocks, as people write them.
_Dumper: Any = type("_Dumper", (yaml.SafeDumper,), {})


def _represent_text(dumper: Any, text: str) -> Any:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def manifests_yaml(manifests: list[Manifest]) -> str:
    """The manifests as one multi-document YAML stream."""
    text: str = yaml.dump_all(
        manifests, Dumper=_Dumper, sort_keys=False, explicit_start=True, width=100
    )
    return text


def write_manifests(manifests: list[Manifest], directory: Path) -> list[Path]:
    """Write one ``NN-kind-name.yaml`` file per manifest into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for index, manifest in enumerate(manifests):
        kind = manifest["kind"].lower()
        path = directory / f"{index:02d}-{kind}-{manifest['metadata']['name']}.yaml"
        path.write_text(manifests_yaml([manifest]), encoding="utf-8")
        written.append(path)
    return written


def labels(opts: ClusterOptions, component: str | None = None) -> dict[str, str]:
    """The recommended ``app.kubernetes.io`` labels; ``component`` tells the roles apart."""
    result = {"app.kubernetes.io/name": "mlops", "app.kubernetes.io/instance": opts.name}
    if component is not None:
        result["app.kubernetes.io/component"] = component
    result["app.kubernetes.io/part-of"] = "mlops"
    result["app.kubernetes.io/managed-by"] = "mlops-k8s-render"
    return result


def _selector(opts: ClusterOptions, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "mlops",
        "app.kubernetes.io/instance": opts.name,
        "app.kubernetes.io/component": component,
    }


def _metadata(opts: ClusterOptions, name: str, component: str | None = None) -> Manifest:
    return {"name": name, "namespace": opts.namespace, "labels": labels(opts, component)}


def _namespace(opts: ClusterOptions) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": opts.namespace, "labels": labels(opts)},
    }


def _service_account(opts: ClusterOptions) -> Manifest:
    # The server never talks to the Kubernetes API: no token in its pods.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(opts, opts.name),
        "automountServiceAccountToken": False,
    }


def _config_map(opts: ClusterOptions) -> Manifest:
    data = {
        "MLOPS_ARTIFACT_ROOT": opts.artifact_root,
        "MLOPS_AUTH": "required",
        "MLOPS_HOME": f"{_TMP}/mlops",
    }
    if opts.s3_endpoint_url is not None:
        data["MLOPS_S3_ENDPOINT_URL"] = opts.s3_endpoint_url
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(opts, f"{opts.name}-config"),
        "data": data,
    }


def _secret_env(opts: ClusterOptions) -> list[Manifest]:
    """Secret values by reference only; the render never holds one."""

    def ref(variable: str, key: str, *, optional: bool) -> Manifest:
        selector = {"name": opts.secret_name, "key": key, "optional": optional}
        return {"name": variable, "valueFrom": {"secretKeyRef": selector}}

    return [
        ref("MLOPS_DATABASE_URL", opts.database_url_key, optional=False),
        # Read by in-cluster clients (mlops.connect("http://…")), e.g. pipeline steps.
        ref("MLOPS_TOKEN", opts.api_token_key, optional=True),
        # Optional: on EKS or GKE the service account's cloud role may grant S3 access.
        ref("AWS_ACCESS_KEY_ID", opts.s3_access_key_id_key, optional=True),
        ref("AWS_SECRET_ACCESS_KEY", opts.s3_secret_access_key_key, optional=True),
    ]


def _container_security() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": _UID,
        "runAsGroup": _UID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_security() -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": _UID,
        "runAsGroup": _UID,
        "fsGroup": _UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container(opts: ClusterOptions, name: str, command: list[str]) -> Manifest:
    return {
        "name": name,
        "image": opts.image,
        "imagePullPolicy": opts.image_pull_policy,
        "command": command,
        "envFrom": [{"configMapRef": {"name": f"{opts.name}-config"}}],
        "env": _secret_env(opts),
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": _TMP}],
    }


def server_command(opts: ClusterOptions, component: str) -> list[str]:
    """The `mlops server` command line of the control plane or of a serving replica."""
    command = ["mlops", "server", "--host", "0.0.0.0", "--port", str(opts.port)]
    # One worker per pod: each worker keeps its own metrics, and /metrics answers from
    # whichever worker takes the scrape; the autoscaler adds pods instead.
    command += ["--workers", "1"]
    if component == "api":
        command += ["--pipeline-workers", str(opts.pipeline_workers)]
    else:
        # Serving replicas only answer predictions, reading routes from the store; the
        # controller loops (rollouts, alerts, webhooks, pipelines) run in the control plane.
        command.append("--no-controller")
    return command


def _deployment(opts: ClusterOptions, component: str) -> Manifest:
    name = f"{opts.name}-{component}"
    container = _container(opts, "server", server_command(opts, component))
    serving = component == "serving"
    container |= {
        "ports": [{"name": "http", "containerPort": opts.port, "protocol": "TCP"}],
        # A serving replica is ready once its models are loaded; the control plane (API,
        # dashboard) must stay reachable even while some endpoint's model fails to load.
        "readinessProbe": _probe(
            "/health/ready" if serving else "/health/live", period=5, failures=3
        ),
        "livenessProbe": _probe("/health/live", period=10, failures=3),
        # Loading models can take a while; liveness starts counting once this passes.
        "startupProbe": _probe("/health/live", period=5, failures=24),
        "resources": _resources(opts, component),
    }
    spec: Manifest = {
        "selector": {"matchLabels": _selector(opts, component)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "template": {
            "metadata": {"labels": labels(opts, component)},
            "spec": {
                "serviceAccountName": opts.name,
                "automountServiceAccountToken": False,
                "securityContext": _pod_security(),
                # The server drains requests for up to 30 s (--graceful-timeout) on SIGTERM.
                "terminationGracePeriodSeconds": 45,
                "containers": [container],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
            },
        },
    }
    if not serving:  # the autoscaler owns the replica count of the serving Deployment
        spec = {"replicas": opts.api_replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(opts, name, component),
        "spec": spec,
    }


def _probe(path: str, *, period: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _resources(opts: ClusterOptions, component: str) -> Manifest:
    def value(kind: str, bound: str) -> str:
        text: str = getattr(opts, f"{component}_{kind}_{bound}")
        return text

    return {
        "requests": {"cpu": value("cpu", "request"), "memory": value("memory", "request")},
        "limits": {"cpu": value("cpu", "limit"), "memory": value("memory", "limit")},
    }


def _service(opts: ClusterOptions, component: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(opts, f"{opts.name}-{component}", component),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(opts, component),
            "ports": [{"name": "http", "port": opts.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _autoscaler(opts: ClusterOptions) -> Manifest:
    name = f"{opts.name}-serving"
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(opts, name, "serving"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": opts.serving_min_replicas,
            "maxReplicas": opts.serving_max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": opts.serving_cpu_target,
                        },
                    },
                }
            ],
            # Scale in slowly: a new replica loads every model before it is ready.
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
                }
            },
        },
    }


def cron_command(opts: ClusterOptions) -> list[str]:
    """The command the CronJob runs: queue an execution for the control plane to run."""
    assert opts.pipeline is not None
    return ["mlops", "pipeline", "trigger", opts.pipeline, "--reason", "kubernetes CronJob"]


def _cron_job(opts: ClusterOptions) -> Manifest:
    container = _container(opts, "trigger", cron_command(opts))
    container["resources"] = {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(opts, f"{opts.name}-pipeline", "pipeline"),
        "spec": {
            "schedule": opts.schedule,
            "timeZone": opts.timezone,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels(opts, "pipeline")},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 600,
                    "template": {
                        "metadata": {"labels": labels(opts, "pipeline")},
                        "spec": {
                            "serviceAccountName": opts.name,
                            "automountServiceAccountToken": False,
                            "restartPolicy": "Never",
                            "securityContext": _pod_security(),
                            "containers": [container],
                            "volumes": [{"name": "tmp", "emptyDir": {}}],
                        },
                    },
                },
            },
        },
    }
