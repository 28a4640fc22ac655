"""Settings: the ``MLOPS_*`` environment, read once, typed, passed explicitly."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlops.errors import InvalidInput

__all__ = ["Settings"]

_SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
_AUTH_MODES = ("auto", "required", "off")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")
_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^@/\s]*@")


@dataclass(frozen=True, slots=True, repr=False)
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
    #: API tokens: "required", "off", or "auto" (required unless the server listens on
    #: loopback; an embedded API, which does not know its address, treats it as "off").
    auth: str = "auto"
    #: With auth required, requests without a token may still read.
    allow_anonymous_read: bool = False
    #: Origins (``https://app.example``, or ``*``) whose browser pages may call the
    #: server; none by default, so no ``Access-Control-*`` header is ever sent.
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.auth not in _AUTH_MODES:
            raise InvalidInput(f"MLOPS_AUTH={self.auth!r} is not one of {', '.join(_AUTH_MODES)}")
        if self.sqlite_synchronous.upper() not in _SYNCHRONOUS_MODES:
            raise InvalidInput(
                f"MLOPS_SQLITE_SYNCHRONOUS={self.sqlite_synchronous!r} is not one of "
                f"{', '.join(_SYNCHRONOUS_MODES)}"
            )
        for origin in self.cors_origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise InvalidInput(
                    f"CORS origin {origin!r} is not an origin: give scheme and host (and "
                    "port) without a path, like https://app.example or http://localhost:3000"
                )

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks: never with a URL's password in them.
        shown = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name, value in shown.items():
            if isinstance(value, str):
                shown[name] = _PASSWORD.sub(r"\1***@", value)
        return "Settings(" + ", ".join(f"{name}={value!r}" for name, value in shown.items()) + ")"

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
            auth=(env.get("MLOPS_AUTH") or "auto").lower(),
            allow_anonymous_read=_flag(env, "MLOPS_ALLOW_ANONYMOUS_READ"),
            cors_origins=tuple(
                part.strip()
                for part in env.get("MLOPS_CORS_ORIGINS", "").split(",")
                if part.strip()
            ),
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


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"{name}={env[name]!r} is not a yes/no value; use 1/true/yes or 0/false/no")
