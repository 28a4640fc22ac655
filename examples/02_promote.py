"""Promote model versions through stages under a policy, then roll back.

Registers two versions of a classifier, sets a promotion policy (metric thresholds, a
bounded regression and a second person's approval for production), moves version 1 to
production and version 2 through staging to production, points the ``champion`` alias
at it, prints the model's history, and rolls production back to version 1.

Run it with ``python examples/02_promote.py`` (needs ``mlops[sklearn]``). It works in a
fresh temporary MLOPS_HOME unless MLOPS_HOME is set.
"""

from __future__ import annotations

import os
import sys
import tempfile

import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import mlops
from mlops.errors import PermissionDenied
from mlops.registry import ApprovalRequest, PromotionPolicy


def main(home: str) -> None:
    features, labels = make_classification(
        n_samples=300, n_features=3, n_redundant=0, random_state=1
    )
    frame = pd.DataFrame(features, columns=["tenure", "charges", "calls"])

    with mlops.connect(home=home) as ml:
        registry = ml.registry
        v1, v2 = (
            registry.register_model(
                "churn",
                LogisticRegression(C=c).fit(frame, labels),
                metrics={"f1": f1, "log_loss": loss},
                input_example=frame.head(3),
            )
            for c, f1, loss in ((1.0, 0.82, 0.41), (0.3, 0.86, 0.37))
        )
        print(f"registered {v1.semver} and {v2.semver}")

        registry.set_policy(
            "churn",
            PromotionPolicy(
                thresholds={"f1": 0.8, "log_loss": 0.45},
                max_regression={"f1": 0.02},
                require_approval=True,
            ),
        )
        print("policy:", registry.get_policy("churn"))

        first = registry.promote_to_stage(
            "churn", v1.number, "production", reason="first release", actor="ana"
        )
        if not isinstance(first, ApprovalRequest):
            sys.exit("the policy should have turned the production move into a request")
        registry.approve(first.id, comment="baseline", actor="bob")

        registry.promote_to_stage("churn", v2.number, "staging", reason="candidate", actor="ana")
        request = registry.promote_to_stage(
            "churn", v2.number, "production", reason="better f1", actor="ana"
        )
        if not isinstance(request, ApprovalRequest):
            sys.exit("the policy should have turned the production move into a request")
        try:
            registry.approve(request.id, actor="ana")  # nobody approves their own request
        except PermissionDenied as error:
            print("refused:", error)
        registry.approve(request.id, comment="checked the report", actor="bob")
        registry.set_alias("churn", "champion", v2.number, actor="bob")
        print("champion:", registry.resolve("models:/churn@champion").semver)
        print("stages:", [(v.semver, v.stage.value) for v in registry.list_versions("churn")])

        restored = registry.rollback("churn", reason="complaints about the new version")
        print("history:")
        for change in registry.history("churn"):
            target = f"@{change.name}" if change.kind == "alias" else "stage"
            print(
                f"  v{change.version} {target}: {change.from_value} -> {change.to_value}"
                f" by {change.actor} ({change.reason or '-'})"
            )
        production = registry.get_version("churn", "production")
        if production.number != v1.number or restored.number != v1.number:
            sys.exit(f"rollback left {production.semver} in production, not {v1.semver}")
        print(f"OK: rolled back, production is {production.semver}")


if __name__ == "__main__":
    if os.environ.get("MLOPS_HOME"):
        main(os.environ["MLOPS_HOME"])
    else:
        with tempfile.TemporaryDirectory(prefix="mlops-example-") as scratch:
            main(scratch)
