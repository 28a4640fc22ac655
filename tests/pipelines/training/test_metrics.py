"""Scoring outputs: binary and multiclass classification, regression, anomaly detection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlops.errors import InvalidInput
from mlops.pipelines.training._metrics import (
    Outputs,
    all_scores,
    improvement,
    positive_label,
    score,
)


def test_binary_metrics_use_the_positive_class_and_its_probability_column() -> None:
    y = np.array(["stay", "leave", "leave", "stay"])
    classes = np.array(["leave", "stay"])
    outputs = Outputs(
        predictions=np.array(["stay", "leave", "stay", "stay"]),
        probabilities=np.array([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6], [0.3, 0.7]]),
        classes=classes,
    )
    positive = positive_label(y, None)
    assert positive == "stay"  # no 1 or True: the last class, as scikit-learn does

    scores = all_scores("classification", y, outputs, positive)

    assert scores["accuracy"] == 0.75
    assert scores["recall"] == 1.0  # both "stay" rows found
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["roc_auc"] == 1.0  # "stay" rows have the highest P(stay)
    leave = all_scores("classification", y, outputs, "leave")
    assert leave["recall"] == 0.5
    assert leave["roc_auc"] == 1.0


def test_multiclass_metrics_average_over_the_classes() -> None:
    y = np.array([0, 1, 2, 2])
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.5, 0.1, 0.4]])
    outputs = Outputs(probabilities.argmax(axis=1), probabilities, np.array([0, 1, 2]))

    scores = all_scores("classification", y, outputs, positive_label(y, None))

    assert scores["accuracy"] == 0.75
    assert scores["f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)  # macro: per class, then mean
    assert 0.5 < scores["roc_auc"] <= 1.0
    assert scores["log_loss"] > 0


def test_undefined_metrics_are_nan_not_errors() -> None:
    y = np.array([1, 1, 1])
    outputs = Outputs(np.array([1, 1, 0]))
    assert math.isnan(score("classification", "roc_auc", y, outputs, 1))  # one class only
    assert score("classification", "accuracy", y, outputs, 1) == pytest.approx(2 / 3)


def test_regression_and_anomaly_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0])
    outputs = Outputs(np.array([1.0, 2.0, 5.0]))
    assert score("regression", "rmse", y, outputs, None) == pytest.approx(math.sqrt(4 / 3))
    assert score("regression", "mae", y, outputs, None) == pytest.approx(2 / 3)

    labels = np.array([0, 0, 1, 0, 1, 0])
    detected = Outputs(
        predictions=np.array([1, 1, -1, -1, 1, 1]),
        scores=np.array([0.1, 0.2, 0.9, 0.8, 0.7, 0.3]),
    )
    scores = all_scores("anomaly_detection", labels, detected, 1)
    assert scores["precision_at_k"] == 0.5  # the top 2 scores: one true anomaly
    assert scores["anomaly_rate"] == pytest.approx(2 / 6)
    assert scores["roc_auc"] == pytest.approx(7 / 8)
    unlabelled = all_scores("anomaly_detection", None, detected, None, labelled=False)
    assert list(unlabelled) == ["anomaly_rate"]


def test_improvement_is_positive_when_the_challenger_is_better() -> None:
    assert improvement("roc_auc", 0.82, 0.80) == pytest.approx(0.02)
    assert improvement("rmse", 9.0, 10.0) == pytest.approx(1.0)
    assert improvement("log_loss", 0.5, 0.4) == pytest.approx(-0.1)


def test_a_configured_positive_label_must_be_a_label_value() -> None:
    with pytest.raises(InvalidInput, match=r"positive_label 'yes' is not a value of the label"):
        positive_label(np.array([0, 1]), "yes")
