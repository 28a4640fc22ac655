"""Alembic environment: mlops always hands in an open connection inside a transaction."""

from alembic import context

from mlops.store._schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run mlops migrations through `mlops db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
