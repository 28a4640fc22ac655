"""mlops: one platform for a model's whole life, embedded or on a team's infrastructure.

import mlops
ml = mlops.connect()                # SQLite + local files under ./mlops-data
with ml.tracking.start_run("churn") as run:
    run.log_param("C", 0.5)
    run.log_metric("f1", 0.87)
"""

from mlops._client import MLOps, connect
from mlops._fluent import (
    active_run,
    end_run,
    get_connection,
    log_artifact,
    log_dict,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    set_connection,
    set_experiment,
    set_tag,
    set_tags,
    start_run,
)
from mlops.config import Settings

__version__ = "0.1.0"

__all__ = [
    "MLOps",
    "Settings",
    "active_run",
    "connect",
    "end_run",
    "get_connection",
    "log_artifact",
    "log_dict",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "set_connection",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
]
