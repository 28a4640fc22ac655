"""Firing cron schedules: each due time queues exactly one execution, whoever ticks.

``next_fire_at`` on the pipeline's row is the earliest due time not yet fired. A tick
computes what is due up to now and, in one transaction with the pipeline row locked,
moves ``next_fire_at`` on by compare-and-set and inserts the executions; the unique
constraint on (pipeline, scheduled_for) makes each insert insert-or-ignore besides, so
even a cursor set back (a schedule registered again) cannot fire a due time twice.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa

from mlops.orchestration._cron import CronSchedule
from mlops.orchestration._executions import admit, lock_pipeline
from mlops.orchestration._spec import RegisteredPipeline, check_spec
from mlops.store import Store
from mlops.store._schema import orchestrated_pipelines as _pipelines

__all__ = ["CATCHUP_LIMIT", "fire_schedules", "first_due"]

_log = logging.getLogger(__name__)

#: With ``catchup=True``, at most this many missed due times fire at once (the latest).
CATCHUP_LIMIT = 100


def first_due(definition: RegisteredPipeline, now: int) -> int | None:
    """The first due time after ``now`` of the pipeline's schedule (None without one)."""
    if definition.schedule is None:
        return None
    return CronSchedule(definition.schedule, definition.timezone).next_after(now)


def fire_schedules(store: Store, now: int) -> list[int]:
    """Fire every due schedule of the pipelines not paused; the new executions' ids."""
    query = sa.select(_pipelines.c.name, _pipelines.c.spec, _pipelines.c.next_fire_at).where(
        _pipelines.c.paused == 0, _pipelines.c.next_fire_at <= now
    )
    with store.read() as connection:
        rows = connection.execute(query).all()
    created: list[int] = []
    for row in rows:
        try:
            created += _fire(store, row.name, check_spec(json.loads(row.spec)), row, now)
        except Exception:  # one broken definition must not hold up the others
            _log.exception("pipeline %r: firing its schedule failed", row.name)
    return created


def _fire(store: Store, name: str, definition: RegisteredPipeline, row: Any, now: int) -> list[int]:
    if definition.schedule is None:
        return []
    cron = CronSchedule(definition.schedule, definition.timezone)
    cursor = int(row.next_fire_at)
    limit = CATCHUP_LIMIT if definition.catchup else 1
    due_times = cron.latest(cursor - 1, now, limit)
    upcoming = cron.next_after(now)
    created = []
    with store.write() as connection:
        locked = lock_pipeline(store, connection, name)
        if locked is None or locked.paused or locked.spec != row.spec:
            return []  # unregistered, paused or changed since read: the next tick sees it
        moved = connection.execute(
            _pipelines.update()
            .where(_pipelines.c.id == locked.id, _pipelines.c.next_fire_at == cursor)
            .values(next_fire_at=upcoming)
        ).rowcount
        if not moved:
            return []  # another process fired these due times
        for due in due_times:
            detail: dict[str, Any] = {
                "schedule": definition.schedule,
                "timezone": definition.timezone,
                "due": due,
            }
            if due == due_times[0] and due > cursor:
                detail["skipped_from"] = cursor  # earlier due times missed and not run
            admitted = admit(
                store,
                connection,
                pipeline=name,
                max_active=definition.max_active,
                trigger="schedule",
                detail=detail,
                params=definition.params,
                now=now,
                scheduled_for=due,
                coalesce=not definition.catchup,
            )
            if admitted is not None and admitted[1]:
                created.append(admitted[0])
    return created
