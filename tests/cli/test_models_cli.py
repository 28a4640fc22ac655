"""``mlops models`` and ``mlops keys``, driven through Typer's runner against a real store."""

from __future__ import annotations

import json
import pickle
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mlops
from cli.conftest import invoke, ok
from mlops.governance import key_fingerprint
from mlops.tracking import dataset_from_data

FEATURES = pd.DataFrame({"tenure": [1.0, 5.0, 2.0, 8.0, 3.0, 9.0], "plan": [0, 1, 0, 1, 1, 0]})
LABELS = [0, 1, 0, 1, 0, 1]
# (f1, loss) of versions 1, 2 and 3: version 2 is best on both.
METRICS = [(0.80, 0.50), (0.86, 0.40), (0.83, 0.45)]


def fails(home: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a command that must fail with one ``error:`` line and exit 1; return that line."""
    result = invoke(home, *args, env=env)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    return result.stderr.strip()


def json_of(home: Path, *args: str) -> Any:
    return json.loads(ok(home, *args, "--json").stdout)


def _fitted() -> LogisticRegression:
    return LogisticRegression().fit(FEATURES, LABELS)


@pytest.fixture
def churn(home: Path) -> None:
    """Model 'churn' with versions 1.0.0, 1.1.0 and 1.2.0 and known metrics."""
    with mlops.connect(home=str(home)) as ml:
        model = _fitted()
        for f1, loss in METRICS:
            ml.registry.register_model(
                "churn", model, metrics={"f1": f1, "loss": loss}, input_example=FEATURES.head(3)
            )


# -- listing and showing ------------------------------------------------------------------


def test_help_lists_the_models_and_keys_commands(home: Path) -> None:
    assert {"models", "keys"} <= set(ok(home, "--help").stdout.split())
    output = ok(home, "models", "--help").stdout
    for command in ("list", "show", "versions", "promote", "approve", "policy", "import-mlflow"):
        assert command in output


def test_models_list_without_models_says_how_to_register(home: Path) -> None:
    assert "register_model" in ok(home, "models", "list").stdout
    assert json_of(home, "models", "list") == {"models": []}


def test_models_list_shows_latest_and_production(home: Path, churn: None) -> None:
    ok(home, "models", "promote", "churn", "2", "production")
    ok(home, "models", "alias", "churn", "champion", "1.2.0")
    [listed] = json_of(home, "models", "list")["models"]
    assert listed["name"] == "churn"
    assert (listed["latest_version"], listed["latest_semver"]) == (3, "1.2.0")
    assert (listed["production_version"], listed["production_semver"]) == (2, "1.1.0")
    assert listed["aliases"] == {"champion": 3}
    table = ok(home, "models", "list").stdout
    assert "3 (1.2.0)" in table
    assert "2 (1.1.0)" in table
    assert "@champion→3" in table


def test_models_list_filters_by_stage(home: Path, churn: None) -> None:
    assert json_of(home, "models", "list", "--stage", "production") == {"models": []}
    ok(home, "models", "promote", "churn", "1", "production")
    found = json_of(home, "models", "list", "--stage", "production")["models"]
    assert [model["name"] for model in found] == ["churn"]
    assert "not one of" in fails(home, "models", "list", "--stage", "prod")


def test_models_show_has_the_model_and_its_versions(home: Path, churn: None) -> None:
    ok(home, "models", "promote", "churn", "1.1.0", "staging")
    data = json_of(home, "models", "show", "churn")
    assert data["name"] == "churn"
    assert data["policy"] is None
    versions = data["versions"]
    assert [(v["number"], v["semver"], v["stage"]) for v in versions] == [
        (1, "1.0.0", "none"),
        (2, "1.1.0", "staging"),
        (3, "1.2.0", "none"),
    ]
    assert versions[1]["metrics"] == {"f1": 0.86, "loss": 0.40}
    assert versions[1]["uri"] == "models:/churn/1.1.0"
    assert versions[1]["flavor"] == "sklearn"
    assert versions[1]["signed"] is False
    table = ok(home, "models", "show", "churn").stdout
    for text in ("model churn", "1.1.0", "staging", "sklearn", "0.86", "3 versions"):
        assert text in table


def test_the_stage_badge_is_coloured(home: Path, churn: None) -> None:
    ok(home, "models", "promote", "churn", "1", "production")
    output = ok(home, "models", "show", "churn", env={"FORCE_COLOR": "1"}).stdout
    assert re.search(r"\x1b\[[0-9;]*42m production ", output)  # on a green background


def test_an_unknown_model_or_version_is_one_error_line(home: Path, churn: None) -> None:
    assert "model 'fraud' does not exist" in fails(home, "models", "show", "fraud")
    message = fails(home, "models", "promote", "churn", "7", "staging")
    assert "has no version 7; the latest is version 3" in message


def test_models_versions_lists_oldest_first(home: Path, churn: None) -> None:
    data = json_of(home, "models", "versions", "churn")
    assert [v["semver"] for v in data["versions"]] == ["1.0.0", "1.1.0", "1.2.0"]
    assert "best_metrics" not in data
    table = ok(home, "models", "versions", "churn").stdout
    assert table.index("1.0.0") < table.index("1.2.0")


def test_models_versions_compare_names_the_best_per_metric(home: Path, churn: None) -> None:
    data = json_of(home, "models", "versions", "churn", "--compare")
    assert data["best_metrics"] == {"f1": [2], "loss": [2]}  # loss: lower is better
    output = ok(home, "models", "versions", "churn", "--compare", env={"FORCE_COLOR": "1"}).stdout
    best = set(re.findall(r"\x1b\[1;32m\s*([0-9.]+)", output))
    assert best == {"0.86", "0.4"}
    assert "loss ↓" in output


# -- stages, aliases, history, lineage ----------------------------------------------------


def test_promote_to_production_archives_the_previous_version(home: Path, churn: None) -> None:
    first = ok(home, "models", "promote", "churn", "1", "production").stdout
    assert "'churn' version 1 (1.0.0):" in first
    assert "none" in first
    assert "production" in first
    second = ok(home, "models", "promote", "churn", "2", "production", "-r", "better f1").stdout
    assert "version 1 of 'churn' archived" in second
    stages = [v["stage"] for v in json_of(home, "models", "versions", "churn")["versions"]]
    assert stages == ["archived", "production", "none"]
    again = ok(home, "models", "promote", "churn", "production", "production").stdout
    assert "already in production" in again


def test_history_records_stage_and_alias_changes(home: Path, churn: None) -> None:
    ok(home, "models", "promote", "churn", "1", "production", "--actor", "ana")
    ok(home, "models", "promote", "churn", "2", "production", "--reason", "better f1")
    ok(home, "models", "alias", "churn", "champion", "2")
    history = json_of(home, "models", "history", "churn")["history"]
    assert [(h["version"], h["kind"], h["from_value"], h["to_value"]) for h in history] == [
        (1, "stage", "none", "production"),
        (1, "stage", "production", "archived"),
        (2, "stage", "none", "production"),
        (2, "alias", None, "1.1.0"),
    ]
    assert history[0]["actor"] == "ana"
    assert history[2]["reason"] == "better f1"
    assert history[2]["replaced_version"] == 1
    table = ok(home, "models", "history", "churn").stdout
    assert "better f1" in table
    assert "@champion: — → 1.1.0" in table
    assert "replaced version 1" in table


def test_alias_set_move_and_delete(home: Path, churn: None) -> None:
    output = ok(home, "models", "alias", "churn", "champion", "1").stdout
    assert "models:/churn@champion → version 1 (1.0.0)" in output
    ok(home, "models", "alias", "churn", "@champion", "latest")
    assert json_of(home, "models", "show", "churn")["aliases"] == {"champion": 3}
    ok(home, "models", "alias", "churn", "champion", "--delete")
    assert json_of(home, "models", "show", "churn")["aliases"] == {}
    assert "alias 'production' would read as a stage" in fails(
        home, "models", "alias", "churn", "production", "1"
    )
    assert invoke(home, "models", "alias", "churn", "champion").exit_code == 2


def test_rollback_restores_the_replaced_production_version(home: Path, churn: None) -> None:
    assert "no production version" in fails(home, "models", "rollback", "churn")
    ok(home, "models", "promote", "churn", "1", "production")
    ok(home, "models", "promote", "churn", "3", "production")
    output = ok(home, "models", "rollback", "churn", "--reason", "f1 dropped").stdout
    assert "'churn' version 1 (1.0.0) is in production again (version 3 archived)" in output
    stages = [v["stage"] for v in json_of(home, "models", "versions", "churn")["versions"]]
    assert stages == ["production", "none", "archived"]
    assert json_of(home, "models", "history", "churn")["history"][-1]["reason"] == "f1 dropped"


def test_lineage_shows_the_run_datasets_and_parents(home: Path) -> None:
    with mlops.connect(home=str(home)) as ml:
        ml.tracking.set_experiment("churn")
        with ml.tracking.start_run("churn", name="train") as run:
            run.log_input(dataset_from_data("customers", FEATURES), context="training")
        ml.registry.register_model("churn", _fitted(), run=run.id)
        ml.registry.register_model("churn", _fitted(), parent_version=1)
    data = json_of(home, "models", "lineage", "churn", "1")
    assert data["run"]["id"] == run.id
    assert data["run"]["name"] == "train"
    assert [(d["name"], d["context"]) for d in data["datasets"]] == [("customers", "training")]
    assert json_of(home, "models", "lineage", "churn", "2")["parents"] == [
        {"version": 1, "semver": "1.0.0"}
    ]
    tree = ok(home, "models", "lineage", "churn", "1").stdout
    assert f"run {run.id[:8]} 'train'" in tree
    assert "customers [training]" in tree
    assert "parent: version 1 (1.0.0)" in ok(home, "models", "lineage", "churn", "latest").stdout


# -- policies and approvals ---------------------------------------------------------------


def test_policy_set_show_and_clear(home: Path, churn: None) -> None:
    assert "has no promotion policy" in ok(home, "models", "policy", "churn").stdout
    output = ok(
        home,
        *("models", "policy", "churn", "--min", "f1=0.82", "--min", "loss=0.45"),
        *("--max-regression", "f1=0.005", "--require-signature"),
    ).stdout
    assert "set promotion policy of 'churn'" in output
    assert "f1 ≥ 0.82" in output
    assert "loss ≤ 0.45" in output  # a loss: lower is better
    assert "f1 at most 0.005 worse than production" in output
    policy = json_of(home, "models", "policy", "churn")["policy"]
    assert policy["thresholds"] == {"f1": 0.82, "loss": 0.45}
    assert policy["max_regression"] == {"f1": 0.005}
    assert (policy["require_signature"], policy["require_approval"]) == (True, False)
    assert "f1 ≥ 0.82" in ok(home, "models", "policy", "churn").stdout
    assert json_of(home, "models", "show", "churn")["policy"] == policy
    ok(home, "models", "policy", "churn", "--clear")
    assert json_of(home, "models", "policy", "churn")["policy"] is None


def test_policy_options_replace_the_whole_policy(home: Path, churn: None) -> None:
    ok(home, "models", "policy", "churn", "--min", "f1=0.9", "--lower-is-better", "f1")
    ok(home, "models", "policy", "churn", "--require-approval")
    policy = json_of(home, "models", "policy", "churn")["policy"]
    assert policy["thresholds"] == {}
    assert policy["require_approval"] is True


def test_policy_option_errors_are_usage_errors(home: Path, churn: None) -> None:
    bad = invoke(home, "models", "policy", "churn", "--min", "f1")
    assert bad.exit_code == 2
    assert "METRIC=NUMBER" in bad.output
    assert invoke(home, "models", "policy", "churn", "--min", "f1=high").exit_code == 2
    assert invoke(home, "models", "policy", "churn", "--clear", "--min", "f1=1").exit_code == 2


def test_a_promotion_that_breaks_the_policy_is_one_error_line(home: Path, churn: None) -> None:
    ok(home, "models", "policy", "churn", "--min", "f1=0.85")
    message = fails(home, "models", "promote", "churn", "1", "production")
    assert "f1 = 0.8 breaks the rule f1 ≥ 0.85" in message
    ok(home, "models", "promote", "churn", "2", "production")
    ok(home, "models", "policy", "churn", "--max-regression", "loss=0.01")
    assert "worse than production version 1.1.0" in fails(
        home, "models", "promote", "churn", "3", "production"
    )


def test_the_approval_flow_needs_a_second_identity(home: Path, churn: None) -> None:
    ok(home, "models", "policy", "churn", "--require-approval")
    requested = ok(
        home, "models", "promote", "churn", "2", "production", "-r", "best f1",
        env={"MLOPS_USER": "ana"},
    ).stdout.strip()  # fmt: skip
    assert requested == (
        "approval requested: #1 (ask another identity to run `mlops models approve 1`)"
    )
    [pending] = json_of(home, "models", "approvals")["approvals"]
    assert (pending["id"], pending["model_name"], pending["semver"]) == (1, "churn", "1.1.0")
    assert (pending["status"], pending["requested_by"], pending["reason"]) == (
        "pending",
        "ana",
        "best f1",
    )
    assert json_of(home, "models", "versions", "churn")["versions"][1]["stage"] == "none"
    assert "churn 2 (1.1.0) → production" in ok(home, "models", "approvals", "churn").stdout

    message = fails(home, "models", "approve", "1", "--actor", "ana")
    assert "'ana' requested approval 1 and cannot approve it" in message

    output = ok(home, "models", "approve", "1", "--actor", "bob", "-c", "looks good").stdout
    assert "approved #1 by bob: 'churn' version 2 (1.1.0) is in production" in output
    assert json_of(home, "models", "show", "churn")["production_version"] == 2
    assert json_of(home, "models", "approvals")["approvals"] == []
    assert "no pending approval requests" in ok(home, "models", "approvals").stdout
    [decided] = json_of(home, "models", "approvals", "--all")["approvals"]
    assert (decided["status"], decided["decided_by"], decided["comment"]) == (
        "approved",
        "bob",
        "looks good",
    )
    assert "already approved" in fails(home, "models", "approve", "1", "--actor", "carol")


def test_a_rejected_request_leaves_the_version_where_it_was(home: Path, churn: None) -> None:
    ok(home, "models", "policy", "churn", "--require-approval")
    ok(home, "models", "promote", "churn", "3", "production", "--actor", "ana")
    output = ok(home, "models", "reject", "1", "--actor", "bob", "--comment", "not yet").stdout
    assert "rejected #1 by bob: 'churn' version 3 (1.2.0) stays out of production" in output
    assert json_of(home, "models", "show", "churn")["production_version"] is None
    assert json_of(home, "models", "approvals", "churn", "--all")["approvals"][0]["status"] == (
        "rejected"
    )
    assert "approval request 9 does not exist" in fails(home, "models", "reject", "9")


# -- MLflow import ------------------------------------------------------------------------


def _mlflow_folder(folder: Path) -> Path:
    """A minimal MLflow scikit-learn model folder, as `mlflow.sklearn.save_model` writes."""
    folder.mkdir()
    features = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    model = LogisticRegression().fit(features, [0, 0, 1, 1])
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    (folder / "MLmodel").write_text(
        "artifact_path: model\n"
        "flavors:\n"
        "  python_function:\n"
        "    loader_module: mlflow.sklearn\n"
        "    model_path: model.pkl\n"
        "    python_version: 3.11.9\n"
        "  sklearn:\n"
        "    pickled_model: model.pkl\n"
        "    serialization_format: pickle\n"
        "    sklearn_version: 1.5.0\n"
        "run_id: 0123456789abcdef\n"
    )
    (folder / "requirements.txt").write_text("mlflow==2.16.0\nscikit-learn==1.5.0\n")
    return folder


def test_import_mlflow_registers_the_folder(home: Path, tmp_path: Path) -> None:
    source = _mlflow_folder(tmp_path / "mlflow-model")
    output = ok(
        home, "models", "import-mlflow", str(source), "--name", "legacy", "--metric", "f1=0.7"
    ).stdout
    assert "registered 'legacy' version 1 (1.0.0) from MLflow model" in output
    [version] = json_of(home, "models", "versions", "legacy")["versions"]
    assert (version["flavor"], version["metrics"]) == ("sklearn", {"f1": 0.7})
    with mlops.connect(home=str(home)) as ml:
        loaded = ml.registry.load_model("models:/legacy/1")
        predictions = loaded.predict(np.array([[0.0, 1.0], [3.0, 0.0]]))
    assert list(np.asarray(predictions["predictions"])) == [0, 1]


def test_import_mlflow_of_a_folder_without_mlmodel_fails(home: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    message = fails(home, "models", "import-mlflow", str(tmp_path / "empty"), "--name", "x")
    assert "nor an MLflow model folder" in message
    missing = invoke(home, "models", "import-mlflow", str(tmp_path / "nope"), "--name", "x")
    assert missing.exit_code == 2


# -- keys and signatures ------------------------------------------------------------------


def test_keys_generate_writes_a_pair_in_the_home_by_default(home: Path) -> None:
    output = ok(home, "keys", "generate").stdout
    private, public = (home / "keys" / "mlops.key"), (home / "keys" / "mlops.pub")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert key_fingerprint(public) in output
    assert f"mlops --home {home} keys trust {public.resolve()}" in output
    assert "already exists" in fails(home, "keys", "generate")


def test_signed_versions_show_as_trusted_once_the_key_is(home: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    output = ok(home, "keys", "generate", "--dir", str(keys), "--name", "release").stdout
    assert str((keys / "release.pub").resolve()) in output
    with mlops.connect(home=str(home)) as ml:
        ml.registry.register_model("churn", _fitted(), metrics={"f1": 0.8})
        ml.registry.register_model("churn", _fitted(), sign_with=keys / "release.key")
    unsigned, signed = json_of(home, "models", "versions", "churn")["versions"]
    assert (unsigned["signed"], signed["signed"]) == (False, True)
    assert signed["signed_by"] == key_fingerprint(keys / "release.pub")
    assert signed["signature_trusted"] is False
    assert "untrusted" in ok(home, "models", "show", "churn").stdout

    trusted = ok(home, "keys", "trust", str(keys / "release.pub"), "--name", "ci").stdout
    assert f"trusted key {key_fingerprint(keys / 'release.pub')} (ci)" in trusted
    assert "✓ trusted" in ok(home, "models", "show", "churn").stdout
    assert json_of(home, "models", "show", "churn")["versions"][1]["signature_trusted"] is True

    ok(home, "models", "policy", "churn", "--require-signature")
    assert "is not signed" in fails(home, "models", "promote", "churn", "1", "production")
    ok(home, "models", "promote", "churn", "2", "production")


def test_keys_trust_of_a_missing_or_private_key_fails(home: Path, tmp_path: Path) -> None:
    assert "does not exist" in fails(home, "keys", "trust", str(tmp_path / "none.pub"))
    ok(home, "keys", "generate", "--dir", str(tmp_path))
    assert "holds a private key" in fails(home, "keys", "trust", str(tmp_path / "mlops.key"))
