"""Alert rules: what to measure, when the value is bad, how loud, and whom to tell.

A rule is a frozen dataclass validated on creation; ``get_params()`` is its JSON form
(what the ``alert_rules`` table stores) and ``AlertRule.from_params`` builds it back.
"""

from __future__ import annotations

import enum
import json
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from mlops.errors import InvalidInput

__all__ = [
    "COMPARISONS",
    "RESERVED_LABELS",
    "SIGNALS",
    "AlertRule",
    "Severity",
    "check_name",
    "default_rules",
    "duration_seconds",
]

#: What a rule can measure: signal name → what its value means. The signal source wired
#: into the AlertManager computes them; add a name here when a source learns a new one.
SIGNALS: dict[str, str] = {
    "accuracy": "accuracy over the window, from feedback (0..1)",
    "precision": "precision over the window, from feedback (0..1)",
    "recall": "recall over the window, from feedback (0..1)",
    "f1": "F1 over the window, from feedback (0..1)",
    "roc_auc": "ROC AUC over the window, from feedback and logged probabilities",
    "log_loss": "log loss over the window, from feedback and logged probabilities",
    "mae": "mean absolute error over the window, from feedback",
    "rmse": "root mean squared error over the window, from feedback",
    "r2": "R² over the window, from feedback",
    "accuracy_drop": "how far accuracy fell below its baseline, relative (0.05 = 5% worse)",
    "f1_drop": "how far F1 fell below its baseline, relative (0.05 = 5% worse)",
    "rmse_drop": "how far RMSE rose above its baseline, relative (0.05 = 5% worse)",
    "mae_drop": "how far MAE rose above its baseline, relative (0.05 = 5% worse)",
    "error_rate": "share of failed predictions over the window (0..1)",
    "latency_p50_ms": "median prediction latency over the window, in ms",
    "latency_p95_ms": "95th percentile of prediction latency over the window, in ms",
    "latency_p99_ms": "99th percentile of prediction latency over the window, in ms",
    "throughput": "predictions per second over the window",
    "requests": "requests logged in the window",
    "drift_share": "share of drifted columns in the window against the reference (0..1)",
    "dataset_drift": "1 when the window's data drifted from the reference, else 0",
    "column_drift": "1 when params['column'] drifted in the window from the reference, else 0",
    "prediction_drift": "1 when the predictions drifted in the window from the reference, else 0",
    "multivariate_drift": "1 when the PCA reconstruction check finds drift in the window, else 0",
    "estimated_accuracy": "accuracy estimated without labels over the window (0..1)",
    "pipeline_consecutive_failures": "failed runs in a row, latest first, of params['pipeline']"
    " (every pipeline when not given)",
}

#: Parameters a signal cannot do without.
_REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {"column_drift": ("column",)}

#: comparison → the test ``value <op> threshold``.
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}

#: Labels every alert gets from its rule; a rule's own labels cannot override them.
RESERVED_LABELS = ("rule", "severity")


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_TEXT_MAX = 4000


def check_name(what: str, name: object) -> str:
    """A rule or channel name: lowercase letters, digits and ``.-_``, like ``latency-p95``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"{what} name {name!r} is not valid; use 1-100 lowercase letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit, e.g. 'latency-p95'"
        )
    return name


def duration_seconds(value: object, what: str) -> float:
    """Seconds from a number or a string like ``"90s"``, ``"5m"``, ``"1h"`` or ``"2d"``."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} {value!r} is not a duration; give seconds or '5m', '1h', '2d'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise InvalidInput(f"{what} {value!r} is not a duration; give seconds or '5m', '1h', '2d'")
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInput(f"{what} must be a finite, non-negative duration; got {value!r}")
    return seconds


def _string_map(what: str, value: object, *, check_keys: bool) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{what} must be a mapping of strings to strings; got {value!r}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidInput(f"{what} must map strings to strings; {key!r}: {item!r} does not")
        if check_keys and not _LABEL_NAME.match(key):
            raise InvalidInput(
                f"{what} name {key!r} is not valid; use letters, digits and '_', "
                "not starting with a digit"
            )
        if len(item) > _TEXT_MAX:
            raise InvalidInput(f"{what} {key!r} is longer than {_TEXT_MAX} characters")
    return dict(sorted(value.items()))


