"""Request and response bodies of the operations routes: deployments, monitoring, alerts.

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
from mlops.monitoring import Degradation, PerformanceGroup, PerformanceReport, Window
from mlops.monitoring.alerts import SIGNALS, Alert, AlertRule, Channel, Silence
from mlops.monitoring.alerts._rules import duration_seconds
from mlops.monitoring.drift import ColumnDrift, DriftReport, MultivariateDrift

__all__ = [
    "MAX_DURATION_SECONDS",
    "STRATEGY_BODIES",
    "STRATEGY_CLASSES",
    "ABTestIn",
    "AlertList",
    "AlertOut",
    "AnalysisIn",
    "BlueGreenIn",
    "CanaryIn",
    "ChannelList",
    "ChannelOut",
    "ColumnDriftOut",
    "DegradationOut",
    "DeployIn",
    "DeploymentList",
    "DeploymentOut",
    "DeploymentStatus",
    "DirectIn",
    "DriftOut",
    "Duration",
    "EstimatedOut",
    "EventList",
    "EventOut",
    "FeedbackIn",
    "FeedbackItem",
    "FeedbackOut",
    "GroupOut",
    "MatcherIn",
    "MatcherOut",
    "MultivariateOut",
    "PerformanceOut",
    "PredictionsIn",
    "PredictionsOut",
    "ReasonIn",
    "RollingIn",
    "RollingOut",
    "RouteOut",
    "RuleDuration",
    "RuleIn",
    "RuleList",
    "RuleOut",
    "RuleSpec",
    "ShadowIn",
    "SilenceIn",
    "SilenceList",
    "SilenceOut",
    "StrategyIn",
    "TrafficOut",
    "WindowOut",
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


# -- monitoring -------------------------------------------------------------------------


class PredictionsIn(_In):
    """One-row requests of a model served elsewhere, logged in one transaction."""

    predictions: list[Scalar] = Field(min_length=1, max_length=10_000)
    inputs: list[dict[str, Any]] | None = Field(
        default=None, max_length=10_000, description="One record per prediction."
    )
    probabilities: list[list[Ratio]] | None = Field(default=None, max_length=10_000)
    request_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=10_000, description="Default: generated."
    )
    version: Id | None = None
    route: Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w\-.]{0,31}$")] = "external"
    latency_ms: (
        Annotated[float, Field(ge=0, le=1e9)] | list[Annotated[float, Field(ge=0, le=1e9)]] | None
    ) = None
    ts: EpochMs | list[EpochMs] | None = Field(default=None, description="Default: now.")


class PredictionsOut(BaseModel):
    request_ids: list[str]


class FeedbackItem(_In):
    request_id: str = Field(min_length=1, max_length=64)
    actual: Scalar | list[Scalar] = Field(description="One value, or one per row of a batch.")


class FeedbackIn(_In):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=10_000)
    ts: EpochMs | None = Field(default=None, description="Default: now.")


class FeedbackOut(BaseModel):
    recorded: int


class WindowOut(BaseModel):
    since_ms: int | None
    until_ms: int
    last: int | None
    label: str

    @classmethod
    def of(cls, window: Window) -> WindowOut:
        return cls(
            since_ms=window.since_ms, until_ms=window.until_ms, last=window.last, label=window.label
        )


class DegradationOut(BaseModel):
    baseline: Number
    current: Number
    delta: Number
    change: Number | None
    degradation: Number | None = Field(description="Relative change, positive when worse.")
    higher_is_better: bool

    @classmethod
    def of(cls, item: Degradation) -> DegradationOut:
        return cls(
            baseline=number(item.baseline),
            current=number(item.current),
            delta=number(item.delta),
            change=_optional(item.change),
            degradation=_optional(item.degradation),
            higher_is_better=item.higher_is_better,
        )


class EstimatedOut(BaseModel):
    rows: int
    classes: int
    calibrated: bool
    metrics: dict[str, Number | None]
    confusion: list[list[Number]] = Field(
        default_factory=list,
        description="confusion[t][p]: the expected count of rows of class t predicted as p.",
    )


class GroupOut(BaseModel):
    key: int | str | None
    requests: int
    errors: int
    client_errors: int
    error_rate: Number | None
    client_error_rate: Number | None
    throughput: Number | None = Field(description="Requests per second.")
    latency_p50_ms: Number | None
    latency_p95_ms: Number | None
    latency_p99_ms: Number | None
    rows: int
    labelled: int
    status: str
    reason: str | None
    metrics: dict[str, Number | None] | None
    estimated: EstimatedOut | None
    degradation: dict[str, DegradationOut]

    @classmethod
    def of(cls, group: PerformanceGroup) -> GroupOut:
        estimated = group.estimated
        return cls(
            key=group.key,
            requests=group.requests,
            errors=group.errors,
            client_errors=group.client_errors,
            error_rate=_optional(group.error_rate),
            client_error_rate=_optional(group.client_error_rate),
            throughput=_optional(group.throughput),
            latency_p50_ms=_optional(group.latency_p50_ms),
            latency_p95_ms=_optional(group.latency_p95_ms),
            latency_p99_ms=_optional(group.latency_p99_ms),
            rows=group.rows,
            labelled=group.labelled,
            status=group.status,
            reason=group.reason,
            metrics=None
            if group.metrics is None
            else {k: _optional(v) for k, v in group.metrics.items()},
            estimated=None
            if estimated is None
            else EstimatedOut(
                rows=estimated.rows,
                classes=estimated.classes,
                calibrated=estimated.calibrated,
                metrics={k: _optional(v) for k, v in estimated.metrics.items()},
                confusion=[[number(value) for value in row] for row in estimated.confusion],
            ),
            degradation={k: DegradationOut.of(v) for k, v in group.degradation.items()},
        )


class PerformanceOut(BaseModel):
    endpoint: str
    window: WindowOut
    version: int | None
    by: str | None
    task: str | None
    min_labels: int
    baseline: dict[str, Number] | None
    orphan_feedback: int = Field(description="Feedback matching no logged prediction.")
    mismatched_feedback: int
    overall: GroupOut
    groups: list[GroupOut]

    @classmethod
    def of(cls, report: PerformanceReport) -> PerformanceOut:
        return cls(
            endpoint=report.endpoint,
            window=WindowOut.of(report.window),
            version=report.version,
            by=report.by,
            task=report.task,
            min_labels=report.min_labels,
            baseline=None
            if report.baseline is None
            else {k: number(v) for k, v in report.baseline.items()},
            orphan_feedback=report.orphan_feedback,
            mismatched_feedback=report.mismatched_feedback,
            overall=GroupOut.of(report.overall),
            groups=[GroupOut.of(group) for group in report.groups],
        )


class ColumnDriftOut(BaseModel):
    name: str
    kind: Literal["numeric", "categorical"] | None
    method: str | None
    statistic: Number | None
    threshold: Number | None
    p_value: Number | None
    drifted: bool | None
    status: str
    reference_rows: int
    current_rows: int
    nulls: dict[str, int]
    new_categories: list[Any]
    message: str
    histogram: dict[str, Any] | None

    @classmethod
    def of(cls, column: ColumnDrift) -> ColumnDriftOut:
        return cls(
            name=column.name,
            kind=column.kind,
            method=column.method,
            statistic=_optional(column.statistic),
            threshold=_optional(column.threshold),
            p_value=_optional(column.p_value),
            drifted=column.drifted,
            status=column.status,
            reference_rows=column.reference_rows,
            current_rows=column.current_rows,
            nulls=dict(column.nulls),
            new_categories=plain(list(column.new_categories)),
            message=column.message,
            histogram=None if column.histogram is None else plain(column.histogram),
        )


class MultivariateOut(BaseModel):
    columns: list[str]
    components: int
    explained_variance: Number
    reference_error: Number | None
    lower: Number | None
    upper: Number | None
    current_error: Number | None
    drifted: bool | None
    status: str
    reference_rows: int
    current_rows: int
    message: str
    chunk_rows: int = Field(default=0, description="Rows per reference chunk.")
    chunk_errors: list[Number] = Field(
        default_factory=list, description="The reference chunks' reconstruction errors."
    )

    @classmethod
    def of(cls, found: MultivariateDrift) -> MultivariateOut:
        return cls(
            columns=list(found.columns),
            components=found.components,
            explained_variance=number(found.explained_variance),
            reference_error=_optional(found.reference_error),
            lower=_optional(found.lower),
            upper=_optional(found.upper),
            current_error=_optional(found.current_error),
            drifted=found.drifted,
            status=found.status,
            reference_rows=found.reference_rows,
            current_rows=found.current_rows,
            message=found.message,
            chunk_rows=found.chunk_rows,
            chunk_errors=[number(value) for value in found.chunk_errors],
        )


class DriftOut(BaseModel):
    endpoint: str
    dataset_drift: bool
    drift_share: Number = Field(description="The dataset drifts at this share of columns.")
    drifted_count: int
    tested_count: int
    share: Number
    reference_rows: int
    current_rows: int
    drifted_columns: list[str]
    columns: list[ColumnDriftOut]
    prediction: ColumnDriftOut | None
    multivariate: MultivariateOut | None
    warnings: list[str]

    @classmethod
    def of(cls, endpoint: str, report: DriftReport) -> DriftOut:
        return cls(
            endpoint=endpoint,
            dataset_drift=report.dataset_drift,
            drift_share=number(report.drift_share),
            drifted_count=report.drifted_count,
            tested_count=report.tested_count,
            share=number(report.share),
            reference_rows=report.reference_rows,
            current_rows=report.current_rows,
            drifted_columns=list(report.drifted_columns),
            columns=[ColumnDriftOut.of(column) for column in report.columns],
            prediction=None if report.prediction is None else ColumnDriftOut.of(report.prediction),
            multivariate=None
            if report.multivariate is None
            else MultivariateOut.of(report.multivariate),
            warnings=list(report.warnings),
        )


# -- alerts -----------------------------------------------------------------------------


RuleName = Annotated[
    str,
    Field(pattern=r"^[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?$", examples=["latency-p95"]),
]
Signal = Annotated[
    str,
    Field(
        json_schema_extra={"enum": list(SIGNALS)},
        description="What to measure: " + "; ".join(f"{k}: {v}" for k, v in SIGNALS.items()),
    ),
]


class RuleSpec(_In):
    """A rule's definition; its name is in the path (PUT replaces every field)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    signal: Signal
    threshold: float = Field(allow_inf_nan=False)
    comparison: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    endpoint: Annotated[str, Field(min_length=1, max_length=250)] | None = Field(
        default=None, description="None watches every endpoint."
    )
    window: RuleDuration = 300.0
    for_: RuleDuration = Field(
        default=0.0, alias="for", description="How long the condition holds before firing."
    )
    keep_firing_for: RuleDuration = 0.0
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[str, Annotated[str, Field(max_length=4000)]] = Field(default_factory=dict)
    annotations: dict[str, Annotated[str, Field(max_length=4000)]] = Field(default_factory=dict)
    description: Annotated[str, Field(max_length=4000)] = ""
    channels: list[RuleName] = Field(default_factory=list, max_length=50)
    group_by: list[str] = Field(default_factory=lambda: ["rule", "endpoint"], max_length=20)
    repeat_interval: RuleDuration = 4 * 3600.0
    evaluation_interval: RuleDuration | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        if value not in SIGNALS:
            raise ValueError(f"signal {value!r} is unknown; use one of {', '.join(SIGNALS)}")
        return value

    def rule(self, name: str) -> AlertRule:
        """The AlertRule named ``name`` with this definition."""
        return AlertRule(name=name, **self.changes())

    def changes(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in type(self).model_fields if key != "name"}


