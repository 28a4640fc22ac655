"""What the training steps hand each other: plain, picklable records.

Frames and fitted models pickle with cloudpickle like any other step output, so a step
may run in another thread, process or machine than the step before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.tracking import Dataset

__all__ = ["Evaluation", "LoadedData", "PreparedData", "Registration", "Rollout", "TrainedModel"]


@dataclass(frozen=True)
class LoadedData:
    """The ``ingest`` step's output: the data and the dataset version it was recorded as."""

    frame: Any
    dataset: Dataset
    source: str


@dataclass(frozen=True)
class PreparedData:
    """The training and hold-out rows, the column roles, and the (unfitted) transformer
    that turns raw rows into model input: derived features, imputation, scaling,
    encoding. ``preprocess`` makes it; ``features`` adds the derived columns."""

    task: str
    label: str | None
    train: Any
    holdout: Any
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    transformer: Any
    dataset: Dataset
    preprocessing: dict[str, Any] = field(default_factory=dict)
    derived: tuple[tuple[str, str], ...] = ()

    @property
    def inputs(self) -> list[str]:
        """The raw columns the model takes (what a serving request carries)."""
        return [*self.numeric, *self.categorical]

    def features(self, frame: Any) -> Any:
        """The model-input columns of ``frame``."""
        return frame[self.inputs]

    def labels(self, frame: Any) -> Any:
        """The label column of ``frame`` as an array (None without a label)."""
        return None if self.label is None else frame[self.label].to_numpy()


@dataclass(frozen=True)
class TrainedModel:
    """The ``train`` step's output: the best candidate refit on the training rows."""

    model: Any
    candidate: str
    algorithm: str
    params: dict[str, Any]
    metric: str | None
    cv_score: float | None
    cv_std: float | None
    positive_label: Any
    study_name: str | None
    trials: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Evaluation:
    """The ``evaluate`` step's output: hold-out metrics, slices, and the verdict against
    the champion (``challenger_wins``, with the ``reason`` in words)."""

    metric: str | None
    metrics: dict[str, float]
    slices: tuple[dict[str, Any], ...]
    challenger_wins: bool
    reason: str
    champion_version: int | None = None
    champion_metrics: dict[str, float] | None = None
    improvement: float | None = None
    #: What the champion was looked up as ("production", "@champion"), when it was.
    compared_with: str | None = None


@dataclass(frozen=True)
class Registration:
    """The ``register`` step's output: the new version, or why there is none."""

    registered: bool
    reason: str
    model: str | None = None
    version: int | None = None
    semver: str | None = None
    stage: str | None = None
    approval_request: int | None = None


@dataclass(frozen=True)
class Rollout:
    """The ``deploy`` step's output: the deployment started, or why there is none."""

    deployed: bool
    reason: str
    endpoint: str | None = None
    deployment_id: int | None = None
    strategy: str | None = None
    state: str | None = None
