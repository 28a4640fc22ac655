"""The seven-stage training pipeline on the Ray executor, and the same outputs locally."""

from __future__ import annotations

from typing import Any

import pytest

import mlops
from mlops.pipelines import run_pipeline
from mlops.pipelines.training import PipelineConfig

from .conftest import sample, small_churn

pytest.importorskip("ray")


def test_the_training_pipeline_runs_on_ray_and_locally_to_the_same_outputs(
    ml: mlops.MLOps, ray_cluster: Any
) -> None:
    full = sample()
    raw = small_churn(deploy=full["deploy"], monitor=full["monitor"])
    pipeline = PipelineConfig.from_dict(raw).pipeline()

    on_ray = run_pipeline(ml, pipeline, executor="ray")

    assert on_ray.succeeded, [(s.name, s.error) for s in on_ray.steps]
    assert [s.name for s in on_ray.steps] == [
        "ingest", "validate", "preprocess", "features", "train",
        "evaluate", "register", "deploy", "monitor",
    ]  # fmt: skip
    assert ml.registry.get_version("churn", "production").run_id == on_ray.run_id
    assert ml.deployments.status("churn") is not None
    assert {rule.name for rule in ml.monitor.alerts.rules()} >= {
        rule["name"] for rule in full["monitor"]["rules"]
    }

    local = run_pipeline(ml, pipeline, executor="local")

    assert local.succeeded, [(s.name, s.error) for s in local.steps]
    states = {s.name: s.state.value for s in local.steps}
    # Ingest reads the data again (never cached) and hashes to the same output, so every
    # cacheable step is a hit on what Ray computed: same code, params and inputs.
    assert [states[name] for name in ("validate", "preprocess", "features", "train")] == [
        "cached"
    ] * 4
    assert local.step("ingest").output_hash == on_ray.step("ingest").output_hash
    assert local.output("evaluate").metrics == pytest.approx(on_ray.output("evaluate").metrics)
    # The champion is the Ray run's version: an equal challenger does not replace it.
    assert not local.output("register").registered
