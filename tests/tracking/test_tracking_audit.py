"""Experiment and run lifecycle changes are in the audit log, with their actor — embedded,
and through the API with the caller's identity (both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

import mlops
from live_server import LiveServer
from mlops.api import api_routes


def test_lifecycle_changes_are_audited(ml: mlops.MLOps) -> None:
    experiment = ml.tracking.create_experiment("audited", actor="ana")
    ml.tracking.rename_experiment("audited", "audited-2", actor="bob")
    run = ml.tracking.start_run("audited-2")
    run.end()
    ml.tracking.delete_run(run.id, actor="carl")
    ml.tracking.restore_run(run.id)
    ml.tracking.delete_experiment(experiment.id, actor="dana")
    ml.tracking.restore_experiment(experiment.id, actor="dana")
    entries = list(reversed(ml.audit.list()))
    assert [(e.action, e.actor) for e in entries] == [
        ("experiment.created", "ana"),
        ("experiment.renamed", "bob"),
        ("run.deleted", "carl"),
        ("run.restored", ml.tracking._actor),  # type: ignore[attr-defined]
        ("experiment.deleted", "dana"),
        ("experiment.restored", "dana"),
    ]
    renamed = entries[1]
    assert (renamed.target, renamed.before, renamed.after) == (
        f"experiments/{experiment.id}",
        {"name": "audited"},
        {"name": "audited-2"},
    )
    assert ml.audit.verify().ok


def test_a_refused_change_leaves_no_entry(ml: mlops.MLOps) -> None:
    ml.tracking.create_experiment("taken")
    before = len(ml.audit.list())
    with pytest.raises(mlops.errors.AlreadyExists):
        ml.tracking.create_experiment("taken", actor="eve")
    with pytest.raises(mlops.errors.NotFound):
        ml.tracking.delete_run("f" * 32, actor="eve")
    assert len(ml.audit.list()) == before


@pytest.fixture
def secured(ml: mlops.MLOps) -> Iterator[LiveServer]:
    live = LiveServer(Starlette(routes=api_routes(ml, auth="required")), ready_status=401)
    live.start()
    try:
        yield live
    finally:
        live.stop()


def test_api_changes_are_audited_as_the_token_user(
    ml: mlops.MLOps, secured: LiveServer, tmp_path: Path
) -> None:
    ml.access.create_user("ed", "editor")
    token, _ = ml.access.create_token("ed", name="laptop")
    remote = mlops.connect(secured.url, token=token, home=str(tmp_path))
    experiment = remote.tracking.create_experiment("over-http")
    remote.tracking.delete_experiment(experiment.id)
    remote.close()
    entries = ml.audit.list(actor="ed")
    assert [e.action for e in entries] == ["experiment.deleted", "experiment.created"]
    assert all(e.request_id for e in entries)
