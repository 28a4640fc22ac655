"""Data validation: every rule is checked and every violation reported, not just the first."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mlops.pipelines.training import ValidationFailed, ValidationReport
from mlops.pipelines.training._config_sections import ValidateConfig
from mlops.pipelines.training._validation import validate_frame

pd = pytest.importorskip("pandas")


def _frame() -> object:
    return pd.DataFrame(
        {
            "age": [25, 40, -3, 61, 130],
            "income": [10.0, np.nan, np.nan, 30.0, 25.0],
            "plan": ["basic", "pro", "gold", "pro", "platinum"],
            "zip": ["1000", "2000", "3000", "4000", "5000"],
            "churned": [0, 1, 0, np.nan, 1],
        }
    )


def test_a_clean_frame_passes_every_rule() -> None:
    config = ValidateConfig.model_validate(
        {
            "min_rows": 2,
            "columns": {
                "plan": {"dtype": "string", "allowed": ["basic", "pro", "gold", "platinum"]}
            },
        }
    )
    report = validate_frame(_frame().dropna(), config, "churned")  # type: ignore[attr-defined]
    assert report.passed
    assert report.violations == ()
    assert report.summary() == f"data validation passed: {len(report.checks)} rules on 2 rows"


def test_every_violated_rule_is_reported() -> None:
    config = ValidateConfig.model_validate(
        {
            "min_rows": 10,
            "required_columns": ["age", "tenure"],
            "max_null_fraction": 0.3,
            "allow_extra_columns": False,
            "columns": {
                "age": {"dtype": "integer", "min": 0, "max": 120},
                "income": {"max_null_fraction": 0.1, "min": 0},
                "plan": {"allowed": ["basic", "pro"]},
                "churned": {"allowed": [0, 1]},
                "signup": {"required": False, "dtype": "datetime"},
            },
        }
    )

    report = validate_frame(_frame(), config, "churned")

    failed = {(check.rule, check.column) for check in report.violations}
    assert failed == {
        ("min_rows", None),
        ("required_column", "tenure"),
        ("min", "age"),
        ("max", "age"),
        ("max_null_fraction", "income"),
        ("allowed", "plan"),
        ("max_null_fraction", "churned"),  # the label may hold no nulls
        ("schema", "zip"),
    }
    messages = [check.message for check in report.violations]
    assert "5 rows, at least 10 required" in messages
    assert "column 'age': 1 values below min 0 (lowest -3)" in messages
    assert "column 'age': 1 values above max 120 (highest 130)" in messages
    assert "column 'income': 40.0% nulls (2 rows), at most 10.0% allowed" in messages
    assert any(
        m.startswith("column 'plan': 2 values are not allowed ('gold' (1 rows)") for m in messages
    )
    summary = report.summary()
    assert summary.startswith(f"data validation failed: 8 of {len(report.checks)} rules violated")
    assert all(f"  - {message}" in summary for message in messages)
    assert report.to_dict()["violations"] == 8


def test_dtype_rules_accept_integers_read_as_floats_because_of_nulls() -> None:
    frame = pd.DataFrame({"n": [1.0, None, 3.0], "x": [1.5, 2.0, None], "s": ["a", "b", None]})
    config = ValidateConfig.model_validate(
        {
            "columns": {
                "n": {"dtype": "integer"},
                "x": {"dtype": "integer"},
                "s": {"dtype": "number"},
            }
        }
    )
    report = validate_frame(frame, config, None)
    assert {c.column for c in report.violations} == {"x", "s"}
    assert "column 's': dtype string, expected number" in report.summary()


def test_the_failure_carries_its_report_across_processes() -> None:
    report = validate_frame(_frame(), ValidateConfig.model_validate({"min_rows": 100}), None)
    error = ValidationFailed(report)
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy.report, ValidationReport)
    assert str(copy) == str(error) == report.summary()
