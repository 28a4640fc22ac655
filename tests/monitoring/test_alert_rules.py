"""Alert rules (validation, defaults, storage) and silences (matchers, storage)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import mlops.monitoring.alerts as alerts_package
from mlops.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from mlops.monitoring.alerts import (
    COMPARISONS,
    SIGNALS,
    AlertManager,
    AlertRule,
    Matcher,
    SilenceState,
    WebhookNotifier,
    default_rules,
)
from mlops.store import Store
from monitoring.alert_support import Clock, Signals, latency_rule, manager


@pytest.fixture
def alerting(store: Store, clock: Clock) -> AlertManager:
    return manager(store, Signals(), clock)


def test_the_package_exports_exactly_its_public_names_sorted() -> None:
    exported = alerts_package.__all__
    # ruff's isort-style order: CONSTANTS, then Classes, then functions.
    assert exported == sorted(
        exported, key=lambda name: (not name.isupper(), name[0].islower(), name)
    )
    public = {name for name in vars(alerts_package) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(alerts_package, name)).__name__ == "module"}
    assert set(exported) == public - modules


def test_a_rule_normalizes_durations_and_round_trips() -> None:
    rule = AlertRule(
        name="slow-churn",
        signal="latency_p95_ms",
        threshold=800,
        endpoint="churn",
        window="5m",
        for_="2m",
        keep_firing_for=30,
        repeat_interval="1h",
        evaluation_interval="15s",
        labels={"team": "ml", "area": "serving"},
        channels=["ops"],
        group_by=["endpoint"],
        params={"quantile": 0.95},
    )
    assert (rule.window, rule.for_, rule.keep_firing_for) == (300.0, 120.0, 30.0)
    assert (rule.repeat_interval, rule.evaluation_interval) == (3600.0, 15.0)
    assert rule.threshold == 800.0
    assert isinstance(rule.threshold, float)
    assert list(rule.labels) == ["area", "team"]
    assert rule.channels == ("ops",)
    assert rule.group_by == ("endpoint",)
    assert rule.condition == "latency_p95_ms > 800 over 5m"
    params = rule.get_params()
    assert json.loads(json.dumps(params)) == params
    assert AlertRule.from_params(params) == rule


@pytest.mark.parametrize(
    ("comparison", "value", "expected"),
    [
        (">", 2.0, True),
        (">", 1.0, False),
        (">=", 1.0, True),
        ("<", 0.5, True),
        ("<=", 1.5, False),
        ("==", 1.0, True),
        ("!=", 1.0, False),
    ],
)
def test_comparisons_test_the_value_against_the_threshold(
    comparison: str, value: float, expected: bool
) -> None:
    rule = latency_rule(comparison=comparison, threshold=1.0)
    assert rule.holds(value) is expected
    assert set(COMPARISONS) == {">", ">=", "<", "<=", "==", "!="}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Bad Name"}, "lowercase letters"),
        ({"signal": "latency"}, "is unknown; use one of accuracy, precision"),
        ({"comparison": "=>"}, "use one of > >= < <= == !="),
        ({"threshold": float("nan")}, "threshold must be finite"),
        ({"threshold": True}, "threshold must be a number"),
        ({"severity": "page"}, "use info, warning, critical"),
        ({"window": "5x"}, "is not a duration"),
        ({"window": 0}, "window must be longer than 0"),
        ({"for_": -1}, "non-negative"),
        ({"labels": {"severity": "high"}}, "set by the rule itself"),
        ({"labels": {"team": 3}}, "must map strings to strings"),
        ({"labels": {"bad-name": "x"}}, "is not valid"),
        ({"channels": ["Ops Channel"]}, "channels name"),
        ({"channels": ["ops", "ops"]}, "names something twice"),
        ({"group_by": ["end-point"]}, "is not a label name"),
        ({"params": {"when": object()}}, "not JSON-serializable"),
        ({"signal": "column_drift"}, "needs params ['column']"),
        ({"enabled": "yes"}, "enabled must be True or False"),
    ],
)
def test_invalid_rules_say_what_to_fix(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        latency_rule(**overrides)


def test_unknown_rule_parameters_are_rejected_when_loading() -> None:
    params = {**latency_rule().get_params(), "colour": "red"}
    with pytest.raises(InvalidInput, match="'colour'"):
        AlertRule.from_params(params)


def test_every_signal_is_documented() -> None:
    assert all(isinstance(text, str) and text for text in SIGNALS.values())


def test_default_rules() -> None:
    rules = {rule.name: rule for rule in default_rules()}
    accuracy = rules["accuracy-drop"]
    assert (accuracy.signal, accuracy.threshold) == ("accuracy_drop", 0.05)
    assert accuracy.comparison == ">"
    assert (accuracy.window, accuracy.severity) == (3600.0, "critical")
    latency = rules["latency-p95"]
    assert (latency.signal, latency.comparison, latency.threshold) == ("latency_p95_ms", ">", 1000)
    assert (latency.window, latency.severity) == (300.0, "warning")
    pipeline = rules["pipeline-failures"]
    assert (pipeline.signal, pipeline.comparison, pipeline.threshold) == (
        "pipeline_consecutive_failures",
        ">=",
        2.0,
    )
    assert pipeline.severity == "critical"
    assert pipeline.holds(2)
    assert not pipeline.holds(1)


def test_rule_storage(alerting: AlertManager) -> None:
    created = alerting.create_rule(latency_rule("slow", endpoint="churn", window="10m"))
    assert alerting.get_rule("slow") == created
    with pytest.raises(AlreadyExists, match="update_rule"):
        alerting.create_rule(latency_rule("slow"))
    updated = alerting.update_rule("slow", threshold=800, severity="critical")
    assert (updated.threshold, updated.severity, updated.window) == (800.0, "critical", 600.0)
    assert alerting.get_rule("slow") == updated
    alerting.create_rule(latency_rule("errors", signal="error_rate", threshold=0.05, enabled=False))
    assert [rule.name for rule in alerting.rules()] == ["errors", "slow"]
    assert [rule.name for rule in alerting.rules(enabled=True)] == ["slow"]
    with pytest.raises(InvalidInput, match="cannot be renamed"):
        alerting.update_rule("slow", name="slower")
    with pytest.raises(InvalidInput, match="colour"):
        alerting.update_rule("slow", colour="red")
    with pytest.raises(InvalidInput, match="comparison"):
        alerting.update_rule("slow", comparison="~")
    alerting.delete_rule("slow")
    with pytest.raises(NotFound, match="mlops alerts rules"):
        alerting.get_rule("slow")
    with pytest.raises(NotFound, match="no alert rule 'slow'"):
        alerting.delete_rule("slow")


def test_rules_name_existing_channels_only(alerting: AlertManager) -> None:
    with pytest.raises(InvalidInput, match=r"do not exist: \['ops'\].*channels add"):
        alerting.create_rule(latency_rule(channels=["ops"]))
    alerting.create_channel("ops", WebhookNotifier("http://127.0.0.1:9/hook"))
    alerting.create_rule(latency_rule(channels=["ops"]))
    with pytest.raises(Conflict, match="used by rules latency"):
        alerting.delete_channel("ops")
    alerting.delete_channel("ops", force=True)
    assert alerting.get_rule("latency").channels == ()
    with pytest.raises(NotFound, match="no channel 'ops'"):
        alerting.delete_channel("ops")


def test_installing_default_rules_is_idempotent(alerting: AlertManager) -> None:
    created = alerting.install_default_rules()
    assert sorted(rule.name for rule in created) == [
        "accuracy-drop",
        "latency-p95",
        "pipeline-failures",
    ]
    assert alerting.install_default_rules() == []
    assert len(alerting.rules()) == 3


# -- silences -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("endpoint=churn", {"endpoint": "churn"}, True),
        ("endpoint=churn", {"endpoint": "churn2"}, False),
        ("endpoint!=churn", {"endpoint": "fraud"}, True),
        ("endpoint!=churn", {}, True),
        ("severity=~warning|critical", {"severity": "critical"}, True),
        ("severity=~warn", {"severity": "warning"}, False),
        ("severity!~info", {"severity": "warning"}, True),
        ('team="ml ops"', {"team": "ml ops"}, True),
        ("team=", {}, True),
    ],
)
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Matcher.parse(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "message"), [("endpoint", "not like 'label=value'"), ("x=~(", "does not compile")]
)
def test_bad_matchers(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Matcher.parse(text)


def test_silences_are_stored_listed_and_expired(alerting: AlertManager, clock: Clock) -> None:
    with pytest.raises(InvalidInput, match="at least one matcher"):
        alerting.silence(["endpoint=~.*"], duration="1h", comment="everything")
    with pytest.raises(InvalidInput, match="needs a comment"):
        alerting.silence({"endpoint": "churn"}, duration="1h", comment=" ")
    with pytest.raises(InvalidInput, match="either a duration"):
        alerting.silence({"endpoint": "churn"}, comment="both", duration="1h", ends_at=clock.ms)
    now = clock.ms
    active = alerting.silence(
        {"endpoint": "churn"}, duration="2h", comment="maintenance", created_by="alice"
    )
    assert (active.starts_at, active.ends_at) == (now, now + 2 * 3600_000)
    later = alerting.silence(
        ["rule=~lat.*", "severity!=info"],
        comment="later",
        starts_at=now + 3600_000,
        ends_at=now + 7200_000,
    )
    assert [str(matcher) for matcher in later.matchers] == ["rule=~lat.*", "severity!=info"]
    assert [s.id for s in alerting.silences(state="active")] == [active.id]
    assert [s.id for s in alerting.silences(state=SilenceState.PENDING)] == [later.id]
    assert alerting.silences(state="expired") == []
    expired = alerting.expire_silence(active.id)
    assert expired.ends_at == now
    assert expired.state(clock.ms) is SilenceState.EXPIRED
    assert [s.id for s in alerting.silences(state="expired")] == [active.id]
    clock.advance(3 * 3600)
    assert {s.id for s in alerting.silences(state="expired")} == {active.id, later.id}
    with pytest.raises(NotFound, match="no silence with id 999999"):
        alerting.expire_silence(999_999)
    with pytest.raises(InvalidInput, match="silence state 'open'"):
        alerting.silences(state="open")
