"""Register a small pipeline on a cron schedule, tick the scheduler, and run it.

A registered pipeline names where its code lives ("module:attribute"), so any worker
can run it; this script writes a three-step module (generate data, train a model,
evaluate it) to a scratch folder and puts it on ``sys.path``. It registers the pipeline
to run at 03:00 every day, ticks the scheduler just before and just after the next due
time (times are passed in, so nothing waits), runs the queued execution here, triggers
one on demand, and prints each execution's steps and state.

Run it with ``python examples/07_scheduled_pipeline.py`` (needs ``mlops[sklearn]``). It
works in a fresh temporary MLOPS_HOME unless MLOPS_HOME is set.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import mlops

PIPELINE_MODULE = """
from mlops.pipelines import Pipeline, step


@step
def generate(rows: int = 300, seed: int = 0) -> dict:
    from sklearn.datasets import make_classification

    features, labels = make_classification(n_samples=rows, n_features=5, random_state=seed)
    return {"features": features, "labels": labels}


@step
def train(generate: dict, c: float = 1.0):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c).fit(generate["features"][:200], generate["labels"][:200])


@step
def evaluate(train, generate: dict) -> dict:
    return {"accuracy": float(train.score(generate["features"][200:], generate["labels"][200:]))}


pipeline = Pipeline("nightly-churn", [generate, train, evaluate])
"""


def main(home: str) -> None:
    code = Path(home) / "example_code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "nightly_churn.py").write_text(PIPELINE_MODULE)
    sys.path.insert(0, str(code))  # every process that runs the pipeline must import it

    with mlops.connect(home=home) as ml:
        registered = ml.pipelines.register(
            "nightly-churn",
            "nightly_churn:pipeline",
            schedule="0 3 * * *",  # 03:00 every day, UTC
            executor="threads",
            retries=1,
            retry_backoff="30s",
        )
        print(f"registered {registered.name} ({registered.source}), schedule {registered.schedule}")
        due = ml.pipelines.next_due()
        if due is None:
            sys.exit("a scheduled pipeline should have a next due time")
        print("a minute early, the tick queues", ml.pipelines.tick(now=due - 60_000))
        fired = ml.pipelines.tick(now=due + 300)
        print("at the due time:", [(e.trigger, e.state.value) for e in fired])

        done = ml.pipelines.work(now=due + 400)  # claim the queued execution and run it here
        manual = ml.pipelines.trigger("nightly-churn", params={"c": 0.1}, reason="try C=0.1")
        print(f"triggered execution {manual.id} by hand: {manual.state.value}")
        done += ml.pipelines.work(now=due + 500)

        for execution in done:
            print(f"execution {execution.id} ({execution.trigger}): {execution.state.value}")
            for line in execution.log:
                if line.step:
                    print("   ", line.text())
        states = [e.state.value for e in ml.pipelines.executions("nightly-churn")]
        print("history:", states)
        if len(done) != 2 or any(e.state.value != "succeeded" for e in done):
            sys.exit(f"expected two succeeded executions, got {states}")
        print(f"OK: {len(done)} executions succeeded")


if __name__ == "__main__":
    if os.environ.get("MLOPS_HOME"):
        main(os.environ["MLOPS_HOME"])
    else:
        with tempfile.TemporaryDirectory(prefix="mlops-example-") as scratch:
            main(scratch)
