"""Immutable records returned by the tracker."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "Dataset",
    "DatasetInput",
    "Experiment",
    "LifecycleStage",
    "Metric",
    "Run",
    "RunPage",
    "RunStatus",
]


class RunStatus(enum.StrEnum):
    """Where a run is in its life; only RUNNING runs accept new data."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


class LifecycleStage(enum.StrEnum):
    """Soft deletion: deleted entities are hidden but can be restored."""

    ACTIVE = "active"
    DELETED = "deleted"


class Metric(NamedTuple):
    """One point of a metric's history; ``timestamp`` is milliseconds since the epoch."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    id: int
    name: str
    artifact_location: str
    lifecycle_stage: LifecycleStage
    created_at: int
    updated_at: int
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset as a run saw it: identified by name and content digest."""

    name: str
    digest: str
    schema: Mapping[str, Any] | None = None
    num_rows: int | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A dataset used by a run, and how (``training``, ``validation``…)."""

    dataset: Dataset
    context: str


@dataclass(frozen=True, slots=True)
class Run:
    """A snapshot of a run: its attributes and data at the time it was read.

    ``metrics`` holds each metric's latest value (highest step; NaN where NaN was logged).
    """

    id: str
    experiment_id: int
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: LifecycleStage
    parent_run_id: str | None = None
    user: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[DatasetInput, ...] = ()

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time


class RunPage(list[Run]):
    """One page of search results; ``next_page_token`` is None on the last page."""

    def __init__(self, runs: list[Run], next_page_token: str | None) -> None:
        super().__init__(runs)
        self.next_page_token = next_page_token
