"""The event outbox and webhook delivery, against a real HTTP receiver on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from http_receiver import Receiver
from mlops.errors import InvalidInput, NotFound
from mlops.registry._webhooks import (
    Delivery,
    DeliveryStatus,
    WebhookDispatcher,
    WebhookManager,
    record_event,
)
from mlops.store import Store, upgrade
from mlops.store._schema import events, webhook_deliveries

CREATED = "model.version_created"
STAGED = "model.stage_changed"


class FakeClock:
    """A clock that moves only when told; starts ahead of the events' real timestamps."""

    def __init__(self) -> None:
        self.now = time.time() + 60

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @property
    def ms(self) -> int:
        return int(self.now * 1000)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    upgrade(store)
    try:
        yield store
    finally:
        store.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


def emit(store: Store, kind: str = CREATED, subject: str = "models:/churn/1.0.0") -> int:
    with store.write() as connection:
        return record_event(
            connection,
            kind=kind,
            subject=subject,
            payload={"model": "churn", "version": 1, "note": "ünïcode"},
            actor="alice",
        )


def only_delivery(store: Store) -> Delivery:
    (delivery,) = WebhookManager(store).deliveries()
    return delivery


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- delivery ---------------------------------------------------------------------------


def test_delivers_the_signed_event(store: Store, receiver: Receiver) -> None:
    webhook = WebhookManager(store).add(receiver.url + "/hooks", events=[CREATED])
    assert webhook.secret
    event_id = emit(store)

    dispatcher = WebhookDispatcher(store)
    assert dispatcher.run_until_idle(max_seconds=5) == 1
    dispatcher.close()

    (request,) = receiver.received()
    assert request.path == "/hooks"
    body = json.loads(request.body)
    assert body["id"] == event_id
    assert body["kind"] == CREATED
    assert body["subject"] == "models:/churn/1.0.0"
    assert body["payload"] == {"model": "churn", "version": 1, "note": "ünïcode"}
    assert body["actor"] == "alice"
    assert isinstance(body["created_at"], int)
    # Compact, sorted keys, UTF-8: the exact bytes a receiver signs again.
    assert request.body == json.dumps(
        body, separators=(",", ":"), sort_keys=True, ensure_ascii=False
    ).encode("utf-8")

    headers = {name.lower(): value for name, value in request.headers.items()}
    delivery = only_delivery(store)
    assert headers["content-type"] == "application/json"
    assert headers["x-mlops-event"] == CREATED
    assert headers["x-mlops-delivery"] == str(delivery.id)
    assert headers["x-mlops-timestamp"].isdigit()
    expected = hmac.new(webhook.secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-mlops-signature"], f"sha256={expected}")
    assert webhook.secret not in "".join(request.headers.values())

    assert delivery.status is DeliveryStatus.DELIVERED
    assert (delivery.event_id, delivery.webhook_id) == (event_id, webhook.id)
    assert delivery.attempts == 1
    assert delivery.response_status == 200
    assert delivery.delivered_at is not None
    assert delivery.last_error is None


def test_only_subscribed_kinds_are_delivered(store: Store, receiver: Receiver) -> None:
    manager = WebhookManager(store)
    created_only = manager.add(receiver.url + "/created", events=[CREATED])
    everything = manager.add(receiver.url + "/all")
    staged_only = manager.add(receiver.url + "/staged", events=[STAGED, "other.kind"])
    emit(store, CREATED)
    emit(store, STAGED)
    emit(store, "model.deleted")

    assert WebhookDispatcher(store).run_until_idle(max_seconds=5) == 5

    seen = sorted(
        (request.path, json.loads(request.body)["kind"]) for request in receiver.received()
    )
    assert seen == sorted(
        [
            ("/all", "model.deleted"),
            ("/all", CREATED),
            ("/all", STAGED),
            ("/created", CREATED),
            ("/staged", STAGED),
        ]
    )
    by_kind = manager.deliveries(event_kind=CREATED)
    assert sorted(d.webhook_id for d in by_kind) == sorted([created_only.id, everything.id])
    by_kind = manager.deliveries(event_kind=STAGED)
    assert sorted(d.webhook_id for d in by_kind) == sorted([everything.id, staged_only.id])
    assert len(manager.deliveries(limit=2)) == 2
    assert len(manager.deliveries(status="delivered")) == 5
    assert manager.deliveries(status="failed") == []


def test_a_failed_attempt_is_retried_after_the_backoff(store: Store) -> None:
    receiver = Receiver(fail_first=1)
    try:
        WebhookManager(store).add(receiver.url)
        emit(store)
        clock = FakeClock()
        dispatcher = WebhookDispatcher(store, clock=clock, backoff_base=10.0)

        assert dispatcher.dispatch_due() == 1
        first = only_delivery(store)
        assert first.status is DeliveryStatus.PENDING
        assert first.attempts == 1
        assert first.response_status == 500
        assert first.last_error is not None
        assert "500" in first.last_error
        # Backoff of 10 s plus up to 10% jitter.
        assert 10_000 <= first.next_attempt_at - clock.ms <= 11_001

        clock.advance(9.9)
        assert dispatcher.dispatch_due() == 0
        clock.advance(1.2)
        assert dispatcher.dispatch_due() == 1
        dispatcher.close()

        second = only_delivery(store)
        assert second.status is DeliveryStatus.DELIVERED
        assert second.attempts == 2
        assert second.response_status == 200
        assert second.last_error is None
        requests = receiver.received()
        assert len(requests) == 2
        assert requests[0].body == requests[1].body
        assert requests[0].headers["X-MLOps-Delivery"] == requests[1].headers["X-MLOps-Delivery"]
    finally:
        receiver.close()


def test_gives_up_after_max_attempts(store: Store) -> None:
    receiver = Receiver(fail_first=1_000)
    try:
        WebhookManager(store).add(receiver.url)
        emit(store)
        clock = FakeClock()
        dispatcher = WebhookDispatcher(
            store, clock=clock, max_attempts=4, backoff_base=1.0, backoff_max=3.0
        )
        delays = []
        for _ in range(3):
            assert dispatcher.dispatch_due() == 1
            delivery = only_delivery(store)
            assert delivery.status is DeliveryStatus.PENDING
            delays.append(delivery.next_attempt_at - clock.ms)
            clock.advance(10)
        # Doubling from backoff_base, capped at backoff_max, each with up to 10% jitter.
        for delay, base in zip(delays, [1_000, 2_000, 3_000], strict=True):
            assert base <= delay <= base * 1.1 + 1

        assert dispatcher.dispatch_due() == 1
        failed = only_delivery(store)
        assert failed.status is DeliveryStatus.FAILED
        assert failed.attempts == 4
        assert failed.last_error is not None
        assert "HTTP 500" in failed.last_error
        clock.advance(1_000)
        assert dispatcher.dispatch_due() == 0
        assert len(receiver.received()) == 4
        assert WebhookManager(store).deliveries(status="failed") == [failed]
    finally:
        receiver.close()


def test_an_unreachable_receiver_is_retried_then_failed(store: Store) -> None:
    webhook = WebhookManager(store).add(f"http://127.0.0.1:{closed_port()}/hook")
    emit(store)
    clock = FakeClock()
    dispatcher = WebhookDispatcher(store, clock=clock, timeout=2.0, max_attempts=2)

    assert dispatcher.dispatch_due() == 1
    retrying = only_delivery(store)
    assert retrying.status is DeliveryStatus.PENDING
    assert retrying.response_status is None
    assert retrying.last_error is not None
    assert "Connect" in retrying.last_error
    assert webhook.secret is not None
    assert webhook.secret not in retrying.last_error

    clock.advance(5)
    assert dispatcher.dispatch_due() == 1
    failed = only_delivery(store)
    assert failed.status is DeliveryStatus.FAILED
    assert failed.attempts == 2
    assert failed.last_error
    assert len(failed.last_error) <= 500
    dispatcher.close()


def test_delivery_errors_never_show_the_url_path(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver URL may carry a token in its path or query: a failed delivery records
    and logs only scheme://host/…, even when the HTTP client's error quotes the URL."""
    caplog.set_level(logging.DEBUG, logger="mlops")
    receiver = Receiver(fail_first=1_000)
    raising = httpx.Client(
        timeout=5.0,
        trust_env=False,
        event_hooks={"response": [lambda response: response.raise_for_status()]},
    )
    try:
        WebhookManager(store).add(f"{receiver.url}/hooks/t0k3n-path?key=q5ecret")
        emit(store)
        clock = FakeClock()
        for client in (None, raising):  # the dispatcher's own client, then one that raises
            dispatcher = WebhookDispatcher(store, clock=clock, http_client=client)
            assert dispatcher.dispatch_due() == 1
            dispatcher.close()
            clock.advance(3_600)
        delivery = only_delivery(store)
        assert delivery.attempts == 2
        assert delivery.last_error is not None
        assert delivery.last_error.startswith("HTTPStatusError: Server error '500")
        assert f"{receiver.url}/…" in delivery.last_error
        for secret in ("t0k3n-path", "q5ecret"):
            assert secret not in delivery.last_error
            assert secret not in caplog.text
        assert "webhook delivery" in caplog.text
    finally:
        raising.close()
        receiver.close()


# -- the outbox -------------------------------------------------------------------------


def test_an_event_rolled_back_is_never_announced(store: Store, receiver: Receiver) -> None:
    WebhookManager(store).add(receiver.url)

    def failing_change() -> None:
        with store.write() as connection:
            record_event(connection, kind=CREATED, subject="s", payload={}, actor=None)
            raise RuntimeError("change failed")

    with pytest.raises(RuntimeError, match="change failed"):
        failing_change()

    with store.read() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 0
        count = sa.select(sa.func.count()).select_from(webhook_deliveries)
        assert connection.execute(count).scalar() == 0
    assert WebhookDispatcher(store).run_until_idle(max_seconds=1) == 0
    assert receiver.received() == []


def test_an_event_without_subscribers_has_no_deliveries(store: Store) -> None:
    event_id = emit(store)
    assert event_id > 0
    assert WebhookManager(store).deliveries() == []


def test_event_input_is_validated(store: Store) -> None:
    with store.write() as connection:
        with pytest.raises(InvalidInput, match="JSON"):
            record_event(connection, kind=CREATED, subject="s", payload={"x": object()}, actor=None)
        with pytest.raises(InvalidInput, match="kind"):
            record_event(connection, kind="", subject="s", payload={}, actor=None)
        with pytest.raises(InvalidInput, match="subject"):
            record_event(connection, kind=CREATED, subject="x" * 513, payload={}, actor=None)


# -- managing webhooks ------------------------------------------------------------------


def test_the_secret_is_handed_out_once(store: Store) -> None:
    manager = WebhookManager(store)
    generated = manager.add("https://hooks.example.com/a", events=[STAGED, CREATED])
    chosen = manager.add("http://localhost:9/b", secret="s3cret-value")
    assert generated.secret is not None
    assert len(generated.secret) >= 40
    assert chosen.secret == "s3cret-value"
    assert "s3cret-value" not in repr(chosen)
    assert generated.events == tuple(sorted([STAGED, CREATED]))

    listed = manager.list()
    assert [webhook.id for webhook in listed] == [generated.id, chosen.id]
    assert all(webhook.secret is None for webhook in listed)
    assert listed[0].url == "https://hooks.example.com/a"
    assert set(listed[0].events) == {STAGED, CREATED}
    assert listed[1].events == ("*",)
    assert all(webhook.active for webhook in listed)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "http://", "example.com/hook", "https:///path", "", "http://h:x/"],
)
def test_bad_urls_are_rejected(store: Store, url: str) -> None:
    with pytest.raises(InvalidInput):
        WebhookManager(store).add(url)


