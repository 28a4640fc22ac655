"""Request and response bodies of the monitoring and alerting routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from mlops.api._ops_schemas import (
    EpochMs,
    Ratio,
    RuleDuration,
    Scalar,
    _In,
    _optional,
    plain,
)
from mlops.api._tracking_schemas import Id, Number, number
from mlops.monitoring import Degradation, PerformanceGroup, PerformanceReport, Window
from mlops.monitoring.alerts import SIGNALS, Alert, AlertRule, Channel, Silence
from mlops.monitoring.drift import ColumnDrift, DriftReport, MultivariateDrift

__all__ = [
    "AlertList",
    "AlertOut",
    "ChannelList",
    "ChannelOut",
    "ColumnDriftOut",
    "DegradationOut",
    "DriftOut",
    "EstimatedOut",
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
    "RuleIn",
    "RuleList",
    "RuleOut",
    "RuleSpec",
    "SilenceIn",
    "SilenceList",
    "SilenceOut",
    "WindowOut",
]


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
