"""What the deployment pages show, computed from a deployment and its history: the
traffic split of an endpoint, the rollout timeline, the candidate's share over time, an
A/B test's result and a shadow's agreement (plain dicts and plotly figures)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from mlops._client import MLOps
from mlops.deployment import Deployment, DeploymentEvent, strategy_from_params, version_stats
from mlops.errors import MLOpsError
from mlops.store._schema import prediction_log
from mlops.ui._common import finite

__all__ = [
    "ab_result",
    "actions_for",
    "blue_green",
    "candidate_share",
    "shadow_agreement",
    "share_chart",
    "split_of",
    "timeline",
]

#: Event kinds that end a rollout, and the candidate's share once they happened.
_FINAL_SHARE = {"succeeded": 1.0, "aborted": 0.0, "rolled_back": 0.0, "failed": 0.0}
#: Event kinds that carry an analysis of the traffic of a step.
_ANALYSED = ("analysis", "step", "analysis_failed", "succeeded", "rolled_back")
#: How an A/B check's decision shows in the timeline.
_AB_VERDICTS = {"winner_b": "pass", "winner_a": "fail", "keep_running": "inconclusive"}
#: Shadow log rows read to compute the agreement rate (the newest ones).
_SHADOW_SAMPLE = 5_000


def candidate_share(deployment: Deployment) -> float:
    """The share of live traffic the candidate answers now."""
    routes = deployment.routes
    if routes is None:
        return 0.0
    share = sum(r.weight for r in routes.routes if r.version == deployment.candidate_version)
    return min(1.0, share)


def split_of(deployment: Deployment, active: Deployment | None) -> list[dict[str, Any]]:
    """The endpoint's live routes as bar segments: stable, candidate, other versions."""
    routes = deployment.routes
    if routes is None:
        return []
    segments = []
    for route in routes.routes:
        if route.weight <= 0:
            continue
        if active is not None and route.version == active.candidate_version:
            kind = "candidate"
        elif active is None or route.version == active.stable_version:
            kind = "stable"
        else:
            kind = "other"
        label = route.arm if route.role == "arm" and route.arm else kind
        segments.append(
            {
                "version": route.version,
                "kind": kind,
                "label": label,
                "percent": round(route.weight * 100, 1),
            }
        )
    return segments


def _share_at(deployment: Deployment, step: int) -> float | None:
    """The candidate's share of live traffic at ``step`` of the strategy."""
    try:
        strategy = strategy_from_params(deployment.strategy, deployment.params)
        table = strategy.table(
            deployment.model, deployment.stable_version, deployment.candidate_version, step
        )
    except (MLOpsError, ValueError, IndexError):
        return None
    share = sum(r.weight for r in table.routes if r.version == deployment.candidate_version)
    return min(1.0, share)


def timeline(deployment: Deployment, events: Sequence[DeploymentEvent]) -> list[dict[str, Any]]:
    """Every event, oldest first; an analysis shows the step it judged, that step's
    traffic share, the numbers compared and the verdict with its reasons."""
    entries = []
    for event in events:
        detail = event.detail
        analysis = detail.get("analysis") if isinstance(detail, dict) else None
        ab = detail.get("ab") if event.kind != "ab_check" else detail
        judged = event.step
        if event.kind == "step" and judged is not None:
            judged -= 1  # a "step" event records the step it moved to
        entry: dict[str, Any] = {
            "kind": event.kind,
            "time": event.created_at,
            "step": judged,
            "to_state": event.to_state,
            "actor": event.actor,
            "reason": detail.get("reason") or detail.get("registry") or detail.get("error"),
            "share": None if judged is None else _share_at(deployment, judged),
            "analysis": None,
            "verdict": None,
            "ab": ab if isinstance(ab, dict) else None,
        }
        if isinstance(analysis, dict) and event.kind in _ANALYSED:
            entry["analysis"] = analysis
            entry["verdict"] = analysis.get("verdict")
            entry["compared"] = [
                ("requests", "requests", "number"),
                ("error rate", "error_rate", "pct"),
                ("p50", "p50_ms", "ms"),
                ("p99", "p99_ms", "ms"),
                ("feedback", "feedback", "number"),
                ("metric", "metric", "number"),
            ]
        elif isinstance(ab, dict):
            entry["verdict"] = _AB_VERDICTS.get(str(ab.get("decision")), "inconclusive")
        elif event.kind in ("aborted", "rolled_back", "failed", "analysis_failed"):
            entry["verdict"] = "fail"
        elif event.kind == "succeeded":
            entry["verdict"] = "pass"
        entries.append(entry)
    return entries


