"""PipelineConfig: loading YAML and dicts, strict checks, and errors that say what to change."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops.errors import InvalidInput
from mlops.pipelines.training import STAGES, PipelineConfig, sample_config_path

from .conftest import sample, small_churn


def _error(config: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as caught:
        PipelineConfig.from_dict(config)
    return str(caught.value)


def _changed(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    config = sample()
    change(config)
    return config


def test_the_sample_config_builds_a_pipeline_of_every_stage() -> None:
    config = PipelineConfig.from_file(sample_config_path())

    pipeline = config.pipeline()

    assert pipeline.name == config.name == "churn-training"
    assert pipeline.order == STAGES
    assert config.primary_metric == "roc_auc"
    # Params are plain data: they pickle the same in every process, so caching holds.
    json.dumps(dict(pipeline.params))


def test_optional_stages_exist_only_when_configured() -> None:
    config = PipelineConfig.from_dict(small_churn())
    assert config.pipeline().order == STAGES[:7]

    del_register = small_churn()
    del del_register["register"]
    assert PipelineConfig.from_dict(del_register).pipeline().order == STAGES[:6]

    monitored = small_churn(monitor={"endpoint": "churn", "rules": sample()["monitor"]["rules"]})
    assert PipelineConfig.from_dict(monitored).pipeline().order == (*STAGES[:7], "monitor")


def test_to_dict_round_trips() -> None:
    config = PipelineConfig.from_file(sample_config_path())
    assert PipelineConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["train"]["candidates"][1].update(paramz={}),
            "train.candidates[1].paramz: unknown key 'paramz'; the keys allowed in "
            "train.candidates[1] are: algorithm, name, params, search",
        ),
        (
            lambda c: c.update(validatez={}),
            "validatez: unknown key 'validatez'; the keys allowed in the top level are: data, "
            "deploy, evaluate, features, label, metric, monitor, name, positive_label, "
            "preprocess, register, seed, task, train, validate",
        ),
        (
            lambda c: c["train"]["candidates"][0]["search"]["C"].update(lowz=1),
            "train.candidates[0].search.C.lowz: unknown key 'lowz'; the keys allowed in "
            "train.candidates[0].search.C are: high, low, type",
        ),
        (
            lambda c: c["validate"]["columns"]["contract"].update(allowd=["x"]),
            "validate.columns.contract.allowd: unknown key 'allowd'; the keys allowed in "
            "validate.columns.contract are: allowed, dtype, max, max_null_fraction, min, required",
        ),
        (
            lambda c: c["deploy"].update(stepz=[1]),
            "deploy.stepz: unknown key 'stepz'; the keys allowed in deploy are: endpoint, "
            "failure_limit, gate, interval_seconds, max_hold_steps, on_inconclusive, "
            "steps_percent, strategy",
        ),
        (
            lambda c: c["deploy"]["gate"].update(max_errors=1),
            "deploy.gate.max_errors: unknown key 'max_errors'; the keys allowed in deploy.gate",
        ),
        (
            lambda c: c["monitor"]["rules"][1].update(thresold=1),
            "monitor.rules[1].thresold: unknown key 'thresold'; the keys allowed in "
            "monitor.rules[1] are: annotations, channels,",
        ),
    ],
)
def test_an_unknown_key_is_named_with_its_place_and_the_allowed_keys(
    change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    assert expected in _error(_changed(change))


def test_a_hyperparameter_the_estimator_lacks_is_an_unknown_key() -> None:
    message = _error(
        _changed(lambda c: c["train"]["candidates"][1]["search"].update(max_dept=[2, 3]))
    )
    assert "train.candidates[1].search.max_dept: unknown key 'max_dept'" in message
    assert "max_depth" in message  # among the allowed keys: the random forest's params


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["train"].update(trials="many"),
            "train.trials: input should be a valid integer, got 'many'",
        ),
        (lambda c: c.update(seed=1.5), "seed: input should be a valid integer, got 1.5"),
        (
            lambda c: c.update(task="clasification"),
            "task: input should be 'classification', 'regression' or 'anomaly_detection', "
            "got 'clasification'",
        ),
        (
            lambda c: c["train"].update(timeout="forever"),
            "train.timeout: timeout 'forever' is not a duration",
        ),
        (
            lambda c: c["train"].update(candidates={"algorithm": "ridge"}),
            "train.candidates: expected a list",
        ),
        (
            lambda c: c["validate"]["columns"]["churned"].update(allowed=[[0]]),
            "validate.columns.churned.allowed[0]: expected a string, an integer, a number or a "
            "boolean, got [0]",
        ),
        (
            lambda c: c["train"]["candidates"][0]["search"]["C"].pop("type"),
            "train.candidates[0].search.C: give a 'type', one of int, float, log, categorical",
        ),
        (
            lambda c: c["train"]["candidates"][0]["search"]["C"].update(type="logg"),
            "train.candidates[0].search.C.type: 'logg' is not one of int, float, log, categorical",
        ),
        (lambda c: c.pop("train"), "train: required, but missing"),
        (
            lambda c: c["monitor"]["rules"][0].pop("threshold"),
            "monitor.rules[0].threshold: required, but missing",
        ),
        (
            lambda c: c["train"]["candidates"][0].update(algorithm="svm"),
            "train.candidates[0].algorithm: 'svm' is not an algorithm for classification; use "
            "one of decision_tree, extra_trees,",
        ),
        (
            lambda c: c.update(metric="rmse"),
            "metric: 'rmse' is not a classification metric; use one of roc_auc,",
        ),
        (
            lambda c: c["deploy"].update(steps_percent=[50, 10]),
            "deploy: the canary strategy: canary steps must grow and end at 100",
        ),
        (
            lambda c: c["monitor"]["rules"][1].update(signal="vibes"),
            "monitor.rules[1]: rule 'churn-drift': signal 'vibes' is unknown",
        ),
        (
            lambda c: c["data"].update(path="churn.csv"),
            "data: give exactly one data source: path",
        ),
        (
            lambda c: c["train"].update(hpo={"workers": 2}),
            "train.hpo.storage: 2 workers share one study through the database; set storage: "
            "database",
        ),
        (lambda c: c.pop("register"), "deploy: deploy needs a register section"),
        (
            lambda c: c["train"]["candidates"].append({"algorithm": "lightgbm"}),
            "train.candidates[3].name: two candidates are called 'lightgbm'",
        ),
    ],
)
def test_wrong_values_say_where_and_what_is_expected(
    change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    assert expected in _error(_changed(change))


def test_every_problem_is_listed_at_once() -> None:
    config = sample()
    config["seed"] = "x"
    config["data"]["sep"] = ";"
    config["train"]["trials"] = 0

    message = _error(config)

    assert message.startswith("invalid training pipeline config (3 problems):")
    assert "  - seed: input should be a valid integer" in message
    assert "  - data.sep: unknown key 'sep'" in message
    assert "  - train.trials: input should be greater than or equal to 1" in message


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("__import__('os').system('ls')", "is not allowed"),
        ("tenure_months.max()", "is not allowed"),
        ("@limit * tenure_months", "'@' (local variables) and backticks are not allowed"),
        ("[tenure_months]", "lists is not allowed"),
        ("tenure_months + 'a'", "only numbers and True/False may appear as constants"),
        ("churned * 2", "uses the label 'churned'"),
        ("tenure_months +", "is not a valid expression"),
    ],
)
def test_feature_expressions_are_column_arithmetic_only(expr: str, expected: str) -> None:
    message = _error(_changed(lambda c: c["features"].append({"name": "bad", "expr": expr})))
    assert "features[2].expr: " in message
    assert expected in message


def test_anomaly_detection_without_labels_cannot_search_or_compare() -> None:
    config: dict[str, Any] = {
        "name": "detect",
        "task": "anomaly_detection",
        "data": {"path": "events.csv"},
        "train": {
            "candidates": [{"algorithm": "isolation_forest", "search": {"n_estimators": [50, 100]}}]
        },
    }
    assert "train.candidates: without a label column nothing can score" in _error(config)
    config["train"]["candidates"][0].pop("search")
    config["metric"] = "roc_auc"
    assert "metric: an anomaly detector without a label column can only report" in _error(config)
    config.pop("metric")
    assert PipelineConfig.from_dict(config).pipeline().order == STAGES[:6]


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ntask: [classification\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"broken\.yaml is not valid YAML at line 3"):
        PipelineConfig.from_file(path)
    with pytest.raises(InvalidInput, match="a pipeline config is a mapping"):
        PipelineConfig.from_yaml("- just\n- a list\n")


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"pipeline config .*nope\.yaml does not exist"):
        PipelineConfig.from_file(tmp_path / "nope.yaml")


def test_relative_data_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    config = small_churn(data={"path": "data/customers.csv", "format": "csv"})
    (folder / "churn.yaml").write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML

    from_file = PipelineConfig.from_file(folder / "churn.yaml")
    assert from_file.data.path == str(folder.resolve() / "data" / "customers.csv")

    from_dict = PipelineConfig.from_dict(config, base_dir=tmp_path)
    assert from_dict.data.path == str(tmp_path.resolve() / "data" / "customers.csv")

    sqlite = small_churn(data={"sql": {"url": "sqlite:///crm.db", "query": "select 1"}})
    resolved = PipelineConfig.from_dict(sqlite, base_dir=folder)
    assert resolved.data.sql is not None
    assert resolved.data.sql.url == f"sqlite:///{folder.resolve() / 'crm.db'}"


def test_the_trial_budget_never_exceeds_a_finite_space() -> None:
    config = small_churn()
    config["train"].update(
        trials=50,
        candidates=[
            {"algorithm": "logistic_regression", "search": {"C": [0.1, 1.0, 10.0]}},
            {
                "algorithm": "decision_tree",
                "search": {"max_depth": {"type": "int", "low": 2, "high": 5}},
            },
        ],
    )
    assert PipelineConfig.from_dict(config).train.budget == 3 + 4
    config["train"]["candidates"][0]["search"]["C"] = {"type": "log", "low": 0.1, "high": 10}
    assert PipelineConfig.from_dict(config).train.budget == 50
    config["train"].pop("trials")
    assert PipelineConfig.from_dict(config).train.budget == 20
    config["train"]["timeout"] = "2m"
    parsed = PipelineConfig.from_dict(config).train
    assert (parsed.budget, parsed.timeout) == (None, 120.0)
