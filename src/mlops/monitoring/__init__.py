"""Monitoring: performance windows over the prediction log, data drift, alerting.

``ml.monitor`` (a ``ModelMonitor``) is the facade; ``mlops.monitoring.drift`` holds the
drift tests and reports, ``mlops.monitoring.alerts`` the rules, channels and silences.
"""

from mlops.monitoring._baseline import METRIC_ALIASES, baseline_from_metrics, baseline_from_registry
from mlops.monitoring._estimate import (
    CALIBRATION_METHODS,
    EstimatedPerformance,
    ProbabilityCalibrator,
    estimate_performance,
    fit_calibrator,
)
from mlops.monitoring._inputs import DecodedInputs, decode_inputs, read_inputs
from mlops.monitoring._monitor import PREDICTION_COLUMN, ModelMonitor
from mlops.monitoring._performance import (
    HIGHER_IS_BETTER,
    Degradation,
    PerformanceGroup,
    PerformanceReport,
    calibrator_from_log,
    performance,
)
from mlops.monitoring._records import (
    record_feedback,
    record_feedback_batch,
    record_prediction,
    record_predictions,
)
from mlops.monitoring._signals import PIPELINE_TAG, MonitorSignals
from mlops.monitoring._window import (
    PredictionWindow,
    Window,
    parse_window,
    read_window,
    resolve_window,
)

__all__ = [
    "CALIBRATION_METHODS",
    "HIGHER_IS_BETTER",
    "METRIC_ALIASES",
    "PIPELINE_TAG",
    "PREDICTION_COLUMN",
    "DecodedInputs",
    "Degradation",
    "EstimatedPerformance",
    "ModelMonitor",
    "MonitorSignals",
    "PerformanceGroup",
    "PerformanceReport",
    "PredictionWindow",
    "ProbabilityCalibrator",
    "Window",
    "baseline_from_metrics",
    "baseline_from_registry",
    "calibrator_from_log",
    "decode_inputs",
    "estimate_performance",
    "fit_calibrator",
    "parse_window",
    "performance",
    "read_inputs",
    "read_window",
    "record_feedback",
    "record_feedback_batch",
    "record_prediction",
    "record_predictions",
    "resolve_window",
]
