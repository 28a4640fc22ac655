"""``ml.monitor`` end to end: registry baselines and references, signals, the alert loop."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import mlops
from http_receiver import Receiver
from mlops.errors import InvalidInput, NotFound
from mlops.monitoring import PIPELINE_TAG, PREDICTION_COLUMN, ModelMonitor
from mlops.monitoring.alerts import AlertRule, SlackNotifier
from mlops.store._schema import events

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

NOW = 1_750_000_000_000
HOUR = 3_600_000
FEATURES = ["tenure", "charges", "plan"]


def _frame(rows: int, seed: int, shift: float = 0.0) -> Any:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.normal(30.0 + shift * 10.0, 10.0, rows),
            "charges": rng.normal(70.0, 15.0, rows),
            "plan": rng.choice(["basic", "pro", "team"], rows, p=[0.5, 0.3, 0.2]),
        }
    )


def _labels(frame: Any) -> Any:
    return ((frame["tenure"] < 30) | (frame["plan"] == "basic")).astype(int)


def _register(ml: mlops.MLOps, name: str = "churn") -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    train = _frame(1500, seed=0)
    pre = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    model = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=2000))])
    model.fit(train, _labels(train))
    version = ml.registry.register_model(
        name,
        model,
        input_example=train.head(3),
        reference_data=train,
        metrics={"val_accuracy": 0.9},
    )
    ml.registry.promote_to_stage(name, version.number, "production")
    return model, version.number


def _traffic(
    ml: mlops.MLOps, model: Any, frame: Any, *, version: int, start: int, endpoint: str = "churn"
) -> list[str]:
    stamps = np.linspace(start, start + HOUR - 1000, len(frame)).astype(int).tolist()
    ids = ml.monitor.record_predictions(
        endpoint,
        frame,
        model.predict(frame).tolist(),
        probabilities=model.predict_proba(frame).tolist(),
        version=version,
        latency_ms=[4.0] * len(frame),
        ts=stamps,
    )
    return ids


def test_monitor_is_on_the_connection(ml: mlops.MLOps) -> None:
    assert isinstance(ml.monitor, ModelMonitor)
    assert ml.monitor.alerts.rules() == []


def test_endpoints_are_the_served_ones_and_those_with_logged_predictions(
    ml: mlops.MLOps,
) -> None:
    assert ml.monitor.endpoints() == []
    ml.monitor.record_predictions("scored-elsewhere", [{"x": 1.0}], [1], ts=[1_000])
    ml.monitor.record_predictions("recent", [{"x": 1.0}], [0], ts=[5_000])
    _model, number = _register(ml, "served")
    ml.deployments.deploy("served", "served", number)
    assert ml.monitor.endpoints() == ["recent", "scored-elsewhere", "served"]
    # ``since`` narrows the logged ones; a serving endpoint is always listed.
    assert ml.monitor.endpoints(since=2_000) == ["recent", "served"]


def test_performance_takes_the_baseline_from_the_served_version(ml: mlops.MLOps) -> None:
    model, number = _register(ml)
    frame = _frame(400, seed=1)
    ids = _traffic(ml, model, frame, version=number, start=NOW - HOUR)
    truth = 1 - _labels(frame)  # every label flipped: the live accuracy collapses
    ml.monitor.record_feedback_batch("churn", ids, truth.tolist(), ts=NOW)

    report = ml.monitor.performance("churn", window="1h", now_ms=NOW)

    assert report.baseline == {"accuracy": 0.9}
    accuracy = report.metrics["accuracy"] if report.metrics else None
    assert accuracy is not None
    assert accuracy < 0.3
    drop = report.degradation["accuracy"]
    assert drop.degradation == pytest.approx((0.9 - accuracy) / 0.9)
    assert ml.monitor.performance("churn", window="1h", now_ms=NOW, baseline=None).baseline is None
    explicit = ml.monitor.performance("churn", window="1h", now_ms=NOW, baseline={"f1": 0.5})
    assert explicit.baseline == {"f1": 0.5}


def test_target_prefers_the_serving_endpoint_then_a_model_named_like_it(ml: mlops.MLOps) -> None:
    _, number = _register(ml)
    assert ml.monitor.target("churn") == ("churn", number)
    assert ml.monitor.target("nothing-here") == (None, None)
    assert ml.monitor.target("nothing-here", model="churn") == ("churn", number)
    with pytest.raises(NotFound, match="model='"):
        ml.monitor.performance("nothing-here", now_ms=NOW, baseline="production")


def test_drift_compares_logged_inputs_and_predictions_with_the_reference(
    ml: mlops.MLOps,
) -> None:
    model, number = _register(ml)
    _traffic(ml, model, _frame(600, seed=2, shift=1.5), version=number, start=NOW - HOUR)

    report = ml.monitor.drift("churn", window="1h", now_ms=NOW)

    assert list(report.drifted_columns) == ["tenure"]
    assert report.column("charges").drifted is False
    assert report.prediction is not None
    assert report.prediction.name == PREDICTION_COLUMN
    assert report.prediction.drifted is True  # fewer low-tenure customers: fewer churners
    assert report.multivariate is not None


def test_drift_without_drift_and_with_an_explicit_current_frame(ml: mlops.MLOps) -> None:
    model, number = _register(ml)
    _traffic(ml, model, _frame(600, seed=3), version=number, start=NOW - HOUR)
    same = ml.monitor.drift("churn", window="1h", now_ms=NOW, predictions=False)
    assert same.prediction is None
    assert not same.dataset_drift

    shifted = _frame(600, seed=4, shift=2.0)
    given = ml.monitor.drift("churn", current=shifted, predictions=False)
    assert "tenure" in given.drifted_columns


def test_drift_needs_a_reference_and_some_traffic(ml: mlops.MLOps) -> None:
    with pytest.raises(NotFound, match="reference="):
        ml.monitor.drift("nobody", now_ms=NOW)
    _register(ml)
    with pytest.raises(InvalidInput, match="no decodable inputs"):
        ml.monitor.drift("churn", window="1h", now_ms=NOW)


def _slack(ml: mlops.MLOps, receiver: Receiver) -> None:
    ml.monitor.alerts.create_channel("ops", SlackNotifier(receiver.url + "/slack"))


def test_accuracy_drop_fires_the_default_rule_and_notifies(ml: mlops.MLOps) -> None:
    model, number = _register(ml)
    frame = _frame(300, seed=5)
    ids = _traffic(ml, model, frame, version=number, start=NOW - HOUR)
    ml.monitor.record_feedback_batch("churn", ids, (1 - _labels(frame)).tolist(), ts=NOW)
    alerts = ml.monitor.alerts
    alerts.install_default_rules()
    receiver = Receiver()
    try:
        _slack(ml, receiver)
        alerts.update_rule("accuracy-drop", channels=["ops"])
        alerts.evaluate(now_ms=NOW)
        firing = alerts.alerts(state="firing")
        assert [alert.rule for alert in firing] == ["accuracy-drop"]
        assert firing[0].labels["endpoint"] == "churn"
        assert firing[0].value is not None
        assert firing[0].value > 0.05
        assert len(receiver.requests) == 1
        body = json.loads(receiver.requests[0].body)
        assert "accuracy-drop" in json.dumps(body)
    finally:
        receiver.close()
    with ml.store.read() as connection:
        kinds = connection.execute(sa.select(events.c.kind)).scalars().all()
    assert "alert.firing" in kinds  # what the retraining trigger listens for


def test_latency_and_drift_signals(ml: mlops.MLOps) -> None:
    model, number = _register(ml)
    frame = _frame(300, seed=6, shift=2.0)
    ml.monitor.record_predictions(
        "churn",
        frame,
        model.predict(frame).tolist(),
        version=number,
        latency_ms=[1500.0] * len(frame),
        ts=[NOW - 60_000] * len(frame),
    )
    alerts = ml.monitor.alerts
    alerts.install_default_rules()
    alerts.create_rule(
        AlertRule(
            name="tenure-drift",
            signal="column_drift",
            threshold=0.5,
            window="1h",
            params={"column": "tenure"},
        )
    )
    alerts.create_rule(
        AlertRule(name="inputs-drift", signal="drift_share", threshold=0.3, window="1h")
    )
    alerts.evaluate(now_ms=NOW)
    firing = {alert.rule: alert for alert in alerts.alerts(state="firing")}
    assert set(firing) == {"latency-p95", "tenure-drift", "inputs-drift"}
    assert firing["latency-p95"].value == pytest.approx(1500.0)


def test_pipeline_failures_signal_counts_failed_runs_in_a_row(ml: mlops.MLOps) -> None:
    tracking = ml.tracking
    experiment = tracking.create_experiment("pipelines").id
    for status in ("FINISHED", "FAILED", "FAILED"):
        run = tracking.start_run(experiment, tags={PIPELINE_TAG: "train"})
        run.end(status)
    ok = tracking.start_run(experiment, tags={PIPELINE_TAG: "ingest"})
    ok.end("FINISHED")
    alerts = ml.monitor.alerts
    alerts.install_default_rules()
    alerts.evaluate()
    firing = alerts.alerts(state="firing")
    assert [(alert.rule, alert.labels.get("pipeline")) for alert in firing] == [
        ("pipeline-failures", "train")
    ]
    assert firing[0].value == 2.0


def test_performance_estimates_with_a_calibrator_fitted_on_the_log(ml: mlops.MLOps) -> None:
    from mlops.monitoring import calibrator_from_log

    model, number = _register(ml)
    frame = _frame(400, seed=7)
    ids = _traffic(ml, model, frame, version=number, start=NOW - 2 * HOUR)
    ml.monitor.record_feedback_batch("churn", ids, _labels(frame).tolist(), ts=NOW)
    calibrator = calibrator_from_log(ml.store, "churn", since=NOW - 2 * HOUR, until=NOW)
    plain = ml.monitor.performance("churn", window="2h", now_ms=NOW)
    calibrated = ml.monitor.performance("churn", window="2h", now_ms=NOW, calibrator=calibrator)
    assert plain.estimated is not None
    assert calibrated.estimated is not None
    assert not plain.estimated.calibrated
    assert calibrated.estimated.calibrated