class RuleIn(RuleSpec):
    name: RuleName


class RuleOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    signal: str
    threshold: Number
    comparison: str
    endpoint: str | None
    window: float = Field(description="Seconds.")
    for_: float = Field(alias="for", description="Seconds.")
    keep_firing_for: float
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    description: str
    channels: list[str]
    group_by: list[str]
    repeat_interval: float
    evaluation_interval: float | None
    params: dict[str, Any]
    enabled: bool
    condition: str = Field(examples=["latency_p95_ms > 1000 over 5m"])

    @classmethod
    def of(cls, rule: AlertRule) -> RuleOut:
        params = rule.get_params()
        params["for"] = params.pop("for_")
        return cls.model_validate({**plain(params), "condition": rule.condition})


class RuleList(BaseModel):
    rules: list[RuleOut]
    next_page_token: str | None


class AlertOut(BaseModel):
    id: int
    rule: str
    fingerprint: str
    state: Literal["pending", "firing", "resolved"]
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: Number | None
    threshold: Number
    started_at: int
    fired_at: int | None
    resolved_at: int | None
    evaluated_at: int
    silenced: bool

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        return cls.model_validate(plain(alert.to_json()))


class AlertList(BaseModel):
    alerts: list[AlertOut]
    next_page_token: str | None


