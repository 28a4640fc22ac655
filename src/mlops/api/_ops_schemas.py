"""Request and response bodies of the deployment routes, and the types the operations
routes share (durations, ratios, the base of request bodies).

The strategy bodies mirror the constructor parameters of the strategies in
``mlops.deployment`` (a test keeps the two in step); their bounds are the ones the
strategies check, so a bad value is a 422 naming the field instead of a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from mlops.api._tracking_schemas import Id, Number, number
from mlops.deployment import (
    ABTest,
    Analysis,
    BlueGreen,
    Canary,
    Deployment,
    DeploymentEvent,
    Direct,
    Rolling,
    Shadow,
    Strategy,
    parse_duration,
    strategy_from_params,
)
from mlops.errors import InvalidInput
from mlops.monitoring.alerts._rules import duration_seconds

__all__ = [
    "MAX_DURATION_SECONDS",
    "ABTestIn",
    "AnalysisIn",
    "BlueGreenIn",
    "CanaryIn",
    "DeployIn",
    "DeploymentList",
    "DeploymentOut",
    "DeploymentStatus",
    "DirectIn",
    "Duration",
    "EventList",
    "EventOut",
    "ReasonIn",
    "RollingIn",
    "RollingOut",
    "RouteOut",
    "RuleDuration",
    "ShadowIn",
    "StrategyIn",
    "TrafficOut",
    "api_strategy_name",
    "build_strategy",
    "plain",
]

#: Durations may be written as seconds or "30s", "5m", "1h"; longer than this is a typo.
MAX_DURATION_SECONDS = 366 * 86400.0
#: Epoch milliseconds (the year 2286 is far enough; the columns are 64-bit).
EpochMs = Annotated[int, Field(ge=0, le=10**13)]
Ratio = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=1, le=10**9)]
Text = Annotated[str, Field(max_length=2000)]
Scalar = bool | int | float | str
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,100}$")]


def plain(value: Any) -> Any:
    """``value`` as strict JSON: non-finite floats become "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float):
        return number(value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def _default(cls: type[Any], name: str) -> Any:
    """The default of a strategy parameter, so the API's defaults are the strategy's."""
    return next(item.default for item in fields(cls) if item.name == name)


def _optional(value: float | None) -> Number | None:
    return None if value is None else number(value)


def _duration_of(parse: Callable[[Any], float], pattern: str) -> Callable[[Any], float | str]:
    """A validator of durations given as seconds or text matching ``pattern``."""
    compiled = re.compile(pattern)

    def check(value: Any) -> float | str:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"{value!r} is not a duration; give seconds or a string like '5m'")
        if isinstance(value, str) and not compiled.match(value):
            raise ValueError(f"{value!r} is not a duration like '30s', '5m' or '1h'")
        try:
            seconds = parse(value)
        except InvalidInput as error:
            raise ValueError(str(error)) from None
        if not 0 <= seconds <= MAX_DURATION_SECONDS:  # also refuses NaN
            raise ValueError(
                f"duration {value!r} must be between 0 and {MAX_DURATION_SECONDS:g} seconds"
            )
        return value if isinstance(value, str) else float(value)

    return check


def _duration_schema(pattern: str, example: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": MAX_DURATION_SECONDS},
                {"type": "string", "pattern": pattern},
            ],
            "description": f"Seconds, or a string such as {example}.",
        }
    )


_STRATEGY_DURATION = r"^\d{1,9}(\.\d{1,6})?[smh]?$"
_RULE_DURATION = r"^\d{1,9}(\.\d{1,6})?[smhd]?$"

