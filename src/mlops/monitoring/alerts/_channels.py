"""Notification channels: small notifiers behind one protocol.

A notifier stores its parameters in ``__init__``, checks them in ``validate()`` (called
before every send and when a channel is created), turns a grouped ``Notification`` into
its wire form with ``render()``, and delivers it with ``send()``, which raises the
transport's own error on failure (``httpx.HTTPError``, ``smtplib.SMTPException``,
``OSError``). ``get_params()`` is what the ``alert_channels`` table stores;
``notifier_from_params`` builds a notifier back; ``check_notifier`` is the contract.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from mlops.errors import InvalidInput
from mlops.monitoring.alerts._engine import AlertState
from mlops.monitoring.alerts._message import Notification, sample_notification, utc_time
from mlops.monitoring.alerts._rules import Severity
from mlops.registry._webhooks import redact_url, url_origin, webhook_signature

__all__ = [
    "NOTIFIERS",
    "Channel",
    "EmailNotifier",
    "Notifier",
    "SlackNotifier",
    "WebhookNotifier",
    "check_notifier",
    "failure_text",
    "http_client",
    "masked_params",
    "notifier_from_params",
]

DEFAULT_TIMEOUT = 10.0
_USER_AGENT = "mlops-alerts"
_SLACK_MAX_ALERTS = 20
_COLORS = {
    Severity.CRITICAL.value: "#d00000",
    Severity.WARNING.value: "#f2c744",
    Severity.INFO.value: "#439fe0",
}
_RESOLVED_COLOR = "#2eb886"


@runtime_checkable
class Notifier(Protocol):
    """Delivers notifications to one destination. Instances are immutable once made and
    safe to use from one thread at a time; ``send`` blocks until delivered or failed."""

    kind: ClassVar[str]
    #: Parameters that are credentials: never shown by ``AlertManager.channels()``.
    secret_params: ClassVar[tuple[str, ...]]

    def validate(self) -> None:
        """Raise InvalidInput saying what to fix if the parameters cannot work."""

    def render(self, notification: Notification) -> str:
        """The message as it goes on the wire (a JSON body, an email)."""

    def send(self, notification: Notification) -> None:
        """Deliver, or raise the transport's error."""

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serializable."""


def _check_http_url(kind: str, url: object) -> str:
    if not isinstance(url, str):
        raise InvalidInput(f"the {kind} URL must be a string; got {url!r}")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as error:
        raise InvalidInput(f"the {kind} URL {url!r} does not parse: {error}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(
            f"the {kind} URL {url!r} is not an http(s) URL with a host; give one such as "
            "https://hooks.example.com/alerts"
        )
    return url


def _check_timeout(timeout: object) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise InvalidInput(
            f"a notifier timeout must be a positive number of seconds; got {timeout!r}"
        )
    return float(timeout)


def http_client() -> httpx.Client:
    """The HTTP client notifiers send with: no proxies from the environment and no
    redirects, so alerts go exactly where they were configured."""
    return httpx.Client(follow_redirects=False, trust_env=False)


def _post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    client: httpx.Client | None,
) -> None:
    if client is None:
        with http_client() as own:
            response = own.post(url, content=body, headers=dict(headers), timeout=timeout)
    else:
        response = client.post(url, content=body, headers=dict(headers), timeout=timeout)
    if not response.is_success:  # anything but 2xx, redirects included
        # Not raise_for_status(): its message quotes the URL, which may be the secret.
        raise httpx.HTTPStatusError(
            f"HTTP {response.status_code} {response.reason_phrase} from {url_origin(url)}".strip(),
            request=response.request,
            response=response,
        )


def failure_text(error: BaseException, params: Mapping[str, Any], limit: int) -> str:
    """A failed send as "Type: message", at most ``limit`` characters, with the
    channel's URL reduced to scheme://host/… (a Slack URL is a credential)."""
    text = f"{type(error).__name__}: {error}"
    url = params.get("url")
    if isinstance(url, str) and url:
        text = redact_url(text, url)
    return text[:limit]


