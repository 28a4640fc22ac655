"""``RemoteMLOps``: the connection object of the remote client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

from mlops._client import MLOps
from mlops.config import Settings
from mlops.errors import InvalidInput
from mlops.remote._governance import RemoteAccessControl, RemoteAuditLog
from mlops.remote._http import ApiClient
from mlops.remote._monitor import RemoteModelMonitor
from mlops.remote._operations import RemoteDeploymentManager
from mlops.remote._pipelines import RemotePipelines
from mlops.remote._registry import RemoteRegistry
from mlops.remote._tracking import RemoteTracker

if TYPE_CHECKING:
    from mlops.orchestration import PipelineOrchestrator

__all__ = ["RemoteMLOps", "connect_remote"]

#: The facades a remote connection offers; the rest are reached through the REST API.
REMOTE_FACADES = (
    "tracking",
    "registry",
    "deployments",
    "monitor",
    "pipelines",
    "audit",
    "access",
)


class _Unavailable:
    """Stands for a facade a remote connection does not offer; any use says so."""

    def __init__(self, name: str, url: str) -> None:
        self._name = name
        self._url = url

    def __getattr__(self, attribute: str) -> NoReturn:
        raise InvalidInput(
            f"ml.{self._name} is not available through a remote connection (only "
            f"{', '.join(REMOTE_FACADES)} are); use the REST API (see {self._url}/api/docs) "
            "or connect to the server's database and artifact store directly"
        )

    def __repr__(self) -> str:
        return f"<unavailable remotely: ml.{self._name}>"


class RemoteMLOps(MLOps):
    """A connection to an ``mlops server``: ``tracking`` and ``registry`` work as they do
    embedded (one contract test suite runs against both); a local ``home`` keeps the
    downloaded model cache."""

    def __init__(self, api: ApiClient, settings: Settings) -> None:
        self.settings = settings
        self.api = api
        self.url = api.url
        self.tracking = RemoteTracker(api, actor=settings.user)
        self.registry = RemoteRegistry(api, settings.home / "cache" / "models", actor=settings.user)
        self.deployments = RemoteDeploymentManager(api, actor=settings.user)
        self.monitor = RemoteModelMonitor(api, actor=settings.user)
        self.audit = RemoteAuditLog(api)
        self.access = RemoteAccessControl(api, actor=settings.user)
        self._pipelines = RemotePipelines(api, actor=settings.user)
        for name in ("store", "artifacts"):
            setattr(self, name, _Unavailable(name, api.url))

    @property
    def pipelines(self) -> PipelineOrchestrator:
        """Registered pipelines of the server: trigger, follow, cancel, pause, resume."""
        assert self._pipelines is not None
        return self._pipelines

    def __repr__(self) -> str:
        return f"<RemoteMLOps {self.url}>"

    def close(self) -> None:
        """Flush background metric writers and close the pooled HTTP connections."""
        try:
            self.tracking.close()
        finally:
            self.api.close()


def connect_remote(
    url: str,
    *,
    token: str | None = None,
    home: str | None = None,
    settings: Settings | None = None,
    timeout: float = 30.0,
    retries: int = 3,
) -> RemoteMLOps:
    """Connect to the ``mlops server`` at ``url``; ``token`` (or ``MLOPS_TOKEN``) is the
    API token it asks for. Nothing is sent until the first call."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"{url!r} is not a server URL; give one like http://host:8000")
    if parts.path.rstrip("/") or parts.query or parts.fragment:
        raise InvalidInput(
            f"give the server's root URL (http://host:port), not {url!r}; "
            "the client adds /api/v1 itself"
        )
    if token is not None and (
        not isinstance(token, str)
        or not token.strip()
        or not token.isascii()
        or not token.isprintable()
        or " " in token.strip()
    ):
        raise InvalidInput(
            "token must be an API token (printable ASCII, no spaces: mlops_…, from "
            "`mlops tokens create USER`)"
        )
    base = settings if settings is not None else Settings.from_env()
    resolved = base.with_overrides(home=None if home is None else Path(home))
    given = token if token is not None else os.environ.get("MLOPS_TOKEN") or None
    api = ApiClient(url, token=given, timeout=timeout, retries=retries)
    return RemoteMLOps(api, resolved)
