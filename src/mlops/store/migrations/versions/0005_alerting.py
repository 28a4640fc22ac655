"""alerting (rules, alert episodes, channels, silences, notification log)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 15:31:18.500052
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_channels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_channels")),
        sa.UniqueConstraint("name", name=op.f("uq_alert_channels_name")),
    )
    op.create_table(
        "alert_notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=250), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("alert_ids", sa.Text(), nullable=False),
        sa.Column("group_labels", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notifications")),
    )
    op.create_index(
        "ix_alert_notifications_channel_created",
        "alert_notifications",
        ["channel", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_alert_notifications_created", "alert_notifications", ["created_at"], unique=False
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("signal", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=250), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Integer(), server_default="1", nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("evaluated_at", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_alert_rules_name")),
    )
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("matchers", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
    )
    op.create_index("ix_alert_silences_ends", "alert_silences", ["ends_at"], unique=False)
    op.create_table(
        "alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("rule", sa.String(length=250), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("active_key", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.String(length=250), nullable=True),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("annotations", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=True),
        sa.Column("threshold", sa.Float(precision=53), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("fired_at", sa.BigInteger(), nullable=True),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("last_true_at", sa.BigInteger(), nullable=True),
        sa.Column("evaluated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("active_key", name=op.f("uq_alerts_active_key")),
    )
    op.create_index(
        "ix_alerts_endpoint_started", "alerts", ["endpoint", "started_at"], unique=False
    )
    op.create_index(
        "ix_alerts_fingerprint_started", "alerts", ["fingerprint", "started_at"], unique=False
    )
    op.create_index("ix_alerts_rule_started", "alerts", ["rule", "started_at"], unique=False)
    op.create_index("ix_alerts_state_started", "alerts", ["state", "started_at"], unique=False)
    op.create_table(
        "alert_channel_states",
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=250), nullable=False),
        sa.Column("firing_sent_at", sa.BigInteger(), nullable=True),
        sa.Column("resolved_sent_at", sa.BigInteger(), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_kind", sa.String(length=16), nullable=True),
        sa.Column("last_attempt_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_channel_states_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", "channel", name=op.f("pk_alert_channel_states")),
    )


def downgrade() -> None:
    op.drop_table("alert_channel_states")
    op.drop_index("ix_alerts_state_started", table_name="alerts")
    op.drop_index("ix_alerts_rule_started", table_name="alerts")
    op.drop_index("ix_alerts_fingerprint_started", table_name="alerts")
    op.drop_index("ix_alerts_endpoint_started", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_alert_silences_ends", table_name="alert_silences")
    op.drop_table("alert_silences")
    op.drop_table("alert_rules")
    op.drop_index("ix_alert_notifications_created", table_name="alert_notifications")
    op.drop_index("ix_alert_notifications_channel_created", table_name="alert_notifications")
    op.drop_table("alert_notifications")
    op.drop_table("alert_channels")
