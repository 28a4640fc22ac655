"""Config sections for data, validation, preprocessing, features, evaluation, registration.

Each section is a strict pydantic model: unknown keys and wrong types are errors, never
silently ignored. Steps receive a section as a plain dict (``model_dump(mode="json")``)
and read it back with ``Section.model_validate``, so step params pickle the same in
every process and the step cache stays stable.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlops.pipelines.training._errors import ConfigProblem
from mlops.pipelines.training._expressions import expression_columns

__all__ = [
    "ColumnRules",
    "DataConfig",
    "DerivedFeature",
    "EvaluateConfig",
    "PreprocessConfig",
    "RegisterConfig",
    "SliceSpec",
    "SqlSource",
    "Strict",
    "ValidateConfig",
]

Scalar = str | int | float | bool
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Strict(BaseModel):
    """No unknown keys, no type coercion (an int is still a valid float), immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class SqlSource(Strict):
    """A query through SQLAlchemy; ``${NAME}`` in the URL is read from the environment
    when the step runs, so passwords stay out of the config and the tracked params."""

    url: str = Field(min_length=1)
    query: str = Field(min_length=1)


class DataConfig(Strict):
    """Where the data comes from: exactly one of ``path``, ``bundled`` and ``sql``."""

    path: str | None = None
    bundled: Literal["churn"] | None = None
    sql: SqlSource | None = None
    format: Literal["csv", "parquet"] | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        given = [key for key in ("path", "bundled", "sql") if getattr(self, key) is not None]
        if len(given) != 1:
            found = f"got {', '.join(given)}" if given else "got none"
            raise ConfigProblem(
                "give exactly one data source: path (a CSV or Parquet file), bundled "
                f"(a dataset shipped with mlops: churn) or sql ({{url, query}}); {found}"
            )
        if self.format is not None and self.path is None:
            raise ConfigProblem("format applies to a file given as path", at=("format",))
        return self


class ColumnRules(Strict):
    """Checks on one column; a column named here must exist unless ``required: false``."""

    dtype: Literal["integer", "float", "number", "string", "boolean", "datetime"] | None = None
    required: bool = True
    min: float | None = None
    max: float | None = None
    max_null_fraction: float | None = Field(default=None, ge=0, le=1)
    allowed: list[Scalar] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _range(self) -> ColumnRules:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ConfigProblem(f"min ({self.min}) is above max ({self.max})")
        return self


class ValidateConfig(Strict):
    """Rules the data must pass before anything is trained on it."""

    min_rows: int = Field(default=1, ge=0)
    required_columns: list[str] = Field(default_factory=list)
    max_null_fraction: float | None = Field(default=None, ge=0, le=1)
    columns: dict[str, ColumnRules] = Field(default_factory=dict)
    allow_extra_columns: bool = True


class NumericConfig(Strict):
    columns: list[str] | None = None
    impute: Literal["mean", "median", "most_frequent", "constant", "none"] = "median"
    fill_value: float = 0.0
    scale: Literal["standard", "minmax", "robust", "none"] = "standard"


class CategoricalConfig(Strict):
    columns: list[str] | None = None
    impute: Literal["most_frequent", "constant", "none"] = "constant"
    fill_value: str = "missing"
    encode: Literal["onehot", "ordinal"] = "onehot"
    max_categories: int | None = Field(default=None, ge=2)


class PreprocessConfig(Strict):
    """The hold-out split, and how columns are imputed, scaled and encoded.

    Numeric columns are those with a numeric dtype unless listed; the rest (strings,
    booleans, categories) are categorical.
    """

    holdout: float = Field(default=0.2, gt=0, lt=1)
    stratify: bool | None = None
    drop: list[str] = Field(default_factory=list)
    numeric: NumericConfig = Field(default_factory=NumericConfig)
    categorical: CategoricalConfig = Field(default_factory=CategoricalConfig)

    @model_validator(mode="after")
    def _disjoint(self) -> PreprocessConfig:
        both = set(self.numeric.columns or ()) & set(self.categorical.columns or ())
        if both:
            raise ConfigProblem(
                f"columns {sorted(both)} are listed as both numeric and categorical; "
                "list each column once",
            )
        dropped = (set(self.numeric.columns or ()) | set(self.categorical.columns or ())) & set(
            self.drop
        )
        if dropped:
            raise ConfigProblem(f"columns {sorted(dropped)} are both dropped and listed")
        return self


class DerivedFeature(Strict):
    """A column computed from others, e.g. ``monthly_charges / (tenure_months + 1)``."""

    name: str
    expr: str

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not _IDENTIFIER.match(name):
            raise ValueError(f"{name!r} is not a column name; use letters, digits and '_'")
        return name

    @field_validator("expr")
    @classmethod
    def _expression(cls, expr: str) -> str:
        expression_columns(expr)
        return expr

    @property
    def columns(self) -> list[str]:
        return expression_columns(self.expr)


class SliceSpec(Strict):
    """Metrics per value of ``column``; a numeric column is cut into ``bins`` quantile
    bins (default 4), or at the given edges."""

    column: str
    bins: int | list[float] | None = None

    @field_validator("bins")
    @classmethod
    def _bins(cls, bins: int | list[float] | None) -> int | list[float] | None:
        if isinstance(bins, int) and bins < 2:
            raise ValueError("bins must be at least 2")
        if isinstance(bins, list) and (len(bins) < 2 or bins != sorted(bins)):
            raise ValueError("bin edges must be at least two increasing numbers")
        return bins


class EvaluateConfig(Strict):
    """Hold-out metrics, slices, and the champion the challenger must beat."""

    slices: list[SliceSpec] = Field(default_factory=list)
    min_improvement: float = Field(default=0.0, ge=0)
    compare_with: str = "production"

    @field_validator("slices", mode="before")
    @classmethod
    def _slice_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"column": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("compare_with")
    @classmethod
    def _reference(cls, value: str) -> str:
        stages = {"staging", "production"}
        if value.lower() not in stages and not (value.startswith("@") and len(value) > 1):
            raise ValueError(
                f"{value!r} names no champion; use a stage (production, staging) or an "
                "alias such as '@champion'"
            )
        return value.lower() if value.lower() in stages else value


class RegisterConfig(Strict):
    """Register the challenger when it wins; optionally promote it and set an alias."""

    model: str = Field(min_length=1)
    stage: Literal["staging", "production"] | None = None
    alias: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
