"""Track a training run, register its model, and show the version's lineage.

Trains a logistic regression on synthetic data while logging params, a loss curve per
epoch, a dataset input and a report artifact; registers the model from that run with its
metrics and an input example (the signature is inferred from it), then prints where the
version came from.

Run it with ``python examples/01_track_and_register.py`` (needs ``mlops[sklearn]``). It
works in a fresh temporary MLOPS_HOME unless MLOPS_HOME is set.
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import f1_score, log_loss

import mlops
from mlops.tracking import dataset_from_data

EPOCHS = 5


def main(home: str) -> None:
    features, labels = make_classification(n_samples=600, n_features=4, random_state=0)
    frame = pd.DataFrame(features, columns=["tenure", "charges", "calls", "age"])
    train, test = frame.iloc[:450], frame.iloc[450:]
    train_y, test_y = labels[:450], labels[450:]

    with mlops.connect(home=home) as ml:
        ml.tracking.set_experiment("churn")
        model = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0)
        with ml.tracking.start_run("churn", name="sgd-baseline") as run:
            run.log_input(dataset_from_data("customers", frame), context="training")
            run.log_params({"alpha": 1e-3, "epochs": EPOCHS, "loss": "log_loss"})
            for epoch in range(EPOCHS):
                model.partial_fit(train, train_y, classes=np.array([0, 1]))
                loss = log_loss(test_y, model.predict_proba(test))
                run.log_metric("val_loss", loss, step=epoch)
                print(f"epoch {epoch}: val_loss={loss:.4f}")
            f1 = float(f1_score(test_y, model.predict(test)))
            run.log_metrics({"f1": f1, "log_loss": loss})
            run.log_dict({"features": list(frame.columns), "f1": f1}, "report/summary.json")

        history = ml.tracking.get_metric_history(run.id, "val_loss")
        artifacts = [artifact.path for artifact in ml.tracking.list_artifacts(run.id)]
        print(f"run {run.id}: {ml.tracking.get_run(run.id).status}, {len(history)} losses")
        print("artifacts:", artifacts)

        version = ml.registry.register_model(
            "churn",
            model,
            metrics={"f1": f1, "log_loss": loss},
            metadata={"team": "risk", "training_rows": len(train)},
            input_example=train.head(3),
            run=run,
            description="SGD baseline",
        )
        # The input signature lives in the package's manifest, not on the version record.
        signature = ml.registry.load_model(version.uri).manifest.signature
        inputs = [] if signature is None else list(signature.input_names)
        print(f"registered {version.uri} ({version.flavor}), inputs {inputs}")

        lineage = ml.registry.lineage("churn", version.number)
        datasets = [dataset["name"] for dataset in lineage["datasets"]]
        print(f"lineage: run {lineage['run']['name']!r}, datasets {datasets}")
        if lineage["run"]["id"] != run.id or datasets != ["customers"]:
            sys.exit("the version's lineage does not name its run and dataset")
        print(f"OK: {version.uri} was trained by run {run.id}")


if __name__ == "__main__":
    if os.environ.get("MLOPS_HOME"):
        main(os.environ["MLOPS_HOME"])
    else:
        with tempfile.TemporaryDirectory(prefix="mlops-example-") as scratch:
            main(scratch)
