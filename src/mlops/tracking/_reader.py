"""Read paths: runs with their data, metric histories, and run search."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops.errors import InvalidInput, NotFound
from mlops.store import Store
from mlops.store._schema import (
    experiments,
    latest_metrics,
    metrics,
    runs,
)
from mlops.tracking._entities import (
    Dataset,
    DatasetInput,
    LifecycleStage,
    Metric,
    Run,
    RunPage,
    RunStatus,
)
from mlops.tracking._filter import filter_to_sql, order_by_to_sql, parse_filter, parse_order_by

MAX_RESULTS_LIMIT = 10_000
_NAN = math.nan

_HISTORY = (
    sa.select(metrics.c.value, metrics.c.step, metrics.c.timestamp)
    .join(runs, runs.c.seq == metrics.c.run_seq)
    .where(runs.c.id == sa.bindparam("run_id"), metrics.c.key == sa.bindparam("key"))
    .order_by(metrics.c.step, metrics.c.timestamp)
)


class RunReader:
    """Builds ``Run`` snapshots and answers searches; safe to share between threads."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._sql_history = store.prepare(_HISTORY)

    def get_run(self, run_id: str) -> Run:
        with self._store.cursor(write=False) as cursor:
            sql, args = self._store.render(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id))
            cursor.execute(sql, args)
            found = self._attach(cursor, cursor.fetchall())
        if not found:
            raise NotFound(f"run '{run_id}' does not exist (see `mlops runs list`)")
        return found[0]

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        with self._store.cursor(write=False) as cursor:
            cursor.execute(self._sql_history.sql, (run_id, key))
            rows = cursor.fetchall()
        if not rows:
            with self._store.read() as connection:
                self._require_run(connection, run_id)
        new = Metric.__new__
        return [
            new(Metric, key, _NAN if value is None else value, step, timestamp)
            for value, step, timestamp in rows
        ]

    def metric_keys(self, run_id: str) -> list[str]:
        with self._store.read() as connection:
            self._require_run(connection, run_id)
            keys = connection.execute(
                sa.select(latest_metrics.c.key)
                .where(latest_metrics.c.run_id == run_id)
                .order_by(latest_metrics.c.key)
            ).scalars()
            return list(keys)

    @staticmethod
    def _require_run(connection: Connection, run_id: str) -> None:
        exists = connection.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first()
        if exists is None:
            raise NotFound(f"run '{run_id}' does not exist (see `mlops runs list`)")

    def search(
        self,
        experiment_ids: Sequence[int],
        filter_string: str | None,
        order_by: Sequence[str] | str | None,
        max_results: int,
        page_token: str | None,
        include_deleted: bool,
    ) -> RunPage:
        if (
            isinstance(max_results, bool)
            or not isinstance(max_results, int)
            or not (1 <= max_results <= MAX_RESULTS_LIMIT)
        ):
            raise InvalidInput(
                f"max_results must be an integer from 1 to {MAX_RESULTS_LIMIT}, got {max_results!r}"
            )
        expression = parse_filter(filter_string or "")
        order_keys = parse_order_by(order_by)
        fingerprint = _fingerprint(experiment_ids, filter_string, order_by, include_deleted)
        offset = _decode_token(page_token, fingerprint)

        query = sa.select(*_RUN_COLUMNS).where(runs.c.experiment_id.in_(list(experiment_ids)))
        if not include_deleted:
            active = sa.select(experiments.c.id).where(
                experiments.c.lifecycle_stage == LifecycleStage.ACTIVE.value
            )
            query = query.where(
                runs.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
                runs.c.experiment_id.in_(active),
            )
        if expression is not None:
            query = query.where(filter_to_sql(expression))
        query = query.order_by(*order_by_to_sql(order_keys)).offset(offset).limit(max_results + 1)
        sql, args = self._store.render(query)
        # One raw cursor, one snapshot: the page and the data of its runs.
        with self._store.cursor(write=False) as cursor:
            cursor.execute(sql, args)
            rows = cursor.fetchall()
            has_more = len(rows) > max_results
            found = self._attach(cursor, rows[:max_results])
        token = _encode_token(offset + max_results, fingerprint) if has_more else None
        return RunPage(found, token)

    def _attach(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> list[Run]:
        """Build runs from rows of ``_RUN_COLUMNS``, loading params, metrics, tags, inputs."""
        if not rows:
            return []
        ids = [row[0] for row in rows]
        marks = ", ".join([self._store.placeholder] * len(ids))
        select = "SELECT run_id, key, value FROM {} WHERE run_id IN (%s)" % marks  # noqa: UP031
        param_map = _grouped(cursor, select.format("params"), ids)
        tag_map = _grouped(cursor, select.format("run_tags"), ids)
        metric_map = _grouped(cursor, select.format("latest_metrics"), ids)
        input_map: dict[str, list[DatasetInput]] = defaultdict(list)
        cursor.execute(
            "SELECT i.run_id, i.context, d.name, d.digest, d.schema, d.num_rows, d.source "
            "FROM run_inputs i JOIN datasets d ON d.id = i.dataset_id "
            f"WHERE i.run_id IN ({marks}) ORDER BY i.run_id, d.name, i.context",
            ids,
        )
        for run_id, context, name, digest, schema, num_rows, source in cursor.fetchall():
            dataset = Dataset(
                name=name,
                digest=digest,
                schema=None if schema is None else json.loads(schema),
                num_rows=num_rows,
                source=source,
            )
            input_map[run_id].append(DatasetInput(dataset, context))
        empty: dict[str, Any] = {}
        found = []
        for run_id, experiment_id, name, status, start, end, uri, stage, parent, user in rows:
            metrics_of_run = metric_map.get(run_id, empty)
            found.append(
                Run(
                    id=run_id,
                    experiment_id=experiment_id,
                    name=name,
                    status=_STATUSES[status],
                    start_time=start,
                    end_time=end,
                    artifact_uri=uri,
                    lifecycle_stage=_STAGES[stage],
                    parent_run_id=parent,
                    user=user,
                    params=param_map.get(run_id, {}),
                    # NULL stands for NaN (see the metrics table)
                    metrics={k: _NAN if v is None else v for k, v in metrics_of_run.items()},
                    tags=tag_map.get(run_id, {}),
                    inputs=tuple(input_map.get(run_id, ())),
                )
            )
        return found


_RUN_COLUMNS = (
    runs.c.id,
    runs.c.experiment_id,
    runs.c.name,
    runs.c.status,
    runs.c.start_time,
    runs.c.end_time,
    runs.c.artifact_uri,
    runs.c.lifecycle_stage,
    runs.c.parent_run_id,
    runs.c.user,
)
_STATUSES = {status.value: status for status in RunStatus}
_STAGES = {stage.value: stage for stage in LifecycleStage}


def _grouped(cursor: Any, sql: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    cursor.execute(sql, ids)
    grouped: dict[str, dict[str, Any]] = defaultdict(dict)
    for run_id, key, value in cursor.fetchall():
        grouped[run_id][key] = value
    return grouped


def _fingerprint(
    experiment_ids: Sequence[int],
    filter_string: str | None,
    order_by: Sequence[str] | str | None,
    include_deleted: bool,
) -> str:
    text = json.dumps(
        [sorted(experiment_ids), filter_string or "", order_by or [], include_deleted],
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _encode_token(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"offset": offset, "query": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str | None, fingerprint: str) -> int:
    if token is None:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = data["offset"]
        query = data["query"]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidInput(
            "page_token is not a token returned by search_runs; pass the "
            "`next_page_token` of the previous page, or None for the first page"
        ) from error
    if query != fingerprint:
        raise InvalidInput(
            "page_token belongs to a different search; repeat the same experiments, filter "
            "and order_by as the search that returned it"
        )
    if not isinstance(offset, int) or not 0 <= offset < 2**62:
        raise InvalidInput("page_token is corrupted; start again from the first page")
    return offset
