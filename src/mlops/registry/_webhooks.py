"""The event outbox and webhook delivery.

``record_event`` writes an event, and one pending delivery per subscribed webhook, inside
the caller's transaction: an event exists only if the change it announces committed.
``WebhookDispatcher`` then POSTs due deliveries, signed with HMAC-SHA256, and retries
failures with exponential backoff. Delivery is at least once; receivers deduplicate on
the ``X-MLOps-Delivery`` header.
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import hmac
import json
import logging
import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops.errors import InvalidInput, NotFound
from mlops.store import Store
from mlops.store._schema import events, webhooks
from mlops.store._schema import webhook_deliveries as _deliveries

__all__ = [
    "ALL_EVENTS",
    "Delivery",
    "DeliveryStatus",
    "Webhook",
    "WebhookDispatcher",
    "WebhookManager",
    "record_event",
    "redact_url",
    "url_origin",
    "webhook_signature",
]

logger = logging.getLogger(__name__)

#: The event-kind pattern a webhook subscribes with to receive every event.
ALL_EVENTS = "*"

_KIND_MAX = 64
_SUBJECT_MAX = 512
_ERROR_MAX = 500
_JITTER = 0.1
# Deliveries are claimed a few at a time: a claim's lease covers one timeout per
# delivery, so a crashed dispatcher delays at most this many deliveries by one lease.
_CLAIM_CHUNK = 10
_LEASE_MARGIN_S = 30.0
_USER_AGENT = "mlops-webhooks"


class DeliveryStatus(enum.StrEnum):
    """Where a webhook delivery is: waiting (or retrying), done, or given up."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Webhook:
    """A subscribed URL; ``secret`` is set only on the object that ``add`` returns."""

    id: int
    url: str
    events: tuple[str, ...]
    active: bool
    created_at: int
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event sent (or to be sent) to one webhook."""

    id: int
    event_id: int
    event_kind: str
    subject: str
    webhook_id: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: int
    last_error: str | None
    response_status: int | None
    delivered_at: int | None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode(
        "utf-8"
    )


def webhook_signature(secret: str, body: bytes) -> str:
    """The ``X-MLOps-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def url_origin(url: str) -> str:
    """``scheme://host[:port]/…``: where ``url`` goes, without its path, query and
    credentials, which may be secrets (a Slack webhook URL is one)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<a URL that does not parse>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{'' if port is None else f':{port}'}/…"


def redact_url(text: str, url: str) -> str:
    """``text`` (an error message, say) with ``url`` reduced to ``url_origin(url)``, as
    written or as an HTTP client normalized it, and with its path and query removed
    wherever they appear on their own."""
    origin = url_origin(url)
    forms = {url, url.rstrip("/")}
    try:
        normalized = httpx.URL(url)
        forms.add(str(normalized))
        tail = normalized.raw_path.decode("ascii", "replace")
    except (httpx.InvalidURL, TypeError, ValueError):
        tail = ""
    try:
        parts = urlsplit(url)
        forms.add(parts.path + (f"?{parts.query}" if parts.query else ""))
    except ValueError:
        pass
    forms.add(tail)
    for form in sorted((form for form in forms if len(form) > 1), key=len, reverse=True):
        text = text.replace(form, origin if "://" in form else "/…")
    return text


def _check_text(what: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(
            f"the event {what} must be a non-empty string of at most {limit} characters; "
            f"got {value!r}"
        )
    return value


def record_event(
    connection: Connection,
    *,
    kind: str,
    subject: str,
    payload: Mapping[str, Any],
    actor: str | None,
) -> int:
    """Record an event, and a pending delivery per subscribed webhook, in the caller's
    transaction; returns the event id.

    Call it inside the ``store.write()`` block that makes the change, so the event
    commits or rolls back with it.
    """
    _check_text("kind", kind, _KIND_MAX)
    _check_text("subject", subject, _SUBJECT_MAX)
    if actor is not None and not isinstance(actor, str):
        raise InvalidInput(f"the event actor must be a string or None; got {actor!r}")
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"the event payload must be a mapping; got {type(payload).__name__}")
    try:
        payload_json = json.dumps(dict(payload), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise InvalidInput(
            f"the payload of event {kind!r} is not JSON-serializable ({error}); "
            "give strings, numbers, booleans, None, lists and dicts"
        ) from error
    now = _now_ms()
    inserted = connection.execute(
        events.insert().values(
            kind=kind, subject=subject, payload=payload_json, actor=actor, created_at=now
        )
    )
    event_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
    subscribed = connection.execute(
        sa.select(webhooks.c.id, webhooks.c.event_kinds).where(webhooks.c.active == 1)
    ).all()
    rows = [
        {
            "event_id": event_id,
            "webhook_id": webhook_id,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
        }
        for webhook_id, kinds_json in subscribed
        if _subscribes(kinds_json, kind)
    ]
    if rows:
        connection.execute(_deliveries.insert(), rows)
    return event_id


def _subscribes(kinds_json: str, kind: str) -> bool:
    try:
        kinds = json.loads(kinds_json)
    except ValueError:
        return False
    return isinstance(kinds, list) and (ALL_EVENTS in kinds or kind in kinds)


class WebhookManager:
    """Adds, lists and removes webhooks and lists their deliveries; thread-safe."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(
        self,
        url: str,
        *,
        secret: str | None = None,
        events: Sequence[str] = (ALL_EVENTS,),
    ) -> Webhook:
        """Subscribe ``url`` to event kinds (``"*"`` for all).

        The returned Webhook carries the secret (generated if not given); it is the only
        time the secret is handed out, so keep it to verify ``X-MLOps-Signature``.
        """
        _check_url(url)
        kinds = _check_event_kinds(events)
        if secret is None:
            secret = secrets.token_urlsafe(32)
        elif not isinstance(secret, str) or not secret:
            raise InvalidInput(
                "a webhook secret must be a non-empty string; leave it out to have one generated"
            )
        now = _now_ms()
        with self._store.write() as connection:
            inserted = connection.execute(
                webhooks.insert().values(
                    url=url,
                    secret=secret,
                    event_kinds=json.dumps(list(kinds)),
                    active=1,
                    created_at=now,
                )
            )
            webhook_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
        return Webhook(
            id=webhook_id, url=url, events=kinds, active=True, created_at=now, secret=secret
        )

    def list(self) -> builtins.list[Webhook]:
        """Every webhook, oldest first (without secrets)."""
        columns = [webhooks.c[name] for name in ("id", "url", "created_at")]
        query = sa.select(*columns, webhooks.c.event_kinds, webhooks.c.active)
        with self._store.read() as connection:
            rows = connection.execute(query.order_by(webhooks.c.id)).all()
        return [
            Webhook(
                **{column.name: row._mapping[column.name] for column in columns},
                events=tuple(json.loads(row.event_kinds)),
                active=bool(row.active),
            )
            for row in rows
        ]

    def remove(self, webhook_id: int) -> None:
        """Delete a webhook and its deliveries; NotFound if there is no such webhook."""
        with self._store.write() as connection:
            removed = connection.execute(
                webhooks.delete().where(webhooks.c.id == webhook_id)
            ).rowcount
        if not removed:
            raise NotFound(
                f"there is no webhook with id {webhook_id!r}; "
                "list the webhooks with WebhookManager.list()"
            )

    def deliveries(
        self,
        *,
        event_kind: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Delivery]:
        """Deliveries, newest first, optionally of one event kind and/or status."""
        if status is not None and status not in set(DeliveryStatus):
            choices = ", ".join(repr(item.value) for item in DeliveryStatus)
            raise InvalidInput(f"delivery status {status!r} is unknown; use one of {choices}")
        _check_positive_int("limit", limit)
        query = (
            sa.select(
                _deliveries,
                events.c.kind.label("event_kind"),
                events.c.subject.label("subject"),
            )
            .join(events, events.c.id == _deliveries.c.event_id)
            .order_by(_deliveries.c.id.desc())
            .limit(limit)
        )
        if event_kind is not None:
            query = query.where(events.c.kind == event_kind)
        if status is not None:
            query = query.where(_deliveries.c.status == status)
        with self._store.read() as connection:
            rows = connection.execute(query).all()
        # The selected columns are named as Delivery's fields.
        return [Delivery(**{**row._mapping, "status": DeliveryStatus(row.status)}) for row in rows]