def test_bad_event_lists_are_rejected(store: Store) -> None:
    manager = WebhookManager(store)
    for bad in ("model.version_created", [], [""]):
        with pytest.raises(InvalidInput):
            manager.add("http://127.0.0.1:9/", events=bad)
    assert manager.list() == []


def test_remove_drops_the_webhook_and_its_deliveries(store: Store) -> None:
    manager = WebhookManager(store)
    webhook = manager.add("http://127.0.0.1:9/")
    emit(store)
    assert len(manager.deliveries()) == 1
    manager.remove(webhook.id)
    assert manager.list() == []
    assert manager.deliveries() == []
    with pytest.raises(NotFound, match="no webhook with id"):
        manager.remove(webhook.id)


def test_delivery_filters_are_validated(store: Store) -> None:
    manager = WebhookManager(store)
    with pytest.raises(InvalidInput, match="status"):
        manager.deliveries(status="done")
    with pytest.raises(InvalidInput, match="limit"):
        manager.deliveries(limit=0)


# -- running dispatchers ----------------------------------------------------------------


def test_the_background_thread_delivers(store: Store, receiver: Receiver) -> None:
    WebhookManager(store).add(receiver.url)
    with WebhookDispatcher(store, poll_interval=0.05):
        emit(store)
        deadline = time.monotonic() + 10
        while not receiver.received() and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(receiver.received()) == 1
    assert only_delivery(store).status is DeliveryStatus.DELIVERED