class SlackNotifier:
    """Posts to a Slack incoming webhook: a text line and one attachment per alert,
    coloured by severity (green once resolved)."""

    kind: ClassVar[str] = "slack"
    secret_params: ClassVar[tuple[str, ...]] = ("url",)

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        self.url = url
        self.timeout = timeout

    def validate(self) -> None:
        _check_http_url("Slack webhook", self.url)
        _check_timeout(self.timeout)

    def payload(self, notification: Notification) -> dict[str, Any]:
        attachments = []
        for alert in notification.alerts[:_SLACK_MAX_ALERTS]:
            resolved = notification.kind == AlertState.RESOLVED.value
            labels = ", ".join(f"{k}={v}" for k, v in alert.labels.items() if k != "rule")
            attachments.append(
                {
                    "color": _RESOLVED_COLOR if resolved else _COLORS[alert.severity],
                    "title": f"{alert.rule}: {alert.annotations.get('summary', '')}",
                    "text": alert.annotations.get("description", ""),
                    "fields": [
                        {"title": "labels", "value": labels, "short": False},
                        {"title": "started", "value": utc_time(alert.started_at), "short": True},
                        {
                            "title": "resolved" if resolved else "fired",
                            "value": utc_time(alert.resolved_at if resolved else alert.fired_at),
                            "short": True,
                        },
                    ],
                    "footer": "mlops",
                    "ts": notification.sent_at // 1000,
                }
            )
        hidden = len(notification.alerts) - len(attachments)
        text = notification.title + (f" (+{hidden} more)" if hidden > 0 else "")
        return {"text": text, "attachments": attachments}

    def render(self, notification: Notification) -> str:
        return json.dumps(self.payload(notification), ensure_ascii=False)

    def send(self, notification: Notification, *, client: httpx.Client | None = None) -> None:
        """POST the message (with ``client``, e.g. a shared one, or a client of its own)."""
        self.validate()
        headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        body = self.render(notification).encode("utf-8")
        _post(self.url, body, headers, _check_timeout(self.timeout), client)

    def get_params(self) -> dict[str, Any]:
        return {"url": self.url, "timeout": self.timeout}


