"""The monitoring and alerts pages in a real browser, over two hours of recorded traffic:
a normal hour, then an hour where two features shift and the outcome rule changes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlops.monitoring.alerts import AlertRule
from ui.conftest import screenshot, unique, wait_for_charts

SQLITE_ONLY = True

_FEATURES = ["tenure", "charges", "calls"]
_SHIFTED = {"tenure": 1.0, "calls": -0.8}  # column → mean shift in standard deviations
_WEIGHTS = np.array([-1.4, 0.9, 1.2])
_DRIFTED_WEIGHTS = np.array([-1.4, 0.9, -1.2])
_REQUESTS_PER_HOUR = 600
_MINUTE = 60_000


@dataclass(frozen=True)
class Seeded:
    endpoint: str
    rule: str


@pytest.fixture(scope="module")
def seeded(ui_ml: Any) -> Seeded:
    """An endpoint's log (as ``_demo_monitoring`` records it) and a drift rule firing on it."""
    endpoint = unique("mon-churn")
    rng = np.random.default_rng(11)
    train = pd.DataFrame(rng.normal(size=(1000, 3)), columns=_FEATURES)
    labels = (train.to_numpy() @ _WEIGHTS > 0).astype(int)
    model = LogisticRegression().fit(train, labels)
    version = ui_ml.registry.register_model(
        endpoint,
        model,
        input_example=train.head(3),
        reference_data=train,
        metrics={"val_accuracy": 0.95},
    )
    now = int(time.time() * 1000)
    hours = (
        (now - 118 * _MINUTE, _WEIGHTS, {}),  # the normal hour
        (now - 58 * _MINUTE, _DRIFTED_WEIGHTS, _SHIFTED),  # shifted inputs, changed rule
    )
    for start, weights, shift in hours:
        live = pd.DataFrame(rng.normal(size=(_REQUESTS_PER_HOUR, 3)), columns=_FEATURES)
        for column, delta in shift.items():
            live[column] += delta
        logits = live.to_numpy() @ weights + rng.normal(scale=0.5, size=len(live))
        actual = (logits > 0).astype(int)
        stamps = np.sort(rng.integers(start, start + 55 * _MINUTE, len(live)))
        ids = ui_ml.monitor.record_predictions(
            endpoint,
            live,
            model.predict(live).tolist(),
            probabilities=model.predict_proba(live).tolist(),
            version=version.number,
            latency_ms=rng.gamma(4.0, 2.0, len(live)).round(2).tolist(),
            ts=stamps.tolist(),
        )
        ui_ml.monitor.record_feedback_batch(endpoint, ids, actual.tolist(), ts=now)
    rule = unique("mon-drift")
    ui_ml.monitor.alerts.create_rule(
        AlertRule(
            name=rule,
            signal="drift_share",
            comparison=">=",
            threshold=0.2,
            window="1h",
            severity="warning",
            endpoint=endpoint,
            description="$value of the inputs of $endpoint drifted in the last hour.",
        )
    )
    ui_ml.monitor.alerts.evaluate(now_ms=now)
    assert [a.rule for a in ui_ml.monitor.alerts.alerts(state="firing", endpoint=endpoint)] == [
        rule
    ]
    return Seeded(endpoint, rule)


def test_overview_has_a_card_per_endpoint(page: Any, ui_server: Any, seeded: Seeded) -> None:
    page.goto(ui_server.url + "/ui/monitoring")
    card = page.locator(f'.endpoint-card[data-endpoint="{seeded.endpoint}"]')
    assert card.locator(".requests").inner_text() == str(_REQUESTS_PER_HOUR)
    assert card.locator("[data-firing]").inner_text() == "1 firing"
    assert card.locator(".drifted").inner_text() == "2 / 3"
    assert page.locator("main").get_attribute("data-refresh") == "5"
    assert page.locator("#alerts-link").get_attribute("href") == "/ui/alerts"
    link = card.locator("h2 a")
    assert link.get_attribute("href") == f"/ui/monitoring/{seeded.endpoint}"
    screenshot(page, "monitoring-overview")


