"""The server-side connection per backend: the same module-scoped ``ml`` as the API tests."""

from api.conftest import ml

__all__ = ["ml"]