#: Seconds (a number) or a string such as "30s", "5m", "1h" (what strategies take).
Duration = Annotated[
    float | str,
    PlainValidator(_duration_of(parse_duration, _STRATEGY_DURATION)),
    _duration_schema(_STRATEGY_DURATION, '"30s", "5m", "1h"'),
]
#: Seconds or a string such as "90s", "5m", "1h", "2d" (what alert rules take).
RuleDuration = Annotated[
    float | str,
    PlainValidator(_duration_of(lambda value: duration_seconds(value, "duration"), _RULE_DURATION)),
    _duration_schema(_RULE_DURATION, '"90s", "5m", "1h", "2d"'),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- strategies -------------------------------------------------------------------------


class AnalysisIn(_In):
    """What a candidate must show against stable traffic before it moves on."""

    max_error_rate: Ratio = _default(Analysis, "max_error_rate")
    max_error_rate_increase: Ratio = _default(Analysis, "max_error_rate_increase")
    max_p99_ms: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = _default(
        Analysis, "max_p99_ms"
    )
    max_p99_ratio: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = _default(
        Analysis, "max_p99_ratio"
    )
    metric: Literal["accuracy", "rmse", "mae"] | None = None
    max_metric_degradation: Ratio = _default(Analysis, "max_metric_degradation")
    min_requests: Count = _default(Analysis, "min_requests")
    min_feedback: Count = _default(Analysis, "min_feedback")


class DirectIn(_In):
    """All traffic to the new version at once."""

    type: Literal["direct"]


class CanaryIn(_In):
    """Shift traffic in steps (percent to the canary), analysing each step."""

    type: Literal["canary"]
    steps_percent: list[Annotated[float, Field(gt=0, le=100)]] = Field(
        default_factory=lambda: list(_default(Canary, "steps_percent")),
        min_length=1,
        max_length=100,
    )
    interval_seconds: Duration = _default(Canary, "interval_seconds")
    gate: AnalysisIn = Field(default_factory=AnalysisIn)
    failure_limit: Count = _default(Canary, "failure_limit")
    on_inconclusive: Literal["hold", "pass", "fail"] = "hold"
    max_hold_steps: Count = _default(Canary, "max_hold_steps")

    @field_validator("steps_percent")
    @classmethod
    def _grows_to_100(cls, value: list[float]) -> list[float]:
        if value != sorted(value) or value[-1] != 100:
            raise ValueError(f"canary steps must grow and end at 100, got {value}")
        return value


class BlueGreenIn(_In):
    """Green answers preview requests, then takes 100% at once; blue stays loaded a while."""

    type: Literal["blue_green"]
    preview_seconds: Duration = _default(BlueGreen, "preview_seconds")
    keep_old_seconds: Annotated[float, Field(ge=0, le=MAX_DURATION_SECONDS)] = _default(
        BlueGreen, "keep_old_seconds"
    )
    preview_header: HeaderName = _default(BlueGreen, "preview_header")
    gate: AnalysisIn | None = None


class RollingIn(_In):
    """Switch serving workers to the candidate ``batch_size`` at a time."""

    type: Literal["rolling"]
    batch_size: Count = _default(Rolling, "batch_size")
    interval_seconds: Duration = _default(Rolling, "interval_seconds")
    gate: AnalysisIn | None = None
    workers: Count | None = None


class ABTestIn(_In):
    """Weighted arms with sticky assignment and a statistical verdict."""

    type: Literal["ab_test"]
    treatment_share: Annotated[float, Field(gt=0, lt=1)] = _default(ABTest, "treatment_share")
    sticky_header: HeaderName | None = _default(ABTest, "sticky_header")
    sticky_field: Annotated[str, Field(min_length=1, max_length=250)] | None = None
    outcome: Literal["binary", "continuous"] = "binary"
    higher_is_better: bool = _default(ABTest, "higher_is_better")
    minimum_detectable_effect: Annotated[float, Field(gt=0, allow_inf_nan=False)] = _default(
        ABTest, "minimum_detectable_effect"
    )
    alpha: Annotated[float, Field(gt=0, lt=1)] = _default(ABTest, "alpha")
    power: Annotated[float, Field(gt=0, lt=1)] = _default(ABTest, "power")
    sequential: bool = _default(ABTest, "sequential")
    auto_promote: bool = _default(ABTest, "auto_promote")
    check_seconds: Duration = _default(ABTest, "check_seconds")

    @model_validator(mode="after")
    def _keeps_users(self) -> ABTestIn:
        if self.sticky_header is None and self.sticky_field is None:
            raise ValueError("an A/B test needs sticky_header or sticky_field to keep users")
        return self


class ShadowIn(_In):
    """Mirror ``share`` of the traffic to the candidate; callers see only stable."""

    type: Literal["shadow"]
    share: Annotated[float, Field(gt=0, le=1)] = _default(Shadow, "share")


StrategyIn = Annotated[
    DirectIn | CanaryIn | BlueGreenIn | RollingIn | ABTestIn | ShadowIn,
    Field(discriminator="type"),
]

#: API strategy type -> the strategy class it builds.
STRATEGY_CLASSES: dict[str, type[Any]] = {
    "direct": Direct,
    "canary": Canary,
    "blue_green": BlueGreen,
    "rolling": Rolling,
    "ab_test": ABTest,
    "shadow": Shadow,
}
STRATEGY_BODIES: dict[str, type[BaseModel]] = {
    "direct": DirectIn,
    "canary": CanaryIn,
    "blue_green": BlueGreenIn,
    "rolling": RollingIn,
    "ab_test": ABTestIn,
    "shadow": ShadowIn,
}
_API_NAMES = {cls.name: api for api, cls in STRATEGY_CLASSES.items()}


def api_strategy_name(stored: str) -> str:
    """The API's name of a stored strategy ("blue-green" -> "blue_green")."""
    return _API_NAMES.get(stored, stored)


def build_strategy(body: BaseModel) -> Strategy:
    """The strategy object a validated strategy body describes."""
    params = body.model_dump()
    cls = STRATEGY_CLASSES[params.pop("type")]
    return strategy_from_params(cls.name, params)


class DeployIn(_In):
    endpoint: str = Field(min_length=1, max_length=250, examples=["churn"])
    version: Id | Annotated[str, Field(min_length=1, max_length=250)] = Field(
        description="A number (3), a semantic version ('1.2.0'), a stage, @alias or 'latest'."
    )
    strategy: StrategyIn | None = Field(
        default=None,
        description="Default: direct for an endpoint's first version, else canary.",
    )


class ReasonIn(_In):
    reason: Text | None = None


# -- deployments ------------------------------------------------------------------------


class RouteOut(BaseModel):
    version: int
    weight: float
    role: str
    arm: str | None


class RollingOut(BaseModel):
    old: int
    new: int
    workers_on_new: int


class TrafficOut(BaseModel):
    """The endpoint's routing table now."""

    routes: list[RouteOut]
    shadow_version: int | None
    shadow_share: float
    preview_version: int | None
    preview_header: str | None
    sticky_header: str | None
    sticky_field: str | None
    rolling: RollingOut | None = Field(description="A rolling rollout's worker split.")
    batching: dict[str, Any] | None = Field(
        default=None, description="max_batch_size and max_latency_ms, when the endpoint batches."
    )
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="What the strategy keeps for the serving pool (blue-green's keep-old "
        "delay, a rolling rollout's split).",
    )


