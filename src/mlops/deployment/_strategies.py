"""Rollout strategies: small objects behind one protocol, parameters stored in __init__.

A strategy says which routing table each step uses and how long a step lasts; the
controller runs the analysis and moves the deployment along. ``get_params()`` makes a
strategy storable; ``strategy_from_params`` builds it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from mlops.errors import InvalidInput
from mlops.serving._routes import Route, RouteTable

__all__ = [
    "ABTest",
    "Analysis",
    "BlueGreen",
    "Canary",
    "Direct",
    "Rolling",
    "Shadow",
    "Strategy",
    "check_strategy",
    "parse_duration",
    "strategy_from_params",
]


def parse_duration(value: float | str) -> float:
    """Seconds from a number or a string such as "30s", "5m", "1h"."""
    if isinstance(value, bool):
        raise InvalidInput(f"duration {value!r} is not a number of seconds")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value[-1:] in {"s", "m", "h"} and value[:-1]:
        try:
            seconds = float(value[:-1]) * {"s": 1, "m": 60, "h": 3600}[value[-1]]
        except ValueError:
            raise InvalidInput(f"duration {value!r} is not like '30s', '5m' or '1h'") from None
    else:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"duration {value!r} is not like '30s', '5m' or '1h'") from None
    if seconds < 0:
        raise InvalidInput(f"duration {value!r} is negative")
    return seconds


@dataclass(frozen=True, slots=True)
class Analysis:
    """What a candidate must show against stable traffic before it moves on.

    Absolute bounds (``max_error_rate``, ``max_p99_ms``) and bounds relative to stable
    (``max_error_rate_increase`` in rate points, ``max_p99_ratio``). ``metric`` (e.g.
    "accuracy", "rmse") is compared when feedback exists: the candidate may be worse than
    stable by at most ``max_metric_degradation``. Fewer than ``min_requests`` candidate
    requests is "inconclusive".
    """

    max_error_rate: float = 0.05
    max_error_rate_increase: float = 0.02
    max_p99_ms: float | None = None
    max_p99_ratio: float | None = 2.0
    metric: str | None = None
    max_metric_degradation: float = 0.02
    min_requests: int = 20
    min_feedback: int = 20

    def __post_init__(self) -> None:
        for name in ("max_error_rate", "max_error_rate_increase", "max_metric_degradation"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise InvalidInput(f"analysis {name} must be between 0 and 1, got {value}")
        if self.min_requests < 1 or self.min_feedback < 1:
            raise InvalidInput("analysis min_requests and min_feedback must be at least 1")
        if self.metric is not None and self.metric not in {"accuracy", "rmse", "mae"}:
            raise InvalidInput(f"analysis metric {self.metric!r} is not accuracy, rmse or mae")


@runtime_checkable
class Strategy(Protocol):
    """How a candidate version takes over an endpoint, step by step."""

    name: ClassVar[str]

    def steps(self) -> int:
        """How many steps; the deployment succeeds after the last one passes."""

    def table(self, model: str, stable: int | None, candidate: int, step: int) -> RouteTable:
        """The routing table during ``step`` (0-based)."""

    def interval(self, step: int) -> float:
        """Seconds a step lasts before its analysis decides."""

    def analysis(self) -> Analysis | None:
        """The analysis that gates each step, or None to advance on time alone."""

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serializable."""


