"""``RemoteDeploymentManager``: ``ml.deployments`` over a server's REST API, with the
embedded results. The server's controller advances rollouts; this facade starts, steers
and reads them. (``_monitor.py`` and ``_alerts.py`` hold the monitoring facades.)
"""

import builtins
from collections.abc import Mapping
from typing import Any, NoReturn

from mlops.deployment import Deployment, DeploymentEvent, DeploymentManager, DeploymentState
from mlops.deployment import Strategy as _Strategy
from mlops.errors import InvalidInput, NotFound
from mlops.remote._http import ApiClient
from mlops.remote._tracking import path_part
from mlops.serving._routes import Route, RouteTable

__all__ = ["RemoteDeploymentManager", "deployment_of"]

#: The strategies the deploy route builds, by ``Strategy.name``.
_STRATEGY_TYPES = {
    "direct": "direct",
    "canary": "canary",
    "blue-green": "blue_green",
    "rolling": "rolling",
    "ab-test": "ab_test",
    "shadow": "shadow",
}
_DEFAULT_PREVIEW_HEADER = "x-mlops-preview"


def _server_runs(what: str, hint: str) -> NoReturn:
    raise InvalidInput(f"{what} runs on the server, not through a remote connection; {hint}")


def _float(value: Any) -> float | None:
    """A number of the API's JSON ("NaN", "Infinity" for non-finite ones)."""
    return None if value is None else float(value)


# -- deployments ------------------------------------------------------------------------


def routes_of(model: str, traffic: Mapping[str, Any] | None) -> RouteTable | None:
    if traffic is None:
        return None
    return RouteTable(
        model=model,
        routes=tuple(
            Route(r["version"], float(r["weight"]), r["role"], r["arm"]) for r in traffic["routes"]
        ),
        shadow_version=traffic["shadow_version"],
        shadow_share=float(traffic["shadow_share"]),
        preview_version=traffic["preview_version"],
        preview_header=traffic["preview_header"] or _DEFAULT_PREVIEW_HEADER,
        sticky_header=traffic["sticky_header"],
        sticky_field=traffic["sticky_field"],
        batching=traffic.get("batching"),
        extra=dict(traffic.get("extra") or {}),
    )


def deployment_of(body: Mapping[str, Any]) -> Deployment:
    stored = {api: name for name, api in _STRATEGY_TYPES.items()}
    return Deployment(
        id=body["id"],
        endpoint=body["endpoint"],
        model=body["model"],
        stable_version=body["stable_version"],
        candidate_version=body["candidate_version"],
        strategy=stored.get(body["strategy"], body["strategy"]),
        params=dict(body["params"]),
        state=DeploymentState(body["state"]),
        step=body["step"],
        steps=body["steps"],
        failures=body["failures"],
        reason=body["reason"],
        created_by=body["created_by"],
        created_at=body["created_at"],
        updated_at=body["updated_at"],
        routes=routes_of(body["model"], body["traffic"]),
    )


def event_of(body: Mapping[str, Any]) -> DeploymentEvent:
    return DeploymentEvent(
        kind=body["kind"],
        from_state=body["from_state"],
        to_state=body["to_state"],
        step=body["step"],
        detail=dict(body["detail"]),
        actor=body["actor"],
        created_at=body["created_at"],
    )


def strategy_body(strategy: Any) -> dict[str, Any]:
    """A strategy object as the deploy route's ``strategy`` body."""
    if not isinstance(strategy, _Strategy):
        raise InvalidInput(
            "strategy must be a strategy object such as Canary(), BlueGreen(), "
            "ABTest(), Shadow(), Rolling() or Direct() from mlops.deployment"
        )
    kind = _STRATEGY_TYPES.get(strategy.name)
    if kind is None:
        raise InvalidInput(
            f"a server builds only its own strategies ({', '.join(_STRATEGY_TYPES)}); "
            f"{type(strategy).__name__} ({strategy.name!r}) cannot be sent to it"
        )
    return {"type": kind, **strategy.get_params()}


