"""The remote client: ``mlops.connect("http://host:port", token=...)`` returns an
``MLOps`` whose tracking and registry facades talk to an ``mlops server`` over HTTP."""

from mlops.remote._client import RemoteMLOps, connect_remote
from mlops.remote._governance import RemoteAccessControl, RemoteAuditLog
from mlops.remote._http import ApiClient
from mlops.remote._monitor import RemoteModelMonitor
from mlops.remote._operations import RemoteDeploymentManager
from mlops.remote._pipelines import RemotePipelines
from mlops.remote._registry import RemoteRegistry
from mlops.remote._tracking import RemoteTracker

__all__ = [
    "ApiClient",
    "RemoteAccessControl",
    "RemoteAuditLog",
    "RemoteDeploymentManager",
    "RemoteMLOps",
    "RemoteModelMonitor",
    "RemotePipelines",
    "RemoteRegistry",
    "RemoteTracker",
    "connect_remote",
]
