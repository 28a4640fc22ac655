"""inference tokens for endpoints' prediction routes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 21:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "serving_endpoints",
        sa.Column("token_required", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_table(
        "inference_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint", sa.String(length=250), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_inference_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_inference_tokens_endpoint"), "inference_tokens", ["endpoint"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_inference_tokens_endpoint"), table_name="inference_tokens")
    op.drop_table("inference_tokens")
    with op.batch_alter_table("serving_endpoints") as batch:
        batch.drop_column("token_required")
