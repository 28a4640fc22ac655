"""Notifiers and notification semantics, against a real HTTP receiver and SMTP server."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from http_receiver import Receiver
from mlops.errors import AlreadyExists, InvalidInput
from mlops.monitoring.alerts import (
    AlertManager,
    EmailNotifier,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
    check_notifier,
)
from mlops.store import Store
from monitoring.alert_support import Clock, Signals, latency_rule, manager


@pytest.fixture
def alerting(store: Store, signals: Signals, clock: Clock) -> AlertManager:
    return manager(store, signals, clock, max_attempts=2, http_timeout=5.0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(request.body) for request in receiver.received()]


def hook(alerting: AlertManager, receiver: Receiver, name: str = "hook") -> str:
    """A webhook channel to ``receiver``; returns its secret."""
    channel = alerting.create_channel(name, WebhookNotifier(f"{receiver.url}/{name}"))
    assert channel.secret is not None
    return channel.secret


# -- the notifier contract ----------------------------------------------------------------


@pytest.mark.parametrize(
    "notifier",
    [
        SlackNotifier("https://hooks.slack.com/services/T0/B0/x"),
        WebhookNotifier("https://example.com/hook", secret="s", headers={"X-Team": "ml"}),
        EmailNotifier(
            "smtp.example.com",
            sender="mlops@example.com",
            recipients=["oncall@example.com"],
            port=587,
            username="u",
            password="p",
            starttls=True,
            timeout=3.0,
        ),
    ],
    ids=["slack", "webhook", "email"],
)
def test_every_notifier_keeps_the_contract(notifier: Notifier) -> None:
    check_notifier(notifier)


@pytest.mark.parametrize(
    ("notifier", "message"),
    [
        (SlackNotifier("ftp://hooks.slack.com/x"), "not an http"),
        (WebhookNotifier("https://example.com", secret=""), "non-empty string"),
        (WebhookNotifier("https://example.com", timeout=0), "positive number"),
        (EmailNotifier("smtp", sender="nobody", recipients=["a@b.org"]), "not an address"),
        (EmailNotifier("smtp", sender="a@b.org", recipients="c@d.org"), "non-empty list"),  # type: ignore[arg-type]
        (
            EmailNotifier(
                "smtp", sender="a@b.org", recipients=["c@d.org"], ssl=True, starttls=True
            ),
            "not both",
        ),
        (EmailNotifier("smtp", sender="a@b.org", recipients=["c@d.org"], port=0), "port"),
    ],
)
def test_notifiers_validate_when_used(notifier: Notifier, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        notifier.validate()


def test_channels_hide_credentials(alerting: AlertManager, receiver: Receiver) -> None:
    created = alerting.create_channel("hook", WebhookNotifier(f"{receiver.url}/x"))
    assert created.secret is not None
    assert len(created.secret) >= 32
    given = alerting.create_channel("signed", WebhookNotifier(receiver.url, secret="mine"))
    assert given.secret == "mine"
    alerting.create_channel("slack", SlackNotifier(f"{receiver.url}/services/T/B/secret"))
    listed = {channel.name: channel for channel in alerting.channels()}
    assert list(listed) == ["hook", "signed", "slack"]
    assert listed["hook"].params["secret"] == "***"
    assert listed["hook"].secret is None
    assert listed["slack"].params["url"] == f"{receiver.url}/…"
    assert alerting.get_channel("signed").kind == "webhook"
    with pytest.raises(AlreadyExists, match="channels remove hook"):
        alerting.create_channel("hook", SlackNotifier(receiver.url))
    with pytest.raises(InvalidInput, match="channel name"):
        alerting.create_channel("Hook!", SlackNotifier(receiver.url))
    with pytest.raises(InvalidInput, match="not an http"):
        alerting.create_channel("bad", SlackNotifier("hooks.slack.com"))
    with pytest.raises(InvalidInput, match="needs a notifier"):
        alerting.create_channel("bad", object())  # type: ignore[arg-type]


# -- delivery -----------------------------------------------------------------------------


def test_webhook_messages_are_signed_and_grouped(
    alerting: AlertManager, signals: Signals, receiver: Receiver
) -> None:
    secret = hook(alerting, receiver)
    alerting.create_rule(latency_rule(channels=["hook"], group_by=["rule"]))
    signals.set("latency", 1500.0, endpoint="churn")
    signals.set("latency", 2500.0, endpoint="fraud")
    alerting.evaluate()
    (request,) = receiver.received()
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-MLOps-Signature"] == expected
    assert request.headers["X-MLOps-Event"] == "alert.firing"
    assert request.path == "/hook"
    body = json.loads(request.body)
    assert (body["kind"], body["channel"], body["group_labels"]) == (
        "firing",
        "hook",
        {"rule": "latency"},
    )
    assert body["title"] == "[FIRING:2] warning latency"
    assert body["common_labels"] == {"rule": "latency", "severity": "warning"}
    assert sorted(alert["labels"]["endpoint"] for alert in body["alerts"]) == ["churn", "fraud"]
    assert {alert["state"] for alert in body["alerts"]} == {"firing"}
    (record,) = alerting.notifications()
    assert (record.channel, record.kind, record.status, record.error) == (
        "hook",
        "firing",
        "sent",
        None,
    )
    assert sorted(record.alert_ids) == sorted(alert["id"] for alert in body["alerts"])


def test_default_grouping_sends_one_message_per_endpoint(
    alerting: AlertManager, signals: Signals, receiver: Receiver
) -> None:
    hook(alerting, receiver)
    alerting.create_rule(latency_rule(channels=["hook"]))
    signals.set("latency", 1500.0, endpoint="churn")
    signals.set("latency", 2500.0, endpoint="fraud")
    alerting.evaluate()
    groups = sorted(body["group_labels"]["endpoint"] for body in bodies(receiver))
    assert groups == ["churn", "fraud"]


def test_slack_messages_are_coloured_by_severity(
    alerting: AlertManager, signals: Signals, clock: Clock, receiver: Receiver
) -> None:
    alerting.create_channel("slack", SlackNotifier(f"{receiver.url}/services/T/B/x"))
    alerting.create_rule(
        latency_rule(
            channels=["slack"], severity="critical", description="p95 on $endpoint is $value ms"
        )
    )
    signals.set("latency", 1500.0, endpoint="churn")
    alerting.evaluate()
    signals.set("latency", 100.0, endpoint="churn")
    clock.advance(60)
    alerting.evaluate()
    firing, resolved = bodies(receiver)
    assert firing["text"] == "[FIRING:1] critical latency (endpoint=churn)"
    (attachment,) = firing["attachments"]
    assert attachment["color"] == "#d00000"
    assert attachment["text"] == "p95 on churn is 1500 ms"
    assert attachment["title"] == "latency: latency_p95_ms is 1500 (> 1000)"
    assert resolved["text"].startswith("[RESOLVED:1]")
    assert resolved["attachments"][0]["color"] == "#2eb886"
    assert receiver.received()[0].headers["Content-Type"] == "application/json"


def test_a_firing_alert_is_repeated_only_after_repeat_interval_and_resolved_once(
    alerting: AlertManager, signals: Signals, clock: Clock, receiver: Receiver
) -> None:
    hook(alerting, receiver)
    alerting.create_rule(latency_rule(channels=["hook"], repeat_interval="1h"))
    signals.set("latency", 1500.0, endpoint="churn")
    for _ in range(6):  # ten-minute ticks: one message
        alerting.evaluate()
        clock.advance(600)
    assert [body["kind"] for body in bodies(receiver)] == ["firing"]
    alerting.evaluate()  # an hour after the first message
    assert [body["kind"] for body in bodies(receiver)] == ["firing", "firing"]
    signals.set("latency", 100.0, endpoint="churn")
    for _ in range(3):
        clock.advance(60)
        alerting.evaluate()
    assert [body["kind"] for body in bodies(receiver)] == ["firing", "firing", "resolved"]
    assert bodies(receiver)[2]["alerts"][0]["state"] == "resolved"


def test_silenced_alerts_change_state_but_are_told_when_the_silence_ends(
    alerting: AlertManager, signals: Signals, clock: Clock, receiver: Receiver
) -> None:
    hook(alerting, receiver)
    alerting.create_rule(latency_rule(channels=["hook"]))
    silence = alerting.silence({"endpoint": "churn"}, duration="30m", comment="maintenance")
    signals.set("latency", 1500.0, endpoint="churn")
    signals.set("latency", 1500.0, endpoint="fraud")
    alerting.evaluate()
    assert [body["group_labels"]["endpoint"] for body in bodies(receiver)] == ["fraud"]
    churn = alerting.alerts(endpoint="churn")[0]
    assert (churn.state, churn.silenced) == ("firing", True)
    clock.advance(600)
    alerting.evaluate()
    assert len(receiver.received()) == 1
    alerting.expire_silence(silence.id)
    alerting.evaluate()
    assert [body["group_labels"]["endpoint"] for body in bodies(receiver)] == ["fraud", "churn"]
    assert alerting.alerts(endpoint="churn")[0].silenced is False


def test_a_silence_that_runs_out_lets_notifications_through(
    alerting: AlertManager, signals: Signals, clock: Clock, receiver: Receiver
) -> None:
    hook(alerting, receiver)
    alerting.create_rule(latency_rule(channels=["hook"]))
    alerting.silence(["rule=~lat.*"], duration="20m", comment="deploying")
    signals.set("latency", 1500.0, endpoint="churn")
    for _ in range(2):
        alerting.evaluate()
        clock.advance(600)
    assert receiver.received() == []
    alerting.evaluate()
    assert [body["kind"] for body in bodies(receiver)] == ["firing"]


def test_a_failing_channel_is_retried_next_tick_and_does_not_stop_others(
    alerting: AlertManager, signals: Signals, clock: Clock
) -> None:
    failing, healthy = Receiver(fail_first=1), Receiver()
    try:
        hook(alerting, failing, "flaky")
        hook(alerting, healthy, "solid")
        alerting.create_rule(latency_rule(channels=["flaky", "solid"]))
        signals.set("latency", 1500.0, endpoint="churn")
        alerting.evaluate()
        assert (len(failing.received()), len(healthy.received())) == (1, 1)
        (failed,) = alerting.notifications(status="failed")
        assert failed.channel == "flaky"
        assert failed.error is not None
        assert "500" in failed.error
        clock.advance(30)
        alerting.evaluate()
        assert (len(failing.received()), len(healthy.received())) == (2, 1)
        assert [(r.channel, r.status) for r in alerting.notifications(channel="flaky")] == [
            ("flaky", "sent"),
            ("flaky", "failed"),
        ]
    finally:
        failing.close()
        healthy.close()


def test_a_failing_slack_channel_never_shows_its_url(
    alerting: AlertManager, signals: Signals, caplog: pytest.LogCaptureFixture
) -> None:
    """The Slack webhook URL is the credential: failures name the channel, the status and
    the host only, in the log and in the delivery record."""
    caplog.set_level(logging.DEBUG, logger="mlops")
    failing = Receiver(fail_first=1)
    try:
        secret_path = "/services/T0ABC/B0DEF/s3cr3tt0k3n"
        alerting.create_channel("ops-slack", SlackNotifier(failing.url + secret_path))
        alerting.create_rule(latency_rule(channels=["ops-slack"]))
        signals.set("latency", 1500.0, endpoint="churn")
        alerting.evaluate()
        assert [request.path for request in failing.received()] == [secret_path]
        (failed,) = alerting.notifications(status="failed")
        assert failed.error == (
            f"HTTPStatusError: HTTP 500 Internal Server Error from {failing.url}/…"
        )
        [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert "channel 'ops-slack' failed" in warning.getMessage()
        assert "HTTP 500" in warning.getMessage()
        assert "s3cr3tt0k3n" not in caplog.text
    finally:
        failing.close()


def test_retries_are_bounded_until_the_repeat_interval(
    alerting: AlertManager, signals: Signals, clock: Clock
) -> None:
    down = Receiver(fail_first=1000)
    try:
        hook(alerting, down, "down")
        alerting.create_rule(latency_rule(channels=["down"], repeat_interval="1h"))
        signals.set("latency", 1500.0, endpoint="churn")
        for _ in range(5):
            alerting.evaluate()
            clock.advance(60)
        assert len(down.received()) == 2  # max_attempts=2
        clock.advance(3600)
        alerting.evaluate()
        assert len(down.received()) == 3
        assert {r.status for r in alerting.notifications()} == {"failed"}
    finally:
        down.close()


def test_an_unreachable_channel_is_logged(alerting: AlertManager, signals: Signals) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    alerting.create_channel("gone", SlackNotifier(f"http://127.0.0.1:{port}/x", timeout=2))
    alerting.create_rule(latency_rule(channels=["gone"]))
    signals.set("latency", 1500.0, endpoint="churn")
    alerting.evaluate()
    (record,) = alerting.notifications()
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.startswith("ConnectError")


def test_a_flapping_metric_does_not_flood_the_channel(
    alerting: AlertManager, signals: Signals, clock: Clock, receiver: Receiver
) -> None:
    hook(alerting, receiver)
    alerting.create_rule(latency_rule("pending-first", channels=["hook"], for_="1m"))
    alerting.create_rule(latency_rule("held", channels=["hook"], keep_firing_for="2m"))
    for tick in range(12):  # true, false, true, … every 30 s
        value = 1500.0 if tick % 2 == 0 else 100.0
        signals.set("pending-first", value, endpoint="churn")
        signals.set("held", value, endpoint="churn")
        alerting.evaluate()
        clock.advance(30)
    assert [(body["group_labels"]["rule"], body["kind"]) for body in bodies(receiver)] == [
        ("held", "firing"),
    ]
    pending_first = alerting.alerts(rule="pending-first")
    assert len(pending_first) == 6
    assert {alert.fired_at for alert in pending_first} == {None}


# -- email over a real SMTP server ----------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 OK"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alerts", b"s3cret")
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.crt", folder / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    """An SMTP server on loopback that requires STARTTLS and a login."""
    cert_path, key_path = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    inbox, port = Inbox(), _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield inbox, port, cert_path
    finally:
        controller.stop()


def test_email_goes_out_over_starttls_with_a_login(
    alerting: AlertManager, signals: Signals, clock: Clock, smtp: tuple[Inbox, int, Path]
) -> None:
    inbox, port, cert_path = smtp
    email = EmailNotifier(
        "127.0.0.1",
        port=port,
        sender="mlops@example.com",
        recipients=["oncall@example.com", "ml@example.com"],
        username="alerts",
        password="s3cret",
        starttls=True,
        ca_file=str(cert_path),
    )
    created = alerting.create_channel("mail", email)
    assert created.params["password"] == "***"
    alerting.create_rule(latency_rule(channels=["mail"], severity="critical"))
    signals.set("latency", 1500.0, endpoint="churn")
    alerting.evaluate()
    signals.set("latency", 10.0, endpoint="churn")
    clock.advance(60)
    alerting.evaluate()
    assert [r.status for r in alerting.notifications()] == ["sent", "sent"]
    firing, resolved = inbox.envelopes
    assert firing.rcpt_tos == ["oncall@example.com", "ml@example.com"]
    assert firing.mail_from == "mlops@example.com"
    message = message_from_bytes(firing.original_content or b"")
    assert message["Subject"] == "[FIRING:1] critical latency (endpoint=churn)"
    assert message.get_content_type() == "text/plain"
    text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "critical latency endpoint=churn: latency_p95_ms is 1500 (> 1000)" in text
    subject = message_from_bytes(resolved.original_content or b"")["Subject"]
    assert subject.startswith("[RESOLVED:1] critical latency")


def test_a_wrong_smtp_password_is_a_logged_failure(
    alerting: AlertManager, signals: Signals, smtp: tuple[Inbox, int, Path]
) -> None:
    inbox, port, cert_path = smtp
    alerting.create_channel(
        "mail",
        EmailNotifier(
            "127.0.0.1",
            port=port,
            sender="mlops@example.com",
            recipients=["oncall@example.com"],
            username="alerts",
            password="wrong",
            starttls=True,
            ca_file=str(cert_path),
        ),
    )
    alerting.create_rule(latency_rule(channels=["mail"]))
    signals.set("latency", 1500.0, endpoint="churn")
    alerting.evaluate()
    (record,) = alerting.notifications()
    assert record.status == "failed"
    assert record.error is not None
    assert "SMTPAuthenticationError" in record.error
    assert inbox.envelopes == []