class RemoteDeploymentManager(DeploymentManager):
    """Deployments of a remote server: the same methods and results as the embedded
    ``DeploymentManager``. The server's controller moves rollouts along (``advance``)."""

    def __init__(self, api: ApiClient, *, actor: str | None = None) -> None:
        self._api = api
        self._actor = actor

    def __repr__(self) -> str:
        return f"<RemoteDeploymentManager {self._api.url}>"

    def _who(self, actor: str | None) -> str | None:
        return actor if actor is not None else self._actor

    def deploy(
        self,
        endpoint: str,
        model: str,
        version: int | str,
        *,
        strategy: _Strategy | None = None,
        actor: str | None = None,
    ) -> Deployment:
        body: dict[str, Any] = {"endpoint": endpoint, "version": version}
        if strategy is not None:
            body["strategy"] = strategy_body(strategy)
        found = self._api.post(
            f"/models/{path_part(model)}/deploy", json=body, actor=self._who(actor)
        )
        return deployment_of(found)

    def status(self, deployment: int | str) -> Deployment:
        if isinstance(deployment, str):
            latest = self._endpoint_deployments(deployment, limit=1)
            if not latest:
                raise NotFound(f"endpoint {deployment!r} has no deployments")
            return deployment_of(latest[0])
        return deployment_of(self._api.get(f"/deployments/{self._id(deployment)}"))

    def list(
        self, endpoint: str | None = None, *, active: bool = False
    ) -> builtins.list[Deployment]:
        if endpoint is not None:
            self._check_endpoint(endpoint)
        params = {"endpoint": endpoint, "active": True if active else None}
        return [deployment_of(d) for d in self._api.pages("/deployments", "deployments", params)]

    def history(self, deployment: int | str) -> builtins.list[DeploymentEvent]:
        path = f"/deployments/{self._resolve(deployment)}/history"
        return [event_of(event) for event in self._api.pages(path, "events")]

    def advance(self) -> builtins.list[Deployment]:
        _server_runs(
            "advance() (the deployment controller)",
            "the server moves rollouts along by itself; steer them with promote, abort, "
            "pause, resume or rollback",
        )

    def promote(self, deployment: int | str, *, actor: str | None = None) -> Deployment:
        return self._act(deployment, "promote", actor)

    def abort(
        self, deployment: int | str, *, actor: str | None = None, reason: str | None = None
    ) -> Deployment:
        return self._act(deployment, "abort", actor, reason)

    def pause(self, deployment: int | str, *, actor: str | None = None) -> Deployment:
        return self._act(deployment, "pause", actor)

    def resume(self, deployment: int | str, *, actor: str | None = None) -> Deployment:
        return self._act(deployment, "resume", actor)

    def rollback(
        self, endpoint: str, *, actor: str | None = None, reason: str | None = None
    ) -> Deployment:
        return self._act(self.status(endpoint).id, "rollback", actor, reason)

    def _act(
        self, deployment: int | str, action: str, actor: str | None, reason: str | None = None
    ) -> Deployment:
        body = None if reason is None else {"reason": reason}
        path = f"/deployments/{self._resolve(deployment)}/{action}"
        return deployment_of(self._api.post(path, json=body, actor=self._who(actor)))

    def _resolve(self, deployment: int | str) -> int:
        """A deployment's id (an endpoint name stands for its latest deployment)."""
        return self.status(deployment).id if isinstance(deployment, str) else self._id(deployment)

    @staticmethod
    def _id(deployment: object) -> int:
        if isinstance(deployment, bool) or not isinstance(deployment, int):
            raise InvalidInput(f"a deployment is an id or an endpoint name, got {deployment!r}")
        if deployment < 1:
            raise NotFound(f"deployment {deployment} does not exist (see `mlops deployments list`)")
        return deployment

    @staticmethod
    def _check_endpoint(endpoint: str) -> None:
        if not isinstance(endpoint, str) or not 0 < len(endpoint) <= 250:
            raise NotFound(f"endpoint {endpoint!r} does not exist (see `mlops deployments list`)")

    def _endpoint_deployments(self, endpoint: str, *, limit: int) -> builtins.list[Any]:
        self._check_endpoint(endpoint)
        found = self._api.get("/deployments", params={"endpoint": endpoint, "limit": limit})
        return list(found["deployments"])


# -- performance and drift --------------------------------------------------------------
