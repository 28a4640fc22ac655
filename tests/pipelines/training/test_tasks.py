"""Regression and anomaly detection through the same pipeline (small generated data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import mlops
from mlops.pipelines import run_pipeline
from mlops.pipelines.training import STAGES, PipelineConfig

from .conftest import small_churn

pd = pytest.importorskip("pandas")


def _config(tmp_path: Path, frame: Any, **fields: Any) -> PipelineConfig:
    frame.to_csv(tmp_path / "data.csv", index=False)
    config = {"data": {"path": "data.csv"}, "seed": 3, **fields}
    return PipelineConfig.from_dict(config, base_dir=tmp_path)


def test_regression_searches_two_candidates_and_registers_the_better(
    ml: mlops.MLOps, tmp_path: Path, regression_frame: Any
) -> None:
    config = _config(
        tmp_path,
        regression_frame,
        name="prices",
        task="regression",
        label="price",
        features=[{"name": "size_per_year", "expr": "size_m2 / (age_years + 1)"}],
        train={
            "folds": 3,
            "trials": 4,
            "candidates": [
                {
                    "algorithm": "ridge",
                    "search": {"alpha": {"type": "log", "low": 0.01, "high": 10}},
                },
                {"algorithm": "decision_tree", "params": {"max_depth": 2}},
            ],
        },
        evaluate={"slices": ["district", {"column": "size_m2", "bins": [0, 100, 250]}]},
        register={"model": "prices"},
    )

    result = run_pipeline(ml, config.pipeline(), executor="threads")

    assert result.succeeded, [record.error for record in result.steps]
    trained = result.output("train")
    assert trained.metric == "rmse"
    assert trained.candidate == "ridge"  # the data is linear; a depth-2 tree is not
    evaluation = result.output("evaluate")
    assert set(evaluation.metrics) == {"rmse", "mae", "r2"}
    assert evaluation.metrics["rmse"] < 0.2 * regression_frame["price"].std()
    bins = [(e["value"], e["rows"]) for e in evaluation.slices if e["column"] == "size_m2"]
    assert [value for value, _ in bins] == ["(-0.001, 100.0]", "(100.0, 250.0]"]
    assert sum(rows for _, rows in bins) == 80
    version = ml.registry.get_version("prices", "latest")
    assert version.stage.value == "none"  # no register.stage: registered, not promoted
    served = ml.registry.load_model("prices", version.number)
    prediction = served.predict([{"size_m2": 100.0, "age_years": None, "district": "centre"}])
    assert prediction["predictions"][0] == pytest.approx(3 * 100 - 2 * 30 + 80, abs=40)


def test_isolation_forest_is_searched_and_scored_on_labelled_anomalies(
    ml: mlops.MLOps, tmp_path: Path, anomaly_frame: Any
) -> None:
    config = _config(
        tmp_path,
        anomaly_frame,
        name="fraud",
        task="anomaly_detection",
        label="is_anomaly",
        train={
            "folds": 3,
            "trials": 3,
            "candidates": [
                {
                    "algorithm": "isolation_forest",
                    "params": {"n_estimators": 50},
                    "search": {"contamination": {"type": "float", "low": 0.02, "high": 0.1}},
                }
            ],
        },
        register={"model": "fraud", "stage": "production"},
    )

    result = run_pipeline(ml, config.pipeline())

    assert result.succeeded, [record.error for record in result.steps]
    evaluation = result.output("evaluate")
    assert evaluation.metric == "average_precision"
    assert evaluation.metrics["average_precision"] > 0.8  # the anomalies are far off
    assert evaluation.metrics["precision_at_k"] > 0.7
    assert 0.01 < evaluation.metrics["anomaly_rate"] < 0.15
    assert result.output("train").positive_label == 1
    served = ml.registry.load_model("models:/fraud/production")
    output = served.predict(
        [
            {"amount": 0.1, "latency": -0.2, "channel": "web"},
            {"amount": 7.5, "latency": -6.0, "channel": "app"},
        ]
    )
    assert output["predictions"].tolist() == [1, -1]


def test_an_unlabelled_detector_is_fit_and_reported_without_a_search(
    ml: mlops.MLOps, tmp_path: Path, anomaly_frame: Any
) -> None:
    config = _config(
        tmp_path,
        anomaly_frame.drop(columns=["is_anomaly"]),
        name="unlabelled",
        task="anomaly_detection",
        train={
            "candidates": [{"algorithm": "isolation_forest", "params": {"contamination": 0.05}}]
        },
        evaluate={"slices": ["channel"]},
        register={"model": "unlabelled"},
    )

    result = run_pipeline(ml, config.pipeline())

    assert result.succeeded, [record.error for record in result.steps]
    assert [record.name for record in result.steps] == list(STAGES[:7])
    trained = result.output("train")
    assert (trained.metric, trained.cv_score, trained.trials) == (None, None, ())
    evaluation = result.output("evaluate")
    assert list(evaluation.metrics) == ["anomaly_rate"]
    assert evaluation.metrics["anomaly_rate"] == pytest.approx(0.05, abs=0.04)
    assert evaluation.reason == "no labels: the detector is reported, not compared"
    assert {entry["value"] for entry in evaluation.slices} == {"web", "app"}
    assert result.output("register").version == 1


def test_a_search_that_cannot_fit_fails_with_the_estimators_error(
    ml: mlops.MLOps, tmp_path: Path, regression_frame: Any
) -> None:
    config = _config(
        tmp_path,
        regression_frame,
        name="broken",
        task="regression",
        label="price",
        train={
            "folds": 2,
            "trials": 2,
            "candidates": [{"algorithm": "ridge", "params": {"alpha": -5.0}}],
        },
    )

    result = run_pipeline(ml, config.pipeline())

    error = result.step("train").error or ""
    assert error.startswith(
        "InvalidInput: no trial of the search completed (1 ran); the first error:"
    )
    assert "The 'alpha' parameter of Ridge must be a float in the range [0.0, inf)" in error
    assert result.step("evaluate").state.value == "skipped"


@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm"])
def test_boosted_candidates_are_trained_registered_and_served(
    ml: mlops.MLOps, algorithm: str
) -> None:
    pytest.importorskip(algorithm)
    config = small_churn()
    config["train"].update(
        folds=2,
        trials=2,
        candidates=[
            {
                "algorithm": algorithm,
                "params": {"n_estimators": 30},
                "search": {"max_depth": {"type": "int", "low": 2, "high": 4}},
            }
        ],
    )

    result = run_pipeline(ml, PipelineConfig.from_dict(config).pipeline(), executor="threads")

    assert result.succeeded, [record.error for record in result.steps]
    assert result.output("evaluate").metrics["roc_auc"] > 0.75
    served = ml.registry.load_model("models:/churn/production")
    row = {
        "tenure_months": 1,
        "monthly_charges": None,
        "contract": "month-to-month",
        "payment_method": "electronic-check",
        "internet_service": "fiber",
        "support_calls": 6,
        "num_products": 1,
        "satisfaction": 1.5,
        "region": "south",
    }
    assert served.predict([row])["predictions"].tolist() == [1]
