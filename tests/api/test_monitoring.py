"""/api/v1 monitoring and alerts over a real server: predictions, feedback, performance,
drift, alert rules, alerts, silences and channels, and who may change them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.applications import Starlette

from api.conftest import LiveServer, assert_error, unique
from mlops.api import api_routes
from mlops.monitoring.alerts import WebhookNotifier

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

ROWS = 80


def frame(seed: int, shift: float = 0.0) -> Any:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"tenure": rng.normal(30 + shift, 10, ROWS), "charges": rng.normal(70, 15, ROWS)}
    )


@pytest.fixture(scope="module")
def churn(ml: Any) -> tuple[str, Any]:
    """A registered classifier with a reference sample; the endpoint has its name."""
    from sklearn.linear_model import LogisticRegression

    train = frame(0)
    model = LogisticRegression().fit(train, (train["tenure"] < 30).astype(int))
    name = unique("churn")
    ml.registry.register_model(
        name, model, input_example=train.head(3), reference_data=train, metrics={"accuracy": 0.9}
    )
    return name, model


def predictions_body(model: Any, data: Any) -> dict[str, Any]:
    return {
        "inputs": data.to_dict("records"),
        "predictions": model.predict(data).tolist(),
        "probabilities": model.predict_proba(data).tolist(),
        "version": 1,
        "latency_ms": 4.5,
    }


def test_predictions_and_feedback_make_performance_and_drift(
    api: httpx.Client, churn: tuple[str, Any]
) -> None:
    endpoint, model = churn
    data = frame(1, shift=25.0)  # older customers than in training: tenure drifts
    recorded = api.post(
        f"/monitoring/endpoints/{endpoint}/predictions", json=predictions_body(model, data)
    )
    assert recorded.status_code == 201, recorded.text
    ids = recorded.json()["request_ids"]
    assert len(ids) == ROWS
    truth = (data["tenure"] < 30).astype(int).tolist()
    feedback = [{"request_id": i, "actual": a} for i, a in zip(ids, truth, strict=True)]
    stored = api.post(f"/monitoring/endpoints/{endpoint}/feedback", json={"feedback": feedback})
    assert stored.status_code == 201, stored.text
    assert stored.json() == {"recorded": ROWS}

    report = api.get(
        f"/monitoring/endpoints/{endpoint}/performance",
        params={"window": "1h", "min_labels": 10, "by": "version"},
    )
    assert report.status_code == 200, report.text
    body = report.json()
    overall = body["overall"]
    assert (overall["requests"], overall["labelled"], overall["status"]) == (ROWS, ROWS, "ok")
    assert 0.9 <= overall["metrics"]["accuracy"] <= 1.0
    assert overall["latency_p50_ms"] == 4.5
    assert body["baseline"] == {"accuracy": 0.9}
    assert "accuracy" in overall["degradation"]
    assert [group["key"] for group in body["groups"]] == [1]
    assert overall["estimated"]["rows"] == ROWS
    plain = api.get(
        f"/monitoring/endpoints/{endpoint}/performance", params={"baseline": "none", "last": 5}
    ).json()
    assert (plain["baseline"], plain["overall"]["requests"], plain["window"]["last"]) == (
        None,
        5,
        5,
    )

    drift = api.get(
        f"/monitoring/endpoints/{endpoint}/drift", params={"window": "1h", "min_rows": 10}
    )
    assert drift.status_code == 200, drift.text
    drifted = drift.json()
    assert {c["name"] for c in drifted["columns"]} == {"tenure", "charges"}
    assert "tenure" in drifted["drifted_columns"]
    assert drifted["prediction"]["name"] == "prediction"
    assert drifted["current_rows"] == ROWS


def test_monitoring_input_is_checked(api: httpx.Client, churn: tuple[str, Any]) -> None:
    endpoint, model = churn
    url = f"/monitoring/endpoints/{endpoint}"
    body = predictions_body(model, frame(2).head(3))
    cases = [
        ({**body, "extra": 1}, "body.extra"),
        ({**body, "predictions": []}, "body.predictions"),
        ({**body, "predictions": [[1], [0], [1]]}, "body.predictions[0]"),
        ({**body, "probabilities": [[1.5, -0.5]] * 3}, "body.probabilities[0][0]"),
        ({**body, "version": 0}, "body.version"),
        ({**body, "ts": -1}, "body.ts"),
        ({**body, "route": "no spaces"}, "body.route"),
    ]
    for payload, field in cases:
        error = assert_error(api.post(f"{url}/predictions", json=payload), 422, "invalid_input")
        assert error["field"].startswith(field), (field, error)
    mismatched = api.post(f"{url}/predictions", json={**body, "predictions": [1]})
    assert (
        "one prediction per input row" in assert_error(mismatched, 422, "invalid_input")["message"]
    )
    bad_name = api.post("/monitoring/endpoints/has%20space/predictions", json=body)
    assert_error(bad_name, 422, "invalid_input")
    nothing = api.post(f"{url}/feedback", json={"feedback": [{"request_id": "a", "actual": None}]})
    assert_error(nothing, 422, "invalid_input")
    assert_error(api.post(f"{url}/feedback", json={"feedback": []}), 422, "invalid_input")
    assert_error(
        api.post(f"{url}/feedback", json={"feedback": [{"request_id": "a", "actual": 1, "x": 2}]}),
        422,
        "invalid_input",
    )
    for params in ({"window": "forever"}, {"window": "99999999999d"}, {"by": "arm"}):
        assert_error(api.get(f"{url}/performance", params=params), 422, "invalid_input")
    assert_error(
        api.get(f"{url}/performance", params={"since": 10, "until": 5}), 422, "invalid_input"
    )
    assert_error(api.get(f"{url}/drift", params={"drift_share": 0}), 422, "invalid_input")
    assert_error(api.get(f"/monitoring/endpoints/{unique('none')}/drift"), 404, "not_found")


# -- alert rules ------------------------------------------------------------------------


def test_alert_rules_are_created_read_replaced_and_deleted(api: httpx.Client) -> None:
    name = unique("latency")
    rule = {
        "name": name,
        "signal": "latency_p95_ms",
        "threshold": 800,
        "endpoint": "churn",
        "window": "5m",
        "for": "1m",
        "severity": "critical",
        "labels": {"team": "ml"},
    }
    created = api.post("/alerts/rules", json=rule)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["window"], body["for"], body["severity"]) == (
        name,
        300.0,
        60.0,
        "critical",
    )
    assert body["condition"] == "latency_p95_ms > 800 over 5m"
    assert api.get(f"/alerts/rules/{name}").json() == body
    assert_error(api.post("/alerts/rules", json=rule), 409, "already_exists")

    replaced = api.put(
        f"/alerts/rules/{name}",
        json={"signal": "error_rate", "threshold": 0.1, "comparison": ">=", "enabled": False},
    )
    assert replaced.status_code == 200, replaced.text
    updated = replaced.json()
    assert (updated["signal"], updated["threshold"], updated["enabled"]) == (
        "error_rate",
        0.1,
        False,
    )
    assert (updated["labels"], updated["for"]) == ({}, 0.0)  # PUT replaces every field
    disabled = api.get("/alerts/rules", params={"enabled": False}).json()["rules"]
    assert name in [r["name"] for r in disabled]

    second = unique("errors")
    api.post("/alerts/rules", json={"name": second, "signal": "error_rate", "threshold": 0.2})
    first = api.get("/alerts/rules", params={"limit": 1}).json()
    assert first["next_page_token"]
    rest = api.get("/alerts/rules", params={"page_token": first["next_page_token"]}).json()
    names = [r["name"] for r in first["rules"] + rest["rules"]]
    assert names == sorted(names)
    assert {name, second} <= set(names)

    assert api.delete(f"/alerts/rules/{name}").status_code == 204
    assert_error(api.get(f"/alerts/rules/{name}"), 404, "not_found")
    assert_error(api.delete(f"/alerts/rules/{name}"), 404, "not_found")
    assert_error(api.put(f"/alerts/rules/{name}", json={"signal": "requests", "threshold": 1}),
                 404, "not_found")  # fmt: skip


def test_alert_rule_input_is_checked(api: httpx.Client) -> None:
    base = {"name": unique("r"), "signal": "error_rate", "threshold": 0.1}
    cases = [
        ({**base, "signal": "vibes"}, "body.signal"),
        ({**base, "threshold": "high"}, "body.threshold"),
        ({**base, "comparison": "=>"}, "body.comparison"),
        ({**base, "window": "5 minutes"}, "body.window"),
        ({**base, "window": 10**12}, "body.window"),
        ({**base, "severity": "loud"}, "body.severity"),
        ({**base, "name": "Has Caps"}, "body.name"),
        ({**base, "owner": "x"}, "body.owner"),
    ]
    for payload, field in cases:
        error = assert_error(api.post("/alerts/rules", json=payload), 422, "invalid_input")
        assert error["field"] == field, (payload, error)
    assert_error(api.post("/alerts/rules", json={**base, "window": 0}), 422, "invalid_input")
    missing_channel = api.post("/alerts/rules", json={**base, "channels": ["pager"]})
    assert "do not exist" in assert_error(missing_channel, 422, "invalid_input")["message"]
    renamed = api.put(f"/alerts/rules/{base['name']}", json={**base})
    assert assert_error(renamed, 422, "invalid_input")["field"] == "body.name"


# -- alerts, silences, channels ---------------------------------------------------------


def test_a_firing_alert_is_listed_and_silenced(
    api: httpx.Client, ml: Any, churn: tuple[str, Any]
) -> None:
    endpoint, model = churn
    api.post(
        f"/monitoring/endpoints/{endpoint}/predictions", json=predictions_body(model, frame(3))
    )
    rule = unique("busy")
    created = api.post(
        "/alerts/rules",
        json={"name": rule, "signal": "requests", "threshold": 0, "endpoint": endpoint},
    )
    assert created.status_code == 201, created.text
    ml.monitor.alerts.evaluate()

    firing = api.get("/alerts", params={"state": "firing", "rule": rule}).json()["alerts"]
    assert [(a["rule"], a["labels"]["endpoint"], a["silenced"]) for a in firing] == [
        (rule, endpoint, False)
    ]
    assert firing[0]["value"] >= ROWS
    assert api.get(f"/alerts/{firing[0]['id']}").json()["state"] == "firing"
    assert api.get("/alerts", params={"state": "resolved", "rule": rule}).json()["alerts"] == []

    silence = api.post(
        "/alerts/silences",
        json={
            "matchers": [f"rule={rule}", {"name": "endpoint", "op": "=~", "value": "churn.*"}],
            "duration": "2h",
            "comment": "known load test",
        },
        headers={"X-MLOps-Actor": "ana"},
    )
    assert silence.status_code == 201, silence.text
    made = silence.json()
    assert (made["state"], made["created_by"]) == ("active", "ana")
    assert made["ends_at"] - made["starts_at"] == 2 * 3600 * 1000
    assert made["matchers"][1] == {"name": "endpoint", "op": "=~", "value": "churn.*"}
    again = api.get("/alerts", params={"state": "firing", "rule": rule}).json()["alerts"]
    assert again[0]["silenced"] is True
    listed = api.get("/alerts/silences", params={"state": "active"}).json()["silences"]
    assert made["id"] in [s["id"] for s in listed]

    assert api.delete(f"/alerts/silences/{made['id']}").status_code == 204
    expired = api.get("/alerts/silences", params={"state": "expired"}).json()["silences"]
    assert made["id"] in [s["id"] for s in expired]


def test_alert_and_silence_input_is_checked(api: httpx.Client) -> None:
    assert_error(api.get("/alerts/987654"), 404, "not_found")
    assert_error(api.get(f"/alerts/{2**40}"), 404, "not_found")
    assert_error(api.get("/alerts", params={"state": "burning"}), 422, "invalid_input")
    assert_error(api.delete("/alerts/silences/987654"), 404, "not_found")
    good = {"matchers": ["endpoint=churn"], "comment": "why", "duration": "1h"}
    cases = [
        ({**good, "ends_at": 99999999999}, "body"),
        ({k: v for k, v in good.items() if k != "duration"}, "body"),
        ({**good, "matchers": []}, "body.matchers"),
        ({**good, "comment": ""}, "body.comment"),
        ({**good, "duration": "soon"}, "body.duration"),
        ({**good, "matchers": [{"name": "endpoint", "op": "~", "value": "x"}]}, "body.matchers"),
        ({**good, "muted": True}, "body.muted"),
    ]
    for payload, field in cases:
        error = assert_error(api.post("/alerts/silences", json=payload), 422, "invalid_input")
        assert error["field"].startswith(field), (payload, error)
    unparsable = api.post("/alerts/silences", json={**good, "matchers": ["no operator"]})
    assert "not like 'label=value'" in assert_error(unparsable, 422, "invalid_input")["message"]
    past = api.post("/alerts/silences", json={**good, "duration": None, "ends_at": 1000})
    assert_error(past, 422, "invalid_input")


def test_channels_are_listed_without_their_secrets(api: httpx.Client, ml: Any) -> None:
    name = unique("hook")
    ml.monitor.alerts.create_channel(
        name,
        WebhookNotifier(
            "https://hooks.example.com/abc", secret="s3cret-value", headers={"X-Key": "k3y"}
        ),
    )
    response = api.get("/alerts/channels")
    assert response.status_code == 200
    assert "s3cret-value" not in response.text
    assert "k3y" not in response.text
    channel = next(c for c in response.json()["channels"] if c["name"] == name)
    assert (channel["kind"], channel["params"]["secret"]) == ("webhook", "***")


# -- roles ------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def token_for(ml: Any, role: str) -> str:
    user = unique(role)
    ml.access.create_user(user, role)
    token, _ = ml.access.create_token(user, name="monitoring-tests")
    return str(token)


@pytest.fixture(scope="module")
def strict(ml: Any) -> Iterator[httpx.Client]:
    """A client of an API that requires a token on every request."""
    live = LiveServer(Starlette(routes=api_routes(ml, auth="required")), ready_status=401).start()
    with httpx.Client(base_url=live.url + "/api/v1", timeout=30.0) as client:
        yield client
    live.stop()


def test_roles_gate_every_change(strict: httpx.Client, ml: Any, churn: tuple[str, Any]) -> None:
    endpoint, model = churn
    viewer, editor, deployer = (token_for(ml, r) for r in ("viewer", "editor", "deployer"))
    rule = unique("gated")
    silence = {"matchers": ["endpoint=x"], "comment": "c", "duration": "1h"}
    existing = ml.monitor.alerts.silence({"endpoint": "y"}, comment="c", duration="1h")
    changes: list[tuple[str, str, dict[str, Any] | None, str]] = [
        ("POST", "/alerts/rules", {"name": rule, "signal": "requests", "threshold": 1}, "alerts"),
        ("PUT", f"/alerts/rules/{rule}", {"signal": "requests", "threshold": 2}, "alerts"),
        ("POST", "/alerts/silences", silence, "alerts"),
        ("DELETE", f"/alerts/silences/{existing.id}", None, "alerts"),
        ("DELETE", f"/alerts/rules/{rule}", None, "alerts"),
        (
            "POST",
            f"/monitoring/endpoints/{endpoint}/predictions",
            predictions_body(model, frame(4).head(2)),
            "deployments",
        ),
        (
            "POST",
            f"/monitoring/endpoints/{endpoint}/feedback",
            {"feedback": [{"request_id": "r1", "actual": 1}]},
            "deployments",
        ),
    ]
    for method, url, body, permission in changes:
        for token in (viewer, editor):
            refused = strict.request(method, url, json=body, headers=bearer(token))
            error = assert_error(refused, 403, "permission_denied")
            assert f"'{permission}.write'" in error["message"], (method, url)
    for method, url, body, _ in changes:
        allowed = strict.request(method, url, json=body, headers=bearer(deployer))
        assert allowed.is_success, (method, url, allowed.text)
    for url in (
        "/alerts",
        "/alerts/rules",
        "/alerts/silences",
        "/alerts/channels",
        f"/monitoring/endpoints/{endpoint}/performance",
    ):
        assert strict.get(url, headers=bearer(viewer)).status_code == 200, url
    assert_error(strict.get("/alerts"), 401, "unauthenticated")


def test_alert_changes_are_recorded_under_the_caller(
    strict: httpx.Client, api: httpx.Client, ml: Any
) -> None:
    deployer = token_for(ml, "deployer")
    user = ml.access.authenticate(deployer).name
    rule = unique("audited")
    changes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/alerts/rules", {"name": rule, "signal": "requests", "threshold": 1}),
        ("PUT", f"/alerts/rules/{rule}", {"signal": "requests", "threshold": 2}),
        ("DELETE", f"/alerts/rules/{rule}", None),
    ]
    for method, url, body in changes:
        done = strict.request(method, url, json=body, headers=bearer(deployer))
        assert done.is_success, (method, url, done.text)
    audited = [
        (entry.action, entry.actor)
        for entry in reversed(ml.audit.list(target=f"alert_rules/{rule}", limit=100))
    ]
    assert audited == [
        ("alert_rule.created", user),
        ("alert_rule.updated", user),
        ("alert_rule.deleted", user),
    ]

    # Without a token, the X-MLOps-Actor header names who asked.
    who = {"X-MLOps-Actor": "oncall"}
    body = {"matchers": ["endpoint=z"], "comment": "deploying", "duration": "1h"}
    made = api.post("/alerts/silences", json=body, headers=who)
    assert made.status_code == 201, made.text
    assert api.delete(f"/alerts/silences/{made.json()['id']}", headers=who).status_code == 204
    audited = [
        (entry.action, entry.actor)
        for entry in reversed(
            ml.audit.list(target=f"alert_silences/{made.json()['id']}", limit=100)
        )
    ]
    assert audited == [("alert_silence.created", "oncall"), ("alert_silence.expired", "oncall")]


#: SQLite only (see tests/conftest.py): HTTP onto the facade; both stores are covered by the
#: monitoring suites and the API fuzz.
SQLITE_ONLY = True
