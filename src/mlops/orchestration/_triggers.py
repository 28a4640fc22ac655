"""Event triggers: poll the ``events`` and ``datasets`` tables past each trigger's cursor.

A trigger's cursor starts at the newest id of its source table when it is registered,
so old events never replay. A poll that finds N matching rows queues one execution
that lists them. The cursor moves by compare-and-set in the transaction that queues
the execution: of several processes polling at once, one moves it and queues, the
others find the cursor moved and drop what they read.

On PostgreSQL, ids come from a sequence and transactions commit in any order: id 41
may become visible after id 42. An id missing below the newest one seen is kept as a
gap and looked for again on later polls, for ``GAP_HORIZON_MS`` (a transaction still
open after that long is taken to have rolled back).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops.orchestration._executions import admit, dumps, lock_pipeline
from mlops.orchestration._spec import Trigger, check_spec
from mlops.store import Store
from mlops.store._schema import datasets, events
from mlops.store._schema import orchestrated_pipelines as _pipelines
from mlops.store._schema import pipeline_triggers as _triggers

__all__ = ["GAP_HORIZON_MS", "newest_id", "poll_triggers", "reset_cursors", "sync_triggers"]

_log = logging.getLogger(__name__)

GAP_HORIZON_MS = 10 * 60 * 1000
_MAX_GAPS = 1000
_BATCH = 500
#: How many causing events an execution's trigger detail lists (the count is exact).
_MAX_LISTED = 50
_EVENT_KINDS = {Trigger.ALERT: "alert.firing", Trigger.MODEL_REGISTERED: "model.version_created"}


@dataclass(frozen=True, slots=True)
class _Row:
    """One row of a trigger's source table: its id and what triggers match on."""

    id: int
    kind: str | None
    data: Mapping[str, Any] | None


def _source(trigger: Trigger) -> str:
    return "datasets" if trigger.kind == Trigger.DATASET else "events"


def newest_id(connection: Connection, trigger: Trigger) -> int:
    """The newest id of the trigger's source table (0 when empty)."""
    table = datasets if _source(trigger) == "datasets" else events
    return int(connection.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0)


def sync_triggers(
    connection: Connection, pipeline_id: int, triggers: Sequence[Trigger], now: int
) -> None:
    """Make the stored triggers ``triggers``: unchanged ones keep their cursors, new ones
    start at the newest id, removed ones go."""
    stored = set(
        connection.execute(
            sa.select(_triggers.c.key).where(_triggers.c.pipeline_id == pipeline_id)
        ).scalars()
    )
    wanted = {trigger.key: trigger for trigger in triggers if trigger.polled}
    gone = stored - set(wanted)
    if gone:
        connection.execute(
            _triggers.delete().where(
                _triggers.c.pipeline_id == pipeline_id, _triggers.c.key.in_(sorted(gone))
            )
        )
    for key, trigger in wanted.items():
        if key not in stored:
            connection.execute(
                _triggers.insert().values(
                    pipeline_id=pipeline_id,
                    key=key,
                    kind=trigger.kind,
                    spec=dumps(trigger.get_params()),
                    cursor=newest_id(connection, trigger),
                    gaps="{}",
                    created_at=now,
                )
            )


def reset_cursors(connection: Connection, pipeline_id: int) -> None:
    """Move every trigger of a pipeline to the newest id (events while paused are dropped)."""
    rows = connection.execute(
        sa.select(_triggers.c.key, _triggers.c.spec).where(_triggers.c.pipeline_id == pipeline_id)
    ).all()
    for row in rows:
        trigger = Trigger.from_params(json.loads(row.spec))
        connection.execute(
            _triggers.update()
            .where(_triggers.c.pipeline_id == pipeline_id, _triggers.c.key == row.key)
            .values(cursor=newest_id(connection, trigger), gaps="{}")
        )


def poll_triggers(store: Store, now: int) -> list[int]:
    """Look for new matching rows for every trigger of every pipeline not paused; queue
    one execution per trigger that found some. Returns the ids of new executions."""
    query = (
        sa.select(_triggers, _pipelines.c.name)
        .join(_pipelines, _pipelines.c.id == _triggers.c.pipeline_id)
        .where(_pipelines.c.paused == 0)
    )
    with store.read() as connection:
        stored = connection.execute(query).all()
    groups: dict[tuple[str, str | None], list[tuple[Any, Trigger]]] = {}
    for row in stored:
        trigger = Trigger.from_params(json.loads(row.spec))
        groups.setdefault((_source(trigger), _EVENT_KINDS.get(trigger.kind)), []).append(
            (row, trigger)
        )
    created: list[int] = []
    for (source, event_kind), members in groups.items():
        low = min(int(row.cursor) for row, _ in members)
        wanted_gaps = {int(gap) for row, _ in members for gap in json.loads(row.gaps)}
        rows, high = _read(store, source, event_kind, low, wanted_gaps)
        for row, trigger in members:
            try:
                execution = _advance(store, row, trigger, rows, high, now)
            except Exception:  # one broken trigger must not hold up the others
                _log.exception("pipeline %r: polling %s failed", row.name, trigger.describe())
                continue
            if execution is not None:
                created.append(execution)
    return created


