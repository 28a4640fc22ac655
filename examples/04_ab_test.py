"""A/B test two model versions on a binary outcome and read the statistical verdict.

Version 1 serves an endpoint; version 2 joins it as the treatment arm of an A/B test
(half the users, kept on one arm by their user id). Each simulated user gets a
prediction from their arm and later converts or not; the outcomes are recorded as
feedback. One tick of the deployment controller runs the two-proportion z-test and,
with ``auto_promote``, hands the endpoint to the winner.

Run it with ``python examples/04_ab_test.py`` (needs ``mlops[sklearn]``). It works in a
fresh temporary MLOPS_HOME unless MLOPS_HOME is set.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import mlops
from mlops.deployment import ABTest, DeploymentState
from mlops.serving import Router

USERS = 3000
CONVERSION = {"control": 0.10, "treatment": 0.15}  # the treatment really is better


def main(home: str) -> None:
    rng = np.random.default_rng(4)
    features, labels = make_classification(n_samples=300, n_features=4, random_state=4)

    with mlops.connect(home=home) as ml:
        control, treatment = (
            ml.registry.register_model(
                "ranker", LogisticRegression(C=c).fit(features, labels), input_example=features[:5]
            )
            for c in (1.0, 0.2)
        )
        ml.deployments.deploy("ranker", "ranker", control.number)
        test = ml.deployments.deploy(
            "ranker",
            "ranker",
            treatment.number,
            strategy=ABTest(
                treatment_share=0.5,
                sticky_header="x-user-id",
                outcome="binary",
                minimum_detectable_effect=0.04,
                sequential=False,  # a fixed-horizon z-test, read once at its sample size
                auto_promote=True,
                check_seconds=0,
            ),
        )
        if test.routes is None:
            sys.exit("the A/B test has no routing table")
        router = Router(test.routes)  # what every serving replica computes per request
        users: dict[str, list[str]] = {"control": [], "treatment": []}
        for user in range(USERS):
            users[router.pick(f"user-{user}").label].append(f"user-{user}")
        print({arm: len(members) for arm, members in users.items()}, "users per arm")

        for route in test.routes.routes:
            members = users[route.label]
            ids = ml.monitor.record_predictions(
                "ranker",
                None,  # inputs are not needed to compare outcomes
                [1] * len(members),
                version=route.version,
                route=route.label,
                latency_ms=3.0,
            )
            converted = (rng.random(len(members)) < CONVERSION[route.label]).astype(int)
            ml.monitor.record_feedback_batch("ranker", ids, converted.tolist())
            print(f"{route.label}: version {route.version}, conversion {converted.mean():.3f}")

        ml.deployments.advance()  # what the controller in `mlops server` does each second
        outcome = ml.deployments.status("ranker")
        ab = latest_ab_result(ml, "ranker")
        low, high = ab["ci"]
        print(f"{ab['method']}: effect {ab['effect']:+.4f}, 95% CI [{low:+.4f}, {high:+.4f}]")
        print(f"p-value {ab['p_value']:.2e}, n per arm {ab['n']}, needed {ab['required_per_arm']}")
        print(f"verdict: {ab['decision']} ({ab['reason'].split(':')[0]})")
        if outcome.state is not DeploymentState.SUCCEEDED or ab["decision"] != "winner_b":
            sys.exit(f"expected the treatment to win, got {ab['decision']} ({outcome.state})")
        production = ml.registry.get_version("ranker", "production").number
        print(f"OK: verdict winner_b, version {production} now serves the endpoint")


def latest_ab_result(ml: mlops.MLOps, endpoint: str) -> dict[str, Any]:
    """The last A/B analysis recorded in the endpoint's deployment history."""
    for event in reversed(ml.deployments.history(endpoint)):
        if "ab" in event.detail:  # the check that ended the test
            return dict(event.detail["ab"])
        if "decision" in event.detail:  # a check that kept it running
            return dict(event.detail)
    sys.exit(f"no A/B analysis was recorded for {endpoint!r}")


if __name__ == "__main__":
    if os.environ.get("MLOPS_HOME"):
        main(os.environ["MLOPS_HOME"])
    else:
        with tempfile.TemporaryDirectory(prefix="mlops-example-") as scratch:
            main(scratch)
