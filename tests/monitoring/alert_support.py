"""What the alerting tests share: a clock that moves when told, and a signal source whose
values each test sets per tick (an injected dependency, like the real sources will be)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mlops.monitoring.alerts import AlertManager, AlertRule, Measurement
from mlops.store import Store, upgrade
from mlops.store._schema import (
    alert_channel_states,
    alert_channels,
    alert_notifications,
    alert_rules,
    alert_silences,
    alerts,
    events,
    webhook_deliveries,
)

MINUTE_MS = 60_000


class Clock:
    """Seconds since the epoch that move only when told; starts at a round real time."""

    def __init__(self) -> None:
        self.now = float(int(time.time()) // 60 * 60)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> int:
        self.now += seconds
        return self.ms

    @property
    def ms(self) -> int:
        return int(self.now * 1000)


class Signals:
    """Per rule, the series to report: labels → value (None: not enough data)."""

    def __init__(self) -> None:
        self._series: dict[str, dict[str, tuple[dict[str, str], float | None]]] = {}
        self.calls: dict[str, int] = {}
        self.failing: set[str] = set()
        self._lock = threading.Lock()

    def set(self, rule: str, value: float | None, **labels: str) -> None:
        with self._lock:
            key = json.dumps(labels, sort_keys=True)
            self._series.setdefault(rule, {})[key] = (labels, value)

    def drop(self, rule: str, **labels: str) -> None:
        with self._lock:
            self._series.get(rule, {}).pop(json.dumps(labels, sort_keys=True), None)

    def measure(self, rule: AlertRule, now_ms: int) -> Sequence[Measurement]:
        with self._lock:
            self.calls[rule.name] = self.calls.get(rule.name, 0) + 1
            if rule.name in self.failing:
                raise RuntimeError(f"the {rule.signal} signal is unavailable")
            series = list(self._series.get(rule.name, {}).values())
        return [Measurement(labels=labels, value=value) for labels, value in series]


#: The metadata backends, as in the root conftest's ``database_url``.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# What alerting writes, children first. Deleting their rows (rather than a TRUNCATE of
# every table, as ``database_url`` does, which takes about a second) keeps the PostgreSQL
# runs fast; ids go on counting, so tests must not assume them.
_ALERTING_TABLES = (
    alert_channel_states,
    alert_notifications,
    alerts,
    alert_silences,
    alert_channels,
    alert_rules,
    webhook_deliveries,
    events,
)


_templates: dict[str, Path] = {}


def _migrated_sqlite(factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session, copied for each test (faster than
    migrating each fresh file)."""
    if "sqlite" not in _templates:
        path = factory.mktemp("alerting-template") / "mlops.db"
        template = Store(f"sqlite:///{path}")
        upgrade(template)
        template.dispose()  # the last connection checkpoints the WAL into the file
        _templates["sqlite"] = path
    return _templates["sqlite"]


@contextmanager
def backend_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on ``request.param``: a fresh SQLite file, or the session's
    PostgreSQL database with the alerting tables emptied."""
    if request.param == "sqlite":
        path = tmp_path / "mlops.db"
        shutil.copyfile(_migrated_sqlite(request.getfixturevalue("tmp_path_factory")), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_server_url")
    store = Store(url)
    upgrade(store)  # a no-op on a copy of the template or an up-to-date server
    if not store.is_sqlite:
        with store.write() as connection:
            for table in _ALERTING_TABLES:
                connection.execute(table.delete())
    try:
        yield store
    finally:
        store.dispose()


def manager(store: Store, signals: Signals, clock: Clock, **options: Any) -> AlertManager:
    return AlertManager(store, signals=signals, clock=clock, **options)


def latency_rule(name: str = "latency", **overrides: Any) -> AlertRule:
    """p95 latency above 1000 ms, measured every tick (evaluation_interval 0)."""
    fields: dict[str, Any] = {
        "name": name,
        "signal": "latency_p95_ms",
        "comparison": ">",
        "threshold": 1000.0,
        "evaluation_interval": 0,
    }
    return AlertRule(**{**fields, **overrides})


def recorded_events(store: Store, kind_prefix: str = "alert.") -> list[dict[str, Any]]:
    query = (
        sa.select(events.c.kind, events.c.subject, events.c.payload, events.c.actor)
        .where(events.c.kind.like(f"{kind_prefix}%"))
        .order_by(events.c.id)
    )
    with store.read() as connection:
        rows = connection.execute(query).all()
    return [
        {
            "kind": row.kind,
            "subject": row.subject,
            "payload": json.loads(row.payload),
            "actor": row.actor,
        }
        for row in rows
    ]
