"""An endpoint's routing table, and the router compiled from it for the hot path."""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import InvalidInput

__all__ = ["Route", "RouteTable", "Router"]

ROLES = ("stable", "canary", "candidate", "arm", "rolling-new")


@dataclass(frozen=True, slots=True)
class Route:
    """A share of an endpoint's traffic answered by one registry version.

    ``role`` is "stable", "canary", "candidate" (blue-green after the switch), "arm"
    (an A/B arm, named by ``arm``) or "rolling-new" (a worker already switched by a rolling
    rollout).
    """

    version: int
    weight: float
    role: str = "stable"
    arm: str | None = None

    @property
    def label(self) -> str:
        """How the prediction log names this route: the role, or the arm's name."""
        return self.arm if self.role == "arm" and self.arm else self.role


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Where an endpoint's requests go. Stored as JSON in ``serving_endpoints.routes``.

    ``routes`` share the live traffic by weight; ``shadow_version`` gets a copy of
    ``shadow_share`` of the requests after the response is sent; ``preview_version`` answers
    requests that carry the ``preview_header`` (blue-green's green before the switch);
    ``sticky_header`` / ``sticky_field`` name the request key that keeps a caller on one
    route (A/B tests); ``batching`` holds ``max_batch_size`` and ``max_latency_ms``.
    """

    model: str
    routes: tuple[Route, ...]
    shadow_version: int | None = None
    shadow_share: float = 0.0
    preview_version: int | None = None
    preview_header: str = "x-mlops-preview"
    sticky_header: str | None = None
    sticky_field: str | None = None
    batching: Mapping[str, float] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.routes:
            raise InvalidInput(f"the routing table of model {self.model!r} has no routes")
        total = 0.0
        for route in self.routes:
            if route.role not in ROLES:
                raise InvalidInput(f"route role {route.role!r} is not one of {', '.join(ROLES)}")
            if not 0.0 <= route.weight <= 1.0:
                raise InvalidInput(f"route weight {route.weight} is not between 0 and 1")
            total += route.weight
        if abs(total - 1.0) > 1e-6:
            raise InvalidInput(f"route weights add up to {total:.4f}, not 1")
        if not 0.0 <= self.shadow_share <= 1.0:
            raise InvalidInput(f"shadow share {self.shadow_share} is not between 0 and 1")

    @property
    def versions(self) -> set[int]:
        """Every version this table needs loaded."""
        found = {route.version for route in self.routes}
        for extra in (self.shadow_version, self.preview_version):
            if extra is not None:
                found.add(extra)
        rolling = self.rolling
        if rolling is not None:
            found.update(rolling[:2])
        return found

    @property
    def rolling(self) -> tuple[int, int, int] | None:
        """A rolling rollout's (old, new, workers_on_new), or None.

        Each serving worker answers every request with one version: the workers ranked
        below ``workers_on_new`` serve ``new``, the others ``old`` (see ServingState).
        """
        data = self.extra.get("rolling")
        if not isinstance(data, Mapping):
            return None
        return int(data["old"]), int(data["new"]), int(data["workers_on_new"])

    def to_json(self) -> str:
        return json.dumps(
            {
                "model": self.model,
                "routes": [
                    {"version": r.version, "weight": r.weight, "role": r.role, "arm": r.arm}
                    for r in self.routes
                ],
                "shadow_version": self.shadow_version,
                "shadow_share": self.shadow_share,
                "preview_version": self.preview_version,
                "preview_header": self.preview_header,
                "sticky_header": self.sticky_header,
                "sticky_field": self.sticky_field,
                "batching": None if self.batching is None else dict(self.batching),
                "extra": dict(self.extra),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> RouteTable:
        data = json.loads(text)
        return cls(
            model=data["model"],
            routes=tuple(
                Route(r["version"], float(r["weight"]), r.get("role", "stable"), r.get("arm"))
                for r in data["routes"]
            ),
            shadow_version=data.get("shadow_version"),
            shadow_share=float(data.get("shadow_share") or 0.0),
            preview_version=data.get("preview_version"),
            preview_header=data.get("preview_header") or "x-mlops-preview",
            sticky_header=data.get("sticky_header"),
            sticky_field=data.get("sticky_field"),
            batching=data.get("batching"),
            extra=data.get("extra") or {},
        )

    @classmethod
    def single(cls, model: str, version: int) -> RouteTable:
        """All traffic to one version."""
        return cls(model=model, routes=(Route(version, 1.0, "stable"),))


def unit_hash(key: str) -> float:
    """A stable number in [0, 1) for a request key (the same key always lands the same)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Router:
    """Picks a route per request from precomputed cumulative weights; no I/O, no locks."""

    def __init__(self, table: RouteTable) -> None:
        self.table = table
        live = [route for route in table.routes if route.weight > 0]
        self._routes: Sequence[Route] = live
        cumulative, running = [], 0.0
        for route in live:
            running += route.weight
            cumulative.append(running)
        cumulative[-1] = 1.0  # guard against rounding: every key lands somewhere
        self._cumulative = cumulative
        self._only = live[0] if len(live) == 1 else None

    def pick(self, key: str) -> Route:
        """The route for a request key (a sticky key, or the request id)."""
        if self._only is not None:
            return self._only
        return self._routes[bisect.bisect_right(self._cumulative, unit_hash(key))]

    def shadow(self, key: str) -> int | None:
        """The shadow version if this request is mirrored."""
        table = self.table
        if table.shadow_version is None or table.shadow_share <= 0:
            return None
        # A different salt than routing, so the shadow share is independent of the arm.
        return table.shadow_version if unit_hash("shadow:" + key) < table.shadow_share else None
