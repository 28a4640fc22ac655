"""``mlops.connect()``: the one entry object, with a facade per domain."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from mlops.artifacts import ArtifactStore, open_artifact_store
from mlops.config import Settings
from mlops.deployment import DeploymentManager
from mlops.errors import InvalidInput, StorageError
from mlops.governance import AccessControl, AuditLog
from mlops.monitoring import ModelMonitor
from mlops.registry import ModelRegistry
from mlops.store import Store, current_revision, head_revision, require_known_revision, upgrade
from mlops.tracking import ExperimentTracker

if TYPE_CHECKING:
    from mlops.orchestration import PipelineOrchestrator

__all__ = ["MLOps", "connect"]


class MLOps:
    """A connection to one mlops installation: its metadata store and artifact store."""

    def __init__(self, store: Store, artifacts: ArtifactStore, settings: Settings) -> None:
        self.settings = settings
        self.store = store
        self.artifacts = artifacts
        self.tracking = ExperimentTracker(store, artifacts, actor=settings.user)
        self.registry = ModelRegistry(
            store, artifacts, cache_dir=settings.home / "cache" / "models", actor=settings.user
        )
        self.deployments = DeploymentManager(store, self.registry, actor=self.registry.actor)
        self.monitor = ModelMonitor(store, self.registry, actor=self.registry.actor)
        self.audit = AuditLog(store, actor=self.registry.actor)
        self.access = AccessControl(store, actor=self.registry.actor)
        self._pipelines: PipelineOrchestrator | None = None

    @property
    def pipelines(self) -> PipelineOrchestrator:
        """Registered pipelines: schedules, triggers, executions (made on first use, so
        ``import mlops`` does not pay for the scheduler's imports)."""
        if self._pipelines is None:
            from mlops.orchestration import PipelineOrchestrator

            self._pipelines = PipelineOrchestrator(self)
        return self._pipelines

    def __repr__(self) -> str:
        return f"<MLOps database={self.store.display_url} artifacts={self.artifacts.root}>"

    def close(self) -> None:
        """Flush background metric writers and release pooled database connections."""
        self.tracking.close()
        self.monitor.close()
        self.store.dispose()

    def __enter__(self) -> MLOps:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def connect(
    database_url: str | None = None,
    *,
    artifacts: str | None = None,
    home: str | None = None,
    settings: Settings | None = None,
    upgrade_schema: bool | None = None,
    token: str | None = None,
) -> MLOps:
    """Connect to a metadata database and an artifact store, or to an ``mlops server``.

    With no arguments: the embedded default, a SQLite file and a folder under
    ``MLOPS_HOME`` (``./mlops-data``), created and migrated on first use. A PostgreSQL
    store is migrated by ``mlops db upgrade`` instead, unless ``upgrade_schema=True``.
    An ``http(s)://host:port`` URL connects to a server's API (``token``, or
    ``MLOPS_TOKEN``, is its API token): the same tracking and registry facades over HTTP.
    """
    base = settings if settings is not None else Settings.from_env()
    if database_url is not None and not isinstance(database_url, str):
        raise InvalidInput(f"database_url must be a string, got {type(database_url).__name__}")
    if database_url is not None and database_url.startswith(("http://", "https://")):
        if artifacts is not None or upgrade_schema is not None:
            raise InvalidInput(
                "a server keeps its own stores: give only the URL (and token, home) "
                "when connecting to one"
            )
        from mlops.remote import connect_remote

        return connect_remote(database_url, token=token, home=home, settings=base)
    if token is not None:
        raise InvalidInput(
            "token= is for a server URL (http://host:port); a database connection has none"
        )
    resolved = base.with_overrides(
        database_url=database_url,
        artifact_root=artifacts,
        home=None if home is None else Path(home),
    )
    store = Store(resolved.resolved_database_url, sqlite_synchronous=resolved.sqlite_synchronous)
    artifact_store = open_artifact_store(
        resolved.resolved_artifact_root, endpoint_url=resolved.s3_endpoint_url
    )
    if upgrade_schema if upgrade_schema is not None else store.is_sqlite:
        upgrade(store)
    else:
        _require_current_schema(store)
    return MLOps(store, artifact_store, resolved)


def _require_current_schema(store: Store) -> None:
    current = current_revision(store)
    require_known_revision(store, current)
    if current != head_revision():
        raise StorageError(
            f"the database at {store.display_url} is at schema revision {current or 'none'}, "
            f"this mlops needs {head_revision()}; run `mlops db upgrade` "
            "(with MLOPS_DATABASE_URL set to it) first"
        )
