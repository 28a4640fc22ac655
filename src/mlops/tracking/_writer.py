"""The write paths for run data: metrics, params, tags, dataset inputs.

Every call validates all of its input before it touches the database and writes in one
transaction, so a rejected call leaves nothing behind.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops.errors import Conflict, InvalidInput, NotFound, RunNotActive
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

_STATUS_OF_RUN = sa.select(runs.c.status, runs.c.lifecycle_stage).where(
    runs.c.id == sa.bindparam("run_id")
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
        self._metric_insert = metrics.insert()
        param_insert = store.upsert(params)
        self._param_insert = param_insert.on_conflict_do_nothing(
            index_elements=[params.c.run_id, params.c.key]
        )
        tag_upsert = store.upsert(run_tags)
        self._tag_upsert = tag_upsert.on_conflict_do_update(
            index_elements=[run_tags.c.run_id, run_tags.c.key],
            set_={"value": tag_upsert.excluded.value},
        )

    # -- checks -------------------------------------------------------------------------

    @staticmethod
    def require_running(connection: Connection, run_id: str) -> None:
        """Raise unless the run exists, is not deleted, and is RUNNING."""
        row = connection.execute(_STATUS_OF_RUN, {"run_id": run_id}).first()
        if row is None:
            raise NotFound(f"run '{run_id}' does not exist (see `mlops runs list`)")
        status, stage = row
        if stage != LifecycleStage.ACTIVE:
            raise RunNotActive(f"run '{run_id}' is deleted; restore it before logging to it")
        if status != RunStatus.RUNNING:
            raise RunNotActive(
                f"run '{run_id}' is {status}; it no longer accepts data. "
                "Start a new run (or a child run) to log more"
            )

    # -- metrics ------------------------------------------------------------------------

    def log_metric(
        self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        row = metric_row(run_id, key, value, step, timestamp)
        with self._store.write() as connection:
            self.require_running(connection, run_id)
            connection.execute(self._metric_insert, row)
            connection.execute(self._latest_upsert, row)

    def log_metric_rows(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        """Write already-validated metric rows (see ``metric_row``) in one transaction."""
        if not rows:
            return
        with self._store.write() as connection:
            self.require_running(connection, run_id)
            self._insert_metric_rows(connection, rows)

    def _insert_metric_rows(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        connection.execute(self._metric_insert, rows)
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            current = latest.get(row["key"])
            if current is None or (row["step"], row["timestamp"]) >= (
                current["step"],
                current["timestamp"],
            ):
                latest[row["key"]] = row
        connection.execute(self._latest_upsert, list(latest.values()))

    # -- params and tags ----------------------------------------------------------------

    def log_params(self, run_id: str, values: Mapping[str, Any]) -> None:
        rows = param_rows(run_id, values)
        if not rows:
            return
        with self._store.write() as connection:
            self.require_running(connection, run_id)
            self._insert_params(connection, run_id, rows)

    def _insert_params(
        self, connection: Connection, run_id: str, rows: list[dict[str, Any]]
    ) -> None:
        connection.execute(self._param_insert, rows)
        wanted = {row["key"]: row["value"] for row in rows}
        stored = connection.execute(
            sa.select(params.c.key, params.c.value).where(
                params.c.run_id == run_id, params.c.key.in_(list(wanted))
            )
        ).all()
        for key, value in stored:
            if value != wanted[key]:
                raise Conflict(
                    f"param {key!r} of run '{run_id}' was logged as {value!r}; params are "
                    f"immutable, so {wanted[key]!r} cannot replace it. Use a metric or a tag "
                    "for values that change, or start a new run"
                )

    def set_tags(self, run_id: str, values: Mapping[str, Any]) -> None:
        rows = tag_rows(run_id, values)
        if not rows:
            return
        with self._store.write() as connection:
            self.require_running(connection, run_id)
            connection.execute(self._tag_upsert, rows)

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
        metric_rows_ = [coerce_metric(run_id, item) for item in metrics]
        param_rows_ = param_rows(run_id, params or {})
        tag_rows_ = tag_rows(run_id, tags or {})
        if not (metric_rows_ or param_rows_ or tag_rows_):
            return
        with self._store.write() as connection:
            self.require_running(connection, run_id)
            if param_rows_:
                self._insert_params(connection, run_id, param_rows_)
            if tag_rows_:
                connection.execute(self._tag_upsert, tag_rows_)
            if metric_rows_:
                self._insert_metric_rows(connection, metric_rows_)

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
            not isinstance(dataset.num_rows, int) or dataset.num_rows < 0
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


def metric_row(
    run_id: str, key: str, value: object, step: object = 0, timestamp: object | None = None
) -> dict[str, Any]:
    """Validate one metric point into a row; NaN becomes NULL (SQLite cannot store NaN)."""
    check_key("metric", key)
    number = check_metric_value(key, value)
    return {
        "run_id": run_id,
        "key": key,
        "value": None if math.isnan(number) else number,
        "step": check_step(key, step),
        "timestamp": check_timestamp(key, timestamp),
    }


def coerce_metric(run_id: str, item: MetricLike) -> dict[str, Any]:
    """Accept a Metric, a (key, value[, step[, timestamp]]) tuple or a mapping."""
    if isinstance(item, Mapping):
        unknown = set(item) - {"key", "value", "step", "timestamp"}
        if unknown or "key" not in item or "value" not in item:
            raise InvalidInput(
                f"a metric mapping needs 'key' and 'value' (optional 'step', 'timestamp'), "
                f"got keys {sorted(item)}"
            )
        return metric_row(
            run_id, item["key"], item["value"], item.get("step", 0), item.get("timestamp")
        )
    if isinstance(item, tuple) and 2 <= len(item) <= 4:
        return metric_row(run_id, *item)
    raise InvalidInput(
        f"cannot read {item!r} as a metric; give Metric(key, value, step, timestamp), "
        "a (key, value, step) tuple or a mapping"
    )


def param_rows(run_id: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(values, Mapping):
        raise InvalidInput(f"params must be a mapping of name to value, got {type(values).__name__}")
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
