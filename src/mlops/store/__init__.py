"""The metadata store: SQLAlchemy engine, transaction scope, tables and migrations."""

from mlops.store._engine import Store, normalize_database_url
from mlops.store._migrate import current_revision, head_revision, require_known_revision, upgrade

__all__ = [
    "Store",
    "current_revision",
    "head_revision",
    "normalize_database_url",
    "require_known_revision",
    "upgrade",
]
