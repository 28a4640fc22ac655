"""The write paths for run data: metrics, params, tags, dataset inputs.

Every call validates all of its input before it touches the database and writes in one
transaction, so a rejected call leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops.errors import Conflict, InvalidInput, NotFound, RunNotActive
from mlops.store import Store
from mlops.store._schema import (
    datasets,
    experiments,
    latest_metrics,
    metrics,
    params,
    run_inputs,
    run_tags,
    runs,
)
from mlops.tracking._entities import Dataset, LifecycleStage, Metric, RunStatus
from mlops.tracking._validation import (
    check_key,
    check_metric_value,
    check_name,
    check_step,
    check_timestamp,
    now_ms,
    param_text,
    tag_text,
)

MetricLike = Metric | tuple[Any, ...] | Mapping[str, Any]

_STATUS_OF_RUN = (
    sa.select(
        runs.c.status,
        runs.c.lifecycle_stage,
        runs.c.seq,
        experiments.c.lifecycle_stage.label("experiment_stage"),
    )
    .join(experiments, experiments.c.id == runs.c.experiment_id)
    .where(runs.c.id == sa.bindparam("run_id"))
)


class RunDataWriter:
    """Writes metrics, params, tags and inputs of runs; safe to share between threads."""

    def __init__(self, store: Store) -> None:
        self._store = store
        upsert = store.upsert(latest_metrics)
        newer = sa.or_(
            upsert.excluded.step > latest_metrics.c.step,
            sa.and_(
                upsert.excluded.step == latest_metrics.c.step,
                upsert.excluded.timestamp >= latest_metrics.c.timestamp,
            ),
        )
        self._latest_upsert = upsert.on_conflict_do_update(
            index_elements=[latest_metrics.c.run_id, latest_metrics.c.key],
            set_={
                "value": upsert.excluded.value,
                "step": upsert.excluded.step,
                "timestamp": upsert.excluded.timestamp,
            },
            where=newer,
        )
        param_insert = store.upsert(params)
        self._param_insert = param_insert.on_conflict_do_nothing(
            index_elements=[params.c.run_id, params.c.key]
        )
        tag_upsert = store.upsert(run_tags)
        self.tag_upsert = tag_upsert.on_conflict_do_update(
            index_elements=[run_tags.c.run_id, run_tags.c.key],
            set_={"value": tag_upsert.excluded.value},
        )
        # Hot paths run prepared driver SQL on a raw cursor (see Store.cursor).
        self._sql_status = store.prepare(_STATUS_OF_RUN)
        self._sql_metric = store.prepare(
            metrics.insert().inline(), ["run_seq", "key", "value", "step", "timestamp"]
        )
        self._sql_latest = store.prepare(
            self._latest_upsert, ["run_id", "key", "value", "step", "timestamp"]
        )
        # Points are passed to the driver as (run, *point), so the SQL must take them in order.
        assert self._sql_metric.names[1:] == self._sql_latest.names[1:] == POINT_COLUMNS
        self._sql_param = store.prepare(self._param_insert, ["run_id", "key", "value"])
        self._sql_param_value = store.prepare(
            sa.select(params.c.value).where(
                params.c.run_id == sa.bindparam("run_id"), params.c.key == sa.bindparam("key")
            )
        )
        self._sql_tag = store.prepare(self.tag_upsert, ["run_id", "key", "value"])

    # -- checks -------------------------------------------------------------------------

    @staticmethod
    def require_running(connection: Connection, run_id: str) -> int:
        """Raise unless the run exists, is not deleted, and is RUNNING; return its ``seq``."""
        return _check_status(run_id, connection.execute(_STATUS_OF_RUN, {"run_id": run_id}).first())

    def _require_running(self, cursor: Any, run_id: str) -> int:
        cursor.execute(self._sql_status.sql, (run_id,))
        return _check_status(run_id, cursor.fetchone())

    # -- metrics ------------------------------------------------------------------------

    def log_metric(
        self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        point = metric_point(key, value, step, timestamp)
        with self._store.cursor(write=True) as cursor:
            seq = self._require_running(cursor, run_id)
            cursor.execute(self._sql_metric.sql, (seq, *point))
            cursor.execute(self._sql_latest.sql, (run_id, *point))

    def log_points(self, run_id: str, points: list[MetricPoint]) -> None:
        """Write already-validated points (see ``metric_point``) in one transaction."""
        if not points:
            return
        with self._store.cursor(write=True) as cursor:
            seq = self._require_running(cursor, run_id)
            self._insert_points(cursor, run_id, seq, points)

    def _insert_points(self, cursor: Any, run_id: str, seq: int, points: list[MetricPoint]) -> None:
        cursor.executemany(self._sql_metric.sql, [(seq, *point) for point in points])
        latest: dict[str, MetricPoint] = {}
        for point in points:
            current = latest.get(point[0])
            # Highest step wins; at equal steps the later timestamp.
            if current is None or (point[2], point[3]) >= (current[2], current[3]):
                latest[point[0]] = point
        cursor.executemany(self._sql_latest.sql, [(run_id, *point) for point in latest.values()])

    # -- params and tags ----------------------------------------------------------------

    def log_params(self, run_id: str, values: Mapping[str, Any]) -> None:
        rows = param_rows(run_id, values)
        if not rows:
            return
        with self._store.cursor(write=True) as cursor:
            self._require_running(cursor, run_id)
            self._insert_params(cursor, run_id, rows)

    def _insert_params(self, cursor: Any, run_id: str, rows: list[dict[str, Any]]) -> None:
        if len(rows) == 1:
            cursor.execute(self._sql_param.sql, self._sql_param.args(rows[0]))
        else:
            cursor.executemany(self._sql_param.sql, [self._sql_param.args(row) for row in rows])
        for row in rows:
            key, wanted = row["key"], row["value"]
            cursor.execute(self._sql_param_value.sql, (run_id, key))
            stored = cursor.fetchone()[0]
            if stored != wanted:
                raise Conflict(
                    f"param {key!r} of run '{run_id}' was logged as {stored!r}; params "
                    f"are immutable, so {wanted!r} cannot replace it. Use a metric or a tag "
                    "for values that change, or start a new run"
                )

    def set_tags(self, run_id: str, values: Mapping[str, Any]) -> None:
        rows = tag_rows(run_id, values)
        if not rows:
            return
        with self._store.cursor(write=True) as cursor:
            self._require_running(cursor, run_id)
            cursor.executemany(self._sql_tag.sql, [self._sql_tag.args(row) for row in rows])

    def delete_tag(self, run_id: str, key: str) -> None:
        check_key("tag", key)
        with self._store.write() as connection:
            self.require_running(connection, run_id)
            deleted = connection.execute(
                run_tags.delete().where(run_tags.c.run_id == run_id, run_tags.c.key == key)
            )
            if deleted.rowcount == 0:
                raise NotFound(f"run '{run_id}' has no tag {key!r}")

    # -- everything at once -------------------------------------------------------------

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[MetricLike] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Log metrics, params and tags in one transaction: all of them or none."""
        points = [coerce_metric(item) for item in metrics]
        param_rows_ = param_rows(run_id, params or {})
        tag_rows_ = tag_rows(run_id, tags or {})
        if not (points or param_rows_ or tag_rows_):
            return
        with self._store.cursor(write=True) as cursor:
            seq = self._require_running(cursor, run_id)
            if param_rows_:
                self._insert_params(cursor, run_id, param_rows_)
            if tag_rows_:
                cursor.executemany(self._sql_tag.sql, [self._sql_tag.args(r) for r in tag_rows_])
            if points:
                self._insert_points(cursor, run_id, seq, points)

    # -- dataset inputs -----------------------------------------------------------------

    def log_input(self, run_id: str, dataset: Dataset, context: str = "training") -> None:
        if not isinstance(dataset, Dataset):
            raise InvalidInput(
                f"log_input takes a mlops.tracking.Dataset, got {type(dataset).__name__}; "
                "build one with Dataset(name=..., digest=...) or dataset_from_data(...)"
            )
        check_name("dataset", dataset.name)
        check_key("dataset context", context)
        if not isinstance(dataset.digest, str) or not dataset.digest or len(dataset.digest) > 64:
            raise InvalidInput(
                f"dataset {dataset.name!r} needs a digest of 1 to 64 characters, "
                f"got {dataset.digest!r}"
            )
        if dataset.num_rows is not None and (
            not isinstance(dataset.num_rows, int) or not 0 <= dataset.num_rows < 2**63
        ):
            raise InvalidInput(f"dataset {dataset.name!r} num_rows must be a non-negative int")
        schema_text = None if dataset.schema is None else json.dumps(dataset.schema, sort_keys=True)
        with self._store.write() as connection:
            self.require_running(connection, run_id)
            insert = self._store.upsert(datasets).on_conflict_do_nothing(
                index_elements=[datasets.c.name, datasets.c.digest]
            )
            connection.execute(
                insert,
                {
                    "name": dataset.name,
                    "digest": dataset.digest,
                    "schema": schema_text,
                    "num_rows": dataset.num_rows,
                    "source": dataset.source,
                    "created_at": now_ms(),
                },
            )
            dataset_id = connection.execute(
                sa.select(datasets.c.id).where(
                    datasets.c.name == dataset.name, datasets.c.digest == dataset.digest
                )
            ).scalar_one()
            link = self._store.upsert(run_inputs).on_conflict_do_nothing()
            connection.execute(
                link, {"run_id": run_id, "dataset_id": dataset_id, "context": context}
            )


