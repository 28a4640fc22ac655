"""serving and deployments

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 13:45:45.757702
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_feedback",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=250), nullable=False),
        sa.Column("actual", sa.Text(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_feedback")),
    )
    op.create_index(
        "ix_prediction_feedback_endpoint_ts",
        "prediction_feedback",
        ["endpoint", "ts"],
        unique=False,
    )
    op.create_index(
        "ix_prediction_feedback_request", "prediction_feedback", ["request_id"], unique=False
    )
    op.create_table(
        "prediction_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("route", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float(precision=53), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=True),
        sa.Column("outputs", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_log")),
    )
    op.create_index(
        "ix_prediction_log_endpoint_ts", "prediction_log", ["endpoint", "ts"], unique=False
    )
    op.create_index("ix_prediction_log_request", "prediction_log", ["request_id"], unique=False)
    op.create_table(
        "serving_endpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("model_name", sa.String(length=250), nullable=False),
        sa.Column("routes", sa.Text(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_endpoints")),
        sa.UniqueConstraint("name", name=op.f("uq_serving_endpoints_name")),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=250), nullable=False),
        sa.Column("stable_version", sa.Integer(), nullable=True),
        sa.Column("candidate_version", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("step_started_at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["serving_endpoints.id"],
            name=op.f("fk_deployments_endpoint_id_serving_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    op.create_index(
        "ix_deployments_endpoint_state", "deployments", ["endpoint_id", "state"], unique=False
    )
    op.create_table(
        "deployment_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_events_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_events")),
    )
    op.create_index(
        "ix_deployment_events_deployment",
        "deployment_events",
        ["deployment_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_deployment_events_deployment", table_name="deployment_events")
    op.drop_table("deployment_events")
    op.drop_index("ix_deployments_endpoint_state", table_name="deployments")
    op.drop_table("deployments")
    op.drop_table("serving_endpoints")
    op.drop_index("ix_prediction_log_request", table_name="prediction_log")
    op.drop_index("ix_prediction_log_endpoint_ts", table_name="prediction_log")
    op.drop_table("prediction_log")
    op.drop_index("ix_prediction_feedback_request", table_name="prediction_feedback")
    op.drop_index("ix_prediction_feedback_endpoint_ts", table_name="prediction_feedback")
    op.drop_table("prediction_feedback")
