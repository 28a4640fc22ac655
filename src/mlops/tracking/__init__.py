"""Experiment tracking: experiments, runs, params, metrics, tags, datasets, artifacts."""

from mlops.tracking._datasets import dataset_from_data
from mlops.tracking._entities import (
    Dataset,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Run,
    RunPage,
    RunStatus,
)
from mlops.tracking._run import ActiveRun
from mlops.tracking._tracker import ExperimentTracker

__all__ = [
    "ActiveRun",
    "Dataset",
    "DatasetInput",
    "Experiment",
    "ExperimentTracker",
    "LifecycleStage",
    "Metric",
    "Run",
    "RunPage",
    "RunStatus",
    "dataset_from_data",
]
