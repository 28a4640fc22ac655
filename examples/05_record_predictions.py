"""Record the predictions and feedback of a model served elsewhere; measure it live.

Registers a classifier with its validation accuracy (the baseline), logs 400 live
predictions with their probabilities and latencies as a service outside ``mlops server``
would, sends the actual outcomes of 300 of them later (feedback by request id), and
computes performance over the last hour and over the latest 100 requests: traffic,
latency, quality metrics, the label-free estimate and the change from the baseline.

Run it with ``python examples/05_record_predictions.py`` (needs ``mlops[sklearn]``). It
works in a fresh temporary MLOPS_HOME unless MLOPS_HOME is set.
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import mlops


def main(home: str) -> None:
    rng = np.random.default_rng(5)
    features, labels = make_classification(
        n_samples=1400, n_features=4, flip_y=0.05, random_state=5
    )
    frame = pd.DataFrame(features, columns=["tenure", "charges", "calls", "age"])
    train, live = frame.iloc[:1000], frame.iloc[1000:]
    train_y, live_y = labels[:1000], labels[1000:]

    with mlops.connect(home=home) as ml:
        model = LogisticRegression().fit(train, train_y)
        version = ml.registry.register_model(
            "churn",
            model,
            input_example=train.head(3),
            metrics={"val_accuracy": float(model.score(train, train_y))},
        )
        ml.registry.promote_to_stage("churn", version.number, "production")

        ids = ml.monitor.record_predictions(
            "churn",
            live,
            model.predict(live).tolist(),
            probabilities=model.predict_proba(live).tolist(),
            version=version.number,
            latency_ms=rng.gamma(4.0, 2.0, len(live)).tolist(),
        )
        print(f"recorded {len(ids)} predictions, e.g. request {ids[0]}")
        # Labels arrive later, and not for every request.
        ml.monitor.record_feedback_batch("churn", ids[:300], live_y[:300].tolist())
        print("recorded feedback for the first 300 of them")

        report = ml.monitor.performance("churn", window="1h")
        overall = report.overall
        metrics = report.metrics or {}
        print(
            f"last hour: {report.requests} requests, {report.labelled} labelled, "
            f"error rate {report.error_rate:.1%}, p95 latency {overall.latency_p95_ms:.1f} ms"
        )
        print("metrics:", {name: round(value, 3) for name, value in metrics.items() if value})
        if report.estimated is not None:
            print(f"estimated accuracy without labels: {report.estimated.accuracy:.3f}")
        for name, change in report.degradation.items():
            print(f"{name}: baseline {change.baseline:.3f}, now {change.current:.3f}")

        latest = ml.monitor.performance("churn", last=100)
        print(f"latest 100 requests: {latest.labelled} labelled, status {latest.status}")

        if report.requests != len(live) or report.status != "ok" or "accuracy" not in metrics:
            sys.exit(f"unexpected report: {report.requests} requests, {report.reason}")
        print(f"OK: accuracy {metrics['accuracy']:.3f} over {report.labelled} labelled requests")


if __name__ == "__main__":
    if os.environ.get("MLOPS_HOME"):
        main(os.environ["MLOPS_HOME"])
    else:
        with tempfile.TemporaryDirectory(prefix="mlops-example-") as scratch:
            main(scratch)