class WebhookNotifier:
    """POSTs the notification as JSON, signed like registry webhooks:
    ``X-MLOps-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>``."""

    kind: ClassVar[str] = "webhook"
    # Extra headers often carry tokens (Authorization), so they are hidden too.
    secret_params: ClassVar[tuple[str, ...]] = ("secret", "headers")

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.headers = headers
        self.timeout = timeout

    def validate(self) -> None:
        _check_http_url("webhook", self.url)
        _check_timeout(self.timeout)
        if self.secret is not None and (not isinstance(self.secret, str) or not self.secret):
            raise InvalidInput(
                "a webhook secret must be a non-empty string; leave it out to have one generated"
            )
        if self.headers is not None and not (
            isinstance(self.headers, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items())
        ):
            raise InvalidInput(f"webhook headers must map names to values; got {self.headers!r}")

    def render(self, notification: Notification) -> str:
        return json.dumps(
            notification.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )

    def send(self, notification: Notification, *, client: httpx.Client | None = None) -> None:
        """POST the signed body (with ``client``, e.g. a shared one, or a client of its own)."""
        self.validate()
        if self.secret is None:
            raise InvalidInput(
                f"webhook channel {notification.channel!r} has no secret to sign with; "
                "create it again through AlertManager.create_channel (which makes one)"
            )
        body = self.render(notification).encode("utf-8")
        headers = {
            **(self.headers or {}),
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "X-MLOps-Event": f"alert.{notification.kind}",
            "X-MLOps-Signature": webhook_signature(self.secret, body),
            "X-MLOps-Timestamp": str(notification.sent_at // 1000),
        }
        _post(self.url, body, headers, _check_timeout(self.timeout), client)

    def get_params(self) -> dict[str, Any]:
        headers = None if self.headers is None else dict(self.headers)
        return {"url": self.url, "secret": self.secret, "headers": headers, "timeout": self.timeout}


class EmailNotifier:
    """Sends a plain-text email over SMTP; ``ssl`` connects with TLS (port 465),
    ``starttls`` upgrades a plain connection (port 587); ``ca_file`` trusts a private CA."""

    kind: ClassVar[str] = "email"
    secret_params: ClassVar[tuple[str, ...]] = ("password",)

    def __init__(
        self,
        host: str,
        *,
        sender: str,
        recipients: Sequence[str],
        port: int = 25,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        ssl: bool = False,
        ca_file: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.host = host
        self.sender = sender
        self.recipients = recipients
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.ssl = ssl
        self.ca_file = ca_file
        self.timeout = timeout

    def validate(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise InvalidInput(f"the SMTP host must be a host name; got {self.host!r}")
        if (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 0 < self.port < 65536
        ):
            raise InvalidInput(f"the SMTP port must be between 1 and 65535; got {self.port!r}")
        if not _is_address(self.sender):
            raise InvalidInput(f"the email sender {self.sender!r} is not an address like a@b.org")
        if (
            isinstance(self.recipients, str)
            or not isinstance(self.recipients, Sequence)
            or not (self.recipients and all(_is_address(item) for item in self.recipients))
        ):
            raise InvalidInput(
                f"email recipients must be a non-empty list of addresses; got {self.recipients!r}"
            )
        if self.starttls and self.ssl:
            raise InvalidInput("choose starttls (port 587) or ssl (port 465), not both")
        if self.password is not None and self.username is None:
            raise InvalidInput("an SMTP password needs a username too")
        _check_timeout(self.timeout)

    def message(self, notification: Notification) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = notification.title
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["X-MLOps-Event"] = f"alert.{notification.kind}"
        message.set_content(notification.text())
        return message

    def render(self, notification: Notification) -> str:
        return self.message(notification).as_string()

    def send(self, notification: Notification) -> None:
        self.validate()
        timeout = _check_timeout(self.timeout)
        client: smtplib.SMTP
        if self.ssl:
            context = ssl.create_default_context(cafile=self.ca_file)
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=timeout)
        with client:
            if self.starttls:
                client.starttls(context=ssl.create_default_context(cafile=self.ca_file))
            if self.username is not None:
                client.login(self.username, self.password or "")
            client.send_message(self.message(notification))

    def get_params(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "username": self.username,
            "password": self.password,
            "starttls": self.starttls,
            "ssl": self.ssl,
            "ca_file": self.ca_file,
            "timeout": self.timeout,
        }


def _is_address(value: object) -> bool:
    return (
        isinstance(value, str) and "@" in value.strip("@") and not any(c in value for c in " ,<>")
    )


#: Notifier kinds by name, for channels stored in the database.
NOTIFIERS: dict[str, type[SlackNotifier] | type[WebhookNotifier] | type[EmailNotifier]] = {
    SlackNotifier.kind: SlackNotifier,
    WebhookNotifier.kind: WebhookNotifier,
    EmailNotifier.kind: EmailNotifier,
}


def notifier_from_params(kind: str, params: Mapping[str, Any]) -> Notifier:
    """Build a notifier of ``kind`` from its ``get_params()``."""
    if kind not in NOTIFIERS:
        raise InvalidInput(f"channel kind {kind!r} is unknown; use one of {', '.join(NOTIFIERS)}")
    try:
        notifier: Notifier = NOTIFIERS[kind](**params)
    except TypeError as error:
        raise InvalidInput(f"the {kind} channel parameters do not fit: {error}") from None
    return notifier


def masked_params(notifier: Notifier) -> dict[str, Any]:
    """The parameters without credentials (a URL that is one shows only its host)."""
    params = notifier.get_params()
    for name in notifier.secret_params:
        value = params.get(name)
        if isinstance(value, str) and name == "url":
            parts = urlsplit(value)
            params[name] = f"{parts.scheme}://{parts.netloc}/…"
        elif value is not None:
            params[name] = "***"
    return params


@dataclass(frozen=True, slots=True)
class Channel:
    """A named, stored notifier; ``secret`` is set only on what ``create_channel``
    returns for a webhook (the one time it is handed out)."""

    id: int
    name: str
    kind: str
    params: dict[str, Any]
    created_by: str | None
    created_at: int
    secret: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "params": self.params,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


def check_notifier(notifier: Notifier) -> None:
    """Assert the contract every notifier keeps (used by the tests of each one)."""
    assert isinstance(notifier, Notifier), f"{notifier!r} does not implement Notifier"
    assert NOTIFIERS.get(notifier.kind) is type(notifier), f"{notifier.kind!r} is not registered"
    notifier.validate()
    params = notifier.get_params()
    assert json.loads(json.dumps(params)) == params, "get_params() is not JSON-serializable"
    rebuilt = notifier_from_params(notifier.kind, params)
    assert rebuilt.get_params() == params, "get_params() does not round-trip"
    assert set(notifier.secret_params) <= set(params), "secret_params names unknown parameters"
    for kind in ("firing", "resolved"):
        rendered = notifier.render(sample_notification(kind))
        assert isinstance(rendered, str), "render() must return the message as text"
        assert rendered, "render() returned nothing"
