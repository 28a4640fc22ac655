"""What a registered pipeline is: its source, schedule, triggers and run policy, checked."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from mlops.errors import InvalidInput
from mlops.orchestration._cron import check_schedule, check_timezone
from mlops.pipelines import EXECUTORS
from mlops.pipelines._step import parse_duration
from mlops.tracking._validation import check_name

__all__ = ["Notify", "RegisteredPipeline", "Trigger", "check_params", "check_spec"]

_SEVERITIES = ("critical", "warning", "info")
_NOTIFY_ON = ("failure", "success")
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


_MIN_SECRET = 16


@dataclass(frozen=True, slots=True)
class Trigger:
    """Something that queues an execution of a pipeline. Build one with ``Trigger.alert``,
    ``Trigger.model_registered``, ``Trigger.dataset`` or ``Trigger.webhook``.

    Every field left None matches anything: ``Trigger.alert()`` fires on any alert.
    """

    ALERT: ClassVar[str] = "alert"
    MODEL_REGISTERED: ClassVar[str] = "model_registered"
    DATASET: ClassVar[str] = "dataset"
    WEBHOOK: ClassVar[str] = "webhook"
    KINDS: ClassVar[tuple[str, ...]] = ("alert", "model_registered", "dataset", "webhook")

    kind: str
    rule: str | None = None
    endpoint: str | None = None
    severity: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    model: str | None = None
    dataset_name: str | None = None
    #: The shared secret that signs webhook calls over HTTP (``X-MLOps-Signature``).
    secret: str | None = field(default=None, repr=False)

    @classmethod
    def alert(
        cls,
        rule: str | None = None,
        *,
        endpoint: str | None = None,
        severity: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Trigger:
        """When an alert starts firing: of ``rule``, on ``endpoint``, of ``severity``, with
        all of ``labels`` (e.g. ``{"pipeline": "nightly"}``)."""
        return cls.from_params(
            {
                "kind": cls.ALERT,
                "rule": rule,
                "endpoint": endpoint,
                "severity": severity,
                "labels": dict(labels or {}),
            }
        )

    @classmethod
    def model_registered(cls, model: str | None = None) -> Trigger:
        """When a new version of ``model`` (any model if None) is registered."""
        return cls.from_params({"kind": cls.MODEL_REGISTERED, "model": model})

    @classmethod
    def dataset(cls, name: str | None = None) -> Trigger:
        """When a new version (a new digest) of dataset ``name`` is first recorded."""
        return cls.from_params({"kind": cls.DATASET, "dataset": name})

    @classmethod
    def webhook(cls, secret: str | None = None) -> Trigger:
        """Allow an outside system to ask for a run: ``trigger(name, source="webhook")``,
        and, with a ``secret`` (16 characters or more), ``POST
        /v1/pipelines/{name}/trigger`` on ``mlops server`` signed with it (the header
        ``X-MLOps-Signature: sha256=<hex HMAC-SHA256 of the body>``)."""
        return cls.from_params({"kind": cls.WEBHOOK, "secret": secret})

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Trigger:
        """A trigger from its ``get_params()`` (or a dict written by hand), checked."""
        if not isinstance(params, Mapping):
            raise InvalidInput(
                f"a trigger is a Trigger or a dict with a 'kind'; got {params!r}; e.g. "
                "Trigger.alert(rule='accuracy-drop') or {'kind': 'dataset', 'dataset': 'churn'}"
            )
        kind = params.get("kind")
        allowed = {
            cls.ALERT: {"rule", "endpoint", "severity", "labels"},
            cls.MODEL_REGISTERED: {"model"},
            cls.DATASET: {"dataset", "name"},
            cls.WEBHOOK: {"secret"},
        }
        if kind not in allowed:
            raise InvalidInput(
                f"trigger kind {kind!r} is unknown; use one of {', '.join(cls.KINDS)} "
                f"(in {dict(params)!r})"
            )
        extra = sorted(set(params) - allowed[kind] - {"kind"})
        if extra:
            raise InvalidInput(
                f"a {kind} trigger takes {', '.join(sorted(allowed[kind])) or 'no options'}; "
                f"got {', '.join(map(str, extra))}"
            )
        values = {key: value for key, value in params.items() if value is not None}
        if "name" in values:
            values["dataset"] = values.pop("name")
        for key in ("rule", "endpoint", "model", "dataset"):
            if key in values:
                check_name(f"trigger {key}", values[key])
        if "dataset" in values:
            values["dataset_name"] = values.pop("dataset")
        secret = values.get("secret")
        if secret is not None and (not isinstance(secret, str) or len(secret) < _MIN_SECRET):
            raise InvalidInput(
                f"a webhook secret is a string of at least {_MIN_SECRET} characters; make one "
                "with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        severity = values.get("severity")
        if severity is not None and severity not in _SEVERITIES:
            raise InvalidInput(
                f"trigger severity {severity!r} is unknown; use one of {', '.join(_SEVERITIES)}"
            )
        labels = values.pop("labels", {})
        if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise InvalidInput(f"trigger labels must map names to strings; got {labels!r}")
        values.pop("kind")
        return cls(kind=kind, labels=tuple(sorted(labels.items())), **values)

    def get_params(self) -> dict[str, Any]:
        """The trigger as JSON-ready data (only what it matches on)."""
        params: dict[str, Any] = {"kind": self.kind}
        for key in ("rule", "endpoint", "severity", "model"):
            if getattr(self, key) is not None:
                params[key] = getattr(self, key)
        if self.dataset_name is not None:
            params["dataset"] = self.dataset_name
        if self.labels:
            params["labels"] = dict(self.labels)
        if self.secret is not None:
            params["secret"] = self.secret
        return params

    def shown(self) -> dict[str, Any]:
        """``get_params()`` with the secret masked, for listings and logs."""
        params = self.get_params()
        if "secret" in params:
            params["secret"] = "***"
        return params

    @property
    def key(self) -> str:
        """A digest of what the trigger matches: the same trigger has the same key."""
        text = json.dumps(self.get_params(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def polled(self) -> bool:
        """Whether a tick looks for it in the database (webhooks are called instead)."""
        return self.kind != self.WEBHOOK

    def describe(self) -> str:
        params = self.shown()
        kind = str(params.pop("kind"))
        return kind + "".join(f" {k}={v}" for k, v in params.items())


@dataclass(frozen=True, slots=True)
class Notify:
    """Who hears about an execution's end: monitoring's alert channels, by name, on
    ``failure`` (failed, timed out) and/or ``success`` (succeeded, cached)."""

    channels: tuple[str, ...]
    on: tuple[str, ...] = ("failure",)

    @classmethod
    def from_params(cls, value: Notify | Mapping[str, Any]) -> Notify:
        if isinstance(value, Notify):
            value = value.get_params()
        if not isinstance(value, Mapping):
            raise InvalidInput(
                f"notify must be a dict such as {{'channels': ['ops-slack'], 'on': ['failure']}}; "
                f"got {value!r}"
            )
        extra = sorted(set(value) - {"channels", "on"})
        if extra:
            raise InvalidInput(f"notify takes 'channels' and 'on'; got {', '.join(extra)}")
        channels = _names("notify channels", value.get("channels"))
        if not channels:
            raise InvalidInput("notify needs at least one channel name in 'channels'")
        on = _names("notify on", value.get("on", ("failure",)))
        unknown = [item for item in on if item not in _NOTIFY_ON]
        if unknown or not on:
            raise InvalidInput(f"notify 'on' takes {' and/or '.join(_NOTIFY_ON)}; got {list(on)!r}")
        return cls(channels=channels, on=on)

    def get_params(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "on": list(self.on)}


@dataclass(frozen=True, slots=True)
class RegisteredPipeline:
    """A pipeline the orchestrator runs: where it comes from, when, and how.

    Durations are seconds; times are milliseconds since the epoch; ``next_fire_at`` is
    the next due time of the schedule (None without one, or while it never fires).
    """

    name: str
    source: str
    schedule: str | None = None
    timezone: str = "UTC"
    catchup: bool = False
    max_active: int = 1
    triggers: tuple[Trigger, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    retry_backoff: float = 10.0
    retry_max_backoff: float = 600.0
    retry_jitter: float = 0.1
    retry_on: tuple[str, ...] = ()
    timeout: float | None = None
    executor: str = "local"
    notify: Notify | None = None
    paused: bool = False
    next_fire_at: int | None = None
    created_by: str | None = None
    created_at: int = 0
    updated_at: int = 0

    def get_params(self) -> dict[str, Any]:
        """The registration as stored (what ``check_spec`` reads back)."""
        return {
            "name": self.name,
            "source": self.source,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "catchup": self.catchup,
            "max_active": self.max_active,
            "triggers": [trigger.get_params() for trigger in self.triggers],
            "params": dict(self.params),
            "retries": self.retries,
            "retry_backoff": self.retry_backoff,
            "retry_max_backoff": self.retry_max_backoff,
            "retry_jitter": self.retry_jitter,
            "retry_on": list(self.retry_on),
            "timeout": self.timeout,
            "executor": self.executor,
            "notify": None if self.notify is None else self.notify.get_params(),
        }

    def to_json(self) -> dict[str, Any]:
        """The registration for display: ``get_params()`` with secrets masked."""
        return {
            **self.get_params(),
            "triggers": [trigger.shown() for trigger in self.triggers],
            "paused": self.paused,
            "next_fire_at": self.next_fire_at,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def retryable(self, error: str | None) -> bool:
        """Whether a failure reported as "Type: message" may be retried."""
        if not self.retry_on:
            return True
        kind = (error or "").split(":", 1)[0].strip().rsplit(".", 1)[-1]
        return kind in {name.rsplit(".", 1)[-1] for name in self.retry_on}

    def backoff(self, attempt: int, draw: float) -> float:
        """Seconds before retrying after failed attempt ``attempt`` (1-based): the
        backoff doubles each time up to ``retry_max_backoff``, then moves by up to
        ± ``retry_jitter`` of itself (``draw`` in [0, 1)), never past the maximum."""
        base = min(self.retry_backoff * 2.0 ** min(attempt - 1, 60), self.retry_max_backoff)
        return min(base * (1.0 + self.retry_jitter * (2.0 * draw - 1.0)), self.retry_max_backoff)


def check_spec(spec: Mapping[str, Any]) -> RegisteredPipeline:
    """Check every registration field (not the source, not the channels) up front."""
    name = check_name("pipeline", spec.get("name"))
    source = spec.get("source")
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput(
            f"pipeline {name!r} needs a source: 'package.module:attribute' or a YAML path"
        )
    timezone = spec.get("timezone", "UTC")
    check_timezone(timezone)
    schedule = spec.get("schedule")
    if schedule is not None:
        schedule = check_schedule(schedule, timezone).expression
    triggers = _triggers(spec.get("triggers", ()))
    backoff = parse_duration("retry_backoff", spec.get("retry_backoff", 10.0))
    max_backoff = parse_duration("retry_max_backoff", spec.get("retry_max_backoff", 600.0))
    if max_backoff < backoff:
        raise InvalidInput(
            f"retry_max_backoff ({max_backoff:g}s) is shorter than retry_backoff "
            f"({backoff:g}s); raise it or lower retry_backoff"
        )
    timeout = spec.get("timeout")
    notify = spec.get("notify")
    executor = spec.get("executor", "local")
    if executor not in EXECUTORS:
        raise InvalidInput(
            f"executor {executor!r} is not available; use one of {', '.join(EXECUTORS)}"
        )
    return RegisteredPipeline(
        name=name,
        source=source,
        schedule=schedule,
        timezone=timezone,
        catchup=_flag("catchup", spec.get("catchup", False)),
        max_active=_count("max_active", spec.get("max_active", 1), minimum=1),
        triggers=triggers,
        params=check_params(spec.get("params")),
        retries=_count("retries", spec.get("retries", 0), minimum=0),
        retry_backoff=backoff,
        retry_max_backoff=max_backoff,
        retry_jitter=_fraction("retry_jitter", spec.get("retry_jitter", 0.1)),
        retry_on=_type_names(spec.get("retry_on", ())),
        timeout=None if timeout is None else parse_duration("timeout", timeout),
        executor=executor,
        notify=None if notify is None else Notify.from_params(notify),
    )


def check_params(params: object) -> dict[str, Any]:
    """Pipeline params as stored: a mapping of names to JSON values."""
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(key, str) for key in params):
        raise InvalidInput(f"params must map param names to values; got {params!r}")
    try:
        return dict(json.loads(json.dumps(dict(params), allow_nan=False)))
    except (TypeError, ValueError) as error:
        raise InvalidInput(
            f"params must be JSON values (strings, numbers, booleans, None, lists, dicts) "
            f"to be stored with the pipeline: {error}"
        ) from None


def with_state(
    definition: RegisteredPipeline, *, paused: bool, next_fire_at: int | None, row: Any
) -> RegisteredPipeline:
    return replace(
        definition,
        paused=paused,
        next_fire_at=next_fire_at,
        created_by=row.created_by,
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
    )


def _triggers(value: object) -> tuple[Trigger, ...]:
    if isinstance(value, (Trigger, Mapping, str)) or not isinstance(value, Sequence):
        raise InvalidInput(
            f"triggers must be a list, e.g. [Trigger.alert(rule='accuracy-drop')]; got {value!r}"
        )
    triggers = tuple(
        item if isinstance(item, Trigger) else Trigger.from_params(item) for item in value
    )
    keys = [trigger.key for trigger in triggers]
    if len(set(keys)) != len(keys):
        raise InvalidInput("triggers repeat one another; give each trigger once")
    return triggers


def _names(what: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(item, str) for item in value):
        raise InvalidInput(f"{what} must be a list of names; got {value!r}")
    return tuple(dict.fromkeys(value))


def _type_names(value: object) -> tuple[str, ...]:
    names = _names("retry_on", value)
    for item in names:
        if not _TYPE_NAME.match(item):
            raise InvalidInput(
                f"retry_on names exception types such as 'TimeoutError' or 'ConnectionError'; "
                f"{item!r} is not one"
            )
    return names


def _flag(what: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be True or False; got {value!r}")
    return value


def _count(what: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"{what} must be a whole number of {minimum} or more; got {value!r}")
    return value


def _fraction(what: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise InvalidInput(f"{what} must be a fraction between 0 and 1 (0.1 = ±10%); got {value!r}")
    return float(value)
