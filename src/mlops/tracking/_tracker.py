"""ExperimentTracker: experiments, runs, their data, artifacts and search."""

from __future__ import annotations

import getpass
import json
import os
import secrets
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops.artifacts import ArtifactInfo, ArtifactStore, validate_artifact_path
from mlops.errors import AlreadyExists, Conflict, InvalidInput, MLOpsError, NotFound
from mlops.governance._audit import append
from mlops.store import Store
from mlops.store import _schema as schema
from mlops.store._schema import experiment_tags, experiments, run_artifacts, runs
from mlops.tracking._async import MetricBuffer
from mlops.tracking._entities import (
    Dataset,
    Experiment,
    LifecycleStage,
    Metric,
    Run,
    RunPage,
    RunStatus,
)
from mlops.tracking._reader import RunReader
from mlops.tracking._run import ActiveRun
from mlops.tracking._validation import (
    check_description,
    check_key,
    check_name,
    check_run_id,
    now_ms,
    tag_text,
)
from mlops.tracking._writer import MetricLike, RunDataWriter, metric_point

ExperimentRef = int | str
DEFAULT_EXPERIMENT = "Default"

_ADJECTIVES = (
    "bold",
    "brisk",
    "calm",
    "clever",
    "eager",
    "fancy",
    "gentle",
    "keen",
    "lucid",
    "merry",
)
_NOUNS = ("badger", "crane", "falcon", "gecko", "heron", "koala", "lynx", "otter", "robin", "wren")