class MatcherIn(_In):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$", examples=["endpoint"])
    op: Literal["=", "!=", "=~", "!~"] = "="
    value: str = Field(max_length=1000)


class SilenceIn(_In):
    """Mute notifications of alerts whose labels all the matchers match."""

    matchers: list[MatcherIn | Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        min_length=1, max_length=50, examples=[["endpoint=churn", "severity=~warning|critical"]]
    )
    comment: str = Field(min_length=1, max_length=2000)
    duration: RuleDuration | None = Field(default=None, examples=["2h"])
    ends_at: EpochMs | None = None
    starts_at: EpochMs | None = Field(default=None, description="Default: now.")

    @model_validator(mode="after")
    def _one_end(self) -> SilenceIn:
        if (self.duration is None) == (self.ends_at is None):
            raise ValueError("give a silence either a duration (e.g. '2h') or ends_at, not both")
        return self


class MatcherOut(BaseModel):
    name: str
    op: str
    value: str


class SilenceOut(BaseModel):
    id: int
    matchers: list[MatcherOut]
    state: Literal["pending", "active", "expired"]
    starts_at: int
    ends_at: int
    comment: str
    created_by: str | None
    created_at: int

    @classmethod
    def of(cls, silence: Silence, now_ms: int) -> SilenceOut:
        return cls(
            id=silence.id,
            matchers=[MatcherOut.model_validate(m.to_json()) for m in silence.matchers],
            state=silence.state(now_ms).value,
            starts_at=silence.starts_at,
            ends_at=silence.ends_at,
            comment=silence.comment,
            created_by=silence.created_by,
            created_at=silence.created_at,
        )


class SilenceList(BaseModel):
    silences: list[SilenceOut]
    next_page_token: str | None


class ChannelOut(BaseModel):
    """A notification channel; credentials (webhook secrets, tokens, URLs that are
    credentials) are masked."""

    id: int
    name: str
    kind: str
    params: dict[str, Any]
    created_by: str | None
    created_at: int

    @classmethod
    def of(cls, channel: Channel) -> ChannelOut:
        # to_json() leaves out the one-time secret; params are masked by the manager.
        return cls.model_validate(plain(channel.to_json()))


class ChannelList(BaseModel):
    channels: list[ChannelOut]