def test_a_delivery_in_flight_is_not_claimed_twice(store: Store) -> None:
    gate = threading.Event()
    receiver = Receiver(gate=gate)
    try:
        WebhookManager(store).add(receiver.url)
        emit(store)
        first, second = WebhookDispatcher(store), WebhookDispatcher(store)
        sending = threading.Thread(target=first.dispatch_due)
        sending.start()
        deadline = time.monotonic() + 10
        while not receiver.received() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(receiver.received()) == 1
        # The first dispatcher holds no transaction during HTTP, and its lease keeps
        # the delivery from the second one.
        assert second.dispatch_due() == 0
        gate.set()
        sending.join()
        assert second.dispatch_due() == 0
        delivery = only_delivery(store)
        assert delivery.status is DeliveryStatus.DELIVERED
        assert delivery.attempts == 1
        assert len(receiver.received()) == 1
        first.close()
        second.close()
    finally:
        gate.set()
        receiver.close()


def test_concurrent_dispatchers_deliver_each_event_once(database_url: str) -> None:
    setup = Store(database_url)
    upgrade(setup)
    receiver = Receiver()
    stores = [Store(database_url) for _ in range(2)]
    try:
        WebhookManager(setup).add(receiver.url + "/one")
        WebhookManager(setup).add(receiver.url + "/two", events=[CREATED])
        for index in range(25):
            emit(setup, subject=f"models:/churn/{index}")
        barrier = threading.Barrier(len(stores))
        attempted: list[int] = []
        errors: list[BaseException] = []

        def run(store: Store) -> None:
            try:
                barrier.wait()
                attempted.append(WebhookDispatcher(store).run_until_idle(max_seconds=10))
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=run, args=(store,)) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert sum(attempted) == 50
        requests = receiver.received()
        keys = [(r.path, r.headers["X-MLOps-Delivery"]) for r in requests]
        assert len(keys) == len(set(keys)) == 50
        statuses = {d.status for d in WebhookManager(setup).deliveries(limit=1000)}
        assert statuses == {DeliveryStatus.DELIVERED}
    finally:
        receiver.close()
        for store in [setup, *stores]:
            store.dispose()
