"""The registry contract: every metadata backend (SQLite, PostgreSQL) passes it."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlops
from contracts.remote import KINDS, connection_pair
from mlops.errors import (
    AlreadyExists,
    Conflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PolicyViolation,
)
from mlops.governance import write_keypair
from mlops.registry import ApprovalRequest, PromotionPolicy, Stage
from mlops.tracking import dataset_from_data

sklearn = pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
from sklearn.linear_model import LogisticRegression  # noqa: E402


@pytest.fixture(params=KINDS)
def both(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[tuple[mlops.MLOps, mlops.MLOps]]:
    """Each test runs embedded and through a real server (the remote client)."""
    with connection_pair(request, database_url, tmp_path) as pair:
        yield pair


@pytest.fixture
def ml(both: tuple[mlops.MLOps, mlops.MLOps]) -> mlops.MLOps:
    return both[0]


@pytest.fixture
def server_ml(both: tuple[mlops.MLOps, mlops.MLOps]) -> mlops.MLOps:
    """The embedded connection holding the data (``ml`` itself when embedded)."""
    return both[1]


def _data(columns: tuple[str, ...] = ("age", "income", "tenure")) -> tuple[Any, Any]:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(120, len(columns))), columns=list(columns))
    labels = (frame.iloc[:, 0] + frame.iloc[:, 1] > 0).astype(int)
    return frame, labels


def _model(columns: tuple[str, ...] = ("age", "income", "tenure")) -> tuple[Any, Any]:
    frame, labels = _data(columns)
    return LogisticRegression().fit(frame, labels), frame


def _register(ml: mlops.MLOps, name: str = "churn", **kwargs: Any) -> Any:
    model, frame = _model(kwargs.pop("columns", ("age", "income", "tenure")))
    kwargs.setdefault("input_example", frame[:5])
    return ml.registry.register_model(name, model, **kwargs)


def test_register_load_and_predict(ml: mlops.MLOps) -> None:
    model, frame = _model()
    version = ml.registry.register_model(
        "churn", model, metrics={"f1": 0.81}, metadata={"owner": "risk"}, input_example=frame[:5]
    )
    assert (version.number, version.semver, version.stage) == (1, "1.0.0", Stage.NONE)
    assert version.flavor == "sklearn"
    assert len(version.manifest_digest) == 64
    assert version.metrics == {"f1": 0.81}
    assert version.metadata == {"owner": "risk"}
    loaded = ml.registry.load_model("models:/churn/1")
    predicted = loaded.predict(frame[:10].to_dict(orient="records"))["predictions"]
    assert list(np.asarray(predicted)) == list(model.predict(frame[:10]))
    assert ml.registry.get_model("churn").latest_version == 1


def test_semantic_versions_follow_the_signature(ml: mlops.MLOps) -> None:
    assert _register(ml).semver == "1.0.0"
    assert _register(ml).semver == "1.1.0"  # same signature: compatible
    assert _register(ml, columns=("age", "income", "region_code")).semver == "2.0.0"
    assert _register(ml, version="2.5.0").semver == "2.5.0"
    with pytest.raises(AlreadyExists):
        _register(ml, version="2.5.0")
    with pytest.raises(InvalidInput, match="semantic version"):
        _register(ml, version="v3")
    assert [v.number for v in ml.registry.list_versions("churn")] == [1, 2, 3, 4]


def test_stages_history_and_rollback(ml: mlops.MLOps) -> None:
    for _ in range(3):
        _register(ml)
    ml.registry.promote_to_stage("churn", 1, "production", reason="first")
    ml.registry.promote_to_stage("churn", "1.1.0", "staging")
    promoted = ml.registry.promote_to_stage("churn", 2, "production", reason="better")
    assert promoted.stage is Stage.PRODUCTION
    assert ml.registry.get_version("churn", 1).stage is Stage.ARCHIVED
    assert ml.registry.resolve("models:/churn/production").number == 2
    assert [m.name for m in ml.registry.list_models(stage="production")] == ["churn"]

    restored = ml.registry.rollback("churn")
    assert restored.number == 1
    assert ml.registry.get_version("churn", 2).stage is Stage.ARCHIVED
    history = [(t.version, t.from_value, t.to_value) for t in ml.registry.history("churn")]
    assert history == [
        (1, "none", "production"),
        (2, "none", "staging"),
        (1, "production", "archived"),
        (2, "staging", "production"),
        (2, "production", "archived"),
        (1, "archived", "production"),
    ]
    assert ml.registry.history("churn")[-1].reason == "rollback from version 1.1.0"
    with pytest.raises(Conflict, match="archived"):
        ml.registry.promote_to_stage("churn", 2, "production")
    with pytest.raises(InvalidInput, match="not one of"):
        ml.registry.promote_to_stage("churn", 3, "prod")


def test_rollback_needs_something_to_roll_back_to(ml: mlops.MLOps) -> None:
    _register(ml)
    with pytest.raises(Conflict, match="no production version"):
        ml.registry.rollback("churn")
    ml.registry.promote_to_stage("churn", 1, "production")
    with pytest.raises(Conflict, match="nothing to roll back"):
        ml.registry.rollback("churn")


def test_aliases_and_uris(ml: mlops.MLOps) -> None:
    _register(ml)
    _register(ml)
    ml.registry.set_alias("churn", "champion", 1)
    ml.registry.set_alias("churn", "challenger", "1.1.0")
    assert ml.registry.resolve("models:/churn@champion").number == 1
    moved = ml.registry.set_alias("churn", "champion", 2)
    assert moved.number == 2
    assert moved.aliases == ("challenger", "champion")
    assert ml.registry.resolve("models:/churn/latest").number == 2
    assert ml.registry.resolve("models:/churn/1.0.0").number == 1
    assert ml.registry.get_model("churn").aliases == {"champion": 2, "challenger": 2}
    ml.registry.delete_alias("churn", "challenger")
    with pytest.raises(NotFound, match="alias 'challenger'"):
        ml.registry.resolve("models:/churn@challenger")
    aliases = [(t.name, t.from_value, t.to_value) for t in ml.registry.history("churn")]
    assert aliases == [
        ("champion", None, "1.0.0"),
        ("challenger", None, "1.1.0"),
        ("champion", "1.0.0", "1.1.0"),
        ("challenger", "1.1.0", None),
    ]
    for bad in ("production", "", "has space", "9lives"):
        with pytest.raises(InvalidInput):
            ml.registry.set_alias("churn", bad, 1)


def test_unknown_things_are_not_found(ml: mlops.MLOps) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        ml.registry.get_model("nope")
    _register(ml)
    with pytest.raises(NotFound, match="latest is version 1"):
        ml.registry.get_version("churn", 7)
    with pytest.raises(NotFound, match="production"):
        ml.registry.resolve("models:/churn/production")
    with pytest.raises(InvalidInput, match="model URI"):
        ml.registry.resolve("churn/production")
    with pytest.raises(InvalidInput, match="model name"):
        _register(ml, name="bad/name")


def test_policy_thresholds_and_regression(ml: mlops.MLOps) -> None:
    _register(ml, metrics={"f1": 0.85})
    ml.registry.set_policy(
        "churn", PromotionPolicy(thresholds={"f1": 0.8}, max_regression={"f1": 0.005})
    )
    ml.registry.promote_to_stage("churn", 1, "production")
    _register(ml, metrics={"f1": 0.75})
    with pytest.raises(PolicyViolation, match=r"f1 = 0.75 breaks the rule f1 ≥ 0.8"):
        ml.registry.promote_to_stage("churn", 2, "production")
    _register(ml, metrics={"f1": 0.84})
    with pytest.raises(PolicyViolation, match=r"worse than production version 1.0.0 \(f1 = 0.85\)"):
        ml.registry.promote_to_stage("churn", 3, "production")
    _register(ml, metrics={"f1": 0.846})
    assert ml.registry.promote_to_stage("churn", 4, "production").stage is Stage.PRODUCTION
    _register(ml)
    with pytest.raises(PolicyViolation, match="has no metric 'f1'"):
        ml.registry.promote_to_stage("churn", 5, "production")
    assert ml.registry.resolve("models:/churn/production").number == 4
    lower = PromotionPolicy(thresholds={"rmse": 0.5})
    assert lower.is_lower_better("rmse")
    with pytest.raises(InvalidInput):
        PromotionPolicy(thresholds={"f1": "high"})  # type: ignore[dict-item]


def test_approval_gate(ml: mlops.MLOps) -> None:
    _register(ml, metrics={"f1": 0.9})
    ml.registry.set_policy("churn", PromotionPolicy(require_approval=True))
    request = ml.registry.promote_to_stage("churn", 1, "production", actor="ana", reason="ready")
    assert isinstance(request, ApprovalRequest)
    assert request.status == "pending"
    assert ml.registry.get_version("churn", 1).stage is Stage.NONE
    again = ml.registry.promote_to_stage("churn", 1, "production", actor="ana")
    assert isinstance(again, ApprovalRequest)
    assert again.id == request.id  # one pending request per transition
    with pytest.raises(PermissionDenied, match="cannot approve"):
        ml.registry.approve(request.id, actor="ana")
    approved = ml.registry.approve(request.id, actor="bob", comment="looks good")
    assert (approved.status, approved.decided_by, approved.comment) == (
        "approved",
        "bob",
        "looks good",
    )
    assert ml.registry.get_version("churn", 1).stage is Stage.PRODUCTION
    with pytest.raises(Conflict, match="already approved"):
        ml.registry.approve(request.id, actor="bob")
    _register(ml, metrics={"f1": 0.91})
    second = ml.registry.promote_to_stage("churn", 2, "production", actor="ana")
    assert isinstance(second, ApprovalRequest)
    rejected = ml.registry.reject(second.id, actor="bob", comment="not now")
    assert rejected.status == "rejected"
    assert ml.registry.list_approvals("churn") == []
    assert len(ml.registry.list_approvals("churn", status=None)) == 2
    with pytest.raises(NotFound):
        ml.registry.approve(999, actor="bob")


def test_signatures_and_the_signature_policy(ml: mlops.MLOps, tmp_path: Path) -> None:
    private, public = write_keypair(tmp_path / "keys")
    other_private, _ = write_keypair(tmp_path / "other")
    _register(ml)
    _register(ml, sign_with=other_private)
    _register(ml, sign_with=private)
    ml.registry.set_policy("churn", PromotionPolicy(require_signature=True))
    with pytest.raises(PolicyViolation, match="not signed"):
        ml.registry.promote_to_stage("churn", 1, "production")
    fingerprint = ml.registry.trust_key(public, name="ci")
    assert len(fingerprint) == 64
    with pytest.raises(PolicyViolation, match="not trusted"):
        ml.registry.promote_to_stage("churn", 2, "production")
    assert ml.registry.verify_version("churn", 3)
    assert not ml.registry.verify_version("churn", 2)
    assert ml.registry.get_version("churn", 3).signed_by == fingerprint
    assert ml.registry.promote_to_stage("churn", 3, "production").stage is Stage.PRODUCTION


def test_lineage_from_run_datasets_and_parent(ml: mlops.MLOps) -> None:
    model, frame = _model()
    train = dataset_from_data("customers", frame)
    with ml.tracking.start_run(name="train") as run:
        run.log_input(train, context="training")
    first = ml.registry.register_model("churn", model, input_example=frame[:3], run=run)
    holdout = dataset_from_data("holdout", frame[:20])
    second = ml.registry.register_model(
        "churn",
        model,
        input_example=frame[:3],
        run=run.id,
        datasets=[(holdout, "validation")],
        parent_version=first.number,
    )
    assert first.run_id == run.id
    assert [d[0] for d in first.datasets] == ["customers"]
    assert sorted(d[2] for d in second.datasets) == ["training", "validation"]
    lineage = ml.registry.lineage("churn", 2)
    assert lineage["run"]["id"] == run.id
    assert lineage["parents"] == [{"version": 1, "semver": "1.0.0"}]
    with pytest.raises(InvalidInput, match="run"):
        ml.registry.register_model("churn", model, run="0" * 32)


def test_a_failed_registration_leaves_nothing(ml: mlops.MLOps, server_ml: mlops.MLOps) -> None:
    with pytest.raises(InvalidInput):
        ml.registry.register_model("churn", object())
    with pytest.raises(InvalidInput, match="finite"):
        _register(ml, metrics={"f1": float("nan")})
    assert ml.registry.list_models() == []
    assert not server_ml.artifacts.exists("models")
    _register(ml)
    with pytest.raises(NotFound):  # the parent does not exist: rolled back after upload
        _register(ml, parent_version=9)
    assert [v.number for v in ml.registry.list_versions("churn")] == [1]
    stored = server_ml.artifacts.list("models/churn")
    version_prefix = ml.registry.get_version("churn", 1).artifact_uri.rsplit("/", 1)[1]
    assert {path.split("/")[2] for path in stored} == {version_prefix}


def test_tampered_packages_are_refused_before_loading(
    ml: mlops.MLOps, server_ml: mlops.MLOps, tmp_path: Path
) -> None:
    version = _register(ml)
    prefix = version.artifact_uri.split("/models/", 1)[1]
    files = [
        p
        for p in server_ml.artifacts.list(f"models/{prefix}")
        if p.endswith((".pkl", ".skops", ".joblib"))
    ]
    assert files, server_ml.artifacts.list(f"models/{prefix}")
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    server_ml.artifacts.put_bytes(pickle.dumps(Boom()), files[0])
    cache_dir = ml.settings.home / "cache"
    import shutil

    shutil.rmtree(cache_dir, ignore_errors=True)
    with pytest.raises(IntegrityError):
        ml.registry.load_model("models:/churn/1")
    assert not marker.exists()


def test_tampered_manifest_is_refused(ml: mlops.MLOps, server_ml: mlops.MLOps) -> None:
    version = _register(ml)
    prefix = version.artifact_uri.split("/models/", 1)[1]
    manifest_path = f"models/{prefix}/mlops-model.json"
    manifest = json.loads(server_ml.artifacts.get_bytes(manifest_path))
    manifest["metadata"] = {"sneaky": True}
    server_ml.artifacts.put_bytes(json.dumps(manifest).encode(), manifest_path)
    import shutil

    shutil.rmtree(ml.settings.home / "cache", ignore_errors=True)
    with pytest.raises(IntegrityError):
        ml.registry.load_model("churn", 1)


def test_registry_events_are_recorded(ml: mlops.MLOps, server_ml: mlops.MLOps) -> None:
    import sqlalchemy as sa

    from mlops.store._schema import events

    _register(ml)
    ml.registry.promote_to_stage("churn", 1, "staging")
    ml.registry.set_alias("churn", "champion", 1)
    with server_ml.store.read() as connection:
        kinds = list(connection.execute(sa.select(events.c.kind).order_by(events.c.id)).scalars())
    assert kinds == ["model.version_created", "model.stage_changed", "model.alias_set"]


def test_registry_changes_reach_a_webhook(ml: mlops.MLOps, server_ml: mlops.MLOps) -> None:
    from http_receiver import Receiver
    from mlops.registry import WebhookDispatcher, webhook_signature

    receiver = Receiver()
    try:
        hook = ml.registry.webhooks.add(
            receiver.url, events=["model.version_created", "model.stage_changed"]
        )
        assert hook.secret is not None
        _register(ml)
        ml.registry.promote_to_stage("churn", 1, "staging")
        ml.registry.set_alias("churn", "champion", 1)  # not subscribed
        with WebhookDispatcher(server_ml.store, timeout=5) as dispatcher:
            dispatcher.run_until_idle(max_seconds=10)
        received = receiver.received()
        kinds = [r.headers["X-MLOps-Event"] for r in received]
        assert kinds == ["model.version_created", "model.stage_changed"]
        for request in received:
            expected = webhook_signature(hook.secret, request.body)
            assert request.headers["X-MLOps-Signature"] == expected
        body = json.loads(received[1].body)
        assert body["payload"]["to"] == "staging"
        assert {d.status for d in ml.registry.webhooks.deliveries()} == {"delivered"}
    finally:
        receiver.close()


def test_a_damaged_local_copy_is_fetched_again(ml: mlops.MLOps) -> None:
    model, frame = _model()
    version = ml.registry.register_model("churn", model, input_example=frame[:5])
    ml.registry.load_model("models:/churn/1")  # fills the cache
    cached = ml.settings.home / "cache" / "models" / version.manifest_digest
    victim = next(p for p in cached.rglob("*") if p.is_file() and p.name != "mlops-model.json")
    victim.write_bytes(b"corrupted on this machine only")
    loaded = ml.registry.load_model("models:/churn/1")
    assert list(loaded.predict(frame[:3])["predictions"]) == list(model.predict(frame[:3]))


#: The remote runs use SQLite behind the server (see tests/conftest.py): the embedded runs
#: cover both stores, and the remote ones show the HTTP client gives the same results.
SQLITE_ONLY = "remote"
