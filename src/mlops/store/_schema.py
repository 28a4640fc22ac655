"""Tables of the metadata store (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

#: An auto-incrementing 64-bit key that is SQLite's rowid alias there.
BigId = BigInteger().with_variant(Integer(), "sqlite")

KEY_LENGTH = 250
RUN_ID_LENGTH = 32

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY_LENGTH), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    # A compact internal key: metric rows carry it instead of the 32-character id, which
    # makes each row and its index entry ~60 bytes smaller (batched logging ~20% faster).
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("id", String(RUN_ID_LENGTH), nullable=False, unique=True),
    Column("experiment_id", ForeignKey("experiments.id"), nullable=False),
    Column("name", String(KEY_LENGTH), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("parent_run_id", ForeignKey("runs.id"), nullable=True, index=True),
    Column("artifact_uri", Text, nullable=False),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("user", String(KEY_LENGTH), nullable=True),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
)

# The full history, keyed by ``runs.seq``. ``value`` is NULL for NaN (SQLite cannot store
# NaN); ±inf are stored as they are. No foreign key: the writer checks the run in the same
# transaction, and a foreign key check per row would slow batched logging down.
metrics = Table(
    "metrics",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_seq", BigInteger, nullable=False),
    Column("key", String(KEY_LENGTH), nullable=False),
    Column("value", Float(precision=53), nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    # Covers history reads (no table lookups, no sort).
    Index("ix_metrics_history", "run_seq", "key", "step", "timestamp", "value"),
)

# The value at the highest step (ties: latest timestamp) per run and key: what search
# filters and sorts on, and what a run's summary shows.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Float(precision=53), nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY_LENGTH), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("schema", Text, nullable=True),
    Column("num_rows", BigInteger, nullable=True),
    Column("source", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("name", "digest"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_id", ForeignKey("datasets.id"), primary_key=True),
    Column("context", String(64), primary_key=True),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
)
