"""Detect data drift in live traffic, save the HTML report, and fire an alert on it.

Registers a classifier with its training data as the drift reference, logs live
requests whose inputs have shifted (older customers, a different plan mix), prints the
drift verdict per column against the reference, saves the self-contained HTML report,
and evaluates an alert rule on the share of drifted columns, which fires.

Run it with ``python examples/06_detect_drift.py`` (needs ``mlops[sklearn]``). It works
in a fresh temporary MLOPS_HOME unless MLOPS_HOME is set; the report is written there.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import mlops
from mlops.monitoring.alerts import AlertRule


def customers(rng: np.random.Generator, rows: int, age: float, plans: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(age, 10, rows),
            "charges": rng.normal(70, 15, rows),
            "plan": rng.choice(["basic", "pro", "team"], rows, p=plans),
        }
    )


def main(home: str) -> None:
    rng = np.random.default_rng(6)
    reference = customers(rng, 800, age=40, plans=[0.5, 0.3, 0.2])
    current = customers(rng, 400, age=48, plans=[0.2, 0.3, 0.5])  # charges do not change
    labels = (reference["age"] < 35).astype(int)

    with mlops.connect(home=home) as ml:
        model = make_pipeline(
            make_column_transformer((OneHotEncoder(), ["plan"]), remainder="passthrough"),
            LogisticRegression(max_iter=500),
        ).fit(reference, labels)
        version = ml.registry.register_model(
            "churn", model, input_example=reference.head(3), reference_data=reference
        )
        ml.registry.promote_to_stage("churn", version.number, "production")
        ml.monitor.record_predictions(
            "churn", current, model.predict(current).tolist(), version=version.number
        )

        report = ml.monitor.drift("churn", window="1h")
        for column in report.columns:
            p_value = "" if column.p_value is None else f", p={column.p_value:.3g}"
            print(
                f"{column.name:<8} {column.kind:<11} {column.method}: "
                f"{column.statistic:.3f}{p_value} -> {column.status}"
            )
        print(
            f"dataset drift: {report.dataset_drift} "
            f"({report.drifted_count} of {report.tested_count} columns)"
        )
        html = report.save_html(Path(home) / "churn-drift.html")
        print(f"saved {html} ({html.stat().st_size} bytes)")

        alerts = ml.monitor.alerts
        alerts.create_rule(
            AlertRule(
                name="churn-drift",
                signal="drift_share",
                comparison=">=",
                threshold=0.5,
                window="1h",
                for_=0,  # fire on the first true measurement
                severity="warning",
                endpoint="churn",
                description="$value of the inputs of $endpoint drifted over the last hour",
            )
        )
        for transition in alerts.evaluate():
            print(
                f"alert {transition.rule}: {transition.from_state} -> {transition.to_state}"
                f" (value {transition.value})"
            )
        firing = alerts.alerts(state="firing", rule="churn-drift")
        if not report.dataset_drift or not firing:
            sys.exit("the shifted traffic should drift and fire the alert")
        print(f"OK: drifted columns {list(report.drifted_columns)}; alert churn-drift is firing")


if __name__ == "__main__":
    if os.environ.get("MLOPS_HOME"):
        main(os.environ["MLOPS_HOME"])
    else:
        with tempfile.TemporaryDirectory(prefix="mlops-example-") as scratch:
            main(scratch)