def _check_status(run_id: str, row: Any) -> int:
    if row is None:
        raise NotFound(f"run '{run_id}' does not exist (see `mlops runs list`)")
    status, stage, seq, experiment_stage = row
    if stage != LifecycleStage.ACTIVE:
        raise RunNotActive(f"run '{run_id}' is deleted; restore it before logging to it")
    if experiment_stage != LifecycleStage.ACTIVE:
        raise RunNotActive(
            f"the experiment of run '{run_id}' is deleted; restore it before logging to the run"
        )
    if status != RunStatus.RUNNING:
        raise RunNotActive(
            f"run '{run_id}' is {status}; it no longer accepts data. "
            "Start a new run (or a child run) to log more"
        )
    return int(seq)


#: A validated metric point: (key, value, step, timestamp), in the column order of the
#: metrics table after its run column; a value of None stands for NaN (SQLite has no NaN).
MetricPoint = tuple[str, float | None, int, int]
POINT_COLUMNS = ("key", "value", "step", "timestamp")


def metric_point(
    key: str, value: object, step: object = 0, timestamp: object | None = None
) -> MetricPoint:
    """Validate one metric point."""
    # Fast paths for the common types keep batched logging cheap; anything else goes
    # through the full checks.
    if key not in _checked_keys:
        check_key("metric", key)
        if len(_checked_keys) < 10_000:
            _checked_keys.add(key)
    number = value if type(value) is float else check_metric_value(key, value)
    return (
        key,
        None if number != number else number,  # NaN is the one value unequal to itself
        step if type(step) is int and -(2**63) <= step < 2**63 else check_step(key, step),
        timestamp
        if type(timestamp) is int and 0 <= timestamp < 2**63
        else check_timestamp(key, timestamp),
    )


