"""Orchestration: registered pipelines run on cron schedules, on events and on demand.

    ml.pipelines.register(
        "nightly", "myproject.pipelines:training",
        schedule="0 3 * * *", timezone="Europe/Paris",
        triggers=[Trigger.alert(rule="accuracy-drop"), Trigger.dataset("churn-data")],
        retries=2, timeout="1h", notify={"channels": ["ops-slack"]},
    )
    ml.pipelines.trigger("nightly", params={"trials": 50}, reason="new features")
    ml.pipelines.executions("nightly")

``mlops server`` runs a ``PipelineScheduler``; ``tick()`` and ``work()`` do the same
one step at a time, on an injectable clock.
"""

from mlops.orchestration._cron import CronSchedule
from mlops.orchestration._executions import Attempt, Execution, ExecutionState, LogLine
from mlops.orchestration._orchestrator import CATCHUP_LIMIT, PipelineOrchestrator
from mlops.orchestration._scheduler import PipelineScheduler
from mlops.orchestration._source import resolve_source
from mlops.orchestration._spec import Notify, RegisteredPipeline, Trigger

__all__ = [
    "CATCHUP_LIMIT",
    "Attempt",
    "CronSchedule",
    "Execution",
    "ExecutionState",
    "LogLine",
    "Notify",
    "PipelineOrchestrator",
    "PipelineScheduler",
    "RegisteredPipeline",
    "Trigger",
    "resolve_source",
]