def _names(what: str, value: object, check: Callable[[str, object], str]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInput(f"{what} must be a list of names; got {value!r}")
    names = tuple(check(what, item) for item in value)
    if len(set(names)) != len(names):
        raise InvalidInput(f"{what} {list(names)!r} names something twice")
    return names


def _label_name(what: str, name: object) -> str:
    if not isinstance(name, str) or not _LABEL_NAME.match(name):
        raise InvalidInput(
            f"{what}: {name!r} is not a label name; use letters, digits and '_', e.g. 'endpoint'"
        )
    return name


@dataclass(frozen=True)
class AlertRule:
    """When ``signal`` (measured over ``window``) compares true against ``threshold``.

    An alert is pending while the condition holds for less than ``for_`` seconds, then
    firing; it resolves once the condition has been false for ``keep_firing_for`` seconds
    (0: at the first false evaluation). ``endpoint=None`` watches every endpoint.
    Durations accept seconds or strings such as ``"5m"``; they are stored as seconds.
    ``channels`` are notified of firing and resolved alerts, grouped by the ``group_by``
    labels, and reminded of a still-firing alert every ``repeat_interval``. The rule is
    measured at most once per ``evaluation_interval`` (None: the manager's default).
    Annotations and the description may use ``$value``, ``$threshold`` and ``$<label>``.
    """

    name: str
    signal: str
    threshold: float
    comparison: str = ">"
    endpoint: str | None = None
    window: float | str = 300.0
    for_: float | str = 0.0
    keep_firing_for: float | str = 0.0
    severity: str = Severity.WARNING.value
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    channels: Sequence[str] = ()
    group_by: Sequence[str] = ("rule", "endpoint")
    repeat_interval: float | str = 4 * 3600.0
    evaluation_interval: float | str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalize in place once, here
        name = check_name("rule", self.name)
        where = f"rule {name!r}:"
        if self.signal not in SIGNALS:
            raise InvalidInput(
                f"{where} signal {self.signal!r} is unknown; use one of {', '.join(SIGNALS)}"
            )
        if self.comparison not in COMPARISONS:
            raise InvalidInput(
                f"{where} comparison {self.comparison!r} is not valid; "
                f"use one of {' '.join(COMPARISONS)}"
            )
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)):
            raise InvalidInput(f"{where} threshold must be a number; got {self.threshold!r}")
        if not math.isfinite(self.threshold):
            raise InvalidInput(f"{where} threshold must be finite; got {self.threshold!r}")
        set_(self, "threshold", float(self.threshold))
        if self.endpoint is not None and (
            not isinstance(self.endpoint, str) or not self.endpoint.strip()
        ):
            raise InvalidInput(
                f"{where} endpoint must be an endpoint name, or None for every endpoint; "
                f"got {self.endpoint!r}"
            )
        for attribute in ("window", "repeat_interval"):
            seconds = duration_seconds(getattr(self, attribute), f"{where} {attribute}")
            if seconds <= 0:
                raise InvalidInput(f"{where} {attribute} must be longer than 0 seconds")
            set_(self, attribute, seconds)
        for attribute in ("for_", "keep_firing_for"):
            set_(
                self, attribute, duration_seconds(getattr(self, attribute), f"{where} {attribute}")
            )
        if self.evaluation_interval is not None:
            interval = duration_seconds(self.evaluation_interval, f"{where} evaluation_interval")
            set_(self, "evaluation_interval", interval)
        if self.severity not in set(Severity):
            choices = ", ".join(item.value for item in Severity)
            raise InvalidInput(f"{where} severity {self.severity!r} is unknown; use {choices}")
        set_(self, "severity", Severity(self.severity).value)
        labels = _string_map(f"{where} label", self.labels, check_keys=True)
        if reserved := sorted(set(labels) & set(RESERVED_LABELS)):
            raise InvalidInput(
                f"{where} labels {reserved} are set by the rule itself; use other label names "
                "(severity is the rule's severity field)"
            )
        set_(self, "labels", labels)
        set_(
            self,
            "annotations",
            _string_map(f"{where} annotation", self.annotations, check_keys=True),
        )
        if not isinstance(self.description, str) or len(self.description) > _TEXT_MAX:
            raise InvalidInput(
                f"{where} description must be a string of at most {_TEXT_MAX} characters"
            )
        set_(self, "channels", _names(f"{where} channels", self.channels, check_name))
        set_(self, "group_by", _names(f"{where} group_by", self.group_by, _label_name))
        set_(self, "params", self._checked_params(where))
        if not isinstance(self.enabled, bool):
            raise InvalidInput(f"{where} enabled must be True or False; got {self.enabled!r}")

    def _checked_params(self, where: str) -> dict[str, Any]:
        if not isinstance(self.params, Mapping) or not all(
            isinstance(key, str) for key in self.params
        ):
            raise InvalidInput(f"{where} params must be a mapping with string keys")
        try:
            params: dict[str, Any] = json.loads(json.dumps(dict(self.params), sort_keys=True))
        except (TypeError, ValueError) as error:
            raise InvalidInput(
                f"{where} params are not JSON-serializable ({error}); use strings, numbers, "
                "booleans, lists and dicts"
            ) from None
        missing = [key for key in _REQUIRED_PARAMS.get(self.signal, ()) if key not in params]
        if missing:
            raise InvalidInput(
                f"{where} signal {self.signal!r} needs params {missing}, e.g. "
                f"params={{{missing[0]!r}: ...}}"
            )
        return params

    # -- derived values (the fields are normalized by __post_init__) --------------------

    @property
    def window_ms(self) -> int:
        return _ms(self.window)

    @property
    def for_ms(self) -> int:
        return _ms(self.for_)

    @property
    def keep_firing_for_ms(self) -> int:
        return _ms(self.keep_firing_for)

    @property
    def repeat_interval_ms(self) -> int:
        return _ms(self.repeat_interval)

    def evaluation_interval_ms(self, default_seconds: float) -> int:
        """How often the rule is measured, with the manager's default filled in."""
        seconds = self.evaluation_interval
        return _ms(default_seconds if seconds is None else seconds)

    def holds(self, value: float) -> bool:
        """Whether ``value <comparison> threshold``."""
        return COMPARISONS[self.comparison](value, float(self.threshold))

    @property
    def condition(self) -> str:
        """The rule's test as text, e.g. ``latency_p95_ms > 1000 over 5m``."""
        return f"{self.signal} {self.comparison} {self.threshold:g} over {_short(self.window)}"

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serializable (durations in seconds)."""
        return {item.name: _plain(getattr(self, item.name)) for item in fields(self) if item.init}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> AlertRule:
        """Build a rule back from ``get_params()``."""
        known = {item.name for item in fields(cls)}
        if unknown := sorted(set(params) - known):
            raise InvalidInput(f"alert rule parameters {unknown} are unknown; use {sorted(known)}")
        return cls(**params)


def _ms(seconds: float | str | None) -> int:
    assert isinstance(seconds, (int, float)), "durations are normalized in __post_init__"
    return round(seconds * 1000)


def _short(seconds: float | str) -> str:
    assert isinstance(seconds, (int, float))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def default_rules() -> list[AlertRule]:
    """The rules every installation starts with (``AlertManager.install_default_rules``)."""
    return [
        AlertRule(
            name="accuracy-drop",
            signal="accuracy_drop",
            comparison=">",
            threshold=0.05,
            window="1h",
            severity=Severity.CRITICAL.value,
            description="Accuracy on $endpoint is $value (relative) below its baseline over "
            "the last hour (more than 5%).",
        ),
        AlertRule(
            name="latency-p95",
            signal="latency_p95_ms",
            comparison=">",
            threshold=1000.0,
            window="5m",
            severity=Severity.WARNING.value,
            description="p95 latency on $endpoint is $value ms over the last 5 minutes "
            "(above 1 s).",
        ),
        AlertRule(
            name="pipeline-failures",
            signal="pipeline_consecutive_failures",
            comparison=">=",
            threshold=2.0,
            window="1d",
            severity=Severity.CRITICAL.value,
            group_by=("rule", "pipeline"),
            description="Pipeline $pipeline failed $value times in a row.",
        ),
    ]
