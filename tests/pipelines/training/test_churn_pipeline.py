"""The churn pipeline end to end on the bundled data, into a real registry (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlops
from mlops.errors import NotFound
from mlops.pipelines import run_pipeline
from mlops.pipelines.training import (
    STAGES,
    PipelineConfig,
    bundled_data_path,
)
from mlops.registry import PromotionPolicy
from mlops.tracking import Run, RunStatus

from .conftest import sample, small_churn

pd = pytest.importorskip("pandas")


def _children(ml: mlops.MLOps, run_id: str) -> list[Run]:
    parent = ml.tracking.get_run(run_id)
    return list(
        ml.tracking.search_runs(parent.experiment_id, f"attributes.parent_run_id = '{run_id}'")
    )


def _artifact(ml: mlops.MLOps, run_id: str, name: str, tmp_path: Path) -> Any:
    path = ml.tracking.download_artifacts(run_id, name, tmp_path / run_id)
    return json.loads(path.read_text(encoding="utf-8"))


def _states(result: Any) -> dict[str, str]:
    return {record.name: record.state.value for record in result.steps}


def test_a_winning_challenger_is_registered_with_lineage_metrics_and_profile(
    ml: mlops.MLOps, tmp_path: Path
) -> None:
    raw = small_churn()
    raw["register"]["alias"] = "champion"
    config = PipelineConfig.from_dict(raw)

    result = run_pipeline(ml, config.pipeline(), experiment="training")

    assert result.succeeded, [record.error for record in result.steps]
    assert [record.name for record in result.steps] == list(STAGES[:7])
    dataset = result.output("ingest").dataset
    version = ml.registry.get_version("churn", "production")
    assert (version.number, version.run_id) == (1, result.run_id)
    assert version.aliases == ("champion",)
    assert version.datasets == (("churn", dataset.digest, "training"),)
    evaluation = result.output("evaluate")
    assert evaluation.challenger_wins
    assert (
        evaluation.reason == "model 'churn' has no production version yet, so the challenger wins"
    )
    assert evaluation.metrics["roc_auc"] > 0.75  # the generator's logistic signal is learnable
    assert version.metrics["roc_auc"] == pytest.approx(evaluation.metrics["roc_auc"])
    assert version.metrics["cv_roc_auc"] == pytest.approx(result.output("train").cv_score)
    assert version.metadata["derived_features"][0] == [
        "charges_per_month",
        "monthly_charges / (tenure_months + 1)",
    ]
    prepared = result.output("features")
    profile = ml.registry.reference_profile("churn", 1)
    assert profile is not None
    assert profile["row_count"] == len(prepared.train) == 1600
    assert "churned" not in {column["name"] for column in profile["columns"]}
    assert len(prepared.holdout) == 400
    assert prepared.train["churned"].mean() == pytest.approx(
        prepared.holdout["churned"].mean(), abs=0.01
    )

    for column in ("contract", "region"):
        rows = [entry["rows"] for entry in evaluation.slices if entry["column"] == column]
        assert sum(rows) == 400
    steps = {run.tags["mlops.step"]: run for run in _children(ml, result.run_id)}
    ingest = steps["ingest"]
    assert [(i.dataset.digest, i.context) for i in ingest.inputs] == [(dataset.digest, "training")]
    assert ingest.metrics["rows"] == 2000
    report = _artifact(ml, steps["validate"].id, "validation_report.json", tmp_path)
    assert report["passed"]
    assert report["violations"] == 0
    assert report["rules_checked"] >= 10
    assert steps["evaluate"].tags["mlops.training.verdict"] == "challenger"
    assert steps["evaluate"].metrics["slice/contract/two-year/rows"] > 0
    assert ml.tracking.get_run(result.run_id).metrics["holdout_roc_auc"] == pytest.approx(
        evaluation.metrics["roc_auc"]
    )

    trials = _children(ml, steps["train"].id)
    assert sorted(run.name for run in trials) == ["trial-0", "trial-1", "trial-2"]
    for trial in trials:
        assert trial.status is RunStatus.FINISHED
        assert trial.params["candidate"] == "logistic_regression"
        assert float(trial.params["C"]) > 0
        history = ml.tracking.get_metric_history(trial.id, "cv_roc_auc_fold")
        assert [point.step for point in history] == [0, 1, 2]
        assert trial.metrics["cv_roc_auc"] == pytest.approx(np.mean([p.value for p in history]))
    best = max(trials, key=lambda run: run.metrics["cv_roc_auc"])
    assert steps["train"].params["best.C"] == best.params["C"]


def test_the_registered_model_serves_raw_rows_with_nulls_and_categories(ml: mlops.MLOps) -> None:
    result = run_pipeline(ml, PipelineConfig.from_dict(small_churn()).pipeline())
    assert result.succeeded, [record.error for record in result.steps]

    served = ml.registry.load_model("models:/churn/production")
    rows = [
        {
            "tenure_months": 2,
            "monthly_charges": None,
            "contract": "month-to-month",
            "payment_method": None,
            "internet_service": "fiber",
            "support_calls": 5,
            "num_products": 1,
            "satisfaction": None,
            "region": "south",
        },
        {
            "tenure_months": 70,
            "monthly_charges": 25.0,
            "contract": "two-year",
            "payment_method": "credit-card",
            "internet_service": "none",
            "support_calls": 0,
            "num_products": 4,
            "satisfaction": 4.8,
            "region": "north",
        },
    ]
    output = served.predict(rows)

    assert output["predictions"].tolist() == [1, 0]
    probabilities = output["probabilities"][:, 1]
    assert probabilities[0] > 0.5 > probabilities[1]
    # The package holds the whole pipeline: typed input and derived features first.
    native = served.native
    assert [name for name, _ in native.steps] == ["input", "encode", "model"]
    assert dict(native.named_steps["input"].derived)["charges_per_month"] == (
        "monthly_charges / (tenure_months + 1)"
    )
    # What the pipeline trained and what the registry serves agree on the hold-out rows.
    prepared = result.output("features")
    holdout = prepared.features(prepared.holdout)
    trained = result.output("train").model.predict_proba(holdout)[:, 1]
    records = json.loads(holdout.to_json(orient="records"))
    assert np.allclose(served.predict(records)["probabilities"][:, 1], trained)


def test_a_worse_challenger_is_not_registered_and_a_rerun_reuses_the_cache(
    ml: mlops.MLOps,
) -> None:
    first = run_pipeline(ml, PipelineConfig.from_dict(small_churn()).pipeline())
    assert first.succeeded

    again = run_pipeline(ml, PipelineConfig.from_dict(small_churn()).pipeline())
    assert _states(again) == {
        "ingest": "succeeded",  # sources are always read again
        "validate": "cached",
        "preprocess": "cached",
        "features": "cached",
        "train": "cached",
        "evaluate": "succeeded",  # the champion may have changed: never cached
        "register": "succeeded",
    }
    tie = again.output("evaluate")
    assert not tie.challenger_wins
    assert tie.improvement == pytest.approx(0.0)

    worse = small_churn(features=[])
    worse["train"]["candidates"] = [{"algorithm": "decision_tree", "params": {"max_depth": 1}}]
    third = run_pipeline(ml, PipelineConfig.from_dict(worse).pipeline())

    assert third.succeeded
    verdict = third.output("evaluate")
    assert not verdict.challenger_wins
    assert verdict.champion_version == 1
    assert verdict.improvement is not None
    assert verdict.improvement < 0
    assert verdict.reason.startswith("the challenger loses: roc_auc ")
    registration = third.output("register")
    assert not registration.registered
    assert registration.reason == f"not registered: {verdict.reason}"
    assert [v.number for v in ml.registry.list_versions("churn")] == [1]


def test_a_single_stage_reruns_on_the_cached_upstream_outputs(ml: mlops.MLOps) -> None:
    config = PipelineConfig.from_dict(small_churn())
    full = run_pipeline(ml, config.pipeline())
    assert full.succeeded

    only = run_pipeline(ml, config.pipeline(), stage="evaluate")

    assert [(r.name, r.state.value) for r in only.steps] == [("evaluate", "succeeded")]
    assert only.output("evaluate").champion_version == 1  # compared with what `full` registered
    retrain = run_pipeline(ml, config.pipeline(), stage="train")
    assert [(r.name, r.state.value) for r in retrain.steps] == [("train", "cached")]
    assert retrain.output("train").cv_score == full.output("train").cv_score


def test_failed_validation_stops_the_run_with_every_violation_and_registers_nothing(
    ml: mlops.MLOps, tmp_path: Path
) -> None:
    config = small_churn()
    config["validate"] = {
        "min_rows": 5000,
        "columns": {
            "tenure_months": {"max": 24},
            "contract": {"allowed": ["month-to-month", "one-year"]},
            "satisfaction": {"max_null_fraction": 0.01},
            "signup_date": {"dtype": "datetime"},
        },
    }

    result = run_pipeline(ml, PipelineConfig.from_dict(config).pipeline())

    assert not result.succeeded
    assert _states(result) == {
        "ingest": "succeeded",
        "validate": "failed",
        **dict.fromkeys(("preprocess", "features", "train", "evaluate", "register"), "skipped"),
    }
    error = result.step("validate").error
    assert error is not None
    assert error.startswith("ValidationFailed: data validation failed: 5 of ")
    for part in (
        "2000 rows, at least 5000 required",
        "column 'tenure_months': ",
        "values above max 24",
        "column 'contract': ",
        "'two-year' (",
        "column 'satisfaction': 5.",
        "column 'signup_date' is missing",
    ):
        assert part in error
    assert ml.tracking.get_run(result.run_id).status is RunStatus.FAILED
    report = _artifact(ml, result.step("validate").run_id or "", "validation_report.json", tmp_path)
    assert report["passed"] is False
    assert report["violations"] == 5
    with pytest.raises(NotFound):
        ml.registry.get_model("churn")


def test_a_run_that_failed_validation_resumes_on_the_fixed_data(
    ml: mlops.MLOps, tmp_path: Path
) -> None:
    frame = pd.read_csv(bundled_data_path())
    broken = frame.copy()
    broken.loc[:9, "tenure_months"] = -1
    path = tmp_path / "customers.csv"
    broken.to_csv(path, index=False)
    pipeline = PipelineConfig.from_dict(small_churn(data={"path": str(path)})).pipeline()
    failed = run_pipeline(ml, pipeline)
    assert failed.step("validate").state.value == "failed"
    assert "values below min 0" in (failed.step("validate").error or "")

    frame.to_csv(path, index=False)
    resumed = run_pipeline(ml, pipeline, resume_from=failed.run_id)

    assert resumed.succeeded, [(s.name, s.error) for s in resumed.steps]
    assert resumed.step("ingest").state.value == "succeeded"  # read again, not reused
    assert resumed.output("register").registered


def test_a_production_policy_is_checked_before_anything_is_registered(ml: mlops.MLOps) -> None:
    ml.registry.create_model("churn")
    ml.registry.set_policy("churn", PromotionPolicy(thresholds={"roc_auc": 0.99}))

    result = run_pipeline(ml, PipelineConfig.from_dict(small_churn()).pipeline())

    assert result.step("register").state.value == "failed"
    assert "PolicyViolation: " in (result.step("register").error or "")
    assert "roc_auc" in (result.step("register").error or "")
    assert ml.registry.list_versions("churn") == []


def test_a_promotion_that_needs_approval_registers_but_does_not_deploy(ml: mlops.MLOps) -> None:
    ml.registry.create_model("churn")
    ml.registry.set_policy("churn", PromotionPolicy(require_approval=True))
    config = small_churn(deploy=sample()["deploy"])

    result = run_pipeline(ml, PipelineConfig.from_dict(config).pipeline())

    assert result.succeeded, [record.error for record in result.steps]
    registration = result.output("register")
    assert (registration.version, registration.stage) == (1, "none")
    (request,) = ml.registry.list_approvals("churn")
    assert registration.approval_request == request.id
    assert registration.reason.endswith(
        f"promotion to production awaits approval (request {request.id})"
    )
    rollout = result.output("deploy")
    assert not rollout.deployed
    assert (
        rollout.reason
        == f"version 1 waits for approval (request {request.id}); deploy it once approved"
    )


def test_deploy_and_monitor_roll_out_the_first_version_directly_then_by_canary(
    ml: mlops.MLOps,
) -> None:
    config = small_churn(deploy=sample()["deploy"], monitor=sample()["monitor"])
    first = run_pipeline(ml, PipelineConfig.from_dict(config).pipeline())

    assert first.succeeded, [record.error for record in first.steps]
    rollout = first.output("deploy")
    assert (rollout.deployed, rollout.strategy, rollout.state) == (True, "direct", "succeeded")
    assert first.output("monitor") == {"churn-accuracy-drop": "created", "churn-drift": "created"}
    rule = ml.monitor.alerts.get_rule("churn-drift")
    assert (rule.endpoint, rule.signal, rule.threshold, rule.window) == (
        "churn",
        "drift_share",
        0.3,
        3600,
    )

    config["evaluate"]["compare_with"] = "@champion"  # no such alias: the challenger wins
    config["monitor"]["rules"][1]["threshold"] = 0.4
    second = run_pipeline(ml, PipelineConfig.from_dict(config).pipeline())

    assert second.succeeded, [record.error for record in second.steps]
    assert second.output("register").version == 2
    canary = ml.deployments.status(second.output("deploy").deployment_id)
    assert (canary.strategy, canary.stable_version, canary.candidate_version) == ("canary", 1, 2)
    assert canary.state.value == "progressing"
    assert list(canary.params["steps_percent"]) == [10, 50, 100]
    assert second.output("monitor") == {"churn-accuracy-drop": "updated", "churn-drift": "updated"}
    assert ml.monitor.alerts.get_rule("churn-drift").threshold == 0.4


def test_sources_parquet_and_sql_are_read_and_recorded(ml: mlops.MLOps, tmp_path: Path) -> None:
    frame = pd.read_csv(bundled_data_path())
    frame.to_parquet(tmp_path / "churn.parquet")
    sa = pytest.importorskip("sqlalchemy")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    frame.to_sql("customers", engine, index=False)
    engine.dispose()

    outputs = {}
    for name, data in {
        "parquet": {"path": "churn.parquet"},
        "sql": {"sql": {"url": "sqlite:///crm.db", "query": "SELECT * FROM customers"}},
    }.items():
        config = PipelineConfig.from_dict(small_churn(data=data), base_dir=tmp_path)
        result = run_pipeline(ml, config.pipeline(), stage="ingest")
        assert result.succeeded, result.step("ingest").error
        outputs[name] = result.output("ingest")

    for loaded in outputs.values():
        pd.testing.assert_frame_equal(loaded.frame, frame, check_dtype=False)
        assert loaded.dataset.num_rows == 2000
    assert outputs["parquet"].dataset.name == "churn"
    assert outputs["sql"].dataset.name == "sql-query"
    assert outputs["sql"].source.startswith(f"sqlite:///{tmp_path}")


def test_a_missing_file_and_a_bad_query_fail_ingest_with_what_to_fix(
    ml: mlops.MLOps, tmp_path: Path
) -> None:
    missing = PipelineConfig.from_dict(small_churn(data={"path": "gone.csv"}), base_dir=tmp_path)
    result = run_pipeline(ml, missing.pipeline())
    assert result.step("ingest").state.value == "failed"
    assert result.step("ingest").error == (
        f"InvalidInput: the data file {tmp_path.resolve() / 'gone.csv'} does not exist (data.path; "
        "a relative path resolves against the config file's folder)"
    )
    assert result.step("train").state.value == "skipped"

    bad = small_churn(data={"sql": {"url": "sqlite:///crm.db", "query": "SELECT * FROM nowhere"}})
    result = run_pipeline(ml, PipelineConfig.from_dict(bad, base_dir=tmp_path).pipeline())
    error = result.step("ingest").error or ""
    assert error.startswith(
        f"InvalidInput: the data query failed on sqlite:///{tmp_path.resolve()}"
    )
    assert "no such table: nowhere" in error

    secret = small_churn(data={"sql": {"url": "postgresql://${NO_SUCH_SECRET}@db/x", "query": "x"}})
    result = run_pipeline(ml, PipelineConfig.from_dict(secret).pipeline())
    assert "uses ${NO_SUCH_SECRET}, but NO_SUCH_SECRET is not set" in (
        result.step("ingest").error or ""
    )


def test_register_alone_on_an_old_evaluation_registers_nothing(ml: mlops.MLOps) -> None:
    pipeline = PipelineConfig.from_dict(small_churn()).pipeline()
    first = run_pipeline(ml, pipeline)
    assert first.output("register").registered

    again = run_pipeline(ml, pipeline, stage="register")

    registration = again.output("register")
    assert not registration.registered
    assert "which is now version 1" in registration.reason
    assert [v.number for v in ml.registry.list_versions("churn")] == [1]
