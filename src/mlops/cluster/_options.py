"""What a Kubernetes render is made of: one typed, validated options object."""

from __future__ import annotations

import math
import re
import zoneinfo
from dataclasses import dataclass

from croniter import croniter

from mlops.errors import InvalidInput

__all__ = ["ClusterOptions"]

# RFC 1123 label, as Kubernetes checks namespace and object names.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# The longest suffix added to ``name`` is "-pipeline" (9); CronJob names stop at 52 and
# a Service name is a DNS label (63), so the prefix stays short enough for both.
_NAME_MAX = 40
_CPU = re.compile(r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$")
_MEMORY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_ENV_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_PIPELINE_NAME = re.compile(r"^\S+$")
_SECRET_KEY_OPTIONS = (
    "database_url_key",
    "api_token_key",
    "s3_access_key_id_key",
    "s3_secret_access_key_key",
)


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """Everything `mlops k8s render` varies; validated on construction."""

    #: Prefix of every object's name and the ``app.kubernetes.io/instance`` label.
    name: str = "mlops"
    namespace: str = "mlops"
    #: The server image (built from the repository's Dockerfile).
    image: str = "mlops:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    #: The Secret holding the database URL and API token (created outside the render).
    secret_name: str = "mlops-secrets"
    database_url_key: str = "database-url"
    api_token_key: str = "api-token"
    #: Keys of the S3 credentials in the same Secret (optional: pods may use IAM roles).
    s3_access_key_id_key: str = "aws-access-key-id"
    s3_secret_access_key_key: str = "aws-secret-access-key"
    artifact_root: str = "s3://mlops-artifacts/"
    s3_endpoint_url: str | None = None
    port: int = 8000
    #: Control-plane replicas (rollouts, alerts, webhooks, scheduled pipelines).
    api_replicas: int = 1
    api_cpu_request: str = "250m"
    api_cpu_limit: str = "2"
    api_memory_request: str = "512Mi"
    api_memory_limit: str = "2Gi"
    pipeline_workers: int = 2
    #: Serving replicas, scaled by the HorizontalPodAutoscaler between min and max.
    serving_min_replicas: int = 2
    serving_max_replicas: int = 10
    serving_cpu_target: int = 70
    serving_cpu_request: str = "500m"
    serving_cpu_limit: str = "2"
    serving_memory_request: str = "1Gi"
    serving_memory_limit: str = "4Gi"
    #: A pipeline triggered on ``schedule`` by a CronJob; None renders no CronJob.
    pipeline: str | None = "training"
    schedule: str = "0 3 * * *"
    timezone: str = "UTC"
    #: Render the ServiceMonitor and PrometheusRule (needs the prometheus-operator CRDs).
    monitoring: bool = True
    #: Extra ``release`` label the Prometheus of kube-prometheus-stack selects rules by.
    prometheus_release: str | None = None
    scrape_interval: str = "30s"
    #: Alert when more than this fraction of prediction requests fail with 5xx.
    error_ratio_threshold: float = 0.05
    #: Alert when an endpoint's p95 latency stays above this many seconds.
    latency_p95_threshold: float = 0.5

    def __post_init__(self) -> None:
        _check_label("name", self.name, max_length=_NAME_MAX)
        _check_label("namespace", self.namespace, max_length=63)
        _check_label("secret name", self.secret_name, max_length=253)
        if not self.image.strip() or any(c.isspace() for c in self.image):
            raise InvalidInput(
                f"image {self.image!r} is not an image reference; give one without spaces, "
                "like registry.example/mlops:0.1.0 (build it from the repository's Dockerfile)"
            )
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise InvalidInput(
                f"image pull policy {self.image_pull_policy!r} is not one of Always, "
                "IfNotPresent, Never"
            )
        for option in _SECRET_KEY_OPTIONS:
            _check_secret_key(option, getattr(self, option))
        if not self.artifact_root.strip():
            raise InvalidInput(
                "artifact root is empty; give a shared store every pod reaches, "
                "like s3://bucket/prefix"
            )
        if self.s3_endpoint_url is not None and not self.s3_endpoint_url.startswith(
            ("http://", "https://")
        ):
            raise InvalidInput(
                f"S3 endpoint URL {self.s3_endpoint_url!r} is not an http(s) URL; "
                "give one like http://minio.storage:9000, or leave it out for AWS"
            )
        if not 1 <= self.port <= 65535:
            raise InvalidInput(f"port {self.port} is out of range; give 1 to 65535")
        _check_at_least("api replicas", self.api_replicas, 1)
        _check_at_least("pipeline workers", self.pipeline_workers, 1)
        _check_at_least("serving minimum replicas", self.serving_min_replicas, 1)
        if self.serving_max_replicas < self.serving_min_replicas:
            raise InvalidInput(
                f"serving maximum replicas ({self.serving_max_replicas}) is below the minimum "
                f"({self.serving_min_replicas}); raise the maximum or lower the minimum"
            )
        if not 1 <= self.serving_cpu_target <= 100:
            raise InvalidInput(
                f"CPU target {self.serving_cpu_target}% is out of range; give a percentage "
                "of the CPU request from 1 to 100 (70 is a common choice)"
            )
        self._check_resources()
        self._check_schedule()
        if self.prometheus_release is not None:
            _check_label("prometheus release", self.prometheus_release, max_length=63)
        if not re.fullmatch(r"[1-9][0-9]*(s|m)", self.scrape_interval):
            raise InvalidInput(
                f"scrape interval {self.scrape_interval!r} is not a duration; give one like "
                "15s, 30s or 1m"
            )
        if not (0 < self.error_ratio_threshold < 1):
            raise InvalidInput(
                f"error ratio threshold {self.error_ratio_threshold} is not a fraction; "
                "give one between 0 and 1, like 0.05 for 5%"
            )
        if not (math.isfinite(self.latency_p95_threshold) and self.latency_p95_threshold > 0):
            raise InvalidInput(
                f"p95 latency threshold {self.latency_p95_threshold} is not a positive "
                "number of seconds; give one like 0.5"
            )

    def _check_resources(self) -> None:
        for role in ("api", "serving"):
            for kind, pattern, example in (("cpu", _CPU, "500m or 2"), ("memory", _MEMORY, "1Gi")):
                for bound in ("request", "limit"):
                    value = getattr(self, f"{role}_{kind}_{bound}")
                    if not pattern.match(value):
                        raise InvalidInput(
                            f"{role} {kind} {bound} {value!r} is not a Kubernetes quantity; "
                            f"give one like {example}"
                        )

    def _check_schedule(self) -> None:
        if self.pipeline is None:
            return
        if not self.pipeline or not _PIPELINE_NAME.match(self.pipeline):
            raise InvalidInput(
                f"pipeline {self.pipeline!r} is not a pipeline name; give a registered one "
                "(see `mlops pipeline list`), or render no CronJob"
            )
        if not croniter.is_valid(self.schedule) or len(self.schedule.split()) != 5:
            raise InvalidInput(
                f"schedule {self.schedule!r} is not a five-field cron expression; give one "
                "like '0 3 * * *' (daily at 03:00)"
            )
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(
                f"time zone {self.timezone!r} is unknown; give an IANA name like UTC or "
                "Europe/Berlin"
            ) from None


def _check_label(what: str, value: str, *, max_length: int) -> None:
    if len(value) > max_length or not _DNS_LABEL.match(value):
        raise InvalidInput(
            f"{what} {value!r} is not a DNS-1123 label; use at most {max_length} lowercase "
            "letters, digits and '-', starting and ending with a letter or digit "
            "(like 'mlops-prod')"
        )


def _check_secret_key(option: str, value: str) -> None:
    if not value or not _ENV_KEY.match(value):
        raise InvalidInput(
            f"{option.replace('_', ' ')} {value!r} is not a Secret key; use letters, digits, "
            "'-', '_' and '.' (like 'database-url')"
        )


def _check_at_least(what: str, value: int, least: int) -> None:
    if value < least:
        raise InvalidInput(f"{what} is {value}; give at least {least}")