def _read(
    store: Store, source: str, event_kind: str | None, low: int, gaps: Iterable[int]
) -> tuple[dict[int, _Row], int]:
    """Rows past ``low`` (a batch) and rows whose ids are in ``gaps``; and the newest id
    of the batch (``low`` if it is empty): every id in between that is missing is a gap."""
    if source == "datasets":
        columns: list[Any] = [datasets.c.id, datasets.c.name, datasets.c.digest]
        table = datasets
    else:
        payload = sa.case((events.c.kind == event_kind, events.c.payload), else_=None)
        columns = [events.c.id, events.c.kind, payload.label("payload")]
        table = events
    found: dict[int, _Row] = {}
    with store.read() as connection:
        batch = list(
            connection.execute(
                sa.select(*columns).where(table.c.id > low).order_by(table.c.id).limit(_BATCH)
            )
        )
        late = sorted(gaps)
        if late:
            batch += connection.execute(sa.select(*columns).where(table.c.id.in_(late)))
    high = low
    for item in batch:
        if item.id > low:
            high = max(high, int(item.id))
        if source == "datasets":
            found[int(item.id)] = _Row(
                int(item.id), None, {"name": item.name, "digest": item.digest}
            )
        else:
            data = None if item.payload is None else json.loads(item.payload)
            found[int(item.id)] = _Row(int(item.id), item.kind, data)
    return found, high


def _matches(trigger: Trigger, row: _Row) -> bool:
    data = row.data
    if data is None:
        return False
    if trigger.kind == Trigger.DATASET:
        return trigger.dataset_name is None or data.get("name") == trigger.dataset_name
    if trigger.kind == Trigger.MODEL_REGISTERED:
        return trigger.model is None or data.get("model") == trigger.model
    labels = data.get("labels") or {}
    return (
        (trigger.rule is None or data.get("rule") == trigger.rule)
        and (trigger.endpoint is None or labels.get("endpoint") == trigger.endpoint)
        and (trigger.severity is None or data.get("severity") == trigger.severity)
        and all(labels.get(key) == value for key, value in trigger.labels)
    )


def _describe(trigger: Trigger, row: _Row) -> dict[str, Any]:
    data = row.data or {}
    if trigger.kind == Trigger.DATASET:
        return {"dataset_id": row.id, "dataset": data.get("name"), "digest": data.get("digest")}
    if trigger.kind == Trigger.MODEL_REGISTERED:
        return {"event_id": row.id, "model": data.get("model"), "version": data.get("version")}
    return {
        "event_id": row.id,
        "alert_id": data.get("alert_id"),
        "rule": data.get("rule"),
        "labels": data.get("labels"),
    }


def _advance(
    store: Store, stored: Any, trigger: Trigger, rows: Mapping[int, _Row], high: int, now: int
) -> int | None:
    """Move one trigger past what was read; queue an execution if something matched."""
    cursor = int(stored.cursor)
    old_gaps: dict[str, int] = json.loads(stored.gaps)
    seen = [rows[int(gap)] for gap in old_gaps if int(gap) in rows]
    gaps = {
        gap: first
        for gap, first in old_gaps.items()
        if int(gap) not in rows and now - first < GAP_HORIZON_MS
    }
    new_cursor = max(cursor, high)
    for missing in range(cursor + 1, new_cursor + 1):
        if missing not in rows:
            gaps[str(missing)] = now
        else:
            seen.append(rows[missing])
    if len(gaps) > _MAX_GAPS:  # keep the newest: old gaps are the likeliest rollbacks
        gaps = dict(sorted(gaps.items(), key=lambda item: int(item[0]))[-_MAX_GAPS:])
    if new_cursor == cursor and gaps == old_gaps:
        return None
    matched = sorted((row for row in seen if _matches(trigger, row)), key=lambda row: row.id)
    gaps_json = json.dumps(dict(sorted(gaps.items(), key=lambda item: int(item[0]))))
    with store.write() as connection:
        definition = lock_pipeline(store, connection, stored.name)
        if definition is None or definition.paused:
            return None
        moved = connection.execute(
            _triggers.update()
            .where(
                _triggers.c.pipeline_id == stored.pipeline_id,
                _triggers.c.key == stored.key,
                _triggers.c.cursor == cursor,
                _triggers.c.gaps == stored.gaps,
            )
            .values(cursor=new_cursor, gaps=gaps_json)
        ).rowcount
        if not moved or not matched:
            return None  # another process polled these rows first, or nothing matched
        spec = check_spec(json.loads(definition.spec))
        detail = {
            "trigger": trigger.get_params(),
            "count": len(matched),
            "events": [_describe(trigger, row) for row in matched[:_MAX_LISTED]],
        }
        admitted = admit(
            store,
            connection,
            pipeline=stored.name,
            max_active=spec.max_active,
            trigger=trigger.kind,
            detail=detail,
            params=spec.params,
            now=now,
        )
    if admitted is None or not admitted[1]:
        return None
    _log.info("pipeline %r: %s queued execution %d", stored.name, trigger.describe(), admitted[0])
    return admitted[0]