_checked_keys: set[str] = set()


def coerce_metric(item: MetricLike) -> MetricPoint:
    """Accept a Metric, a (key, value[, step[, timestamp]]) tuple or a mapping."""
    if isinstance(item, tuple) and 2 <= len(item) <= 4:
        return metric_point(*item)
    if isinstance(item, Mapping):
        unknown = set(item) - {"key", "value", "step", "timestamp"}
        if unknown or "key" not in item or "value" not in item:
            raise InvalidInput(
                f"a metric mapping needs 'key' and 'value' (optional 'step', 'timestamp'), "
                f"got keys {sorted(item)}"
            )
        return metric_point(item["key"], item["value"], item.get("step", 0), item.get("timestamp"))
    raise InvalidInput(
        f"cannot read {item!r} as a metric; give Metric(key, value, step, timestamp), "
        "a (key, value, step) tuple or a mapping"
    )


def param_rows(run_id: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(values, Mapping):
        raise InvalidInput(
            f"params must be a mapping of name to value, got {type(values).__name__}"
        )
    return [
        {"run_id": run_id, "key": check_key("param", key), "value": param_text(key, value)}
        for key, value in values.items()
    ]


def tag_rows(run_id: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(values, Mapping):
        raise InvalidInput(f"tags must be a mapping of name to value, got {type(values).__name__}")
    return [
        {"run_id": run_id, "key": check_key("tag", key), "value": tag_text(key, value)}
        for key, value in values.items()
    ]