def share_chart(
    deployment: Deployment, events: Sequence[DeploymentEvent], now_ms: int | None = None
) -> dict[str, Any]:
    """A step chart of the candidate's share of live traffic over the rollout."""
    times: list[int] = []
    shares: list[float | None] = []
    for event in events:
        if event.kind in _FINAL_SHARE:
            share: float | None = _FINAL_SHARE[event.kind]
        elif event.kind in ("created", "step") and event.step is not None:
            share = _share_at(deployment, event.step)
        else:
            continue
        times.append(event.created_at)
        shares.append(None if share is None else round(share * 100, 2))
    if deployment.state.active and times:
        times.append(max(now_ms or int(time.time() * 1000), times[-1]))
        shares.append(round(candidate_share(deployment) * 100, 2))
    moments = [time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t / 1000)) for t in times]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "line": {"shape": "hv", "color": "#f59e0b", "width": 2},
                "x": moments,
                "y": [finite(s) for s in shares],
                "name": f"v{deployment.candidate_version} share",
                "hovertemplate": "%{y:.1f}% at %{x}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": "Candidate share of live traffic", "font": {"size": 13}},
            "yaxis": {"range": [0, 105], "ticksuffix": "%", "title": {"text": "share"}},
            "xaxis": {"title": {"text": "time (UTC)"}},
            "showlegend": False,
        },
    }


def ab_result(
    ml: MLOps, deployment: Deployment, events: Sequence[DeploymentEvent]
) -> dict[str, Any]:
    """The latest A/B check: per arm requests, samples and mean outcome; the difference
    with its confidence interval, p-value and verdict (or why there is none yet)."""
    latest: dict[str, Any] | None = None
    for event in events:
        if event.kind == "ab_check":
            latest = event.detail
        elif isinstance(event.detail.get("ab"), dict):
            latest = event.detail["ab"]
    arms = []
    for label, version, index in (
        ("control", deployment.stable_version, 0),
        ("treatment", deployment.candidate_version, 1),
    ):
        stats = None
        if version is not None:
            stats = version_stats(ml.store, deployment.endpoint, version, deployment.created_at)
        arm: dict[str, Any] = {
            "label": label,
            "version": version,
            "requests": None if stats is None else stats.requests,
            "samples": None,
            "mean": None,
        }
        if latest is not None and "n" in latest:
            arm["samples"] = latest["n"][index]
            arm["mean"] = latest["means"][index]
        elif latest is not None:
            arm["samples"] = latest.get(label)
        arms.append(arm)
    outcome = str(deployment.params.get("outcome", "binary"))
    result: dict[str, Any] = {
        "arms": arms,
        "outcome": outcome,
        "ready": latest is not None and "p_value" in latest,
        "reason": None if latest is None else latest.get("reason"),
        "decision": None if latest is None else latest.get("decision"),
        "chart": None,
    }
    if not result["ready"] or latest is None:
        result["reason"] = result["reason"] or "no check has run yet"
        return result
    low, high = latest["ci"]
    effect = latest["effect"]
    result.update(
        effect=effect,
        ci=(low, high),
        p_value=latest["p_value"],
        method=latest.get("method"),
        required=latest.get("required_per_arm"),
    )
    result["chart"] = {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "x": [finite(effect)],
                "y": ["treatment - control"],
                "marker": {"size": 12, "color": "#4f46e5"},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [finite(None if high is None else high - effect)],
                    "arrayminus": [finite(None if low is None else effect - low)],
                    "thickness": 2,
                    "width": 8,
                },
                "name": "difference",
                "hovertemplate": "difference %{x:.4g}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": "Difference with its confidence interval", "font": {"size": 13}},
            "xaxis": {"zeroline": True, "zerolinecolor": "#d93025", "zerolinewidth": 2},
            "yaxis": {"automargin": True},
            "showlegend": False,
            "margin": {"l": 130},
        },
    }
    return result


