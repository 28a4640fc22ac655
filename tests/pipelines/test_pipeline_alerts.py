"""Failed pipeline runs feed monitoring's seed rule: two failures in a row fire an alert."""

from __future__ import annotations

import mlops
from mlops.pipelines import Pipeline, run_pipeline, step


@step(cache=False)
def extract(fail: bool) -> int:
    if fail:
        raise RuntimeError("the source is down")
    return 1


def test_two_consecutive_failures_fire_the_pipeline_failures_rule(ml: mlops.MLOps) -> None:
    pipeline = Pipeline("nightly", [extract], params={"fail": True})
    alerts = ml.monitor.alerts
    alerts.install_default_rules()

    assert not run_pipeline(ml, pipeline, experiment="etl").succeeded
    alerts.evaluate()
    assert alerts.alerts(state="firing") == []  # one failure is not yet a pattern

    assert not run_pipeline(ml, pipeline, experiment="etl").succeeded
    alerts.evaluate(alerts.now_ms() + 60_000)
    firing = alerts.alerts(state="firing")
    assert [(alert.rule, alert.labels["pipeline"], alert.value) for alert in firing] == [
        ("pipeline-failures", "nightly", 2.0)
    ]

    assert run_pipeline(ml, pipeline, params={"fail": False}, experiment="etl").succeeded
    alerts.evaluate(alerts.now_ms() + 120_000)
    assert alerts.alerts(state="firing") == []
