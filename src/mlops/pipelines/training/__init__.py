"""The built-in training pipeline, described by a YAML file.

from mlops.pipelines import run_pipeline
from mlops.pipelines.training import PipelineConfig, sample_config_path

config = PipelineConfig.from_file(sample_config_path())   # or your own churn.yaml
result = run_pipeline(ml, config.pipeline())
result.output("evaluate").reason    # why the challenger was (or was not) registered

Stages (step names): ingest, validate, preprocess, features, train, evaluate, and, when
configured, register, deploy and monitor.
"""

from mlops.pipelines.training._config import PipelineConfig
from mlops.pipelines.training._data import (
    Evaluation,
    LoadedData,
    PreparedData,
    Registration,
    Rollout,
    TrainedModel,
)
from mlops.pipelines.training._sources import bundled_data_path, sample_config_path
from mlops.pipelines.training._steps import STAGES
from mlops.pipelines.training._storage import study_storage
from mlops.pipelines.training._validation import Check, ValidationFailed, ValidationReport

__all__ = [
    "STAGES",
    "Check",
    "Evaluation",
    "LoadedData",
    "PipelineConfig",
    "PreparedData",
    "Registration",
    "Rollout",
    "TrainedModel",
    "ValidationFailed",
    "ValidationReport",
    "bundled_data_path",
    "sample_config_path",
    "study_storage",
]
