"""`mlops alerts …` through Typer's runner, on a root app like mlops's own, against a real store."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mlops.cli._alerts import alerts_app
from mlops.cli._app import _ReportingGroup
from mlops.cli._common import CliState
from mlops.monitoring.alerts import AlertManager, WebhookNotifier
from mlops.store import Store
from monitoring.alert_support import BACKENDS, Clock, Signals, backend_store, latency_rule


# The CLI only formats what AlertManager returns (tested on both databases), and each
# invocation connects afresh, so SQLite is enough here, as for the other CLI tests.
@pytest.fixture(params=BACKENDS[:1])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    for name in ("MLOPS_HOME", "MLOPS_DATABASE_URL", "MLOPS_ARTIFACT_ROOT", "MLOPS_USER"):
        monkeypatch.delenv(name, raising=False)
    with backend_store(request, tmp_path) as store:
        yield store


class Cli:
    """Runs ``mlops alerts …`` on a root app that connects to ``store`` as mlops's does."""

    def __init__(self, store: Store, home: Path) -> None:
        self.app = typer.Typer(cls=_ReportingGroup, no_args_is_help=True)

        @self.app.callback()
        def root(ctx: typer.Context) -> None:
            state = CliState(database_url=store.url, home=home)
            ctx.obj = state
            ctx.call_on_close(state.close)

        self.app.add_typer(alerts_app, name="alerts")

    def run(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(self.app, ["alerts", *args], env={"COLUMNS": "250"})
        return result.exit_code, result.output

    def ok(self, *args: str) -> str:
        code, output = self.run(*args)
        assert code == 0, output
        return output

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


def unreachable_webhook() -> WebhookNotifier:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return WebhookNotifier(f"http://127.0.0.1:{port}/x", timeout=2)


@pytest.fixture
def cli(store: Store, tmp_path: Path) -> Cli:
    return Cli(store, tmp_path / "home")


def test_rules(cli: Cli) -> None:
    assert "created accuracy-drop, latency-p95, pipeline-failures" in cli.ok("rules", "defaults")
    assert "exist already" in cli.ok("rules", "defaults")
    table = cli.ok("rules")
    assert "latency_p95_ms > 1000 over 5m" in table
    assert "accuracy_drop > 0.05 over 1h" in table
    added = cli.json(
        "rules",
        "add",
        "slow",
        "--signal",
        "latency_p95_ms",
        "--threshold",
        "800",
        "--endpoint",
        "churn",
        "--for",
        "1m",
        "--window",
        "10m",
        "--label",
        "team=ml",
        "--param",
        "quantile=0.95",
        "--severity",
        "critical",
    )
    assert (added["for_"], added["window"], added["threshold"]) == (60.0, 600.0, 800.0)
    assert (added["labels"], added["params"]) == ({"team": "ml"}, {"quantile": 0.95})
    code, output = cli.run(
        "rules", "add", "slow", "--signal", "latency_p95_ms", "--threshold", "900"
    )
    assert code == 1
    assert "error: alert rule 'slow' exists" in output
    assert "Traceback" not in output
    replaced = cli.json(
        "rules", "add", "slow", "--signal", "error_rate", "--threshold", "0.1", "--replace"
    )
    assert (replaced["signal"], replaced["endpoint"]) == ("error_rate", None)
    assert "rule slow disabled" in cli.ok("rules", "disable", "slow")
    assert [r["enabled"] for r in cli.json("rules") if r["name"] == "slow"] == [False]
    cli.ok("rules", "enable", "slow")
    assert "deleted rule slow" in cli.ok("rules", "delete", "slow")
    assert [r["name"] for r in cli.json("rules")] == [
        "accuracy-drop",
        "latency-p95",
        "pipeline-failures",
    ]
    code, output = cli.run("rules", "add", "x", "--signal", "nope", "--threshold", "1")
    assert code == 1
    assert "signal 'nope' is unknown; use one of accuracy" in output
    code, output = cli.run("rules", "delete", "nope")
    assert (code, "see the rules with `mlops alerts rules`" in output) == (1, True)


def test_channels(cli: Cli) -> None:
    output = cli.ok("channels", "add", "hook", "--kind", "webhook", "--url", "http://127.0.0.1:9/x")
    secret = output.split("secret: ")[1].split()[0]
    assert len(secret) >= 32
    cli.ok(
        "channels",
        "add",
        "mail",
        "--kind",
        "email",
        "--smtp-host",
        "smtp.example.com",
        "--sender",
        "mlops@example.com",
        "--to",
        "a@example.com",
        "--to",
        "b@example.com",
        "--username",
        "u",
        "--password",
        "p",
        "--starttls",
    )
    listed = cli.json("channels")
    assert [(c["name"], c["kind"]) for c in listed] == [("hook", "webhook"), ("mail", "email")]
    assert listed[0]["params"]["secret"] == "***"
    assert listed[1]["params"]["recipients"] == ["a@example.com", "b@example.com"]
    assert listed[1]["params"]["password"] == "***"
    assert secret not in cli.ok("channels")
    cli.ok(
        "rules",
        "add",
        "slow",
        "--signal",
        "latency_p95_ms",
        "--threshold",
        "800",
        "--channel",
        "hook",
    )
    code, output = cli.run("channels", "remove", "hook")
    assert code == 1
    assert "used by rules slow" in output
    assert "removed channel hook" in cli.ok("channels", "remove", "hook", "--force")
    code, output = cli.run("channels", "add", "x", "--kind", "sms")
    assert (code, "--kind 'sms' is unknown; use one of slack, webhook, email" in output) == (
        1,
        True,
    )
    code, output = cli.run("channels", "add", "x", "--kind", "slack")
    assert (code, "needs --url" in output) == (1, True)


def test_silences(cli: Cli) -> None:
    output = cli.ok(
        "silence",
        "--match",
        "endpoint=churn",
        "-m",
        "severity=~warn.*",
        "--duration",
        "2h",
        "--comment",
        "maintenance",
        "--author",
        "alice",
    )
    assert "endpoint=churn, severity=~warn.* until" in output
    (silence,) = cli.json("silences")
    assert f"silence {silence['id']}: " in output
    assert (silence["state"], silence["comment"], silence["created_by"]) == (
        "active",
        "maintenance",
        "alice",
    )
    assert silence["ends_at"] - silence["starts_at"] == 2 * 3600 * 1000
    assert f"silence {silence['id']} expired" in cli.ok("unsilence", str(silence["id"]))
    assert cli.json("silences") == []
    assert [s["state"] for s in cli.json("silences", "--all")] == ["expired"]
    code, output = cli.run("silence", "--match", "endpoint", "--comment", "x")
    assert (code, "not like 'label=value'" in output) == (1, True)
    code, output = cli.run("unsilence", "999999")
    assert (code, "no silence with id 999999" in output) == (1, True)


def test_list_alerts_and_notifications(cli: Cli, store: Store) -> None:
    signals, clock = Signals(), Clock()
    alerting = AlertManager(store, signals=signals, clock=clock)
    alerting.create_channel("gone", unreachable_webhook())
    alerting.create_rule(latency_rule(channels=["gone"]))
    signals.set("latency", 1500.0, endpoint="churn")
    signals.set("latency", 1500.0, endpoint="fraud")
    alerting.evaluate()
    signals.set("latency", 10.0, endpoint="fraud")
    clock.advance(60)
    alerting.evaluate()
    firing = cli.json("list", "--state", "firing")
    assert [(a["rule"], a["labels"]["endpoint"]) for a in firing] == [("latency", "churn")]
    assert [a["state"] for a in cli.json("list", "--endpoint", "fraud")] == ["resolved"]
    assert len(cli.json("list", "--rule", "latency", "--label", "severity=warning")) == 2
    assert cli.json("list", "--rule", "other") == []
    table = cli.ok("list")
    assert "2 alerts" in table
    assert "endpoint=churn" in table
    log = cli.json("notifications", "--status", "failed")
    assert {entry["channel"] for entry in log} == {"gone"}
    code, output = cli.run("list", "--state", "open")
    assert (code, "use one of pending, firing, resolved, active" in output) == (1, True)
