"""Registry and deployment changes append audit entries in the change's own transaction."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import mlops
from mlops.deployment import Canary, DeploymentManager, DeploymentState
from mlops.errors import Conflict, InvalidInput, NotFound, PermissionDenied, PolicyViolation
from mlops.governance import AuditEntry, write_keypair
from mlops.registry import ApprovalRequest, PromotionPolicy

sklearn = pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
from sklearn.linear_model import LogisticRegression  # noqa: E402

_FRAME = pd.DataFrame(np.random.default_rng(3).normal(size=(40, 2)), columns=["a", "b"])
_MODEL = LogisticRegression().fit(_FRAME, (_FRAME["a"] > 0).astype(int))


class Trail:
    """The audit entries appended since the last look."""

    def __init__(self, ml: mlops.MLOps) -> None:
        self._ml = ml
        self._seen = 0

    def new(self) -> list[AuditEntry]:
        entries = [e for e in self._ml.audit.list(limit=100) if e.id > self._seen]
        entries.reverse()
        if entries:
            self._seen = entries[-1].id
        return entries

    def one(self, action: str, target: str, *, actor: str) -> AuditEntry:
        entries = self.new()
        assert [(e.action, e.target, e.actor) for e in entries] == [(action, target, actor)]
        return entries[0]

    def none(self) -> None:
        assert self.new() == []


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _register(ml: mlops.MLOps, name: str = "churn", **kwargs: Any) -> Any:
    return ml.registry.register_model(name, _MODEL, input_example=_FRAME[:3], **kwargs)


def test_model_versions_stages_and_aliases_are_audited(ml: mlops.MLOps) -> None:
    trail = Trail(ml)
    ml.registry.create_model("churn", description="who leaves", actor="alice")
    created = trail.one("model.created", "models/churn", actor="alice")
    assert created.before is None
    assert created.after == {"description": "who leaves", "owner": "alice", "tags": {}}

    with ml.tracking.start_run(name="train") as run:
        pass
    assert [e.action for e in trail.new()] == ["experiment.created"]  # the run's experiment
    first = _register(ml, run=run, actor="bob")
    entry = trail.one("model.version_registered", "models/churn/1", actor="bob")
    assert entry.after == {"semver": "1.0.0", "run_id": run.id, "digest": first.manifest_digest}

    _register(ml, "fraud", actor="carol")  # creates the model on the way
    assert [(e.action, e.target) for e in trail.new()] == [
        ("model.created", "models/fraud"),
        ("model.version_registered", "models/fraud/1"),
    ]

    ml.registry.promote_to_stage("churn", 1, "staging", reason="looks fine", actor="dave")
    entry = trail.one("model.stage_changed", "models/churn/1", actor="dave")
    assert entry.before == {"stage": "none"}
    assert entry.after == {"stage": "staging", "replaced_version": None, "reason": "looks fine"}
    ml.registry.promote_to_stage("churn", 1, "production", actor="dave")
    trail.one("model.stage_changed", "models/churn/1", actor="dave")
    _register(ml, actor="bob")
    trail.one("model.version_registered", "models/churn/2", actor="bob")
    ml.registry.promote_to_stage("churn", 2, "production", actor="dave")
    entry = trail.one("model.stage_changed", "models/churn/2", actor="dave")
    assert entry.after == {"stage": "production", "replaced_version": 1, "reason": None}
    ml.registry.promote_to_stage("churn", 2, "production", actor="dave")
    trail.none()  # already there: nothing changed

    ml.registry.set_alias("churn", "champion", 1, actor="erin")
    entry = trail.one("model.alias_set", "models/churn/aliases/champion", actor="erin")
    assert (entry.before, entry.after) == (None, {"version": 1, "semver": "1.0.0", "reason": None})
    ml.registry.set_alias("churn", "champion", 2, reason="better", actor="erin")
    entry = trail.one("model.alias_set", "models/churn/aliases/champion", actor="erin")
    assert entry.before == {"version": 1, "semver": "1.0.0"}
    assert entry.after == {"version": 2, "semver": "1.1.0", "reason": "better"}
    ml.registry.delete_alias("churn", "champion", actor="erin")
    entry = trail.one("model.alias_deleted", "models/churn/aliases/champion", actor="erin")
    assert (entry.before, entry.after) == ({"version": 2, "semver": "1.1.0"}, None)

    ml.registry.rollback("churn", actor="frank")
    entry = trail.one("model.rolled_back", "models/churn", actor="frank")
    assert entry.before == {"production": 2, "semver": "1.1.0"}
    assert entry.after == {
        "production": 1,
        "semver": "1.0.0",
        "reason": "rollback from version 1.1.0",
    }

    ml.registry.update_model("churn", owner="grace", actor="grace")
    entry = trail.one("model.updated", "models/churn", actor="grace")
    assert (entry.before, entry.after) == ({"owner": "alice"}, {"owner": "grace"})
    ml.registry.set_model_tag("churn", "team", "risk", actor="grace")
    entry = trail.one("model.tag_set", "models/churn/tags/team", actor="grace")
    assert (entry.before, entry.after) == (None, {"value": "risk"})

    # With no actor named, the registry's own identity is recorded.
    ml.registry.set_alias("churn", "stable", 1)
    assert ml.registry.actor is not None
    trail.one("model.alias_set", "models/churn/aliases/stable", actor=ml.registry.actor)
    assert ml.audit.verify().ok


def test_policies_approvals_and_keys_are_audited(ml: mlops.MLOps, tmp_path: Any) -> None:
    _register(ml)
    _register(ml)
    trail = Trail(ml)
    trail.new()

    policy = PromotionPolicy(require_approval=True)
    ml.registry.set_policy("churn", policy, actor="admin")
    entry = trail.one("model.policy_set", "models/churn", actor="admin")
    assert entry.before is None
    assert entry.after == {"policy": policy_json(policy)}

    request = ml.registry.promote_to_stage("churn", 1, "production", actor="alice")
    assert isinstance(request, ApprovalRequest)
    entry = trail.one("model.approval_requested", "models/churn/1", actor="alice")
    assert entry.before == {"stage": "none"}
    assert entry.after == {"request_id": request.id, "stage": "production", "reason": None}
    ml.registry.promote_to_stage("churn", 1, "production", actor="alice")
    trail.none()  # the same pending request comes back; nothing changed

    ml.registry.approve(request.id, comment="ok", actor="bob")
    entry = trail.one("model.approval_decided", "models/churn/1", actor="bob")
    assert entry.before == {"request_id": request.id, "status": "pending", "stage": "none"}
    assert entry.after == {
        "request_id": request.id,
        "status": "approved",
        "comment": "ok",
        "stage": "production",
        "replaced_version": None,
    }
    second = ml.registry.promote_to_stage("churn", 2, "production", actor="alice")
    assert isinstance(second, ApprovalRequest)
    trail.one("model.approval_requested", "models/churn/2", actor="alice")
    ml.registry.reject(second.id, comment="not yet", actor="bob")
    entry = trail.one("model.approval_decided", "models/churn/2", actor="bob")
    assert entry.after == {"request_id": second.id, "status": "rejected", "comment": "not yet"}

    stricter = PromotionPolicy(thresholds={"f1": 0.9})
    ml.registry.set_policy("churn", stricter, actor="admin")
    entry = trail.one("model.policy_set", "models/churn", actor="admin")
    assert (entry.before, entry.after) == (
        {"policy": policy_json(policy)},
        {"policy": policy_json(stricter)},
    )
    ml.registry.set_policy("churn", None, actor="admin")
    entry = trail.one("model.policy_cleared", "models/churn", actor="admin")
    assert (entry.before, entry.after) == ({"policy": policy_json(stricter)}, None)
    ml.registry.set_policy("churn", None, actor="admin")
    trail.none()  # nothing to clear

    _, public = write_keypair(tmp_path / "keys")
    fingerprint = ml.registry.trust_key(public, name="ci", actor="admin")
    entry = trail.one("key.trusted", f"keys/{fingerprint}", actor="admin")
    assert entry.after is not None
    assert entry.after["name"] == "ci"
    assert ml.audit.verify().ok


def policy_json(policy: PromotionPolicy) -> Any:
    return json.loads(policy.to_json())


def test_changes_that_fail_leave_no_entry(ml: mlops.MLOps) -> None:
    _register(ml, metrics={"f1": 0.5})
    trail = Trail(ml)
    trail.new()
    ml.registry.set_policy("churn", PromotionPolicy(thresholds={"f1": 0.9}), actor="admin")
    trail.new()

    with pytest.raises(PolicyViolation):
        ml.registry.promote_to_stage("churn", 1, "production", actor="alice")
    with pytest.raises(InvalidInput, match="read as a stage"):
        ml.registry.set_alias("churn", "staging", 1, actor="alice")
    with pytest.raises(NotFound):
        ml.registry.set_alias("churn", "champion", 7, actor="alice")
    with pytest.raises(NotFound):
        ml.registry.delete_alias("churn", "champion", actor="alice")
    with pytest.raises(Conflict, match="no production version"):
        ml.registry.rollback("churn", actor="alice")
    with pytest.raises(InvalidInput, match="does not exist"):
        _register(ml, "fresh", run="0" * 32, actor="alice")  # fails after creating the model
    with pytest.raises(NotFound):
        ml.registry.get_model("fresh")
    trail.none()

    ml.registry.set_policy("churn", PromotionPolicy(require_approval=True), actor="admin")
    trail.new()
    request = ml.registry.promote_to_stage("churn", 1, "production", actor="alice")
    assert isinstance(request, ApprovalRequest)
    trail.new()
    with pytest.raises(PermissionDenied):
        ml.registry.approve(request.id, actor="alice")
    trail.none()

    # An entry that cannot be written takes the change down with it.
    with pytest.raises(InvalidInput, match="actor must be a non-empty"):
        ml.registry.set_policy("churn", None, actor=" ")
    assert ml.registry.get_policy("churn") == PromotionPolicy(require_approval=True)
    trail.none()
    assert ml.audit.verify().ok


def test_deployment_transitions_are_audited(ml: mlops.MLOps) -> None:
    for _ in range(3):
        _register(ml)
    clock = Clock()
    manager = DeploymentManager(ml.store, ml.registry, actor="tester", clock=clock)
    trail = Trail(ml)
    trail.new()

    first = manager.deploy("churn", "churn", 1)
    single_1 = [_route(1, 1.0)]
    created, promoted, registry = trail.new()
    assert (created.action, created.target, created.actor) == (
        "deployment.created",
        f"deployments/{first.id}",
        "tester",
    )
    assert created.before is None
    assert created.after is not None
    assert {k: created.after[k] for k in ("endpoint", "model", "version", "strategy")} == {
        "endpoint": "churn",
        "model": "churn",
        "version": 1,
        "strategy": "direct",
    }
    assert (promoted.action, promoted.actor) == ("deployment.promoted", "mlops-controller")
    assert promoted.after is not None
    assert promoted.after["routes"]["routes"] == single_1
    assert (registry.action, registry.target) == ("model.stage_changed", "models/churn/1")

    canary = Canary(steps_percent=(10, 50, 100), interval_seconds=10, on_inconclusive="pass")
    second = manager.deploy("churn", "churn", 2, strategy=canary, actor="alice")
    entry = trail.one("deployment.created", f"deployments/{second.id}", actor="alice")
    assert entry.before is not None
    assert entry.before["routes"]["routes"] == single_1
    with pytest.raises(Conflict, match="already rolling out"):
        manager.deploy("churn", "churn", 3, strategy=canary)
    trail.none()

    clock.now += 11
    assert len(manager.advance()) == 1
    entry = trail.one(
        "deployment.step_advanced", f"deployments/{second.id}", actor="mlops-controller"
    )
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["step"], entry.after["step"]) == (0, 1)
    assert entry.after["routes"]["routes"] == [_route(1, 0.5), _route(2, 0.5, "canary")]

    manager.pause(second.id, actor="bob")
    trail.one("deployment.paused", f"deployments/{second.id}", actor="bob")
    manager.resume(second.id, actor="bob")
    trail.one("deployment.resumed", f"deployments/{second.id}", actor="bob")
    manager.abort(second.id, actor="bob", reason="flaky")
    entry = trail.one("deployment.aborted", f"deployments/{second.id}", actor="bob")
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["state"], entry.after["state"]) == ("progressing", "aborted")
    assert entry.after["routes"]["routes"] == single_1
    assert entry.after["reason"] == "flaky"
    with pytest.raises(Conflict):
        manager.abort(second.id, actor="bob")
    trail.none()

    third = manager.deploy("churn", "churn", 2, strategy=canary, actor="alice")
    trail.one("deployment.created", f"deployments/{third.id}", actor="alice")
    manager.promote(third.id, actor="carol")
    assert [(e.action, e.actor) for e in trail.new()] == [
        ("deployment.promoted", "carol"),
        ("model.stage_changed", "carol"),
    ]
    manager.rollback("churn", actor="dave")
    rolled_back, registry_rollback = trail.new()
    assert (rolled_back.action, rolled_back.target, rolled_back.actor) == (
        "deployment.rolled_back",
        f"deployments/{third.id}",
        "dave",
    )
    assert rolled_back.before is not None
    assert rolled_back.after is not None
    assert rolled_back.before["routes"]["routes"] == [_route(2, 1.0)]
    assert rolled_back.after["state"] == "rolled_back"
    assert rolled_back.after["routes"]["routes"] == single_1
    assert (registry_rollback.action, registry_rollback.actor) == ("model.rolled_back", "dave")
    assert manager.status("churn").state is DeploymentState.ROLLED_BACK

    verification = ml.audit.verify()
    assert verification.ok
    assert verification.checked == len(ml.audit.list(limit=1000))


def _route(version: int, weight: float, role: str = "stable") -> dict[str, Any]:
    return {"version": version, "weight": weight, "role": role, "arm": None}