def _check_url(url: object) -> None:
    if not isinstance(url, str):
        raise InvalidInput(f"a webhook URL must be a string; got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as error:
        raise InvalidInput(f"webhook URL {url!r} does not parse: {error}") from error
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(
            f"webhook URL {url!r} is not an http(s) URL with a host; "
            "give one such as https://hooks.example.com/mlops"
        )


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{name} must be a positive integer; got {value!r}")


def _check_event_kinds(kinds: object) -> tuple[str, ...]:
    if isinstance(kinds, str) or not isinstance(kinds, Sequence) or not kinds:
        raise InvalidInput(
            f"events must be a non-empty list of event kinds, or ['*'] for all; got {kinds!r}"
        )
    for kind in kinds:
        if kind != ALL_EVENTS:
            _check_text("kind", kind, _KIND_MAX)
    return tuple(sorted(set(kinds)))


@dataclass(frozen=True, slots=True)
class _Claimed:
    """A delivery this dispatcher holds until ``lease_until`` (its claim token)."""

    id: int
    attempts: int
    lease_until: int
    url: str
    secret: str
    kind: str
    body: bytes


class WebhookDispatcher:
    """POSTs due webhook deliveries and records the outcome; retries with backoff.

    Several dispatchers (threads or processes) may share one store: each delivery is
    claimed by one of them (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on
    SQLite) and leased for the time its HTTP call may take, so no transaction stays open
    during HTTP. Thread-safe.
    """

    def __init__(
        self,
        store: Store,
        *,
        timeout: float = 5.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 300.0,
        clock: Callable[[], float] = time.time,
        http_client: httpx.Client | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        if not timeout > 0 or not poll_interval > 0:
            raise InvalidInput(
                "timeout and poll_interval must be positive numbers of seconds; "
                f"got timeout={timeout!r}, poll_interval={poll_interval!r}"
            )
        _check_positive_int("max_attempts", max_attempts)
        if not 0 <= backoff_base <= backoff_max:
            raise InvalidInput(
                "backoff must satisfy 0 <= backoff_base <= backoff_max; "
                f"got backoff_base={backoff_base!r}, backoff_max={backoff_max!r}"
            )
        self._store = store
        self._timeout = float(timeout)
        self._max_attempts = max_attempts
        self._backoff_base = float(backoff_base)
        self._backoff_max = float(backoff_max)
        self._clock = clock
        self._poll_interval = float(poll_interval)
        self._given_client = http_client
        self._own_client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._random = random.Random()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- one round ---------------------------------------------------------------------

    def dispatch_due(self, limit: int = 100) -> int:
        """Attempt up to ``limit`` due deliveries; returns how many were attempted."""
        _check_positive_int("limit", limit)
        attempted = 0
        while attempted < limit:
            claimed = self._claim(min(_CLAIM_CHUNK, limit - attempted))
            if not claimed:
                break
            for index, delivery in enumerate(claimed):
                if self._now_ms() >= delivery.lease_until - _LEASE_MARGIN_S * 1000 / 2:
                    # The lease is running out (slow receivers): hand the rest back
                    # rather than risk a second dispatcher sending them too.
                    self._release(claimed[index:])
                    return attempted
                self._attempt(delivery)
                attempted += 1
        return attempted

    def _claim(self, limit: int) -> list[_Claimed]:
        now = self._now_ms()
        lease_until = now + math.ceil((self._timeout * limit + _LEASE_MARGIN_S) * 1000)
        due = (
            sa.select(_deliveries.c.id)
            .join(webhooks, webhooks.c.id == _deliveries.c.webhook_id)
            .where(
                _deliveries.c.status == DeliveryStatus.PENDING.value,
                _deliveries.c.next_attempt_at <= now,
                webhooks.c.active == 1,
            )
            .order_by(_deliveries.c.next_attempt_at, _deliveries.c.id)
            .limit(limit)
        )
        if not self._store.is_sqlite:
            due = due.with_for_update(skip_locked=True, of=_deliveries)
        with self._store.write() as connection:
            ids = [int(row[0]) for row in connection.execute(due)]
            if not ids:
                return []
            connection.execute(
                _deliveries.update()
                .where(_deliveries.c.id.in_(ids))
                .values(next_attempt_at=lease_until)
            )
            rows = connection.execute(
                sa.select(
                    _deliveries.c.id,
                    _deliveries.c.attempts,
                    webhooks.c.url,
                    webhooks.c.secret,
                    events.c.id.label("event_id"),
                    events.c.kind,
                    events.c.subject,
                    events.c.payload,
                    events.c.actor,
                    events.c.created_at,
                )
                .join(webhooks, webhooks.c.id == _deliveries.c.webhook_id)
                .join(events, events.c.id == _deliveries.c.event_id)
                .where(_deliveries.c.id.in_(ids))
                .order_by(_deliveries.c.id)
            ).all()
        return [
            _Claimed(
                id=int(row.id),
                attempts=int(row.attempts),
                lease_until=lease_until,
                url=row.url,
                secret=row.secret,
                kind=row.kind,
                body=_json_bytes(
                    {
                        "id": int(row.event_id),
                        "kind": row.kind,
                        "subject": row.subject,
                        "payload": json.loads(row.payload),
                        "actor": row.actor,
                        "created_at": int(row.created_at),
                    }
                ),
            )
            for row in rows
        ]

    def _attempt(self, delivery: _Claimed) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "X-MLOps-Event": delivery.kind,
            "X-MLOps-Delivery": str(delivery.id),
            "X-MLOps-Signature": webhook_signature(delivery.secret, delivery.body),
            "X-MLOps-Timestamp": str(int(self._clock())),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = self._client().post(delivery.url, content=delivery.body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status} {response.reason_phrase}".strip()
        except Exception as exception:  # any failure to reach the receiver is a retry
            # The URL may carry a token in its path or query: keep only where it goes.
            error = redact_url(f"{type(exception).__name__}: {exception}", delivery.url)
        self._record(delivery, status, error)

    def _record(self, delivery: _Claimed, status: int | None, error: str | None) -> None:
        now = self._now_ms()
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "response_status": status}
        if error is None:
            values.update(
                status=DeliveryStatus.DELIVERED.value,
                delivered_at=now,
                next_attempt_at=now,
                last_error=None,
            )
        else:
            values["last_error"] = error[:_ERROR_MAX]
            if attempts >= self._max_attempts:
                values.update(status=DeliveryStatus.FAILED.value, next_attempt_at=now)
            else:
                values["next_attempt_at"] = now + math.ceil(self._backoff_s(attempts) * 1000)
        with self._store.write() as connection:
            updated = connection.execute(
                self._held(delivery.id, delivery.lease_until).values(**values)
            ).rowcount
        if not updated:
            logger.warning(
                "webhook delivery %d changed while it was sent (webhook removed or lease "
                "expired); its outcome was not recorded",
                delivery.id,
            )
        elif error is not None:
            logger.info("webhook delivery %d failed (attempt %d): %s", delivery.id, attempts, error)

    def _release(self, deliveries: Sequence[_Claimed]) -> None:
        now = self._now_ms()
        with self._store.write() as connection:
            for delivery in deliveries:
                connection.execute(
                    self._held(delivery.id, delivery.lease_until).values(next_attempt_at=now)
                )

    @staticmethod
    def _held(delivery_id: int, lease_until: int) -> sa.Update:
        """An UPDATE of a delivery that applies only while this dispatcher's claim holds."""
        return _deliveries.update().where(
            _deliveries.c.id == delivery_id,
            _deliveries.c.status == DeliveryStatus.PENDING.value,
            _deliveries.c.next_attempt_at == lease_until,
        )

    def _backoff_s(self, attempts: int) -> float:
        delay = min(self._backoff_max, self._backoff_base * 2.0 ** (attempts - 1))
        return delay * (1 + self._random.uniform(0, _JITTER))

    def _now_ms(self) -> int:
        return math.floor(self._clock() * 1000)

    def _client(self) -> httpx.Client:
        if self._given_client is not None:
            return self._given_client
        with self._lock:
            if self._own_client is None:
                self._own_client = httpx.Client(
                    timeout=self._timeout, follow_redirects=False, trust_env=False
                )
            return self._own_client

    # -- loops -------------------------------------------------------------------------

    def run_until_idle(self, max_seconds: float = 10.0) -> int:
        """Dispatch until nothing is pending, waiting for retries up to ``max_seconds``.

        Returns the number of deliveries attempted.
        """
        deadline = time.monotonic() + max_seconds
        attempted = 0
        while True:
            count = self.dispatch_due()
            attempted += count
            if count:
                continue
            next_due = self._next_due_ms()
            remaining = deadline - time.monotonic()
            if next_due is None or remaining <= 0:
                return attempted
            # Poll rather than sleep until next_due: a delivery leased by another
            # dispatcher looks due later, yet may be done long before that.
            wait = max(0.0, (next_due - self._now_ms()) / 1000)
            time.sleep(min(wait, remaining, self._poll_interval))

    def _next_due_ms(self) -> int | None:
        query = (
            sa.select(sa.func.min(_deliveries.c.next_attempt_at))
            .join(webhooks, webhooks.c.id == _deliveries.c.webhook_id)
            .where(
                _deliveries.c.status == DeliveryStatus.PENDING.value,
                webhooks.c.active == 1,
            )
        )
        with self._store.read() as connection:
            value = connection.execute(query).scalar()
        return None if value is None else int(value)

    def start(self) -> None:
        """Dispatch in a background daemon thread, polling every ``poll_interval``."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._loop, name="mlops-webhook-dispatcher", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the background thread (after its current delivery) and wait for it."""
        self._stopping.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def close(self) -> None:
        """Stop the thread and close the HTTP client this dispatcher created."""
        self.stop()
        with self._lock:
            client, self._own_client = self._own_client, None
        if client is not None:
            client.close()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                while self.dispatch_due() and not self._stopping.is_set():
                    pass
            except Exception:
                # A database hiccup must not end the loop; the next poll retries.
                logger.exception("webhook dispatch failed; retrying at the next poll")
            self._stopping.wait(self._poll_interval)

    def __enter__(self) -> WebhookDispatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