class ExperimentTracker:
    """Experiments, runs, params, metrics, tags, dataset inputs and artifacts.

    Thread-safe; returned entities are immutable snapshots.
    """

    def __init__(self, store: Store, artifacts: ArtifactStore, actor: str | None = None) -> None:
        self._store = store
        self._artifacts = artifacts
        self._actor = actor or _current_user() or "unknown"
        self._writer = RunDataWriter(store)
        self._reader = RunReader(store)
        self._buffers: dict[str, MetricBuffer] = {}
        self._buffers_lock = threading.Lock()

    # -- experiments --------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> Experiment:
        check_name("experiment", name)
        description = check_description(description)
        tag_rows = _tag_rows(tags)
        try:
            return self._insert_experiment(name, description, tag_rows, actor or self._actor)
        except Conflict as error:  # another process created it between check and insert
            raise AlreadyExists(f"experiment {name!r} already exists") from error

    def _insert_experiment(
        self, name: str, description: str | None, tag_rows: list[dict[str, str]], actor: str
    ) -> Experiment:
        with self._store.write() as connection:
            existing = connection.execute(
                sa.select(experiments.c.lifecycle_stage).where(experiments.c.name == name)
            ).first()
            if existing is not None:
                hint = (
                    f"; it is deleted: restore it with `ml.tracking.restore_experiment({name!r})`"
                    if existing.lifecycle_stage == LifecycleStage.DELETED
                    else "; use ml.tracking.set_experiment(name) to get it or create it"
                )
                raise AlreadyExists(f"experiment {name!r} already exists{hint}")
            experiment_id = self._insert_experiment_row(connection, name, description)
            if tag_rows:
                connection.execute(
                    experiment_tags.insert(),
                    [{"experiment_id": experiment_id, **row} for row in tag_rows],
                )
            created = self._load_experiment(connection, experiment_id)
            append(
                connection,
                actor=actor,
                action="experiment.created",
                target=f"experiments/{experiment_id}",
                after={"name": name, "description": description},
            )
            return created

    def set_experiment(self, name: str) -> Experiment:
        """Get the experiment called ``name``, creating it if it does not exist."""
        check_name("experiment", name)
        try:
            return self.create_experiment(name)
        except AlreadyExists:
            experiment = self.get_experiment(name)
            if experiment.lifecycle_stage is LifecycleStage.DELETED:
                raise Conflict(
                    f"experiment {name!r} is deleted; restore it with "
                    f"`ml.tracking.restore_experiment({name!r})` or pick another name"
                ) from None
            return experiment

    def get_experiment(self, experiment: ExperimentRef) -> Experiment:
        """An experiment by id (int) or name (str)."""
        with self._store.read() as connection:
            return self._load_experiment(connection, self._experiment_id(connection, experiment))

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        with self._store.read() as connection:
            query = sa.select(experiments.c.id).order_by(experiments.c.id)
            if not include_deleted:
                query = query.where(experiments.c.lifecycle_stage == LifecycleStage.ACTIVE.value)
            ids = list(connection.execute(query).scalars())
            return [self._load_experiment(connection, experiment_id) for experiment_id in ids]

    def rename_experiment(
        self, experiment: ExperimentRef, new_name: str, *, actor: str | None = None
    ) -> Experiment:
        check_name("experiment", new_name)
        with self._store.write() as connection:
            experiment_id = self._experiment_id(connection, experiment)
            old_name = connection.execute(
                sa.select(experiments.c.name).where(experiments.c.id == experiment_id)
            ).scalar_one()
            taken = connection.execute(
                sa.select(experiments.c.id).where(experiments.c.name == new_name)
            ).first()
            if taken is not None and taken.id != experiment_id:
                raise AlreadyExists(f"experiment {new_name!r} already exists; pick another name")
            connection.execute(
                experiments.update()
                .where(experiments.c.id == experiment_id)
                .values(name=new_name, updated_at=now_ms())
            )
            renamed = self._load_experiment(connection, experiment_id)
            append(
                connection,
                actor=actor or self._actor,
                action="experiment.renamed",
                target=f"experiments/{experiment_id}",
                before={"name": old_name},
                after={"name": new_name},
            )
            return renamed

    def delete_experiment(self, experiment: ExperimentRef, *, actor: str | None = None) -> None:
        """Hide an experiment and its runs; ``restore_experiment`` brings them back."""
        self._set_experiment_stage(experiment, LifecycleStage.DELETED, actor)

    def restore_experiment(self, experiment: ExperimentRef, *, actor: str | None = None) -> None:
        self._set_experiment_stage(experiment, LifecycleStage.ACTIVE, actor)

    def set_experiment_tag(self, experiment: ExperimentRef, key: str, value: Any) -> None:
        rows = _tag_rows({key: value})
        with self._store.write() as connection:
            experiment_id = self._experiment_id(connection, experiment)
            upsert = self._store.upsert(experiment_tags)
            connection.execute(
                upsert.on_conflict_do_update(
                    index_elements=[experiment_tags.c.experiment_id, experiment_tags.c.key],
                    set_={"value": upsert.excluded.value},
                ),
                {"experiment_id": experiment_id, **rows[0]},
            )

    def _set_experiment_stage(
        self, experiment: ExperimentRef, stage: LifecycleStage, actor: str | None
    ) -> None:
        with self._store.write() as connection:
            experiment_id = self._experiment_id(connection, experiment)
            connection.execute(
                experiments.update()
                .where(experiments.c.id == experiment_id)
                .values(lifecycle_stage=stage.value, updated_at=now_ms())
            )
            append(
                connection,
                actor=actor or self._actor,
                action="experiment.deleted"
                if stage is LifecycleStage.DELETED
                else "experiment.restored",
                target=f"experiments/{experiment_id}",
                after={"lifecycle_stage": stage.value},
            )

    def _experiment_id(self, connection: Connection, experiment: ExperimentRef) -> int:
        if isinstance(experiment, bool) or not isinstance(experiment, (int, str)):
            raise InvalidInput(
                f"an experiment is named by its id (int) or name (str), got {experiment!r}"
            )
        column = experiments.c.id if isinstance(experiment, int) else experiments.c.name
        found = connection.execute(sa.select(experiments.c.id).where(column == experiment)).first()
        if found is None:
            what = f"id {experiment}" if isinstance(experiment, int) else repr(experiment)
            raise NotFound(
                f"experiment {what} does not exist; create it with "
                "ml.tracking.create_experiment(name) (see `mlops experiments list`)"
            )
        return int(found.id)

    @staticmethod
    def _load_experiment(connection: Connection, experiment_id: int) -> Experiment:
        row = connection.execute(
            sa.select(experiments).where(experiments.c.id == experiment_id)
        ).one()
        tags = dict(
            connection.execute(
                sa.select(experiment_tags.c.key, experiment_tags.c.value).where(
                    experiment_tags.c.experiment_id == experiment_id
                )
            ).all()
        )
        return Experiment(
            id=row.id,
            name=row.name,
            artifact_location=row.artifact_location,
            lifecycle_stage=LifecycleStage(row.lifecycle_stage),
            created_at=row.created_at,
            updated_at=row.updated_at,
            description=row.description,
            tags=tags,
        )

    # -- runs ---------------------------------------------------------------------------

    def start_run(
        self,
        experiment: ExperimentRef | None = None,
        *,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent: str | ActiveRun | Run | None = None,
        async_logging: bool = False,
    ) -> ActiveRun:
        """Create a RUNNING run and return its handle (also a context manager).

        ``experiment`` defaults to the parent's experiment, else to "Default".
        Leaving a ``with`` block ends the run FINISHED, or FAILED if the block raised.
        """
        if name is not None:
            check_name("run", name)
        tag_rows = _tag_rows(tags)
        parent_id = None if parent is None else check_run_id(getattr(parent, "id", parent))
        run_id = uuid.uuid4().hex
        default_id = (
            self._default_experiment() if experiment is None and parent_id is None else None
        )
        with self._store.write() as connection:
            if parent_id is not None:
                parent_row = connection.execute(
                    sa.select(runs.c.experiment_id).where(runs.c.id == parent_id)
                ).first()
                if parent_row is None:
                    raise NotFound(f"parent run '{parent_id}' does not exist")
            if experiment is None and parent_id is not None:
                experiment_id = int(parent_row.experiment_id)  # type: ignore[union-attr]
            elif experiment is None:
                assert default_id is not None
                experiment_id = default_id
            else:
                experiment_id = self._experiment_id(connection, experiment)
            stage = connection.execute(
                sa.select(experiments.c.lifecycle_stage).where(experiments.c.id == experiment_id)
            ).scalar_one()
            if stage != LifecycleStage.ACTIVE:
                raise Conflict(
                    f"experiment {experiment_id} is deleted; restore it "
                    f"(`mlops experiments restore {experiment_id}`) before starting runs in it"
                )
            connection.execute(
                runs.insert().values(
                    id=run_id,
                    experiment_id=experiment_id,
                    name=name or _friendly_name(),
                    status=RunStatus.RUNNING.value,
                    start_time=now_ms(),
                    end_time=None,
                    parent_run_id=parent_id,
                    artifact_uri=self._artifacts.url(_run_prefix(experiment_id, run_id)),
                    lifecycle_stage=LifecycleStage.ACTIVE.value,
                    user=_current_user(),
                )
            )
            if tag_rows:
                connection.execute(
                    self._writer.tag_upsert, [{"run_id": run_id, **row} for row in tag_rows]
                )
        return ActiveRun(self, run_id, experiment_id, async_logging=async_logging)

    def _default_experiment(self) -> int:
        """The id of "Default", created on first use; safe when processes race to create it."""
        with self._store.read() as connection:
            found = connection.execute(
                sa.select(experiments.c.id).where(experiments.c.name == DEFAULT_EXPERIMENT)
            ).first()
        if found is not None:
            return int(found.id)
        try:
            return self.create_experiment(DEFAULT_EXPERIMENT).id
        except AlreadyExists:
            return self.get_experiment(DEFAULT_EXPERIMENT).id

    def _insert_experiment_row(
        self, connection: Connection, name: str, description: str | None
    ) -> int:
        created = now_ms()
        inserted = connection.execute(
            experiments.insert().values(
                name=name,
                description=description,
                artifact_location="",
                lifecycle_stage=LifecycleStage.ACTIVE.value,
                created_at=created,
                updated_at=created,
            )
        )
        experiment_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
        # The folder is named by the id, which exists only once the row does.
        connection.execute(
            experiments.update()
            .where(experiments.c.id == experiment_id)
            .values(artifact_location=self._artifacts.url(str(experiment_id)))
        )
        return experiment_id

    def resume_run(self, run_id: str, *, async_logging: bool = False) -> ActiveRun:
        """A handle on an existing RUNNING run (another process may have started it)."""
        check_run_id(run_id)
        with self._store.read() as connection:
            RunDataWriter.require_running(connection, run_id)
            experiment_id = connection.execute(
                sa.select(runs.c.experiment_id).where(runs.c.id == run_id)
            ).scalar_one()
        return ActiveRun(self, run_id, int(experiment_id), async_logging=async_logging)

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Mark a RUNNING run FINISHED, FAILED or KILLED."""
        check_run_id(run_id)
        try:
            final = RunStatus(str(status).upper())
        except ValueError:
            final = RunStatus.RUNNING
        if final is RunStatus.RUNNING:
            raise InvalidInput(f"a run ends as FINISHED, FAILED or KILLED, not {status!r}")
        buffer = self._buffers.pop(run_id, None)
        try:
            if buffer is not None:
                buffer.close()  # buffered metrics land before the run ends
        finally:
            with self._store.write() as connection:
                RunDataWriter.require_running(connection, run_id)
                connection.execute(
                    runs.update()
                    .where(runs.c.id == run_id)
                    .values(status=final.value, end_time=now_ms())
                )

    def open_buffer(self, run_id: str) -> MetricBuffer:
        """The background metric writer of a run (one per run, closed by ``end_run``)."""
        with self._buffers_lock:
            buffer = self._buffers.get(run_id)
            if buffer is None:
                buffer = self._buffers[run_id] = MetricBuffer(self._writer, run_id)
            return buffer

    def close(self) -> None:
        """Flush and stop every background metric writer of this tracker."""
        with self._buffers_lock:
            buffers, self._buffers = list(self._buffers.values()), {}
        for buffer in buffers:
            buffer.close(raise_errors=False)

    def get_run(self, run_id: str) -> Run:
        check_run_id(run_id)
        return self._reader.get_run(run_id)

    def delete_run(self, run_id: str, *, actor: str | None = None) -> None:
        """Hide a run from searches; ``restore_run`` brings it back."""
        self._set_run_stage(run_id, LifecycleStage.DELETED, actor)

    def restore_run(self, run_id: str, *, actor: str | None = None) -> None:
        self._set_run_stage(run_id, LifecycleStage.ACTIVE, actor)

    def _set_run_stage(self, run_id: str, stage: LifecycleStage, actor: str | None) -> None:
        check_run_id(run_id)
        with self._store.write() as connection:
            updated = connection.execute(
                runs.update().where(runs.c.id == run_id).values(lifecycle_stage=stage.value)
            )
            if updated.rowcount == 0:
                raise NotFound(f"run '{run_id}' does not exist (see `mlops runs list`)")
            append(
                connection,
                actor=actor or self._actor,
                action="run.deleted" if stage is LifecycleStage.DELETED else "run.restored",
                target=f"runs/{run_id}",
                after={"lifecycle_stage": stage.value},
            )

    def search_runs(
        self,
        experiments: ExperimentRef | Sequence[ExperimentRef] | None = None,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> RunPage:
        """Runs matching ``filter``, e.g. ``"metrics.f1 > 0.8 and params.model = 'rf'"``.

        ``experiments`` defaults to every active experiment; ``order_by`` takes clauses
        such as ``"metrics.f1 DESC"``; the result is one page with ``next_page_token``.
        """
        if filter is not None and not isinstance(filter, str):
            raise InvalidInput(f"filter must be a string, got {type(filter).__name__}")
        with self._store.read() as connection:
            if experiments is None:
                ids = list(
                    connection.execute(
                        sa.select(schema.experiments.c.id).where(
                            schema.experiments.c.lifecycle_stage == LifecycleStage.ACTIVE.value
                        )
                    ).scalars()
                )
            else:
                refs = [experiments] if isinstance(experiments, (int, str)) else list(experiments)
                ids = [self._experiment_id(connection, ref) for ref in refs]
        return self._reader.search(ids, filter, order_by, max_results, page_token, include_deleted)

    # -- run data -----------------------------------------------------------------------

    def log_metric(
        self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        self._writer.log_metric(check_run_id(run_id), key, value, step, timestamp)

    def log_metrics(
        self, run_id: str, values: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        if not isinstance(values, Mapping):
            raise InvalidInput("log_metrics takes a mapping of metric name to value")
        points = [metric_point(key, value, step, timestamp) for key, value in values.items()]
        self._writer.log_points(check_run_id(run_id), points)

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self._writer.log_params(check_run_id(run_id), {key: value})

    def log_params(self, run_id: str, values: Mapping[str, Any]) -> None:
        self._writer.log_params(check_run_id(run_id), values)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self._writer.set_tags(check_run_id(run_id), {key: value})

    def set_tags(self, run_id: str, values: Mapping[str, Any]) -> None:
        self._writer.set_tags(check_run_id(run_id), values)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._writer.delete_tag(check_run_id(run_id), key)

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[MetricLike] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Metrics, params and tags in one transaction: all written or none."""
        self._writer.log_batch(check_run_id(run_id), metrics, params, tags)

    def log_input(self, run_id: str, dataset: Dataset, context: str = "training") -> None:
        self._writer.log_input(check_run_id(run_id), dataset, context)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged point of one metric, ordered by step then time."""
        check_key("metric", key)
        return self._reader.metric_history(check_run_id(run_id), key)

    # -- artifacts ----------------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        """Store a file or a whole folder under the run's artifacts; returns what was written.

        ``artifact_path`` is a folder inside the run's artifacts (default: the top).
        """
        check_run_id(run_id)
        source = Path(local_path)
        if not source.exists():
            raise InvalidInput(f"cannot log artifact: {source} does not exist")
        folder = "" if artifact_path is None else validate_artifact_path(artifact_path)
        target = "/".join(part for part in (folder, source.name) if part)
        with self._store.read() as connection:
            RunDataWriter.require_running(connection, run_id)
            experiment_id = self._run_experiment(connection, run_id)
        prefix = _run_prefix(experiment_id, run_id)
        planned = (
            [
                f"{target}/{p.relative_to(source).as_posix()}"
                for p in source.rglob("*")
                if p.is_file()
            ]
            if source.is_dir()
            else [target]
        )
        self._refuse_existing(run_id, planned)
        if source.is_dir():
            written = self._artifacts.put_dir(source, f"{prefix}/{target}")
        else:
            written = [self._artifacts.put_file(source, f"{prefix}/{target}")]
        return self._record_artifacts(run_id, prefix, written)

    def _refuse_existing(self, run_id: str, paths: list[str]) -> None:
        """Artifacts are immutable once logged (their digests are on record)."""
        with self._store.read() as connection:
            taken = connection.execute(
                sa.select(run_artifacts.c.path).where(
                    run_artifacts.c.run_id == run_id, run_artifacts.c.path.in_(paths)
                )
            ).first()
        if taken is not None:
            raise Conflict(
                f"run '{run_id}' already has artifact {taken.path!r}; logged artifacts are "
                "immutable, so log under another artifact_path"
            )

    def log_text(self, run_id: str, text: str, artifact_file: str) -> ArtifactInfo:
        """Store ``text`` (UTF-8) as a file in the run's artifacts."""
        return self._log_bytes(run_id, text.encode(), artifact_file)

    def log_dict(self, run_id: str, data: Mapping[str, Any], artifact_file: str) -> ArtifactInfo:
        """Store ``data`` as a JSON file in the run's artifacts."""
        return self._log_bytes(
            run_id, json.dumps(data, indent=2, sort_keys=True).encode(), artifact_file
        )

    def _log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> ArtifactInfo:
        check_run_id(run_id)
        path = validate_artifact_path(artifact_file)
        with self._store.read() as connection:
            RunDataWriter.require_running(connection, run_id)
            experiment_id = self._run_experiment(connection, run_id)
        prefix = _run_prefix(experiment_id, run_id)
        self._refuse_existing(run_id, [path])
        written = self._artifacts.put_bytes(data, f"{prefix}/{path}")
        return self._record_artifacts(run_id, prefix, [written])[0]

    def _record_artifacts(
        self, run_id: str, prefix: str, written: list[ArtifactInfo]
    ) -> list[ArtifactInfo]:
        relative = [
            ArtifactInfo(info.path[len(prefix) + 1 :], info.size, info.sha256) for info in written
        ]
        rows = [
            {"run_id": run_id, "path": info.path, "size": info.size, "sha256": info.sha256}
            for info in relative
        ]
        try:
            with self._store.write() as connection:
                RunDataWriter.require_running(connection, run_id)
                connection.execute(run_artifacts.insert(), rows)
        except Conflict as error:
            # Another writer recorded the same path first; its row and file stand.
            raise Conflict(
                f"run '{run_id}' already has one of these artifacts: "
                f"{', '.join(info.path for info in relative)}"
            ) from error
        except MLOpsError:
            for info in written:  # nothing recorded, so nothing may stay behind
                self._artifacts.delete(info.path)
            raise
        return relative

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactInfo]:
        """The run's artifact files (optionally below ``path``), with sizes and SHA-256."""
        check_run_id(run_id)
        folder = None if not path else validate_artifact_path(path)
        with self._store.read() as connection:
            self._run_experiment(connection, run_id)
            query = sa.select(run_artifacts).where(run_artifacts.c.run_id == run_id)
            if folder is not None:
                query = query.where(
                    sa.or_(
                        run_artifacts.c.path == folder,
                        run_artifacts.c.path.startswith(folder + "/", autoescape=True),
                    )
                )
            rows = connection.execute(query.order_by(run_artifacts.c.path)).all()
        return [ArtifactInfo(row.path, row.size, row.sha256) for row in rows]

    def download_artifacts(
        self, run_id: str, path: str, destination: str | os.PathLike[str]
    ) -> Path:
        """Copy an artifact file or folder of the run to ``destination``; returns its path."""
        listed = self.list_artifacts(run_id, path)
        if not listed:
            raise NotFound(f"run '{run_id}' has no artifact {path!r} (see list_artifacts)")
        with self._store.read() as connection:
            prefix = _run_prefix(self._run_experiment(connection, run_id), run_id)
        folder = validate_artifact_path(path)
        target = Path(destination) / Path(folder).name
        if len(listed) == 1 and listed[0].path == folder:
            return self._artifacts.get_file(f"{prefix}/{folder}", target)
        for info in listed:
            self._artifacts.get_file(f"{prefix}/{info.path}", target / info.path[len(folder) + 1 :])
        return target

    @staticmethod
    def _run_experiment(connection: Connection, run_id: str) -> int:
        found = connection.execute(
            sa.select(runs.c.experiment_id).where(runs.c.id == run_id)
        ).first()
        if found is None:
            raise NotFound(f"run '{run_id}' does not exist (see `mlops runs list`)")
        return int(found.experiment_id)


def _run_prefix(experiment_id: int, run_id: str) -> str:
    return f"{experiment_id}/{run_id}/artifacts"


def _tag_rows(tags: Mapping[str, Any] | None) -> list[dict[str, str]]:
    if tags is None:
        return []
    if not isinstance(tags, Mapping):
        raise InvalidInput(f"tags must be a mapping of name to value, got {type(tags).__name__}")
    return [
        {"key": check_key("tag", key), "value": tag_text(key, value)} for key, value in tags.items()
    ]


def _friendly_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000):03d}"


def _current_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
