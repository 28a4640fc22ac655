"""Performance reports over the prediction log, cross-checked against scikit-learn."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

import mlops
from mlops.errors import InvalidInput, NotFound
from mlops.monitoring import (
    baseline_from_metrics,
    baseline_from_registry,
    performance,
    record_feedback_batch,
    record_predictions,
)
from mlops.store import Store
from monitoring.conftest import NOW, give_feedback, log_requests
from serving.conftest import numeric_frame, register, single, wait_for


def _classifier_outputs(rows: int, seed: int, classes: int = 2) -> tuple[Any, Any, Any]:
    """Probabilities, predictions (argmax) and actual labels drawn from the probabilities."""
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(classes), size=rows)
    predicted = probabilities.argmax(axis=1)
    actual = np.array([rng.choice(classes, p=row) for row in probabilities])
    return probabilities, predicted, actual


def _log(
    ml: mlops.MLOps,
    predictions: Any,
    *,
    actual: Any = None,
    probabilities: Any = None,
    version: int | None = 1,
    route: str = "stable",
    ts: int = NOW - 60_000,
    endpoint: str = "churn",
) -> list[str]:
    ids = record_predictions(
        ml.store,
        endpoint,
        None,
        list(predictions),
        probabilities=probabilities,
        version=version,
        route=route,
        latency_ms=5.0,
        ts=ts,
    )
    if actual is not None:
        record_feedback_batch(ml.store, endpoint, ids, list(actual), ts=NOW)
    return ids


def test_binary_classification_metrics_match_scikit_learn(ml: mlops.MLOps) -> None:
    probabilities, predicted, actual = _classifier_outputs(400, seed=1)
    _log(ml, predicted, actual=actual, probabilities=probabilities)
    report = performance(ml.store, "churn", window="1h", now_ms=NOW)
    assert (report.task, report.status, report.reason) == ("classification", "ok", None)
    assert (report.requests, report.labelled) == (400, 400)
    metrics = report.metrics
    assert metrics is not None
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(actual, predicted))
    assert metrics["precision"] == pytest.approx(skm.precision_score(actual, predicted))
    assert metrics["recall"] == pytest.approx(skm.recall_score(actual, predicted))
    assert metrics["f1"] == pytest.approx(skm.f1_score(actual, predicted))
    assert metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(actual, probabilities[:, 1]))
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(actual, probabilities))


def test_multiclass_metrics_are_macro_averages_like_scikit_learn(ml: mlops.MLOps) -> None:
    probabilities, predicted, actual = _classifier_outputs(600, seed=2, classes=4)
    _log(ml, predicted, actual=actual, probabilities=probabilities)
    metrics = performance(ml.store, "churn", now_ms=NOW).metrics
    assert metrics is not None
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(actual, predicted))
    for name, scorer in [
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ]:
        assert metrics[name] == pytest.approx(scorer(actual, predicted, average="macro"))
    assert metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(actual, probabilities, multi_class="ovr", average="macro")
    )
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(actual, probabilities))


def test_string_labels_use_sorted_columns_and_a_chosen_positive_label(ml: mlops.MLOps) -> None:
    probabilities, predicted, actual = _classifier_outputs(300, seed=3)
    names = np.array(["no", "yes"])
    _log(ml, names[predicted], actual=names[actual], probabilities=probabilities)
    default = performance(ml.store, "churn", now_ms=NOW).metrics
    assert default is not None  # the greater label is the positive one: "yes"
    assert default["precision"] == pytest.approx(
        skm.precision_score(names[actual], names[predicted], pos_label="yes")
    )
    assert default["roc_auc"] == pytest.approx(skm.roc_auc_score(actual, probabilities[:, 1]))
    chosen = performance(ml.store, "churn", positive_label="no", now_ms=NOW).metrics
    assert chosen is not None
    assert chosen["recall"] == pytest.approx(
        skm.recall_score(names[actual], names[predicted], pos_label="no")
    )
    assert chosen["roc_auc"] == pytest.approx(skm.roc_auc_score(actual == 0, probabilities[:, 0]))
    with pytest.raises(InvalidInput, match="positive_label 'maybe'"):
        performance(ml.store, "churn", positive_label="maybe", now_ms=NOW)


def test_labels_compare_across_json_types_and_misfits_are_not_metrics(ml: mlops.MLOps) -> None:
    # Predictions logged as ints, feedback sent as strings and bools: still the same classes.
    _log(ml, [1, 0, 1, 1], actual=["1", False, True, "0"])
    report = performance(ml.store, "churn", min_labels=4, now_ms=NOW)
    assert report.metrics is not None
    assert report.metrics["accuracy"] == pytest.approx(0.75)
    assert report.metrics["roc_auc"] is None  # no probabilities were logged
    _log(ml, [1.5] * 3 + [2.5] * 3, actual=["high"] * 6, endpoint="prices")
    misfit = performance(ml.store, "prices", min_labels=3, now_ms=NOW)
    assert (misfit.task, misfit.status) == ("regression", "not_enough_data")
    assert misfit.reason is not None
    assert "6 of 6 labelled rows" in misfit.reason


def test_regression_metrics_match_scikit_learn(ml: mlops.MLOps) -> None:
    rng = np.random.default_rng(4)
    actual = rng.normal(50.0, 10.0, 250)
    predicted = actual + rng.normal(0.0, 3.0, 250)
    _log(ml, predicted, actual=actual)
    report = performance(ml.store, "churn", now_ms=NOW)
    assert report.task == "regression"
    metrics = report.metrics
    assert metrics is not None
    assert metrics["mae"] == pytest.approx(skm.mean_absolute_error(actual, predicted))
    assert metrics["rmse"] == pytest.approx(skm.root_mean_squared_error(actual, predicted))
    assert metrics["r2"] == pytest.approx(skm.r2_score(actual, predicted))
    assert report.estimated is None


def test_traffic_errors_latency_and_throughput(ml: mlops.MLOps) -> None:
    latencies = [float(v) for v in range(1, 101)]
    rows: list[dict[str, Any]] = [
        {"request_id": f"r{i}", "latency_ms": latency, "outputs": {"predictions": [1]}}
        for i, latency in enumerate(latencies)
    ]
    rows[0].update(status=500, outputs=None, error="boom")
    rows[1].update(status=503, outputs=None)
    rows[2].update(status=422, outputs=None)
    rows.append({"request_id": "unknown", "latency_ms": -1.0, "outputs": {"predictions": [1]}})
    log_requests(ml.store, rows)
    report = performance(ml.store, "churn", window="10m", now_ms=NOW)
    overall = report.overall
    assert (overall.requests, overall.errors, overall.client_errors) == (101, 2, 1)
    assert overall.error_rate == pytest.approx(2 / 101)
    assert overall.client_error_rate == pytest.approx(1 / 101)
    assert overall.throughput == pytest.approx(101 / 600)
    assert overall.latency_p50_ms == pytest.approx(np.percentile(latencies, 50))
    assert overall.latency_p95_ms == pytest.approx(np.percentile(latencies, 95))
    assert overall.latency_p99_ms == pytest.approx(np.percentile(latencies, 99))
    assert overall.rows == 98
    assert (report.status, report.metrics) == ("not_enough_data", None)


def test_time_and_count_windows(ml: mlops.MLOps) -> None:
    _log(ml, [1] * 40, actual=[1] * 40, ts=NOW - 3 * 3_600_000)  # right, three hours ago
    _log(ml, [1] * 40, actual=[0] * 40, ts=NOW - 60_000)  # wrong, a minute ago
    assert performance(ml.store, "churn", window="1h", now_ms=NOW).metrics == {
        "accuracy": 0.0,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "roc_auc": None,
        "log_loss": None,
    }
    day = performance(ml.store, "churn", window="1d", now_ms=NOW)
    assert day.requests == 80
    assert day.metrics is not None
    assert day.metrics["accuracy"] == pytest.approx(0.5)
    last = performance(ml.store, "churn", last=50, now_ms=NOW)
    assert last.requests == 50
    assert last.metrics is not None
    assert last.metrics["accuracy"] == pytest.approx(10 / 50)
    past = performance(ml.store, "churn", window="1h", until=NOW - 2 * 3_600_000, now_ms=NOW)
    assert past.metrics is not None
    assert past.metrics["accuracy"] == pytest.approx(1.0)
    assert past.window.until_ms == NOW - 2 * 3_600_000
    since = performance(ml.store, "churn", since=NOW - 4 * 3_600_000, now_ms=NOW)
    assert since.requests == 80
    assert since.overall.throughput == pytest.approx(80 / (4 * 3600))


def test_groups_split_by_version_and_by_ab_arm(ml: mlops.MLOps) -> None:
    _log(ml, [1] * 30, actual=[1] * 30, version=1, route="a")
    _log(ml, [1] * 30, actual=[1] * 15 + [0] * 15, version=2, route="b")
    _log(ml, [0] * 30, actual=[1] * 30, version=2, route="shadow")  # never live traffic
    _log(ml, [0] * 5, actual=[0] * 5, version=None, route="external")
    by_version = performance(ml.store, "churn", by="version", min_labels=5, now_ms=NOW)
    assert [group.key for group in by_version.groups] == [None, 1, 2]
    assert by_version.requests == 65
    assert by_version.group(1).metrics == pytest.approx(
        {
            "accuracy": 1.0,
            "precision": 1.0,
            "recall": 1.0,
            "f1": 1.0,
            "roc_auc": None,
            "log_loss": None,
        }
    )
    group_2 = by_version.group(2).metrics
    assert group_2 is not None
    assert group_2["accuracy"] == pytest.approx(0.5)
    assert group_2["f1"] == pytest.approx(skm.f1_score([1] * 15 + [0] * 15, [1] * 30))
    by_route = performance(ml.store, "churn", by="route", min_labels=5, now_ms=NOW)
    assert [group.key for group in by_route.groups] == ["a", "b", "external"]
    assert [group.requests for group in by_route.groups] == [30, 30, 5]
    assert by_route.group("b").metrics == by_version.group(2).metrics
    with pytest.raises(NotFound, match="no group 'shadow'"):
        by_route.group("shadow")
    only_2 = performance(ml.store, "churn", version=2, now_ms=NOW)
    assert (only_2.requests, only_2.version) == (30, 2)
    assert only_2.metrics == by_version.group(2).metrics


def test_too_few_labels_report_not_enough_data(ml: mlops.MLOps) -> None:
    ids = _log(ml, [1] * 50)
    record_feedback_batch(ml.store, "churn", ids[:10], [1] * 10)
    give_feedback(ml.store, [("nobody-asked", 1)], ts=NOW - 1)
    report = performance(ml.store, "churn", now_ms=NOW)
    assert (report.status, report.metrics, report.labelled) == ("not_enough_data", None, 10)
    assert report.reason is not None
    assert "10 labelled rows" in report.reason
    assert "/v1/endpoints/churn/feedback" in report.reason
    assert report.orphan_feedback == 1
    assert performance(ml.store, "churn", min_labels=10, now_ms=NOW).status == "ok"
    unusable = performance(ml.store, "churn", task="regression", min_labels=10, now_ms=NOW)
    assert unusable.status == "ok"  # ints are numbers too
    empty = performance(ml.store, "nothing-here", now_ms=NOW)
    assert (empty.requests, empty.task, empty.status) == (0, None, "not_enough_data")
    assert empty.overall.error_rate is None
    assert empty.overall.latency_p50_ms is None


def test_degradation_against_a_baseline_is_sign_aware(ml: mlops.MLOps) -> None:
    rng = np.random.default_rng(5)
    actual = rng.normal(0.0, 1.0, 100)
    _log(ml, actual + 0.5, actual=actual)  # every prediction 0.5 off: mae 0.5
    report = performance(
        ml.store,
        "churn",
        baseline={"mae": 0.4, "r2": 0.9, "error_rate": 0.0, "latency_p99_ms": 10.0},
        now_ms=NOW,
    )
    mae = report.degradation["mae"]
    assert (mae.baseline, mae.current, mae.higher_is_better) == (0.4, pytest.approx(0.5), False)
    assert mae.change == pytest.approx(0.25)
    assert mae.degradation == pytest.approx(0.25)  # error went up: worse
    r2 = report.degradation["r2"]
    assert r2.degradation == pytest.approx((0.9 - r2.current) / 0.9)
    assert r2.degradation is not None
    assert r2.degradation > 0
    assert report.degradation["error_rate"].change is None  # a zero baseline has no ratio
    latency = report.degradation["latency_p99_ms"]
    assert latency.degradation == pytest.approx(-0.5)  # 5 ms against 10: better
    with pytest.raises(InvalidInput, match="val_accuracy"):
        performance(ml.store, "churn", baseline={"val_accuracy": 0.9}, now_ms=NOW)
    with pytest.raises(InvalidInput, match="finite"):
        performance(ml.store, "churn", baseline={"mae": math.nan}, now_ms=NOW)


def test_baseline_from_metrics_maps_run_metric_names() -> None:
    assert baseline_from_metrics(
        {
            "train_accuracy": 0.99,
            "accuracy": 0.95,
            "val_accuracy": 0.9,
            "test/Accuracy": 0.88,
            "val_f1_macro": 0.7,
            "AUC": 0.8,
            "validation-mse": 4.0,
            "loss": 0.3,
            "epoch": 12,
            "r2_score": float("nan"),
        }
    ) == {"accuracy": 0.88, "f1": 0.7, "roc_auc": 0.8, "rmse": 2.0}


def test_baseline_from_registry_reads_a_version_and_its_run(ml: mlops.MLOps) -> None:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
    with ml.tracking.start_run() as run:
        run.log_metric("val_roc_auc", 0.81)
        run.log_metric("train_accuracy", 0.99)
    ml.registry.register_model("churn", model, metrics={"val_accuracy": 0.9}, run=run)
    ml.registry.register_model("churn", model, metrics={"epochs": 3})
    assert baseline_from_registry(ml.store, "churn", 1) == {"accuracy": 0.9, "roc_auc": 0.81}
    with pytest.raises(NotFound, match="epochs"):
        baseline_from_registry(ml.store, "churn", "latest")
    with pytest.raises(NotFound, match="production"):
        baseline_from_registry(ml.store, "churn")


def test_bad_arguments_say_what_to_do(bare_store: Store) -> None:
    for options, message in [
        ({"by": "arm"}, "version, route"),
        ({"task": "ranking"}, "classification, regression"),
        ({"min_labels": 0}, "min_labels"),
        ({"window": "1 fortnight"}, "duration"),
        ({"window": "1h", "since": 5}, "not both"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            performance(bare_store, "churn", now_ms=NOW, **options)


def test_reports_serialize_to_strict_json(ml: mlops.MLOps) -> None:
    probabilities, predicted, actual = _classifier_outputs(60, seed=6)
    _log(ml, predicted, actual=actual, probabilities=probabilities, route="a")
    _log(ml, [1, 0], route="b")
    report = performance(
        ml.store, "churn", by="route", baseline={"accuracy": 0.0, "f1": 0.5}, now_ms=NOW
    )
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["overall"]["metrics"]["accuracy"] == pytest.approx(report.metrics["accuracy"])  # type: ignore[index]
    assert [group["key"] for group in data["groups"]] == ["a", "b"]
    assert data["groups"][1]["status"] == "not_enough_data"
    assert data["overall"]["estimated"]["rows"] == 60
    assert data["overall"]["degradation"]["accuracy"]["change"] is None
    assert data["window"]["until_ms"] == NOW


PREDICT = "/v1/endpoints/churn/predict"
INVOCATIONS = "/v1/endpoints/churn/invocations"
FEEDBACK = "/v1/endpoints/churn/feedback"


def test_performance_of_a_real_server_from_http_predictions_and_feedback(
    ml: mlops.MLOps, numeric_model: Any, serve: Any
) -> None:
    register(ml, "churn", numeric_model, numeric_frame().head(5))
    single(ml, "churn")
    frame = numeric_frame(rows=90, seed=11)
    truth = ((frame["tenure"] < 30) | (frame["calls"] > 5)).astype(int).to_numpy()
    server = serve(ml, log_flush_interval=0.05)
    feedback: list[dict[str, Any]] = []
    with server.client() as client:
        for start in range(0, 90, 3):
            chunk = frame.iloc[start : start + 3]
            if start % 2:  # one batched request of three rows; its feedback is a list
                answer = client.post(PREDICT, json=chunk.to_dict("records")).json()
                actual = truth[start : start + 3].tolist()
                feedback.append({"request_id": answer["request_id"], "actual": actual})
                continue
            for offset in range(3):  # three one-row requests in MLflow's dataframe_split
                data = chunk.iloc[[offset]].to_numpy().tolist()
                body = {"dataframe_split": {"columns": list(frame.columns), "data": data}}
                response = client.post(INVOCATIONS, json=body)
                assert response.status_code == 200
                request_id = response.headers["x-request-id"]
                feedback.append({"request_id": request_id, "actual": int(truth[start + offset])})
        assert client.post(PREDICT, json=[{"tenure": "many"}]).status_code == 422
        accepted = client.post(FEEDBACK, json=feedback)
        assert accepted.json() == {"accepted": len(feedback)}
    wait_for(lambda: server.state.writer.written >= 61, what="the prediction log to be written")
    report = performance(ml.store, "churn", window="1h", min_labels=50, by="route")
    assert (report.requests, report.overall.client_errors, report.overall.rows) == (61, 1, 90)
    assert (report.labelled, report.orphan_feedback, report.mismatched_feedback) == (90, 0, 0)
    expected = numeric_model.predict(frame)
    probabilities = numeric_model.predict_proba(frame)
    metrics = report.metrics
    assert metrics is not None
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(truth, expected))
    assert metrics["f1"] == pytest.approx(skm.f1_score(truth, expected))
    assert metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, probabilities[:, 1]))
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(truth, probabilities))
    assert [group.key for group in report.groups] == ["stable"]
    assert report.estimated is not None
    assert report.estimated.rows == 90

    # Drift reads the same log: rows of both protocols, not the rejected request's inputs.
    drift = ml.monitor.drift("churn", window="1h", reference=numeric_frame(rows=400, seed=5))
    assert drift.current_rows == 90
    assert {column.name for column in drift.columns} == set(frame.columns)
    assert all(column.drifted is not None for column in drift.columns)
