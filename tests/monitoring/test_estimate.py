"""Label-free performance estimates (CBPE) and probability calibration."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

import mlops
from mlops.errors import InvalidInput
from mlops.monitoring import (
    calibrator_from_log,
    estimate_performance,
    fit_calibrator,
    performance,
    record_feedback_batch,
    record_predictions,
)
from monitoring.conftest import NOW


def _binary(rows: int, seed: int, sharpen: float = 1.0) -> tuple[Any, Any]:
    """True probabilities of class 1, and labels drawn from them; ``sharpen`` > 1 makes
    the probabilities a model would report overconfident."""
    rng = np.random.default_rng(seed)
    truth = rng.beta(2.0, 2.0, rows)
    labels = (rng.random(rows) < truth).astype(np.int64)
    odds = (truth / (1 - truth)) ** sharpen
    reported = odds / (1 + odds)
    return np.c_[1 - reported, reported], labels


def test_expected_confusion_matrix_of_a_small_example() -> None:
    probabilities = [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]]
    estimate = estimate_performance(probabilities)
    np.testing.assert_allclose(estimate.confusion, [[1.4, 0.4], [0.6, 1.6]])
    assert estimate.metrics == pytest.approx(
        {"accuracy": 0.75, "precision": 0.8, "recall": 1.6 / 2.2, "f1": 3.2 / 4.2}
    )
    assert (estimate.accuracy, estimate.f1) == (
        estimate.metrics["accuracy"],
        estimate.metrics["f1"],
    )
    assert (estimate.rows, estimate.classes, estimate.calibrated) == (4, 2, False)
    # A model with its own threshold said "1" for every row: the confusion follows it.
    everything = estimate_performance(probabilities, predicted_columns=[1, 1, 1, 1])
    np.testing.assert_allclose(everything.confusion, [[0.0, 1.8], [0.0, 2.2]])
    assert everything.metrics["recall"] == pytest.approx(1.0)
    negative = estimate_performance(probabilities, positive_column=0)
    assert negative.metrics["precision"] == pytest.approx(1.4 / 2.0)
    assert json.loads(json.dumps(estimate.to_dict(), allow_nan=False))["rows"] == 4


def test_estimates_follow_the_real_metrics_of_a_calibrated_model() -> None:
    probabilities, labels = _binary(20_000, seed=1)
    predicted = probabilities.argmax(axis=1)
    estimate = estimate_performance(probabilities)
    assert estimate.metrics["accuracy"] == pytest.approx(
        skm.accuracy_score(labels, predicted), abs=0.02
    )
    for name, scorer in [
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ]:
        assert estimate.metrics[name] == pytest.approx(scorer(labels, predicted), abs=0.02)


def test_multiclass_estimates_accuracy_as_the_mean_top_probability() -> None:
    rng = np.random.default_rng(2)
    probabilities = rng.dirichlet(np.ones(3), size=5_000)
    labels = np.array([rng.choice(3, p=row) for row in probabilities])
    estimate = estimate_performance(probabilities)
    assert estimate.metrics["accuracy"] == pytest.approx(probabilities.max(axis=1).mean())
    assert np.sum(estimate.confusion) == pytest.approx(5_000)
    predicted = probabilities.argmax(axis=1)
    assert estimate.metrics["accuracy"] == pytest.approx(
        skm.accuracy_score(labels, predicted), abs=0.03
    )
    assert estimate.metrics["f1"] == pytest.approx(
        skm.f1_score(labels, predicted, average="macro"), abs=0.03
    )


def test_isotonic_calibration_matches_scikit_learn() -> None:
    probabilities, labels = _binary(2_000, seed=3, sharpen=2.5)
    calibrator = fit_calibrator(probabilities, labels, method="isotonic")
    reference = IsotonicRegression(out_of_bounds="clip").fit(probabilities[:, 1], labels)
    fresh, _ = _binary(500, seed=4, sharpen=2.5)
    calibrated = calibrator.apply(fresh)
    np.testing.assert_allclose(calibrated[:, 1], reference.predict(fresh[:, 1]), atol=1e-12)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert calibrator.reference_rows == 2_000
    assert json.loads(json.dumps(calibrator.to_dict(), allow_nan=False))["method"] == "isotonic"


def test_histogram_binning_maps_each_bin_to_its_share_of_positives() -> None:
    positive = np.array([0.05, 0.15, 0.12, 0.95, 0.91, 0.99, 1.0])
    labels = np.array([0, 1, 1, 1, 0, 1, 1])
    calibrator = fit_calibrator(np.c_[1 - positive, positive], labels, method="histogram", bins=10)
    mapped = calibrator.apply(np.c_[1 - np.array([0.01, 0.1, 0.5, 0.93]), [0.01, 0.1, 0.5, 0.93]])
    # bin [0, .1): 0 of 1; [.1, .2): 2 of 2; [.5, .6) is empty: unchanged; [.9, 1]: 3 of 4
    np.testing.assert_allclose(mapped[:, 1], [0.0, 1.0, 0.5, 0.75])
    np.testing.assert_allclose(mapped[:, 0], 1 - mapped[:, 1])


def test_calibration_corrects_the_estimate_of_an_overconfident_model() -> None:
    reference, reference_labels = _binary(10_000, seed=5, sharpen=3.0)
    current, current_labels = _binary(10_000, seed=6, sharpen=3.0)
    truth = skm.accuracy_score(current_labels, current.argmax(axis=1))
    raw = estimate_performance(current).metrics["accuracy"]
    assert raw is not None
    assert raw - truth > 0.05  # overconfidence inflates the raw estimate
    for method in ("isotonic", "histogram"):
        calibrator = fit_calibrator(reference, reference_labels, method=method, bins=20)
        calibrated = estimate_performance(current, calibrator=calibrator)
        assert calibrated.calibrated
        assert calibrated.metrics["accuracy"] == pytest.approx(truth, abs=0.02)


def test_multiclass_calibration_keeps_rows_normalized() -> None:
    rng = np.random.default_rng(7)
    probabilities = rng.dirichlet(np.ones(3) * 0.5, size=3_000)
    labels = np.array([rng.choice(3, p=row) for row in probabilities])
    calibrator = fit_calibrator(probabilities, labels)
    mapped = calibrator.apply(probabilities[:50])
    np.testing.assert_allclose(mapped.sum(axis=1), 1.0)
    assert set(calibrator.knots) == {0, 1, 2}
    with pytest.raises(InvalidInput, match="fitted on 3 classes"):
        calibrator.apply([[0.5, 0.5]])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: estimate_performance([0.2, 0.8]), "one column per class"),
        (lambda: estimate_performance([[1.0]]), "at least two"),
        (lambda: estimate_performance([[0.5, 1.5]]), r"\[0, 1\]"),
        (lambda: estimate_performance([[np.nan, 0.5]]), "finite"),
        (lambda: estimate_performance([["a", "b"]]), "not a matrix"),
        (lambda: estimate_performance([[0.5, 0.5]], positive_column=2), "positive_column"),
        (lambda: estimate_performance([[0.5, 0.5]], predicted_columns=[0, 1]), "one class"),
        (lambda: estimate_performance([[0.5, 0.5]], predicted_columns=[2]), "outside"),
        (lambda: estimate_performance([[0.5, 0.5]], predicted_columns=[0.5]), "an int"),
        (lambda: fit_calibrator([[0.5, 0.5]], [1], method="platt"), "isotonic, histogram"),
        (lambda: fit_calibrator([[0.5, 0.5]], [1], bins=0), "bins"),
        (lambda: fit_calibrator(np.empty((0, 2)), []), "no|none"),
    ],
)
def test_estimation_refuses_malformed_input(call: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()


def _log_binary(ml: mlops.MLOps, probabilities: Any, labels: Any | None, ts: int) -> None:
    predicted = probabilities.argmax(axis=1)
    ids = record_predictions(
        ml.store, "churn", None, predicted, probabilities=probabilities, version=1, ts=ts
    )
    if labels is not None:
        record_feedback_batch(ml.store, "churn", ids, labels, ts=NOW)


def test_a_report_shows_an_estimated_drop_before_any_feedback(ml: mlops.MLOps) -> None:
    confident, confident_labels = _binary(400, seed=8, sharpen=1.0)
    confident = np.clip((confident - 0.5) * 1.8 + 0.5, 0, 1)  # a model that knew its data
    _log_binary(ml, confident, confident_labels, ts=NOW - 2 * 3_600_000)
    unsure = np.clip((confident - 0.5) * 0.3 + 0.5, 0, 1)  # new data: near coin flips
    _log_binary(ml, unsure, None, ts=NOW - 60_000)
    before = performance(ml.store, "churn", window="1h", until=NOW - 3_600_000, now_ms=NOW)
    after = performance(ml.store, "churn", window="1h", now_ms=NOW)
    assert before.status == "ok"
    assert (after.status, after.metrics) == ("not_enough_data", None)
    assert before.estimated is not None
    assert after.estimated is not None
    assert before.estimated.accuracy is not None
    assert after.estimated.accuracy is not None
    assert before.estimated.accuracy - after.estimated.accuracy > 0.2
    assert after.estimated.rows == 400


def test_calibrator_from_log_fits_on_a_labelled_reference_window(ml: mlops.MLOps) -> None:
    reference, reference_labels = _binary(2_000, seed=9, sharpen=3.0)
    _log_binary(ml, reference, reference_labels, ts=NOW - 2 * 3_600_000)
    current, current_labels = _binary(2_000, seed=10, sharpen=3.0)
    _log_binary(ml, current, None, ts=NOW - 60_000)
    calibrator = calibrator_from_log(
        ml.store, "churn", window="1h", until=NOW - 3_600_000, now_ms=NOW
    )
    assert calibrator.reference_rows == 2_000
    report = performance(ml.store, "churn", window="1h", calibrator=calibrator, now_ms=NOW)
    assert report.estimated is not None
    assert report.estimated.calibrated
    truth = skm.accuracy_score(current_labels, current.argmax(axis=1))
    assert report.estimated.accuracy == pytest.approx(truth, abs=0.03)
    with pytest.raises(InvalidInput, match="no labelled predictions"):
        calibrator_from_log(ml.store, "churn", window="1h", now_ms=NOW)
    record_predictions(ml.store, "plain", None, [1, 0], ts=NOW - 1)
    with pytest.raises(InvalidInput, match="no probabilities"):
        calibrator_from_log(ml.store, "plain", window="1h", now_ms=NOW)
    three = fit_calibrator([[0.2, 0.3, 0.5]], [2])
    with pytest.raises(InvalidInput, match="fitted on 3 classes"):
        performance(ml.store, "churn", window="1h", calibrator=three, now_ms=NOW)