def shadow_agreement(ml: MLOps, deployment: Deployment) -> dict[str, Any]:
    """How often the shadow agreed with the live answer, and both versions' latency."""
    # No facade reports shadow agreement yet: read the newest shadow log rows directly.
    with ml.store.read() as connection:
        rows = connection.execute(
            sa.select(prediction_log.c.outputs, prediction_log.c.status)
            .where(
                prediction_log.c.endpoint == deployment.endpoint,
                prediction_log.c.route == "shadow",
                prediction_log.c.version == deployment.candidate_version,
                prediction_log.c.ts >= deployment.created_at,
            )
            .order_by(prediction_log.c.id.desc())
            .limit(_SHADOW_SAMPLE)
        ).all()
    agreed = compared = errors = 0
    for outputs, status in rows:
        if status != 200:
            errors += 1
            continue
        try:
            agree = json.loads(outputs).get("agree") if outputs else None
        except (TypeError, ValueError, AttributeError):
            agree = None
        if isinstance(agree, bool):
            compared += 1
            agreed += agree
    live = None
    if deployment.stable_version is not None:
        live = version_stats(
            ml.store, deployment.endpoint, deployment.stable_version, deployment.created_at
        )
    with ml.store.read() as connection:
        latency = connection.execute(
            sa.select(
                sa.func.avg(prediction_log.c.latency_ms), sa.func.max(prediction_log.c.latency_ms)
            ).where(
                prediction_log.c.endpoint == deployment.endpoint,
                prediction_log.c.route == "shadow",
                prediction_log.c.version == deployment.candidate_version,
                prediction_log.c.ts >= deployment.created_at,
            )
        ).one()
    return {
        "compared": compared,
        "agreed": agreed,
        "errors": errors,
        "rate": agreed / compared if compared else None,
        "share": deployment.routes.shadow_share if deployment.routes else None,
        "live_p50": None if live is None else live.p50_ms,
        "live_p99": None if live is None else live.p99_ms,
        "shadow_mean": None if latency[0] is None else float(latency[0]),
        "shadow_max": None if latency[1] is None else float(latency[1]),
    }


def blue_green(deployment: Deployment) -> dict[str, Any]:
    """Which colour answers live traffic: blue (the old version) or green (the new)."""
    share = candidate_share(deployment)
    live = "green" if share >= 0.5 else "blue"
    routes = deployment.routes
    return {
        "blue": deployment.stable_version,
        "green": deployment.candidate_version,
        "live": live,
        "preview": routes is not None and routes.preview_version is not None,
        "preview_header": None if routes is None else routes.preview_header,
    }


def actions_for(deployment: Deployment, latest_id: int) -> list[tuple[str, str, str, str]]:
    """The actions the state allows: (action, label, confirmation, button kind)."""
    where = f"deployment {deployment.id} ({deployment.endpoint})"
    v = deployment.candidate_version
    state = deployment.state.value
    found: list[tuple[str, str, str, str]] = []
    if state in ("progressing", "paused"):
        found.append(("promote", "Promote", f"Promote v{v} to 100% of {where}?", "primary"))
        if state == "progressing":
            found.append(("pause", "Pause", f"Pause {where} at its step?", ""))
        else:
            found.append(("resume", "Resume", f"Resume {where}?", ""))
        found.append(("abort", "Abort", f"Abort {where}: all traffic back to stable?", "danger"))
    elif (
        state == "succeeded"
        and deployment.stable_version is not None
        and deployment.id == latest_id  # the manager rolls back an endpoint's latest only
    ):
        back = f"Roll back {where}: v{deployment.stable_version} serves again?"
        found.append(("rollback", "Rollback", back, "danger"))
    return found
