"""Data validation: every rule of the ``validate`` section checked, every violation reported.

The checks never stop at the first failure: a report lists each rule with its outcome,
so one run tells everything that needs fixing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import InvalidInput
from mlops.pipelines.training._config_sections import ColumnRules, ValidateConfig

__all__ = ["Check", "ValidationFailed", "ValidationReport", "validate_frame"]

_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Check:
    """One rule applied: ``rule`` ("min_rows", "dtype", "min", …), the column it is about
    (None for table rules), whether it passed, and what was found."""

    rule: str
    column: str | None
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "column": self.column,
            "passed": self.passed,
            "message": self.message,
        }


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of every validation rule on one dataset."""

    rows: int
    columns: tuple[str, ...]
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def violations(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": self.rows,
            "columns": list(self.columns),
            "rules_checked": len(self.checks),
            "violations": len(self.violations),
            "checks": [check.to_dict() for check in self.checks],
        }

    def summary(self) -> str:
        """Every violated rule, one per line (or a one-line success)."""
        if self.passed:
            return f"data validation passed: {len(self.checks)} rules on {self.rows} rows"
        lines = [
            f"data validation failed: {len(self.violations)} of {len(self.checks)} rules "
            f"violated on {self.rows} rows (the report is the step's validation_report.json):"
        ]
        lines += [f"  - {check.message}" for check in self.violations]
        return "\n".join(lines)


class ValidationFailed(InvalidInput):
    """The data broke validation rules; ``report`` holds every check."""

    code = "validation_failed"

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across executor processes
        return (type(self), (self.report,))


def validate_frame(frame: Any, config: ValidateConfig, label: str | None) -> ValidationReport:
    """Check ``frame`` against every rule; the label column is always required and,
    unless its own rules say otherwise, must have no nulls."""
    columns = [str(column) for column in frame.columns]
    rules = dict(config.columns)
    if label is not None and label not in rules:
        rules[label] = ColumnRules(max_null_fraction=0.0)
    elif label is not None and rules[label].max_null_fraction is None:
        rules[label] = rules[label].model_copy(update={"max_null_fraction": 0.0, "required": True})
    checks = list(_table_checks(frame, config, columns, rules))
    for column in columns:
        own = rules.get(column)
        if own is None and not config.allow_extra_columns and column not in config.required_columns:
            checks.append(
                Check(
                    "schema",
                    column,
                    False,
                    f"column {column!r} is not in the schema (allow_extra_columns is false); "
                    "add it under validate.columns or drop it from the data",
                )
            )
        null_limit = own.max_null_fraction if own is not None else None
        if null_limit is None:
            null_limit = config.max_null_fraction
        if null_limit is not None:
            checks.append(_nulls(frame[column], column, null_limit))
        if own is not None:
            checks.extend(_column_checks(frame[column], column, own))
    return ValidationReport(len(frame), tuple(columns), tuple(checks))


def _table_checks(
    frame: Any, config: ValidateConfig, columns: list[str], rules: dict[str, ColumnRules]
) -> Iterator[Check]:
    rows = len(frame)
    yield Check(
        "min_rows",
        None,
        rows >= config.min_rows,
        f"{rows} rows, at least {config.min_rows} required",
    )
    required = dict.fromkeys(config.required_columns)
    required.update({name: None for name, rule in rules.items() if rule.required})
    for name in required:
        present = name in columns
        yield Check(
            "required_column",
            name,
            present,
            f"column {name!r} is present" if present else f"column {name!r} is missing",
        )


def _nulls(series: Any, column: str, limit: float) -> Check:
    fraction = float(series.isna().mean()) if len(series) else 0.0
    return Check(
        "max_null_fraction",
        column,
        fraction <= limit,
        f"column {column!r}: {fraction:.1%} nulls ({int(series.isna().sum())} rows), "
        f"at most {limit:.1%} allowed",
    )


def _column_checks(series: Any, column: str, rules: ColumnRules) -> Iterator[Check]:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    values = series.dropna()
    if rules.dtype is not None:
        found = _dtype_name(series)
        ok = _dtype_matches(series, rules.dtype)
        yield Check(
            "dtype",
            column,
            ok,
            f"column {column!r}: dtype {found}, expected {rules.dtype}",
        )
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    for rule, bound in (("min", rules.min), ("max", rules.max)):
        if bound is None:
            continue
        if not numeric:
            yield Check(
                rule,
                column,
                False,
                f"column {column!r}: {rule} {bound:g} needs numbers, but its dtype is "
                f"{_dtype_name(series)}",
            )
            continue
        bad = values[values < bound] if rule == "min" else values[values > bound]
        worst = bad.min() if rule == "min" else bad.max()
        side = "below min" if rule == "min" else "above max"
        yield Check(
            rule,
            column,
            bad.empty,
            f"column {column!r}: no values {side} {bound:g}"
            if bad.empty
            else f"column {column!r}: {len(bad)} values {side} {bound:g} "
            f"({'lowest' if rule == 'min' else 'highest'} {_plain(worst)!r})",
        )
    if rules.allowed is not None:
        outside = values[~values.isin(rules.allowed)]
        if outside.empty:
            message = f"column {column!r}: every value is allowed"
        else:
            counts = outside.value_counts().head(_EXAMPLES)
            examples = ", ".join(f"{_plain(v)!r} ({int(n)} rows)" for v, n in counts.items())
            message = (
                f"column {column!r}: {len(outside)} values are not allowed ({examples}); "
                f"allowed: {', '.join(map(repr, rules.allowed))}"
            )
        yield Check("allowed", column, outside.empty, message)


def _dtype_matches(series: Any, wanted: str) -> bool:
    import pandas as pd

    types = pd.api.types
    if wanted == "boolean":
        return bool(types.is_bool_dtype(series))
    if wanted == "datetime":
        return bool(types.is_datetime64_any_dtype(series))
    if wanted == "string":
        return bool(types.is_string_dtype(series)) and bool(
            series.dropna().map(lambda v: isinstance(v, str)).all()
        )
    if not types.is_numeric_dtype(series) or types.is_bool_dtype(series):
        return False
    if wanted == "integer":
        if types.is_integer_dtype(series):
            return True
        values = series.dropna()  # integers with nulls are read as floats
        return bool(types.is_float_dtype(series) and (values == values.round()).all())
    if wanted == "float":
        return bool(types.is_float_dtype(series))
    return True  # number


def _dtype_name(series: Any) -> str:
    import pandas as pd

    types = pd.api.types
    if types.is_bool_dtype(series):
        return "boolean"
    if types.is_integer_dtype(series):
        return "integer"
    if types.is_float_dtype(series):
        return "float"
    if types.is_datetime64_any_dtype(series):
        return "datetime"
    if types.is_string_dtype(series):
        return "string"
    return str(series.dtype)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
