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
from sqlalchemy.engine import Connection, Row

from mlops.errors import InvalidInput, NotFound
from mlops.store import Store
from mlops.store._schema import (
    datasets,
    latest_metrics,
    metrics,
    params,
    run_inputs,
    run_tags,
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
    .where(metrics.c.run_id == sa.bindparam("run_id"), metrics.c.key == sa.bindparam("key"))
    .order_by(metrics.c.step, metrics.c.timestamp)
)


class RunReader:
    """Builds ``Run`` snapshots and answers searches; safe to share between threads."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._sql_history = store.prepare(_HISTORY)

    def get_run(self, run_id: str) -> Run:
        with self._store.read() as connection:
            found = self.load_runs(connection, [run_id])
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
        if isinstance(max_results, bool) or not isinstance(max_results, int) or not (
            1 <= max_results <= MAX_RESULTS_LIMIT
        ):
            raise InvalidInput(
                f"max_results must be an integer from 1 to {MAX_RESULTS_LIMIT}, got {max_results!r}"
            )
        expression = parse_filter(filter_string or "")
        order_keys = parse_order_by(order_by)
        fingerprint = _fingerprint(experiment_ids, filter_string, order_by, include_deleted)
        offset = _decode_token(page_token, fingerprint)

        query = sa.select(runs.c.id).where(runs.c.experiment_id.in_(list(experiment_ids)))
        if not include_deleted:
            query = query.where(runs.c.lifecycle_stage == LifecycleStage.ACTIVE.value)
        if expression is not None:
            query = query.where(filter_to_sql(expression))
        query = query.order_by(*order_by_to_sql(order_keys)).offset(offset).limit(max_results + 1)
        with self._store.read() as connection:
            ids = list(connection.execute(query).scalars())
            has_more = len(ids) > max_results
            ids = ids[:max_results]
            found = self.load_runs(connection, ids)
        token = _encode_token(offset + max_results, fingerprint) if has_more else None
        return RunPage(found, token)

    def load_runs(self, connection: Connection, run_ids: Sequence[str]) -> list[Run]:
        """Load runs with params, latest metrics, tags and inputs, in ``run_ids`` order."""
        if not run_ids:
            return []
        ids = list(run_ids)
        run_rows = connection.execute(sa.select(runs).where(runs.c.id.in_(ids))).all()
        if not run_rows:
            return []
        param_map = _grouped(
            connection.execute(
                sa.select(params.c.run_id, params.c.key, params.c.value).where(
                    params.c.run_id.in_(ids)
                )
            )
        )
        tag_map = _grouped(
            connection.execute(
                sa.select(run_tags.c.run_id, run_tags.c.key, run_tags.c.value).where(
                    run_tags.c.run_id.in_(ids)
                )
            )
        )
        metric_map: dict[str, dict[str, float]] = defaultdict(dict)
        for run_id, key, value in connection.execute(
            sa.select(latest_metrics.c.run_id, latest_metrics.c.key, latest_metrics.c.value).where(
                latest_metrics.c.run_id.in_(ids)
            )
        ):
            metric_map[run_id][key] = _NAN if value is None else value
        input_map: dict[str, list[DatasetInput]] = defaultdict(list)
        for row in connection.execute(
            sa.select(run_inputs.c.run_id, run_inputs.c.context, datasets)
            .join(datasets, datasets.c.id == run_inputs.c.dataset_id)
            .where(run_inputs.c.run_id.in_(ids))
            .order_by(run_inputs.c.run_id, datasets.c.name, run_inputs.c.context)
        ):
            input_map[row.run_id].append(DatasetInput(_dataset(row), row.context))
        by_id = {
            row.id: _run(row, param_map, metric_map, tag_map, input_map) for row in run_rows
        }
        return [by_id[run_id] for run_id in ids if run_id in by_id]


def _grouped(rows: Any) -> dict[str, dict[str, str]]:
    grouped: dict[str, dict[str, str]] = defaultdict(dict)
    for run_id, key, value in rows:
        grouped[run_id][key] = value
    return grouped


def _dataset(row: Row[Any]) -> Dataset:
    return Dataset(
        name=row.name,
        digest=row.digest,
        schema=None if row.schema is None else json.loads(row.schema),
        num_rows=row.num_rows,
        source=row.source,
    )


def _run(
    row: Row[Any],
    param_map: dict[str, dict[str, str]],
    metric_map: dict[str, dict[str, float]],
    tag_map: dict[str, dict[str, str]],
    input_map: dict[str, list[DatasetInput]],
) -> Run:
    return Run(
        id=row.id,
        experiment_id=row.experiment_id,
        name=row.name,
        status=RunStatus(row.status),
        start_time=row.start_time,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=LifecycleStage(row.lifecycle_stage),
        parent_run_id=row.parent_run_id,
        user=row.user,
        params=param_map.get(row.id, {}),
        metrics=metric_map.get(row.id, {}),
        tags=tag_map.get(row.id, {}),
        inputs=tuple(input_map.get(row.id, ())),
    )


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
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput("page_token is corrupted; start again from the first page")
    return offset
