"""Promotion policies: metric gates a version must pass before production."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import InvalidInput, PolicyViolation

__all__ = ["PromotionPolicy"]

_LOWER_IS_BETTER_HINTS = ("loss", "error", "rmse", "mae", "mse", "latency")


@dataclass(frozen=True, slots=True)
class PromotionPolicy:
    """What a version needs to enter production.

    ``thresholds``: each metric must reach the value (≥, or ≤ for lower-is-better metrics).
    ``max_regression``: the candidate may be worse than the current production version by
    at most this much per metric. ``lower_is_better`` names metrics where smaller wins
    (default: names containing loss, error, rmse, mae, mse or latency).
    ``require_approval``: a second identity must approve production transitions.
    ``require_signature``: the version must carry a valid signature from a trusted key.
    """

    thresholds: Mapping[str, float] = field(default_factory=dict)
    max_regression: Mapping[str, float] = field(default_factory=dict)
    lower_is_better: frozenset[str] | None = None
    require_approval: bool = False
    require_signature: bool = False

    def __post_init__(self) -> None:
        for label, rules in (
            ("thresholds", self.thresholds),
            ("max_regression", self.max_regression),
        ):
            if not isinstance(rules, Mapping):
                raise InvalidInput(f"policy {label} must map metric names to numbers")
            for key, value in rules.items():
                if (
                    not isinstance(key, str)
                    or isinstance(value, bool)
                    or not isinstance(value, (int, float))
                ):
                    raise InvalidInput(f"policy {label}[{key!r}] must be a number, got {value!r}")
                if not math.isfinite(value):
                    raise InvalidInput(f"policy {label}[{key!r}] must be finite")
                if label == "max_regression" and value < 0:
                    raise InvalidInput(f"policy max_regression[{key!r}] must be ≥ 0")

    def is_lower_better(self, metric: str) -> bool:
        if self.lower_is_better is not None:
            return metric in self.lower_is_better
        return any(hint in metric.lower() for hint in _LOWER_IS_BETTER_HINTS)

    def check(
        self,
        model: str,
        candidate: str,
        metrics: Mapping[str, float],
        production: tuple[str, Mapping[str, float]] | None,
    ) -> None:
        """Raise ``PolicyViolation`` naming the first failing rule and both values."""
        for metric, threshold in sorted(self.thresholds.items()):
            value = metrics.get(metric)
            lower = self.is_lower_better(metric)
            sense = "≤" if lower else "≥"
            if value is None or (isinstance(value, float) and math.isnan(value)):
                raise PolicyViolation(
                    f"model {model!r} version {candidate} has no metric {metric!r}; the policy "
                    f"requires {metric} {sense} {threshold}. Register the version with it"
                )
            if (value > threshold) if lower else (value < threshold):
                raise PolicyViolation(
                    f"model {model!r} version {candidate}: {metric} = {value} breaks the rule "
                    f"{metric} {sense} {threshold}"
                )
        if production is None:
            return
        production_label, production_metrics = production
        for metric, tolerance in sorted(self.max_regression.items()):
            current = production_metrics.get(metric)
            value = metrics.get(metric)
            if current is None:
                continue  # nothing to compare against
            lower = self.is_lower_better(metric)
            if value is None:
                raise PolicyViolation(
                    f"model {model!r} version {candidate} has no metric {metric!r} to compare "
                    f"with production version {production_label} ({metric} = {current})"
                )
            bound = current + tolerance if lower else current - tolerance
            if (value > bound) if lower else (value < bound):
                sense = "≤" if lower else "≥"
                raise PolicyViolation(
                    f"model {model!r} version {candidate}: {metric} = {value} is worse than "
                    f"production version {production_label} ({metric} = {current}) by more "
                    f"than {tolerance}; the rule is {metric} {sense} {bound:g}"
                )

    def to_json(self) -> str:
        return json.dumps(
            {
                "thresholds": dict(self.thresholds),
                "max_regression": dict(self.max_regression),
                "lower_is_better": None
                if self.lower_is_better is None
                else sorted(self.lower_is_better),
                "require_approval": self.require_approval,
                "require_signature": self.require_signature,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> PromotionPolicy:
        data: dict[str, Any] = json.loads(text)
        lower = data.get("lower_is_better")
        return cls(
            thresholds=data.get("thresholds", {}),
            max_regression=data.get("max_regression", {}),
            lower_is_better=None if lower is None else frozenset(lower),
            require_approval=bool(data.get("require_approval", False)),
            require_signature=bool(data.get("require_signature", False)),
        )
