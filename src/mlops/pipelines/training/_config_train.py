"""The ``train`` section: candidates, their search spaces, the budget and the HPO setup.

train:
  folds: 5
  trials: 20            # and/or timeout: 10m
  candidates:
    - algorithm: logistic_regression
      search:
        C: {type: log, low: 0.001, high: 100}
    - algorithm: random_forest
      params: {n_estimators: 100}
      search:
        max_depth: {type: int, low: 2, high: 12}
        max_features: [sqrt, log2]        # shorthand for a categorical
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from mlops.errors import InvalidInput
from mlops.pipelines._step import parse_duration
from mlops.pipelines.training._config_sections import Strict
from mlops.pipelines.training._errors import ConfigProblem

__all__ = [
    "Candidate",
    "CategoricalSpace",
    "FloatSpace",
    "HpoConfig",
    "IntSpace",
    "LogSpace",
    "Space",
    "TrainConfig",
    "space_size",
]

Choice = str | int | float | bool | None


class IntSpace(Strict):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(default=1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _order(self) -> IntSpace:
        _check_order(self.low, self.high)
        if self.log and self.low < 1:
            raise ConfigProblem("a log-scaled int range needs low >= 1")
        return self


class FloatSpace(Strict):
    type: Literal["float"]
    low: float
    high: float
    step: float | None = Field(default=None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _order(self) -> FloatSpace:
        _check_order(self.low, self.high)
        if self.log and self.low <= 0:
            raise ConfigProblem("a log-scaled float range needs low > 0")
        return self


class LogSpace(Strict):
    """A float searched on a log scale (the same as ``{type: float, log: true}``)."""

    type: Literal["log"]
    low: float = Field(gt=0)
    high: float = Field(gt=0)

    @model_validator(mode="after")
    def _order(self) -> LogSpace:
        _check_order(self.low, self.high)
        return self


class CategoricalSpace(Strict):
    type: Literal["categorical"]
    choices: list[Choice] = Field(min_length=1)


Space = Annotated[IntSpace | FloatSpace | LogSpace | CategoricalSpace, Field(discriminator="type")]


def _check_order(low: float, high: float) -> None:
    if low > high:
        raise ConfigProblem(f"low ({low}) is above high ({high})")


class Candidate(Strict):
    """One algorithm with fixed ``params`` and a ``search`` space over others."""

    algorithm: str
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, Space] = Field(default_factory=dict)

    @field_validator("search", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: {"type": "categorical", "choices": item} if isinstance(item, list) else item
                for key, item in value.items()
            }
        return value

    @model_validator(mode="after")
    def _no_overlap(self) -> Candidate:
        both = sorted(set(self.params) & set(self.search))
        if both:
            raise ConfigProblem(
                f"{', '.join(both)} is both fixed in params and searched; keep one", at=("params",)
            )
        return self

    @property
    def label(self) -> str:
        return self.name or self.algorithm


class HpoConfig(Strict):
    """Where the study lives: in memory, or in the metadata database shared by workers."""

    workers: int = Field(default=1, ge=1, le=256)
    storage: Literal["memory", "database"] = "memory"

    @model_validator(mode="after")
    def _shared(self) -> HpoConfig:
        if self.workers > 1 and self.storage != "database":
            raise ConfigProblem(
                f"{self.workers} workers share one study through the database; "
                "set storage: database",
                at=("storage",),
            )
        return self


class TrainConfig(Strict):
    """The search: candidates, k-fold CV, a budget of trials and/or time, pruning."""

    candidates: list[Candidate] = Field(min_length=1)
    folds: int = Field(default=5, ge=2, le=100)
    trials: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    prune: bool = True
    log_trials: bool = True
    hpo: HpoConfig = Field(default_factory=HpoConfig)

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        try:
            return parse_duration("timeout", value)
        except InvalidInput as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="after")
    def _unique_names(self) -> TrainConfig:
        seen: dict[str, int] = {}
        for index, candidate in enumerate(self.candidates):
            if candidate.label in seen:
                raise ConfigProblem(
                    f"two candidates are called {candidate.label!r} (candidates"
                    f"[{seen[candidate.label]}] too); give one a distinct name",
                    at=("candidates", index, "name"),
                )
            seen[candidate.label] = index
        return self

    @property
    def budget(self) -> int | None:
        """The number of trials: as configured, 20 without trials or timeout, and never
        more than the distinct settings a finite space holds."""
        trials = self.trials if self.trials is not None or self.timeout is not None else 20
        size = space_size(self.candidates)
        if size is not None:
            return size if trials is None else min(trials, size)
        return trials


def space_size(candidates: list[Candidate]) -> int | None:
    """How many distinct settings the candidates' spaces hold; None when unbounded."""
    total = 0
    for candidate in candidates:
        size = 1
        for space in candidate.search.values():
            if isinstance(space, CategoricalSpace):
                size *= len(space.choices)
            elif isinstance(space, IntSpace):
                size *= (space.high - space.low) // space.step + 1
            elif isinstance(space, FloatSpace) and space.step is not None and not space.log:
                size *= math.floor((space.high - space.low) / space.step + 1e-9) + 1
            else:
                return None
        total += size
    return total