@dataclass(frozen=True)
class Direct:
    """All traffic to the new version at once (the first deployment of an endpoint)."""

    name: ClassVar[str] = "direct"

    def steps(self) -> int:
        return 1

    def table(self, model: str, stable: int | None, candidate: int, step: int) -> RouteTable:
        return RouteTable.single(model, candidate)

    def interval(self, step: int) -> float:
        return 0.0

    def analysis(self) -> Analysis | None:
        return None

    def get_params(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class BlueGreen:
    """Green loads beside blue and answers only requests with the preview header; after
    ``preview_seconds`` (and the optional analysis of that preview traffic) it takes
    100% atomically. Blue stays loaded ``keep_old_seconds`` so a rollback is instant.
    """

    preview_seconds: float | str = 0.0
    keep_old_seconds: float = 300.0
    preview_header: str = "x-mlops-preview"
    gate: Analysis | None = None
    name: ClassVar[str] = "blue-green"

    def steps(self) -> int:
        return 2

    def table(self, model: str, stable: int | None, candidate: int, step: int) -> RouteTable:
        if step == 0 and stable is not None:
            return RouteTable(
                model=model,
                routes=(Route(stable, 1.0, "stable"),),
                preview_version=candidate,
                preview_header=self.preview_header,
                extra={"keep_old_seconds": self.keep_old_seconds},
            )
        return RouteTable(
            model=model,
            routes=(Route(candidate, 1.0, "candidate"),),
            extra={"keep_old_seconds": self.keep_old_seconds, "previous": stable},
        )

    def interval(self, step: int) -> float:
        return parse_duration(self.preview_seconds) if step == 0 else 0.0

    def analysis(self) -> Analysis | None:
        return self.gate

    def get_params(self) -> dict[str, Any]:
        params = asdict(self)
        params["gate"] = None if self.gate is None else asdict(self.gate)
        return params


@dataclass(frozen=True)
class Canary:
    """Shift traffic in steps (percent of requests to the canary), analysing each step.

    A failed analysis counts toward ``failure_limit``, after which the canary is rolled
    back; "inconclusive" (too little traffic) holds the step unless ``on_inconclusive``
    is "pass" or "fail".
    """

    steps_percent: Sequence[float] = (5, 25, 50, 100)
    interval_seconds: float | str = 60.0
    gate: Analysis = field(default_factory=Analysis)
    failure_limit: int = 1
    on_inconclusive: str = "hold"
    max_hold_steps: int = 10
    name: ClassVar[str] = "canary"

    def __post_init__(self) -> None:
        percents = list(self.steps_percent)
        if not percents or any(not 0 < p <= 100 for p in percents):
            raise InvalidInput(f"canary steps must be percentages in (0, 100], got {percents}")
        if percents != sorted(percents) or percents[-1] != 100:
            raise InvalidInput(f"canary steps must grow and end at 100, got {percents}")
        if self.failure_limit < 1:
            raise InvalidInput("canary failure_limit must be at least 1")
        if self.on_inconclusive not in {"hold", "pass", "fail"}:
            raise InvalidInput("canary on_inconclusive must be 'hold', 'pass' or 'fail'")
        parse_duration(self.interval_seconds)

    def steps(self) -> int:
        return len(self.steps_percent)

    def table(self, model: str, stable: int | None, candidate: int, step: int) -> RouteTable:
        share = float(self.steps_percent[step]) / 100
        if stable is None or share >= 1.0:
            return RouteTable(model=model, routes=(Route(candidate, 1.0, "canary"),))
        return RouteTable(
            model=model,
            routes=(Route(stable, 1.0 - share, "stable"), Route(candidate, share, "canary")),
        )

    def interval(self, step: int) -> float:
        return parse_duration(self.interval_seconds)

    def analysis(self) -> Analysis | None:
        return self.gate

    def get_params(self) -> dict[str, Any]:
        params = asdict(self)
        params["steps_percent"] = list(self.steps_percent)
        return params


@dataclass(frozen=True)
class ABTest:
    """Weighted arms with sticky assignment by a request key; a statistical verdict.

    ``outcome`` is "binary" (feedback 0/1: two-proportion z-test) or "continuous"
    (Welch's t-test). ``sequential`` uses an always-valid p-value so looking early does
    not inflate false positives. With ``auto_promote`` the winner takes the endpoint.
    """

    treatment_share: float = 0.5
    sticky_header: str | None = "x-user-id"
    sticky_field: str | None = None
    outcome: str = "binary"
    higher_is_better: bool = True
    minimum_detectable_effect: float = 0.02
    alpha: float = 0.05
    power: float = 0.8
    sequential: bool = True
    auto_promote: bool = False
    check_seconds: float | str = 60.0
    name: ClassVar[str] = "ab-test"

    def __post_init__(self) -> None:
        if not 0 < self.treatment_share < 1:
            raise InvalidInput("treatment_share must be between 0 and 1 (exclusive)")
        if self.outcome not in {"binary", "continuous"}:
            raise InvalidInput("A/B outcome must be 'binary' or 'continuous'")
        if self.sticky_header is None and self.sticky_field is None:
            raise InvalidInput("an A/B test needs sticky_header or sticky_field to keep users")
        if not 0 < self.alpha < 1 or not 0 < self.power < 1:
            raise InvalidInput("alpha and power must be between 0 and 1")
        if self.minimum_detectable_effect <= 0:
            raise InvalidInput("minimum_detectable_effect must be positive")
        parse_duration(self.check_seconds)

    def steps(self) -> int:
        return 1

    def table(self, model: str, stable: int | None, candidate: int, step: int) -> RouteTable:
        if stable is None:
            raise InvalidInput("an A/B test needs a version already serving the endpoint")
        return RouteTable(
            model=model,
            routes=(
                Route(stable, 1.0 - self.treatment_share, "arm", "control"),
                Route(candidate, self.treatment_share, "arm", "treatment"),
            ),
            sticky_header=self.sticky_header,
            sticky_field=self.sticky_field,
        )

    def interval(self, step: int) -> float:
        return parse_duration(self.check_seconds)

    def analysis(self) -> Analysis | None:
        return None

    def get_params(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Shadow:
    """Mirror ``share`` of the traffic to the candidate after responses are sent.

    Callers only ever see the stable version; agreement and differences are logged. A
    shadow deployment ends by ``promote`` (switch to the candidate) or ``abort``.
    """

    share: float = 1.0
    name: ClassVar[str] = "shadow"

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise InvalidInput(f"shadow share must be in (0, 1], got {self.share}")

    def steps(self) -> int:
        return 1

    def table(self, model: str, stable: int | None, candidate: int, step: int) -> RouteTable:
        if stable is None:
            raise InvalidInput("a shadow deployment needs a version already serving the endpoint")
        return RouteTable(
            model=model,
            routes=(Route(stable, 1.0, "stable"),),
            shadow_version=candidate,
            shadow_share=self.share,
        )

    def interval(self, step: int) -> float:
        return float("inf")  # waits for a person (or a script) to promote or abort

    def analysis(self) -> Analysis | None:
        return None

    def get_params(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rolling:
    """Switch the serving worker processes to the candidate ``batch_size`` at a time.

    Every worker answers all of its requests with one version; workers rank themselves
    by start time (``serving_workers``) and the first ``workers_on_new`` load, warm and
    then serve the candidate. A step moves on only after ``interval_seconds`` *and* once
    every live worker reports the endpoint revision carrying the current batch (it is
    loaded and swapped in), plus the optional ``gate`` analysis.

    ``workers`` is how many workers the rollout covers. Leave it None: the deployment
    manager fills in the live worker count when the rollout starts (at least 1), which
    fixes ``steps()`` for the rollout's life. A worker that starts later is covered by
    the final table, which sends every worker to the candidate.
    """

    batch_size: int = 1
    interval_seconds: float | str = 10.0
    gate: Analysis | None = None
    workers: int | None = None
    name: ClassVar[str] = "rolling"

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise InvalidInput(f"rolling batch_size must be at least 1, got {self.batch_size}")
        if self.workers is not None and self.workers < 1:
            raise InvalidInput(f"rolling workers must be at least 1, got {self.workers}")
        parse_duration(self.interval_seconds)

    def steps(self) -> int:
        return -(-(self.workers or 1) // self.batch_size)

    def workers_on_new(self, step: int) -> int:
        """How many workers serve the candidate during ``step``."""
        return min((step + 1) * self.batch_size, self.workers or 1)

    def table(self, model: str, stable: int | None, candidate: int, step: int) -> RouteTable:
        if stable is None:
            raise InvalidInput("a rolling deployment needs a version already serving the endpoint")
        return RouteTable(
            model=model,
            routes=(Route(stable, 1.0, "stable"),),
            extra={
                "rolling": {
                    "old": stable,
                    "new": candidate,
                    "workers_on_new": self.workers_on_new(step),
                }
            },
        )

    def interval(self, step: int) -> float:
        return parse_duration(self.interval_seconds)

    def analysis(self) -> Analysis | None:
        return self.gate

    def get_params(self) -> dict[str, Any]:
        params = asdict(self)
        params["gate"] = None if self.gate is None else asdict(self.gate)
        return params


_STRATEGIES: dict[str, type[Any]] = {
    cls.name: cls for cls in (Direct, BlueGreen, Canary, ABTest, Shadow, Rolling)
}


def strategy_from_params(name: str, params: Mapping[str, Any]) -> Strategy:
    """Rebuild a stored strategy; unknown names and keys are clear errors."""
    cls = _STRATEGIES.get(name)
    if cls is None:
        raise InvalidInput(f"strategy {name!r} is not one of {', '.join(sorted(_STRATEGIES))}")
    arguments = dict(params)
    if "gate" in arguments and isinstance(arguments["gate"], Mapping):
        arguments["gate"] = Analysis(**arguments["gate"])
    try:
        strategy: Strategy = cls(**arguments)
    except TypeError as error:
        raise InvalidInput(f"bad parameters for strategy {name!r}: {error}") from error
    return strategy


def check_strategy(strategy: Strategy, *, stable: int = 1, candidate: int = 2) -> None:
    """Assert the contract every strategy keeps (used by the tests of each one)."""
    assert isinstance(strategy, Strategy), f"{strategy!r} does not implement Strategy"
    assert strategy.steps() >= 1
    for step in range(strategy.steps()):
        table = strategy.table("m", stable, candidate, step)
        assert candidate in table.versions, f"step {step} never reaches the candidate"
        assert strategy.interval(step) >= 0
    rebuilt = strategy_from_params(strategy.name, strategy.get_params())
    assert rebuilt.get_params() == strategy.get_params(), "get_params() does not round-trip"
