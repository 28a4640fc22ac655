"""The control-plane REST API v1: experiments, runs, artifacts and the model registry."""

from mlops.api._app import API_PREFIX, DOCS_PATH, api_routes, create_api

__all__ = ["API_PREFIX", "DOCS_PATH", "api_routes", "create_api"]
