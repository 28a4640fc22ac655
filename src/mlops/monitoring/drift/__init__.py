"""Drift detection: per-column tests, Evidently's default method choice, reports.

report = detect_drift(reference_frame, current_frame, prediction="score")
report.dataset_drift, report.drifted_columns, report.to_json(), report.save_html(path)
"""

from mlops.monitoring.drift._detect import DEFAULT_MIN_ROWS, detect_drift
from mlops.monitoring.drift._methods import (
    DRIFT_METHODS,
    DriftMethod,
    Score,
    check_drift_method,
    drift_method,
)
from mlops.monitoring.drift._multivariate import multivariate_drift
from mlops.monitoring.drift._report import ColumnDrift, DriftReport, MultivariateDrift
from mlops.monitoring.drift._sample import ColumnSample
from mlops.monitoring.drift._select import default_method

__all__ = [
    "DEFAULT_MIN_ROWS",
    "DRIFT_METHODS",
    "ColumnDrift",
    "ColumnSample",
    "DriftMethod",
    "DriftReport",
    "MultivariateDrift",
    "Score",
    "check_drift_method",
    "default_method",
    "detect_drift",
    "drift_method",
    "multivariate_drift",
]