def test_endpoint_page_charts_and_drift(page: Any, ui_server: Any, seeded: Seeded) -> None:
    # plotly draws the charts on DOMContentLoaded; wait for them, not for every resource
    page.goto(f"{ui_server.url}/ui/monitoring/{seeded.endpoint}?window=6h", wait_until="commit")
    # requests, errors, latency, quality, and a histogram per feature and the predictions
    wait_for_charts(page, 4 + len(_FEATURES) + 1)
    traces = page.evaluate(
        "id => document.getElementById(id).data.map(t => t.name)", "chart-quality"
    )
    assert {"accuracy", "f1", "accuracy baseline"} <= set(traces)
    baseline = page.evaluate(
        "() => document.getElementById('chart-quality').data"
        ".find(t => t.name === 'accuracy baseline')"
    )
    assert baseline["line"]["dash"] == "dash"
    assert baseline["y"] == [0.95, 0.95]
    requests = page.evaluate("() => document.getElementById('chart-requests').data[0].y")
    assert sum(value or 0 for value in requests) == 2 * _REQUESTS_PER_HOUR
    rows = page.locator("#drift-table tbody tr")
    verdicts = {
        rows.nth(i).get_attribute("data-column"): rows.nth(i).get_attribute("data-drifted")
        for i in range(rows.count())
    }
    assert verdicts == {"tenure": "true", "calls": "true", "charges": "false", "prediction": "true"}
    assert page.locator('#drift-table tr[data-column="tenure"] .badge').inner_text() == "drifted"
    histogram = page.evaluate("() => document.getElementById('drift-hist-0').data.map(t => t.name)")
    assert histogram == ["reference", "current"]
    assert page.locator(f'#endpoint-alerts tr[data-rule="{seeded.rule}"]').is_visible()
    screenshot(page, "monitoring-endpoint")


def test_alerts_page_and_silences(page: Any, ui_server: Any, ui_ml: Any, seeded: Seeded) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(ui_server.url + "/ui/alerts")
    row = page.locator(f'#firing-table tr[data-rule="{seeded.rule}"]')
    assert seeded.endpoint in row.inner_text()
    assert page.locator(f'#rules-table tr[data-rule="{seeded.rule}"]').is_visible()

    # a silence from the form
    form = page.locator("#silence-form")
    form.locator("textarea[name=matchers]").fill(f"endpoint={seeded.endpoint}")
    form.locator("input[name=duration]").fill("1h")
    form.locator("input[name=comment]").fill("retraining on the new data")
    form.locator("button[data-action='create silence']").click()
    page.wait_for_url("**/ui/alerts?done=silenced")
    assert page.locator("#done").inner_text() == "Silence created."
    created = [
        s
        for s in ui_ml.monitor.alerts.silences(state="active")
        if [str(m) for m in s.matchers] == [f"endpoint={seeded.endpoint}"]
    ]
    assert len(created) == 1
    assert created[0].comment == "retraining on the new data"
    silence_row = page.locator(f'#silences-table tr[data-silence="{created[0].id}"]')
    assert "retraining on the new data" in silence_row.inner_text()

    # a silence of one alert (its labels), then expiring the first one
    page.locator(f'#firing-table tr[data-rule="{seeded.rule}"] button[data-action=silence]').click()
    page.wait_for_url("**/ui/alerts?done=silenced")
    by_alert = [
        s
        for s in ui_ml.monitor.alerts.silences(state="active")
        if f"rule={seeded.rule}" in [str(m) for m in s.matchers]
    ]
    assert len(by_alert) == 1
    screenshot(page, "monitoring-alerts")
    silence_row.locator("button[data-action=expire]").click()
    page.wait_for_url("**/ui/alerts?done=expired")
    assert (
        page.locator(f'#silences-table tr[data-silence="{created[0].id}"]').get_attribute(
            "data-state"
        )
        == "expired"
    )


def test_unknown_endpoint_and_bad_window(page: Any, ui_server: Any, seeded: Seeded) -> None:
    response = page.goto(ui_server.url + "/ui/monitoring/no-such-endpoint")
    assert response.status == 404
    assert "no monitored endpoint 'no-such-endpoint'" in page.locator(".error-message").inner_text()
    response = page.goto(f"{ui_server.url}/ui/monitoring/{seeded.endpoint}?window=2h")
    assert response.status == 400
    assert "use one of 1h, 6h, 24h, 7d" in page.locator(".error-message").inner_text()


def test_silence_post_needs_the_csrf_token(ui_server: Any, seeded: Seeded) -> None:
    answer = httpx.post(
        ui_server.url + "/ui/alerts/silences",
        data={"matchers": f"endpoint={seeded.endpoint}", "comment": "x", "duration": "1h"},
    )
    assert answer.status_code == 403
