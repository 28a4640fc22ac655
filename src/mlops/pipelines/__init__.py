"""Pipelines: ``@step`` functions wired by name, run as tracked runs with cached outputs.

from mlops.pipelines import Pipeline, run_pipeline, step

@step
def load(path: str) -> list[float]: ...

@step(cpu=2, retries=1)
def train(load: list[float], lr: float = 0.1) -> dict[str, float]: ...

result = run_pipeline(ml, Pipeline("demo", [load, train], params={"path": "x.csv"}))
"""

from mlops.pipelines._backends import StepTimeout
from mlops.pipelines._context import StepContext, step_context
from mlops.pipelines._graph import Binding, Pipeline
from mlops.pipelines._local import LocalExecutor
from mlops.pipelines._results import PipelineRun, PipelineState, StepEvent, StepRun, StepState
from mlops.pipelines._runner import EXECUTORS, run_pipeline
from mlops.pipelines._step import Resources, Step, step

__all__ = [
    "EXECUTORS",
    "Binding",
    "LocalExecutor",
    "Pipeline",
    "PipelineRun",
    "PipelineState",
    "Resources",
    "Step",
    "StepContext",
    "StepEvent",
    "StepRun",
    "StepState",
    "StepTimeout",
    "run_pipeline",
    "step",
    "step_context",
]