class DeploymentOut(BaseModel):
    id: int
    endpoint: str
    model: str
    state: Literal["progressing", "paused", "succeeded", "aborted", "rolled_back", "failed"]
    active: bool = Field(description="Progressing or paused: it can still change traffic.")
    paused: bool
    stable_version: int | None = Field(description="What served the endpoint before.")
    candidate_version: int
    strategy: str
    params: dict[str, Any]
    step: int = Field(description="The current step, 0-based.")
    steps: int
    progress: float = Field(description="Share of the steps done (1 once succeeded).")
    candidate_share: float = Field(description="Share of live traffic the candidate answers.")
    failures: int
    reason: str | None
    created_by: str | None
    created_at: int
    updated_at: int
    traffic: TrafficOut | None

    @classmethod
    def of(cls, deployment: Deployment) -> DeploymentOut:
        routes = deployment.routes
        state = deployment.state.value
        done = deployment.steps if state == "succeeded" else deployment.step
        share = 0.0
        traffic = None
        if routes is not None:
            rolling = routes.rolling
            share = sum(
                r.weight for r in routes.routes if r.version == deployment.candidate_version
            )
            traffic = TrafficOut(
                routes=[
                    RouteOut(version=r.version, weight=r.weight, role=r.role, arm=r.arm)
                    for r in routes.routes
                ],
                shadow_version=routes.shadow_version,
                shadow_share=routes.shadow_share,
                preview_version=routes.preview_version,
                preview_header=routes.preview_header if routes.preview_version else None,
                sticky_header=routes.sticky_header,
                sticky_field=routes.sticky_field,
                rolling=None
                if rolling is None
                else RollingOut(old=rolling[0], new=rolling[1], workers_on_new=rolling[2]),
                batching=None if routes.batching is None else plain(dict(routes.batching)),
                extra=plain(dict(routes.extra)),
            )
        return cls(
            id=deployment.id,
            endpoint=deployment.endpoint,
            model=deployment.model,
            state=state,  # type: ignore[arg-type]
            active=deployment.state.active,
            paused=state == "paused",
            stable_version=deployment.stable_version,
            candidate_version=deployment.candidate_version,
            strategy=api_strategy_name(deployment.strategy),
            params=plain(deployment.params),
            step=deployment.step,
            steps=deployment.steps,
            progress=min(1.0, done / deployment.steps) if deployment.steps else 1.0,
            candidate_share=min(1.0, share),
            failures=deployment.failures,
            reason=deployment.reason,
            created_by=deployment.created_by,
            created_at=deployment.created_at,
            updated_at=deployment.updated_at,
            traffic=traffic,
        )


class DeploymentList(BaseModel):
    deployments: list[DeploymentOut]
    next_page_token: str | None


class EventOut(BaseModel):
    kind: str = Field(examples=["created", "step", "analysis", "succeeded", "aborted"])
    from_state: str | None
    to_state: str | None
    step: int | None
    detail: dict[str, Any]
    actor: str | None
    created_at: int

    @classmethod
    def of(cls, event: DeploymentEvent) -> EventOut:
        return cls(
            kind=event.kind,
            from_state=event.from_state,
            to_state=event.to_state,
            step=event.step,
            detail=plain(event.detail),
            actor=event.actor,
            created_at=event.created_at,
        )


class EventList(BaseModel):
    events: list[EventOut]
    next_page_token: str | None


class DeploymentStatus(DeploymentOut):
    """A deployment for a dashboard: what it is, a sentence on where it stands, and its
    latest event."""

    summary: str
    last_event: EventOut | None

    @classmethod
    def of_status(
        cls, deployment: Deployment, last_event: DeploymentEvent | None
    ) -> DeploymentStatus:
        base = DeploymentOut.of(deployment)
        state = deployment.state.value
        where = f"step {deployment.step + 1} of {deployment.steps}"
        if state in ("progressing", "paused"):
            summary = (
                f"{base.strategy} rollout of version {deployment.candidate_version} "
                f"{'paused at' if state == 'paused' else 'at'} {where}: "
                f"{base.candidate_share:.0%} of live traffic to the candidate"
            )
        else:
            summary = f"{base.strategy} rollout of version {deployment.candidate_version} {state}"
            if deployment.reason:
                summary += f" ({deployment.reason})"
        return cls(
            **base.model_dump(),
            summary=summary,
            last_event=None if last_event is None else EventOut.of(last_event),
        )
