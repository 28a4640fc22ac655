"""DeploymentManager: deploy a registry version to an endpoint with a strategy, and drive it."""

from __future__ import annotations

import builtins
import contextlib
import enum
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mlops.deployment._analysis import analyse, outcomes_by_route, version_stats
from mlops.deployment._stats import (
    TestResult,
    ab_verdict,
    required_sample_size_means,
    required_sample_size_proportions,
    sequential_means_test,
    sequential_proportions_test,
    two_proportion_ztest,
    welch_ttest_samples,
)
from mlops.deployment._strategies import (
    ABTest,
    Canary,
    Direct,
    Rolling,
    Strategy,
    strategy_from_params,
)
from mlops.errors import Conflict, InvalidInput, MLOpsError, NotFound
from mlops.models import ModelManifest
from mlops.registry import ModelRegistry
from mlops.registry._audited import audit
from mlops.registry._rows import check_model_name
from mlops.serving._endpoints import EndpointStore
from mlops.serving._gateway import live_workers
from mlops.serving._routes import Route, RouteTable
from mlops.store import Store
from mlops.store._schema import (
    deployment_events,
    deployments,
    model_versions,
    registered_models,
    serving_endpoints,
)

__all__ = ["Deployment", "DeploymentEvent", "DeploymentManager", "DeploymentState"]

_log = logging.getLogger(__name__)

CONTROLLER = "mlops-controller"

# Audit action names for the kinds of transition recorded in deployment_events.
_AUDIT_ACTIONS = {
    "step": "deployment.step_advanced",
    "succeeded": "deployment.promoted",
    "aborted": "deployment.aborted",
    "rolled_back": "deployment.rolled_back",
    "paused": "deployment.paused",
    "resumed": "deployment.resumed",
    "analysis_failed": "deployment.analysis_failed",
}


class DeploymentState(enum.StrEnum):
    PROGRESSING = "progressing"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    ABORTED = "aborted"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (DeploymentState.PROGRESSING, DeploymentState.PAUSED)


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    """One recorded transition or analysis of a deployment, with its reason."""

    kind: str
    from_state: str | None
    to_state: str | None
    step: int | None
    detail: dict[str, Any]
    actor: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Deployment:
    """A rollout of ``candidate_version`` onto an endpoint that ``stable_version`` served."""

    id: int
    endpoint: str
    model: str
    stable_version: int | None
    candidate_version: int
    strategy: str
    params: dict[str, Any]
    state: DeploymentState
    step: int
    steps: int
    failures: int
    reason: str | None
    created_by: str | None
    created_at: int
    updated_at: int
    routes: RouteTable | None = None


