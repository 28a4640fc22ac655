"""Settings: the ``MLOPS_*`` environment, read once, typed, passed explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlops.errors import InvalidInput

__all__ = ["Settings"]

_SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


@dataclass(frozen=True, slots=True)
class Settings:
    """Where mlops keeps its metadata and artifacts.

    ``home`` is the folder of the embedded default; ``database_url`` and
    ``artifact_root`` default to a SQLite file and a folder inside it.
    """

    home: Path = field(default_factory=lambda: Path("mlops-data"))
    database_url: str | None = None
    artifact_root: str | None = None
    #: Endpoint of an S3-compatible store (MinIO, moto, Ceph); AWS when unset.
    s3_endpoint_url: str | None = None
    #: SQLite ``PRAGMA synchronous``: NORMAL survives a process crash, FULL a power cut.
    sqlite_synchronous: str = "NORMAL"
    #: The identity recorded as the actor of registry changes (default: the OS user).
    user: str | None = None

    def __post_init__(self) -> None:
        if self.sqlite_synchronous.upper() not in _SYNCHRONOUS_MODES:
            raise InvalidInput(
                f"MLOPS_SQLITE_SYNCHRONOUS={self.sqlite_synchronous!r} is not one of "
                f"{', '.join(_SYNCHRONOUS_MODES)}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the ``MLOPS_*`` variables once (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        return cls(
            home=Path(env.get("MLOPS_HOME") or "mlops-data"),
            database_url=env.get("MLOPS_DATABASE_URL") or None,
            artifact_root=env.get("MLOPS_ARTIFACT_ROOT") or None,
            s3_endpoint_url=env.get("MLOPS_S3_ENDPOINT_URL") or None,
            sqlite_synchronous=(env.get("MLOPS_SQLITE_SYNCHRONOUS") or "NORMAL").upper(),
            user=env.get("MLOPS_USER") or None,
        )

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given non-None fields replaced."""
        kept = {key: value for key, value in changes.items() if value is not None}
        return replace(self, **kept)  # type: ignore[arg-type]

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<home>/mlops.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'mlops.db').absolute()}"

    @property
    def resolved_artifact_root(self) -> str:
        """The artifact root URL, defaulting to ``<home>/artifacts`` on the local disk."""
        if self.artifact_root:
            return self.artifact_root
        return (self.home / "artifacts").absolute().as_uri()
