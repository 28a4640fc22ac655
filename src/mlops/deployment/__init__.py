"""Deployments: roll registry versions out to endpoints with safe strategies."""

from mlops.deployment._analysis import AnalysisResult, VersionStats, analyse, version_stats
from mlops.deployment._controller import DeploymentController, LeaderLock, LeaderTicker
from mlops.deployment._manager import (
    Deployment,
    DeploymentEvent,
    DeploymentManager,
    DeploymentState,
)
from mlops.deployment._strategies import (
    ABTest,
    Analysis,
    BlueGreen,
    Canary,
    Direct,
    Rolling,
    Shadow,
    Strategy,
    check_strategy,
    parse_duration,
    strategy_from_params,
)

__all__ = [
    "ABTest",
    "Analysis",
    "AnalysisResult",
    "BlueGreen",
    "Canary",
    "Deployment",
    "DeploymentController",
    "DeploymentEvent",
    "DeploymentManager",
    "DeploymentState",
    "Direct",
    "LeaderLock",
    "LeaderTicker",
    "Rolling",
    "Shadow",
    "Strategy",
    "VersionStats",
    "analyse",
    "check_strategy",
    "parse_duration",
    "strategy_from_params",
    "version_stats",
]
