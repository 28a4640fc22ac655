"""`mlops monitor performance` and `mlops monitor drift` on a real SQLite home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlops
from cli.conftest import invoke, ok

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")


def _frame(rows: int, seed: int, shift: float = 0.0) -> Any:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"tenure": rng.normal(30 + 10 * shift, 10, rows), "charges": rng.normal(70, 15, rows)}
    )


@pytest.fixture
def monitored(home: Path) -> Path:
    """A production model with an hour of drifted traffic and feedback on endpoint 'churn'."""
    from sklearn.linear_model import LogisticRegression

    train = _frame(1500, seed=0)
    labels = (train["tenure"] < 30).astype(int)
    model = LogisticRegression().fit(train, labels)
    with mlops.connect(home=str(home)) as ml:
        version = ml.registry.register_model(
            "churn",
            model,
            input_example=train.head(3),
            reference_data=train,
            metrics={"val_accuracy": 0.95},
        )
        ml.registry.promote_to_stage("churn", version.number, "production")
        live = _frame(400, seed=1, shift=1.5)
        ids = ml.monitor.record_predictions(
            "churn",
            live,
            model.predict(live).tolist(),
            probabilities=model.predict_proba(live).tolist(),
            version=version.number,
            latency_ms=3.0,
        )
        ml.monitor.record_feedback_batch("churn", ids, [1] * len(ids))
    return home


def test_performance_prints_metrics_and_the_change_from_baseline(monitored: Path) -> None:
    result = ok(monitored, "monitor", "performance", "churn", "--window", "1h")
    assert "accuracy" in result.output
    assert "against the baseline" in result.output
    assert "400" in result.output

    data = json.loads(ok(monitored, "monitor", "performance", "churn", "--json").output)
    assert data["overall"]["requests"] == 400
    assert data["baseline"] == {"accuracy": 0.95}
    assert data["overall"]["degradation"]["accuracy"]["degradation"] > 0

    by_version = json.loads(
        ok(monitored, "monitor", "performance", "churn", "--by", "version", "--json").output
    )
    assert [group["key"] for group in by_version["groups"]] == [1]


def test_performance_of_an_unknown_endpoint_reports_no_traffic(monitored: Path) -> None:
    data = json.loads(ok(monitored, "monitor", "performance", "nobody", "--json").output)
    assert data["overall"]["requests"] == 0
    assert data["overall"]["status"] == "not_enough_data"


def test_drift_from_the_log_with_an_html_report(monitored: Path, tmp_path: Path) -> None:
    html = tmp_path / "drift.html"
    result = ok(monitored, "monitor", "drift", "churn", "--window", "1h", "--html", str(html))
    assert "tenure" in result.output
    assert "HTML report" in result.output
    text = html.read_text()
    assert "tenure" in text
    assert "<script" not in text

    data = json.loads(ok(monitored, "monitor", "drift", "churn", "--json").output)
    verdicts = {column["name"]: column["status"] for column in data["columns"]}
    assert verdicts == {"tenure": "drift", "charges": "no_drift"}
    assert data["prediction"]["name"] == "prediction"


def test_drift_of_a_current_file(monitored: Path, tmp_path: Path) -> None:
    current = tmp_path / "current.csv"
    _frame(500, seed=2).to_csv(current, index=False)
    data = json.loads(
        ok(monitored, "monitor", "drift", "churn", "--current", str(current), "--json").output
    )
    assert data["dataset_drift"] is False
    assert data["prediction"] is None  # a plain file has no prediction column

    missing = invoke(monitored, "monitor", "drift", "churn", "--current", str(tmp_path / "no.csv"))
    assert missing.exit_code == 1
    assert "is not a file" in missing.output


def test_drift_without_a_reference_says_what_to_pass(home: Path) -> None:
    result = invoke(home, "monitor", "drift", "nobody")
    assert result.exit_code == 1
    assert "reference=" in result.output
