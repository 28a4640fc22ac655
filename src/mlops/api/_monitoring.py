"""``/monitoring`` and ``/alerts``: endpoint performance and drift, the prediction log of
models served elsewhere, and alert rules, alerts, silences and channels.

Reads need ``read`` (a drift report computed on demand is a read: it stores nothing).
Alert rules and silences need ``alerts.write``. Recording predictions and feedback needs
``deployments.write``: the log is the serving record of deployed endpoints, and feedback
decides canary analyses and A/B verdicts, so writing it steers rollouts as much as
promoting or aborting them does (``runs.write`` would let any editor do that).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from mlops.api._deps import ML, Actor, require
from mlops.api._monitoring_schemas import (
    AlertList,
    AlertOut,
    ChannelList,
    ChannelOut,
    DriftOut,
    FeedbackIn,
    FeedbackOut,
    MatcherIn,
    PerformanceOut,
    PredictionsIn,
    PredictionsOut,
    RuleIn,
    RuleList,
    RuleOut,
    RuleSpec,
    SilenceIn,
    SilenceList,
    SilenceOut,
)
from mlops.api._ops_schemas import MAX_DURATION_SECONDS
from mlops.api._pagination import DEFAULT_LIMIT, MAX_LIMIT, fingerprint, page
from mlops.api._tracking_schemas import MAX_ID
from mlops.errors import InvalidInput, NotFound
from mlops.monitoring import parse_window
from mlops.monitoring.alerts import Matcher

__all__ = ["router"]

router = APIRouter(tags=["monitoring"])
RECORD = [require("deployments.write")]
ALERTS = [require("alerts.write")]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
PageToken = Annotated[str | None, Query(description="next_page_token of the previous page.")]
Endpoint = Annotated[str, Path(max_length=250, description="The endpoint's name.")]
EpochQuery = Annotated[int | None, Query(ge=0, le=10**13, description="Epoch milliseconds.")]
WindowQuery = Annotated[
    str | None,
    Query(max_length=32, description='A duration ending at until: "30s", "5m", "1h", "7d".'),
]
LastQuery = Annotated[
    int | None, Query(ge=1, le=10**7, description="Only the last N requests (of the range).")
]
VersionQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this version.")]
ModelQuery = Annotated[
    str | None, Query(min_length=1, max_length=250, description="Default: the endpoint's.")
]
#: Alert episodes are read whole and paged here; the store keeps a bounded history.
_ALERTS_READ = 100_000


def _window(window: str | None) -> str | None:
    """Refuse windows no log could span (and whose start would not fit a timestamp)."""
    if window is not None and parse_window(window) > 100 * MAX_DURATION_SECONDS:
        raise InvalidInput(f"window {window!r} is longer than 100 years; give a shorter one")
    return window


def _id(what: str, value: int) -> int:
    if value > MAX_ID:
        raise NotFound(f"there is no {what} {value}; ids go up to {MAX_ID}")
    return value


# -- performance and drift --------------------------------------------------------------


class MonitoredEndpoints(BaseModel):
    endpoints: list[str]


@router.get(
    "/monitoring/endpoints",
    dependencies=RECORD,
    summary="The endpoints to monitor: serving endpoints and those with predictions logged",
)
def monitored_endpoints(ml: ML, since: EpochQuery = None) -> MonitoredEndpoints:
    return MonitoredEndpoints(endpoints=ml.monitor.endpoints(since=since))


@router.get(
    "/monitoring/endpoints/{endpoint}/performance",
    dependencies=RECORD,
    summary="Traffic and model quality of an endpoint over a window, against a baseline",
)
def performance(
    endpoint: Endpoint,
    ml: ML,
    window: WindowQuery = "1h",
    last: LastQuery = None,
    since: EpochQuery = None,
    until: EpochQuery = None,
    version: VersionQuery = None,
    by: Annotated[
        Literal["version", "route"] | None, Query(description="One group per version or route.")
    ] = None,
    task: Annotated[
        Literal["classification", "regression"] | None, Query(description="Default: inferred.")
    ] = None,
    baseline: Annotated[
        str,
        Query(
            max_length=250,
            description='"auto" (the serving version\'s metrics), "none", or a version '
            "selector (3, a stage, @alias) of the model.",
        ),
    ] = "auto",
    model: ModelQuery = None,
    min_labels: Annotated[int, Query(ge=1, le=10**7)] = 30,
) -> PerformanceOut:
    if baseline.isdigit() and int(baseline) > MAX_ID:
        raise NotFound(f"no model has a version {baseline}; numbers go up to {MAX_ID}")
    report = ml.monitor.performance(
        endpoint,
        window=_window(window),
        last=last,
        since=since,
        until=until,
        version=version,
        by=by,
        task=task,
        baseline=None if baseline == "none" else baseline,
        model=model,
        min_labels=min_labels,
    )
    return PerformanceOut.of(report)


@router.get(
    "/monitoring/endpoints/{endpoint}/drift",
    dependencies=RECORD,
    summary="Drift of an endpoint's logged inputs and predictions against its reference",
)
def drift(
    endpoint: Endpoint,
    ml: ML,
    window: WindowQuery = "1d",
    last: LastQuery = None,
    since: EpochQuery = None,
    until: EpochQuery = None,
    version: VersionQuery = None,
    model: ModelQuery = None,
    method: Annotated[
        str | None, Query(max_length=64, description="A drift method for every column.")
    ] = None,
    threshold: Annotated[float | None, Query(description="The method's threshold.")] = None,
    drift_share: Annotated[float, Query(gt=0, le=1)] = 0.5,
    multivariate: bool = True,
    predictions: Annotated[bool, Query(description="Compare the predictions too.")] = True,
    min_rows: Annotated[int, Query(ge=1, le=10**7)] = 30,
) -> DriftOut:
    if threshold is not None and not math.isfinite(threshold):
        raise InvalidInput(f"threshold must be a finite number, got {threshold}")
    report = ml.monitor.drift(
        endpoint,
        window=_window(window),
        last=last,
        since=since,
        until=until,
        version=version,
        model=model,
        method=method,
        threshold=threshold,
        drift_share=drift_share,
        multivariate=multivariate,
        predictions=predictions,
        min_rows=min_rows,
    )
    return DriftOut.of(endpoint, report)


@router.post(
    "/monitoring/endpoints/{endpoint}/predictions",
    dependencies=RECORD,
    status_code=201,
    summary="Log predictions of a model served elsewhere (one row each, one transaction)",
)
def record_predictions(endpoint: Endpoint, body: PredictionsIn, ml: ML) -> PredictionsOut:
    ids = ml.monitor.record_predictions(
        endpoint,
        body.inputs,
        body.predictions,
        probabilities=body.probabilities,
        request_ids=body.request_ids,
        version=body.version,
        route=body.route,
        latency_ms=body.latency_ms,
        ts=body.ts,
    )
    return PredictionsOut(request_ids=ids)


@router.post(
    "/monitoring/endpoints/{endpoint}/feedback",
    dependencies=RECORD,
    status_code=201,
    summary="Store actual outcomes of logged requests (one transaction)",
)
def record_feedback(endpoint: Endpoint, body: FeedbackIn, ml: ML) -> FeedbackOut:
    ml.monitor.record_feedback_batch(
        endpoint,
        [item.request_id for item in body.feedback],
        [item.actual for item in body.feedback],
        ts=body.ts,
    )
    return FeedbackOut(recorded=len(body.feedback))


# -- alert rules ------------------------------------------------------------------------

# The path parameter is ``rule``, not ``name``: ``require`` reads ``{name}`` as a model.
RuleName = Annotated[str, Path(max_length=100, description="The rule's name.")]


@router.get("/alerts/rules", dependencies=ALERTS, summary="List alert rules by name")
def list_rules(
    ml: ML,
    enabled: Annotated[bool | None, Query(description="Only enabled (or disabled) rules.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> RuleList:
    found, token = page(
        ml.monitor.alerts.rules(enabled=enabled),
        lambda rule: rule.name,
        limit=limit,
        page_token=page_token,
        query=fingerprint("alert-rules", enabled),
    )
    return RuleList(rules=[RuleOut.of(rule) for rule in found], next_page_token=token)


@router.post("/alerts/rules", dependencies=ALERTS, status_code=201, summary="Create a rule")
def create_rule(body: RuleIn, ml: ML, who: Actor) -> RuleOut:
    return RuleOut.of(ml.monitor.alerts.create_rule(body.rule(body.name), actor=who))


@router.get("/alerts/rules/{rule}", dependencies=ALERTS, summary="Get a rule")
def get_rule(rule: RuleName, ml: ML) -> RuleOut:
    return RuleOut.of(ml.monitor.alerts.get_rule(rule))


@router.put(
    "/alerts/rules/{rule}",
    dependencies=ALERTS,
    summary="Replace a rule's definition (disabling it ends its alerts)",
)
def replace_rule(rule: RuleName, body: RuleSpec, ml: ML, who: Actor) -> RuleOut:
    return RuleOut.of(ml.monitor.alerts.update_rule(rule, actor=who, **body.changes()))


@router.delete(
    "/alerts/rules/{rule}",
    dependencies=ALERTS,
    status_code=204,
    response_class=Response,
    summary="Delete a rule (its active alerts end)",
)
def delete_rule(rule: RuleName, ml: ML, who: Actor) -> None:
    ml.monitor.alerts.delete_rule(rule, actor=who)


# -- silences and channels --------------------------------------------------------------


@router.get("/alerts/silences", dependencies=ALERTS, summary="List silences, newest first")
def list_silences(
    ml: ML,
    state: Annotated[Literal["pending", "active", "expired"] | None, Query()] = None,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> SilenceList:
    alerts = ml.monitor.alerts
    now = alerts.now_ms()
    found, token = page(
        alerts.silences(state=state),
        lambda silence: -silence.id,
        limit=limit,
        page_token=page_token,
        query=fingerprint("silences", state),
    )
    return SilenceList(
        silences=[SilenceOut.of(silence, now) for silence in found], next_page_token=token
    )


@router.post(
    "/alerts/silences",
    dependencies=ALERTS,
    status_code=201,
    summary="Mute notifications of matching alerts for a while",
)
def create_silence(body: SilenceIn, ml: ML, who: Actor) -> SilenceOut:
    alerts = ml.monitor.alerts
    matchers = [
        Matcher(name=m.name, value=m.value, op=m.op) if isinstance(m, MatcherIn) else m
        for m in body.matchers
    ]
    silence = alerts.silence(
        matchers,
        comment=body.comment,
        duration=body.duration,
        ends_at=body.ends_at,
        starts_at=body.starts_at,
        created_by=who,
    )
    return SilenceOut.of(silence, alerts.now_ms())


@router.delete(
    "/alerts/silences/{silence_id}",
    dependencies=ALERTS,
    status_code=204,
    response_class=Response,
    summary="End a silence now (what it held back is notified)",
)
def expire_silence(silence_id: Annotated[int, Path(ge=1)], ml: ML, who: Actor) -> None:
    ml.monitor.alerts.expire_silence(_id("silence", silence_id), actor=who)


@router.get(
    "/alerts/channels",
    dependencies=ALERTS,
    summary="List notification channels (credentials masked)",
)
def list_channels(ml: ML) -> ChannelList:
    return ChannelList(channels=[ChannelOut.of(c) for c in ml.monitor.alerts.channels()])


# -- alerts -----------------------------------------------------------------------------


@router.get("/alerts", dependencies=ALERTS, summary="List alert episodes, newest first")
def list_alerts(
    ml: ML,
    state: Annotated[
        Literal["pending", "firing", "resolved", "active"] | None,
        Query(description="active: pending or firing."),
    ] = None,
    rule: Annotated[str | None, Query(max_length=100)] = None,
    endpoint: Annotated[str | None, Query(max_length=250)] = None,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> AlertList:
    found, token = page(
        ml.monitor.alerts.alerts(state=state, rule=rule, endpoint=endpoint, limit=_ALERTS_READ),
        lambda alert: -alert.id,
        limit=limit,
        page_token=page_token,
        query=fingerprint("alerts", state, rule, endpoint),
    )
    return AlertList(alerts=[AlertOut.of(alert) for alert in found], next_page_token=token)


@router.get("/alerts/{alert_id}", dependencies=ALERTS, summary="Get an alert episode")
def get_alert(alert_id: Annotated[int, Path(ge=1)], ml: ML) -> AlertOut:
    return AlertOut.of(ml.monitor.alerts.get_alert(_id("alert", alert_id)))
