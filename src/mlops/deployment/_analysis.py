"""Analysis of live traffic: per-version error rate, latency and model metric, and a verdict."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from mlops.deployment._strategies import Analysis
from mlops.store import Store
from mlops.store._schema import prediction_feedback, prediction_log

__all__ = ["AnalysisResult", "VersionStats", "analyse", "outcomes_by_route", "version_stats"]


@dataclass(frozen=True, slots=True)
class VersionStats:
    """What one version's live (non-shadow) traffic looked like in a window."""

    version: int
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    feedback: int = 0
    metric: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """A step's verdict — "pass", "fail" or "inconclusive" — with the reasons and numbers."""

    verdict: str
    reasons: tuple[str, ...]
    candidate: VersionStats
    stable: VersionStats | None

    def to_dict(self) -> dict[str, Any]:
        def stats(value: VersionStats | None) -> dict[str, Any] | None:
            if value is None:
                return None
            return {
                "version": value.version,
                "requests": value.requests,
                "errors": value.errors,
                "error_rate": round(value.error_rate, 6),
                "p50_ms": value.p50_ms,
                "p99_ms": value.p99_ms,
                "feedback": value.feedback,
                "metric": value.metric,
            }

        return {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "candidate": stats(self.candidate),
            "stable": stats(self.stable),
        }


def version_stats(
    store: Store, endpoint: str, version: int, since_ms: int, metric: str | None = None
) -> VersionStats:
    """Requests, errors, p50/p99 latency and (with feedback) a metric since ``since_ms``."""
    live = sa.and_(
        prediction_log.c.endpoint == endpoint,
        prediction_log.c.version == version,
        prediction_log.c.ts >= since_ms,
        prediction_log.c.route != "shadow",
    )
    with store.read() as connection:
        rows = connection.execute(
            sa.select(prediction_log.c.latency_ms, prediction_log.c.status).where(live)
        ).all()
        pairs: list[Any] = []
        if metric is not None:
            pairs = list(
                connection.execute(
                    sa.select(prediction_log.c.outputs, prediction_feedback.c.actual)
                    .join(
                        prediction_feedback,
                        prediction_feedback.c.request_id == prediction_log.c.request_id,
                    )
                    .where(live, prediction_log.c.status < 400)
                ).all()
            )
    p50: float | None
    p99: float | None
    if rows:
        latency = np.fromiter((row[0] for row in rows), dtype=np.float64, count=len(rows))
        status = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
        p50, p99 = (float(v) for v in np.percentile(latency, [50, 99]))
        errors = int(np.count_nonzero(status >= 500))
    else:
        p50 = p99 = None
        errors = 0
    value = _metric(metric, pairs) if metric is not None else None
    return VersionStats(version, len(rows), errors, p50, p99, len(pairs), value)


def _first_prediction(outputs: str | None) -> Any:
    if outputs is None:
        return None
    data = json.loads(outputs)
    if isinstance(data, dict):
        data = data.get("predictions", data.get("prediction"))
    if isinstance(data, list):
        return data[0] if data else None
    return data


def _metric(metric: str, pairs: list[Any]) -> float | None:
    predicted, actual = [], []
    for outputs, truth in pairs:
        value = _first_prediction(outputs)
        if value is None:
            continue
        predicted.append(value)
        actual.append(json.loads(truth))
    if not predicted:
        return None
    if metric == "accuracy":
        return float(np.mean([str(p) == str(a) for p, a in zip(predicted, actual, strict=True)]))
    errors = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    if metric == "rmse":
        return float(math.sqrt(float(np.mean(errors**2))))
    return float(np.mean(np.abs(errors)))


def analyse(gate: Analysis, candidate: VersionStats, stable: VersionStats | None) -> AnalysisResult:
    """Judge the candidate against the gate's absolute and stable-relative bounds."""
    if candidate.requests < gate.min_requests:
        reason = f"{candidate.requests} candidate requests, the analysis needs {gate.min_requests}"
        return AnalysisResult("inconclusive", (reason,), candidate, stable)
    failures = []
    if candidate.error_rate > gate.max_error_rate:
        failures.append(
            f"error rate {candidate.error_rate:.2%} is above the limit {gate.max_error_rate:.2%}"
        )
    if stable is not None and stable.requests:
        bound = stable.error_rate + gate.max_error_rate_increase
        if candidate.error_rate > bound:
            failures.append(
                f"error rate {candidate.error_rate:.2%} exceeds stable's {stable.error_rate:.2%} "
                f"by more than {gate.max_error_rate_increase:.2%}"
            )
    p99 = candidate.p99_ms
    if p99 is not None and gate.max_p99_ms is not None and p99 > gate.max_p99_ms:
        failures.append(f"p99 latency {p99:.1f} ms is above {gate.max_p99_ms:.1f} ms")
    if (
        p99 is not None
        and stable is not None
        and stable.p99_ms
        and gate.max_p99_ratio is not None
        and p99 > stable.p99_ms * gate.max_p99_ratio
        and p99 > 5.0  # below a few ms, ratios measure noise
    ):
        failures.append(
            f"p99 latency {p99:.1f} ms is more than {gate.max_p99_ratio}x stable's "
            f"{stable.p99_ms:.1f} ms"
        )
    if gate.metric is not None:
        failures.extend(_metric_failures(gate, candidate, stable))
    if failures:
        return AnalysisResult("fail", tuple(failures), candidate, stable)
    return AnalysisResult("pass", ("all checks passed",), candidate, stable)


def _metric_failures(
    gate: Analysis, candidate: VersionStats, stable: VersionStats | None
) -> list[str]:
    if candidate.metric is None or candidate.feedback < gate.min_feedback:
        return []  # no verdict on the metric until enough feedback has arrived
    if stable is None or stable.metric is None or stable.feedback < gate.min_feedback:
        return []
    lower_is_better = gate.metric in {"rmse", "mae"}
    worse = (
        candidate.metric - stable.metric if lower_is_better else stable.metric - candidate.metric
    )
    if worse > gate.max_metric_degradation:
        return [
            f"{gate.metric} {candidate.metric:.4f} is worse than stable's {stable.metric:.4f} "
            f"by more than {gate.max_metric_degradation}"
        ]
    return []


def outcomes_by_route(store: Store, endpoint: str, since_ms: int) -> dict[str, list[float]]:
    """Feedback values (as numbers) per route label: the A/B test's per-arm outcomes."""
    with store.read() as connection:
        rows = connection.execute(
            sa.select(prediction_log.c.route, prediction_feedback.c.actual)
            .join(
                prediction_feedback, prediction_feedback.c.request_id == prediction_log.c.request_id
            )
            .where(
                prediction_log.c.endpoint == endpoint,
                prediction_log.c.ts >= since_ms,
                prediction_log.c.route != "shadow",
            )
        ).all()
    found: dict[str, list[float]] = {}
    for route, actual in rows:
        value = json.loads(actual)
        if isinstance(value, bool | int | float):
            found.setdefault(route, []).append(float(value))
    return found
