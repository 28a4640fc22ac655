"""The control-plane REST API v1: experiments, runs, artifacts and the model registry."""

from mlops.api._app import API_PREFIX, DOCS_PATH, api_routes, create_api
from mlops.api._auth import AuthPolicy, is_loopback, resolve_auth, settings_for_host

__all__ = [
    "API_PREFIX",
    "DOCS_PATH",
    "AuthPolicy",
    "api_routes",
    "create_api",
    "is_loopback",
    "resolve_auth",
    "settings_for_host",
]