class DeploymentManager:
    """Deployments of registry versions to serving endpoints (``ml.deployments``).

    Every transition is recorded with its reason. ``advance()`` moves progressing
    deployments along; the server's controller calls it about once a second.
    """

    def __init__(
        self,
        store: Store,
        registry: ModelRegistry,
        *,
        actor: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._registry = registry
        self._endpoints = EndpointStore(store)
        self._actor = actor
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock() * 1000)

    # -- starting -----------------------------------------------------------------------

    def deploy(
        self,
        endpoint: str,
        model: str,
        version: int | str,
        *,
        strategy: Strategy | None = None,
        actor: str | None = None,
    ) -> Deployment:
        """Roll ``model`` ``version`` out to ``endpoint``.

        The first deployment of an endpoint goes straight to 100% (``Direct``); later ones
        default to ``Canary()``. A version whose signature is incompatible with the one
        serving is refused with the differences; so is a second rollout while one runs.
        """
        check_model_name(endpoint)
        target = self._registry.get_version(model, version)
        who = actor or self._actor
        now = self._now()
        with self._store.write() as connection:
            current = self._lock_endpoint(connection, endpoint)
            stable = None if current is None else _serving_version(current)
            if current is not None and current.model_name != model:
                raise Conflict(
                    f"endpoint {endpoint!r} serves model {current.model_name!r}, not {model!r}; "
                    "use another endpoint name"
                )
            if current is not None:
                active = connection.execute(
                    sa.select(deployments.c.id, deployments.c.state).where(
                        deployments.c.endpoint_id == current.id,
                        deployments.c.state.in_(
                            [DeploymentState.PROGRESSING.value, DeploymentState.PAUSED.value]
                        ),
                    )
                ).first()
                if active is not None:
                    raise Conflict(
                        f"endpoint {endpoint!r} is already rolling out (deployment {active.id}, "
                        f"{active.state}); promote, abort or wait for it first"
                    )
            if stable == target.number:
                raise Conflict(f"endpoint {endpoint!r} already serves version {stable}")
            if stable is not None:
                self._require_compatible(connection, model, stable, target.number)
            chosen: Strategy = strategy or (Direct() if stable is None else Canary())
            if stable is None and not isinstance(chosen, Direct):
                raise InvalidInput(
                    f"endpoint {endpoint!r} serves nothing yet, so a {chosen.name} rollout has "
                    "nothing to compare with or fall back to; deploy the first version directly"
                )
            if not isinstance(chosen, Strategy):
                raise InvalidInput(
                    "strategy must be a strategy object such as Canary(), BlueGreen(), "
                    "ABTest(), Shadow(), Rolling() or Direct() from mlops.deployment"
                )
            if isinstance(chosen, Rolling) and chosen.workers is None:
                # The rollout covers the workers live now; its steps are fixed from here.
                chosen = replace(chosen, workers=max(1, len(live_workers(connection, now))))
            table = chosen.table(model, stable, target.number, 0)
            params_json = json.dumps(chosen.get_params(), sort_keys=True, default=list)
            put = self._endpoints.put(endpoint, table, connection)
            endpoint_id = connection.execute(
                sa.select(serving_endpoints.c.id).where(serving_endpoints.c.name == put.name)
            ).scalar_one()
            deployment_id = connection.execute(
                deployments.insert().values(
                    endpoint_id=endpoint_id,
                    model_name=model,
                    stable_version=stable,
                    candidate_version=target.number,
                    strategy=chosen.name,
                    params=params_json,
                    state=DeploymentState.PROGRESSING.value,
                    step=0,
                    failures=0,
                    step_started_at=now,
                    created_by=who,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            self._event(
                connection,
                int(deployment_id),
                "created",
                None,
                "progressing",
                0,
                {
                    "strategy": chosen.name,
                    "params": chosen.get_params(),
                    "stable": stable,
                    "candidate": target.number,
                },
                who,
                now,
            )
            audit(
                connection,
                "deployment.created",
                f"deployments/{deployment_id}",
                actor=who,
                before=None
                if current is None
                else {"endpoint": endpoint, "routes": json.loads(current.routes)},
                after={
                    "endpoint": endpoint,
                    "model": model,
                    "version": target.number,
                    "stable_version": stable,
                    "strategy": chosen.name,
                    "params": json.loads(params_json),
                    "state": DeploymentState.PROGRESSING.value,
                    "routes": json.loads(table.to_json()),
                },
            )
        if isinstance(chosen, Direct):
            self.advance()
        return self.status(int(deployment_id))

    def _lock_endpoint(self, connection: Connection, endpoint: str) -> Row[Any] | None:
        return connection.execute(
            sa.select(serving_endpoints)
            .where(serving_endpoints.c.name == endpoint)
            .with_for_update()
        ).first()

    def _require_compatible(
        self, connection: Connection, model: str, stable: int, candidate: int
    ) -> None:
        manifests = dict(
            connection.execute(
                sa.select(model_versions.c.number, model_versions.c.manifest)
                .join(registered_models, registered_models.c.id == model_versions.c.model_id)
                .where(
                    registered_models.c.name == model,
                    model_versions.c.number.in_([stable, candidate]),
                )
            ).all()
        )
        old = ModelManifest.from_json(manifests[stable]).signature
        new = ModelManifest.from_json(manifests[candidate]).signature
        if old is None or new is None or new.is_compatible_with(old):
            return
        before = {c.name: c.type for c in old.inputs}
        after = {c.name: c.type for c in new.inputs}
        differences = [f"missing input {n!r}" for n in before if n not in after]
        differences += [
            f"input {n!r} changed from {before[n]} to {after[n]}"
            for n in before
            if n in after and before[n] != after[n]
        ]
        differences += [
            f"new required input {c.name!r}"
            for c in new.inputs
            if c.name not in before and c.required
        ]
        raise Conflict(
            f"version {candidate} of {model!r} is not compatible with the version {stable} "
            f"serving the endpoint: {'; '.join(differences) or 'the signatures differ'}. "
            "Deploy it to a new endpoint instead"
        )

    # -- reading ------------------------------------------------------------------------

    def status(self, deployment: int | str) -> Deployment:
        """A deployment by id, or the latest deployment of an endpoint (by name)."""
        with self._store.read() as connection:
            return self._load(connection, self._deployment_id(connection, deployment))

    def list(
        self, endpoint: str | None = None, *, active: bool = False
    ) -> builtins.list[Deployment]:
        """Deployments, newest first; ``active`` keeps the progressing and paused ones."""
        with self._store.read() as connection:
            query = sa.select(deployments.c.id).order_by(deployments.c.id.desc())
            if endpoint is not None:
                query = query.where(
                    deployments.c.endpoint_id == self._endpoint_id(connection, endpoint)
                )
            if active:
                query = query.where(
                    deployments.c.state.in_(
                        [DeploymentState.PROGRESSING.value, DeploymentState.PAUSED.value]
                    )
                )
            return [self._load(connection, i) for i in connection.execute(query).scalars()]

    def history(self, deployment: int | str) -> builtins.list[DeploymentEvent]:
        """Every recorded transition and analysis of a deployment, oldest first."""
        with self._store.read() as connection:
            deployment_id = self._deployment_id(connection, deployment)
            rows = connection.execute(
                sa.select(deployment_events)
                .where(deployment_events.c.deployment_id == deployment_id)
                .order_by(deployment_events.c.id)
            ).all()
        return [
            DeploymentEvent(
                kind=row.kind,
                from_state=row.from_state,
                to_state=row.to_state,
                step=row.step,
                detail=json.loads(row.detail) if row.detail else {},
                actor=row.actor,
                created_at=row.created_at,
            )
            for row in rows
        ]

    def _deployment_id(self, connection: Connection, deployment: int | str) -> int:
        if isinstance(deployment, bool) or not isinstance(deployment, (int, str)):
            raise InvalidInput(f"a deployment is an id or an endpoint name, got {deployment!r}")
        if isinstance(deployment, int):
            found = connection.execute(
                sa.select(deployments.c.id).where(deployments.c.id == deployment)
            ).scalar()
            if found is None:
                raise NotFound(
                    f"deployment {deployment} does not exist (see `mlops deployments list`)"
                )
            return int(found)
        found = connection.execute(
            sa.select(sa.func.max(deployments.c.id)).where(
                deployments.c.endpoint_id == self._endpoint_id(connection, deployment)
            )
        ).scalar()
        if found is None:
            raise NotFound(f"endpoint {deployment!r} has no deployments")
        return int(found)

    @staticmethod
    def _endpoint_id(connection: Connection, endpoint: str) -> int:
        found = connection.execute(
            sa.select(serving_endpoints.c.id).where(serving_endpoints.c.name == endpoint)
        ).scalar()
        if found is None:
            raise NotFound(f"endpoint {endpoint!r} does not exist (see `mlops deployments list`)")
        return int(found)

    def _load(self, connection: Connection, deployment_id: int) -> Deployment:
        row = connection.execute(
            sa.select(deployments, serving_endpoints.c.name, serving_endpoints.c.routes)
            .join(serving_endpoints, serving_endpoints.c.id == deployments.c.endpoint_id)
            .where(deployments.c.id == deployment_id)
        ).one()
        params = json.loads(row.params)
        return Deployment(
            id=row.id,
            endpoint=row.name,
            model=row.model_name,
            stable_version=row.stable_version,
            candidate_version=row.candidate_version,
            strategy=row.strategy,
            params=params,
            state=DeploymentState(row.state),
            step=row.step,
            steps=strategy_from_params(row.strategy, params).steps(),
            failures=row.failures,
            reason=row.reason,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            routes=RouteTable.from_json(row.routes),
        )

    # -- driving ------------------------------------------------------------------------

    def advance(self) -> builtins.list[Deployment]:
        """Evaluate every progressing deployment whose step is due; returns those that moved."""
        with self._store.read() as connection:
            due = list(
                connection.execute(
                    sa.select(deployments.c.id).where(
                        deployments.c.state == DeploymentState.PROGRESSING.value
                    )
                ).scalars()
            )
        moved = []
        for deployment_id in due:
            try:
                if self._advance_one(deployment_id):
                    moved.append(self.status(deployment_id))
            except Conflict:
                continue  # another controller or a person got there first
            except Exception as error:  # one broken rollout must not stall the others
                _log.exception("deployment %s could not advance", deployment_id)
                with contextlib.suppress(Exception), self._store.write() as connection:
                    self._event(
                        connection,
                        deployment_id,
                        "error",
                        None,
                        None,
                        None,
                        {"error": f"{type(error).__name__}: {error}"},
                        CONTROLLER,
                        self._now(),
                    )
                    connection.execute(
                        deployments.update()
                        .where(deployments.c.id == deployment_id)
                        .values(updated_at=self._now())
                    )
        return moved

    def _advance_one(self, deployment_id: int) -> bool:
        deployment = self.status(deployment_id)
        strategy = strategy_from_params(deployment.strategy, deployment.params)
        now = self._now()
        with self._store.read() as connection:
            started, checked = connection.execute(
                sa.select(deployments.c.step_started_at, deployments.c.updated_at).where(
                    deployments.c.id == deployment_id
                )
            ).one()
        # A step's traffic counts from its start; a check is due an interval after the last.
        if now - max(started, checked) < strategy.interval(deployment.step) * 1000:
            return False
        if isinstance(strategy, ABTest):
            return self._judge_ab_test(deployment, strategy, deployment.created_at)
        if isinstance(strategy, Rolling):
            waiting = self._rolling_waits_for(deployment)
            if waiting is not None:
                self._record(deployment.id, "rolling_wait", deployment.step, waiting, CONTROLLER)
                return True
        gate = strategy.analysis()
        detail: dict[str, Any] = {}
        verdict = "pass"
        if gate is not None:
            result = analyse(
                gate,
                version_stats(
                    self._store,
                    deployment.endpoint,
                    deployment.candidate_version,
                    started,
                    gate.metric,
                ),
                None
                if deployment.stable_version is None
                else version_stats(
                    self._store,
                    deployment.endpoint,
                    deployment.stable_version,
                    started,
                    gate.metric,
                ),
            )
            detail = {"analysis": result.to_dict()}
            verdict = result.verdict
            if verdict == "inconclusive" and isinstance(strategy, Canary):
                verdict = {"hold": "inconclusive", "pass": "pass", "fail": "fail"}[
                    strategy.on_inconclusive
                ]
        if verdict == "pass":
            if deployment.step + 1 >= strategy.steps():
                self._finish(
                    deployment,
                    strategy,
                    DeploymentState.SUCCEEDED,
                    "every step passed",
                    detail,
                    CONTROLLER,
                )
            else:
                self._transition(
                    deployment,
                    strategy,
                    step=deployment.step + 1,
                    kind="step",
                    reason=f"step {deployment.step + 1} passed",
                    detail=detail,
                    actor=CONTROLLER,
                )
            return True
        if verdict == "inconclusive":
            holds = self._holds_this_step(deployment.id, started) + 1
            limit = strategy.max_hold_steps if isinstance(strategy, Canary) else 10
            if holds < limit:
                self._record(deployment.id, "analysis", deployment.step, detail, CONTROLLER)
                return True
            detail["analysis"]["reasons"] = [
                f"still inconclusive after {holds} checks (max_hold_steps={limit})"
            ]
        failures = deployment.failures + 1
        limit = strategy.failure_limit if isinstance(strategy, Canary) else 1
        if failures >= limit:
            reason = "; ".join(detail.get("analysis", {}).get("reasons", ["analysis failed"]))
            self._finish(
                deployment,
                strategy,
                DeploymentState.ROLLED_BACK,
                f"analysis failed: {reason}",
                detail,
                CONTROLLER,
            )
        else:
            self._transition(
                deployment,
                strategy,
                step=deployment.step,
                kind="analysis_failed",
                reason=f"failure {failures} of {limit}",
                detail=detail,
                actor=CONTROLLER,
                failures=failures,
            )
        return True

    def _judge_ab_test(self, deployment: Deployment, strategy: ABTest, started: int) -> bool:
        outcomes = outcomes_by_route(self._store, deployment.endpoint, started)
        control = np.asarray(outcomes.get("control", []), dtype=np.float64)
        treatment = np.asarray(outcomes.get("treatment", []), dtype=np.float64)
        if strategy.outcome == "binary":
            # Feedback that is not 0/1 cannot be a conversion; it is left out, not fatal.
            control = control[(control == 0) | (control == 1)]
            treatment = treatment[(treatment == 0) | (treatment == 1)]
        if min(len(control), len(treatment)) < 2:
            detail = {
                "control": len(control),
                "treatment": len(treatment),
                "decision": "keep_running",
                "reason": "not enough feedback in an arm yet",
            }
            self._record(deployment.id, "ab_check", 0, detail, CONTROLLER)
            return True
        result, horizon = self._ab_test(deployment.id, strategy, control, treatment)
        verdict = ab_verdict(
            result,
            alpha=strategy.alpha,
            min_samples_per_arm=horizon,
            higher_is_better=strategy.higher_is_better,
        )
        detail = {
            "decision": verdict.decision,
            "reason": verdict.reason,
            "method": result.method,
            "p_value": result.p_value,
            "effect": result.effect,
            "ci": [result.ci_low, result.ci_high],
            "n": [result.n_a, result.n_b],
            "required_per_arm": horizon,
            "means": [float(control.mean()), float(treatment.mean())],
        }
        if strategy.auto_promote and verdict.decision == "winner_b":
            self._finish(
                deployment,
                strategy,
                DeploymentState.SUCCEEDED,
                "treatment won the A/B test",
                {"ab": detail},
                CONTROLLER,
            )
        elif strategy.auto_promote and verdict.decision == "winner_a":
            self._finish(
                deployment,
                strategy,
                DeploymentState.ROLLED_BACK,
                "control won the A/B test",
                {"ab": detail},
                CONTROLLER,
            )
        elif verdict.decision == "no_difference":
            # The planned sample is in: testing again would inflate false positives.
            self._finish(
                deployment,
                strategy,
                DeploymentState.ABORTED,
                "no difference between the arms; control keeps serving",
                {"ab": detail},
                CONTROLLER,
            )
        else:
            self._record(deployment.id, "ab_check", 0, detail, CONTROLLER)
        return True

    def _ab_test(
        self, deployment_id: int, strategy: ABTest, control: Any, treatment: Any
    ) -> tuple[TestResult, int]:
        """The test statistic and the per-arm sample size the MDE needs."""
        mde = strategy.minimum_detectable_effect
        previous = self._previous_p_value(deployment_id)
        if strategy.outcome == "binary":
            hits_a, hits_b = int(control.sum()), int(treatment.sum())
            baseline = min(max(hits_a / len(control), 0.01), 0.99 - mde)
            horizon = required_sample_size_proportions(
                baseline, mde, alpha=strategy.alpha, power=strategy.power
            )
            if strategy.sequential:
                return sequential_proportions_test(
                    hits_a, len(control), hits_b, len(treatment),
                    minimum_detectable_effect=mde, previous_p_value=previous,
                ), horizon  # fmt: skip
            return two_proportion_ztest(hits_a, len(control), hits_b, len(treatment)), horizon
        spread = float(np.sqrt((control.var(ddof=1) + treatment.var(ddof=1)) / 2)) or 1e-9
        horizon = required_sample_size_means(
            spread, mde, alpha=strategy.alpha, power=strategy.power
        )
        if strategy.sequential:
            return sequential_means_test(
                float(control.mean()), float(control.var(ddof=1)), len(control),
                float(treatment.mean()), float(treatment.var(ddof=1)), len(treatment),
                minimum_detectable_effect=mde, previous_p_value=previous,
            ), horizon  # fmt: skip
        return welch_ttest_samples(control, treatment), horizon

    def _rolling_waits_for(self, deployment: Deployment) -> dict[str, Any] | None:
        """Why a rolling step cannot move on yet: live workers that have not swapped in
        the endpoint's current revision (the one carrying this batch), or None when all
        have. With no live worker (no server running) nothing holds the rollout back.
        """
        with self._store.read() as connection:
            revision = connection.execute(
                sa.select(serving_endpoints.c.revision).where(
                    serving_endpoints.c.name == deployment.endpoint
                )
            ).scalar_one()
            workers = live_workers(connection, self._now())
        behind = {}
        for worker in workers:
            try:
                served = json.loads(worker.revisions).get(deployment.endpoint)
            except (TypeError, ValueError, AttributeError):
                served = None
            if not isinstance(served, int) or served < revision:
                behind[worker.id] = served
        if not behind:
            return None
        return {
            "reason": f"{len(behind)} of {len(workers)} live workers have not swapped in "
            f"revision {revision} yet",
            "revision": revision,
            "behind": behind,
        }

    def _holds_this_step(self, deployment_id: int, started: int) -> int:
        """How many inconclusive checks the current step has had."""
        with self._store.read() as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.count()).where(
                        deployment_events.c.deployment_id == deployment_id,
                        deployment_events.c.kind == "analysis",
                        deployment_events.c.created_at >= started,
                    )
                ).scalar_one()
            )

    def _previous_p_value(self, deployment_id: int) -> float:
        """The always-valid p-value only ever falls: carry the last look's value forward."""
        with self._store.read() as connection:
            detail = connection.execute(
                sa.select(deployment_events.c.detail)
                .where(
                    deployment_events.c.deployment_id == deployment_id,
                    deployment_events.c.kind == "ab_check",
                )
                .order_by(deployment_events.c.id.desc())
                .limit(1)
            ).scalar()
        value = json.loads(detail).get("p_value") if detail else None
        return float(value) if isinstance(value, (int, float)) else 1.0

    # -- transitions --------------------------------------------------------------------

    def _transition(
        self,
        deployment: Deployment,
        strategy: Strategy,
        *,
        step: int,
        kind: str,
        reason: str,
        detail: dict[str, Any],
        actor: str | None,
        failures: int | None = None,
        state: DeploymentState = DeploymentState.PROGRESSING,
        table: RouteTable | None = None,
    ) -> None:
        now = self._now()
        with self._store.write() as connection:
            current = connection.execute(
                sa.select(deployments.c.state, deployments.c.step)
                .where(deployments.c.id == deployment.id)
                .with_for_update()
            ).one()
            if (current.state, current.step) != (deployment.state.value, deployment.step):
                raise Conflict(f"deployment {deployment.id} changed while it was being moved")
            newer = connection.execute(
                sa.select(sa.func.max(deployments.c.id))
                .join(serving_endpoints, serving_endpoints.c.id == deployments.c.endpoint_id)
                .where(serving_endpoints.c.name == deployment.endpoint)
            ).scalar()
            if newer is not None and newer > deployment.id:
                raise Conflict(
                    f"endpoint {deployment.endpoint!r} has a newer deployment ({newer}); "
                    f"deployment {deployment.id} can no longer change its traffic"
                )
            connection.execute(
                deployments.update()
                .where(deployments.c.id == deployment.id)
                .values(
                    state=state.value,
                    step=step,
                    failures=deployment.failures if failures is None else failures,
                    step_started_at=now,
                    reason=reason,
                    updated_at=now,
                )
            )
            routes = table or strategy.table(
                deployment.model, deployment.stable_version, deployment.candidate_version, step
            )
            self._endpoints.put(deployment.endpoint, routes, connection)
            self._event(
                connection,
                deployment.id,
                kind,
                deployment.state.value,
                state.value,
                step,
                {"reason": reason, **detail},
                actor,
                now,
            )
            audit(
                connection,
                _AUDIT_ACTIONS.get(kind, f"deployment.{kind}"),
                f"deployments/{deployment.id}",
                actor=actor,
                before={
                    "state": deployment.state.value,
                    "step": deployment.step,
                    "failures": deployment.failures,
                    "routes": None
                    if deployment.routes is None
                    else json.loads(deployment.routes.to_json()),
                },
                after={
                    "state": state.value,
                    "step": step,
                    "failures": deployment.failures if failures is None else failures,
                    "routes": json.loads(routes.to_json()),
                    "reason": reason,
                },
            )

    def _finish(
        self,
        deployment: Deployment,
        strategy: Strategy,
        state: DeploymentState,
        reason: str,
        detail: dict[str, Any],
        actor: str | None,
    ) -> None:
        if state is DeploymentState.SUCCEEDED:
            # The candidate becomes the endpoint's stable version; what the last step carried
            # beyond routes (blue-green's keep-old delay) stays for the serving pool.
            last = strategy.table(
                deployment.model,
                deployment.stable_version,
                deployment.candidate_version,
                strategy.steps() - 1,
            )
            table = RouteTable(
                model=deployment.model,
                routes=(Route(deployment.candidate_version, 1.0, "stable"),),
                extra={key: value for key, value in last.extra.items() if key != "rolling"},
            )

        elif deployment.stable_version is None:
            raise Conflict(f"deployment {deployment.id} has no previous version to go back to")
        else:
            table = RouteTable.single(deployment.model, deployment.stable_version)
        self._transition(
            deployment,
            strategy,
            step=deployment.step,
            kind=state.value,
            reason=reason,
            detail=detail,
            actor=actor,
            state=state,
            table=table,
        )
        if state is DeploymentState.SUCCEEDED:
            self._promote_in_registry(deployment, actor)

    def _promote_in_registry(self, deployment: Deployment, actor: str | None) -> None:
        try:
            result = self._registry.promote_to_stage(
                deployment.model,
                deployment.candidate_version,
                "production",
                reason=f"deployment {deployment.id} to {deployment.endpoint} succeeded",
                actor=actor,
            )
            outcome = (
                "the registry now has it in production"
                if not hasattr(result, "status")
                else f"the registry waits for approval request {getattr(result, 'id', '?')}"
            )
            detail = {"registry": outcome}
        except Exception as error:  # the rollout itself already succeeded
            outcome = f"the registry refused production: {error}"
            detail = {"registry_error": str(error)}
        with self._store.write() as connection:
            self._event(
                connection, deployment.id, "registry", None, None, None, detail, actor, self._now()
            )
            connection.execute(
                deployments.update()
                .where(deployments.c.id == deployment.id)
                .values(reason=sa.func.coalesce(deployments.c.reason, "") + "; " + outcome)
            )

    def _record(
        self,
        deployment_id: int,
        kind: str,
        step: int,
        detail: dict[str, Any],
        actor: str | None,
    ) -> None:
        """Record a check that changed nothing; the next check is due an interval later."""
        now = self._now()
        with self._store.write() as connection:
            connection.execute(
                deployments.update().where(deployments.c.id == deployment_id).values(updated_at=now)
            )
            self._event(connection, deployment_id, kind, None, None, step, detail, actor, now)

    @staticmethod
    def _event(
        connection: Connection,
        deployment_id: int,
        kind: str,
        from_state: str | None,
        to_state: str | None,
        step: int | None,
        detail: dict[str, Any],
        actor: str | None,
        now: int,
    ) -> None:
        connection.execute(
            deployment_events.insert().values(
                deployment_id=deployment_id,
                kind=kind,
                from_state=from_state,
                to_state=to_state,
                step=step,
                detail=json.dumps(detail, sort_keys=True, default=str),
                actor=actor,
                created_at=now,
            )
        )

    # -- people's actions ---------------------------------------------------------------

    def promote(self, deployment: int | str, *, actor: str | None = None) -> Deployment:
        """Finish a rollout now: the candidate takes 100% and becomes production."""
        current = self._require_active(deployment)
        strategy = strategy_from_params(current.strategy, current.params)
        self._finish(
            current,
            strategy,
            DeploymentState.SUCCEEDED,
            "promoted by hand",
            {},
            actor or self._actor,
        )
        return self.status(current.id)

    def abort(
        self, deployment: int | str, *, actor: str | None = None, reason: str | None = None
    ) -> Deployment:
        """Stop a rollout: all traffic back to the stable version."""
        current = self._require_active(deployment)
        strategy = strategy_from_params(current.strategy, current.params)
        self._finish(
            current,
            strategy,
            DeploymentState.ABORTED,
            reason or "aborted by hand",
            {},
            actor or self._actor,
        )
        return self.status(current.id)

    def pause(self, deployment: int | str, *, actor: str | None = None) -> Deployment:
        """Hold a rollout at its current step (traffic stays as it is)."""
        return self._set_paused(deployment, True, actor)

    def resume(self, deployment: int | str, *, actor: str | None = None) -> Deployment:
        """Let a paused rollout move on."""
        return self._set_paused(deployment, False, actor)

    def _set_paused(self, deployment: int | str, paused: bool, actor: str | None) -> Deployment:
        current = self._require_active(deployment)
        target = DeploymentState.PAUSED if paused else DeploymentState.PROGRESSING
        if current.state is target:
            return current
        word = "paused" if paused else "resumed"
        self._transition(
            current,
            strategy_from_params(current.strategy, current.params),
            step=current.step,
            kind=word,
            reason=word,
            detail={},
            actor=actor or self._actor,
            state=target,
            table=current.routes,
        )
        return self.status(current.id)

    def rollback(
        self, endpoint: str, *, actor: str | None = None, reason: str | None = None
    ) -> Deployment:
        """Undo the endpoint's last successful rollout: its previous version serves again."""
        latest = self.status(endpoint)
        if latest.state.active:
            return self.abort(latest.id, actor=actor, reason=reason or "rolled back")
        if latest.state is not DeploymentState.SUCCEEDED or latest.stable_version is None:
            raise Conflict(
                f"endpoint {endpoint!r} has no successful rollout with a previous version to "
                f"roll back to (its latest deployment {latest.id} is {latest.state})"
            )
        strategy = strategy_from_params(latest.strategy, latest.params)
        who = actor or self._actor
        table = RouteTable.single(latest.model, latest.stable_version)
        self._transition(
            latest,
            strategy,
            step=latest.step,
            kind="rolled_back",
            reason=reason or "rolled back by hand",
            detail={},
            actor=who,
            state=DeploymentState.ROLLED_BACK,
            table=table,
        )
        # Undo the registry change only if this rollout made it (and nothing since).
        if self._registry.get_model(latest.model).production_version == latest.candidate_version:
            with contextlib.suppress(MLOpsError):
                self._registry.rollback(
                    latest.model, reason=f"endpoint {endpoint} rolled back", actor=who
                )
        return self.status(latest.id)

    def _require_active(self, deployment: int | str) -> Deployment:
        current = self.status(deployment)
        if not current.state.active:
            raise Conflict(f"deployment {current.id} is {current.state}; it cannot change now")
        return current


def _serving_version(endpoint: Row[Any]) -> int:
    """The version taking most of an endpoint's live traffic."""
    table = RouteTable.from_json(endpoint.routes)
    return max(table.routes, key=lambda route: route.weight).version
