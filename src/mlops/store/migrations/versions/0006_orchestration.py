"""pipeline orchestration (registered pipelines, triggers, executions)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 18:15:14.645726
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orchestrated_pipelines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("paused", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_fire_at", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orchestrated_pipelines")),
        sa.UniqueConstraint("name", name=op.f("uq_orchestrated_pipelines_name")),
    )
    op.create_index(
        "ix_orchestrated_pipelines_next_fire_at",
        "orchestrated_pipelines",
        ["next_fire_at"],
        unique=False,
    )
    op.create_table(
        "pipeline_executions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("pipeline", sa.String(length=250), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("trigger_detail", sa.Text(), nullable=False),
        sa.Column("scheduled_for", sa.BigInteger(), nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("attempt_log", sa.Text(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.Integer(), server_default="0", nullable=False),
        sa.Column("worker", sa.String(length=250), nullable=True),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("deadline_at", sa.BigInteger(), nullable=True),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_executions")),
        sa.UniqueConstraint(
            "pipeline", "scheduled_for", name=op.f("uq_pipeline_executions_pipeline_scheduled_for")
        ),
    )
    op.create_index(
        "ix_pipeline_executions_pipeline_id",
        "pipeline_executions",
        ["pipeline", "id"],
        unique=False,
    )
    op.create_index(
        "ix_pipeline_executions_pipeline_state",
        "pipeline_executions",
        ["pipeline", "state"],
        unique=False,
    )
    op.create_index(
        "ix_pipeline_executions_state_next_attempt",
        "pipeline_executions",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "pipeline_triggers",
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("gaps", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["orchestrated_pipelines.id"],
            name=op.f("fk_pipeline_triggers_pipeline_id_orchestrated_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "key", name=op.f("pk_pipeline_triggers")),
    )


def downgrade() -> None:
    op.drop_table("pipeline_triggers")
    op.drop_index("ix_pipeline_executions_state_next_attempt", table_name="pipeline_executions")
    op.drop_index("ix_pipeline_executions_pipeline_state", table_name="pipeline_executions")
    op.drop_index("ix_pipeline_executions_pipeline_id", table_name="pipeline_executions")
    op.drop_table("pipeline_executions")
    op.drop_index("ix_orchestrated_pipelines_next_fire_at", table_name="orchestrated_pipelines")
    op.drop_table("orchestrated_pipelines")
