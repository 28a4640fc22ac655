"""serving workers (heartbeats of serving processes, for rolling rollouts)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 14:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_workers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.Column("revisions", sa.Text(), nullable=False),
        sa.Column("ready", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_workers")),
    )


def downgrade() -> None:
    op.drop_table("serving_workers")
