"""Alerts: each tenant's changes to the alert rules, the alerts raised (one open per tenant, rule and
number, by a unique key), the sends per number and minute the sender keeps for the error-rate and
latency rules, and each number's last webhook minute the inbound worker keeps.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=True),
        sa.Column("min_count", sa.Integer(), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_alert_rules_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        sa.UniqueConstraint("tenant_id", "kind", name=op.f("uq_alert_rules_tenant_id_kind")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=True),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("threshold", sa.Double(), nullable=False),
        _time("raised_at"),
        _time("resolved_at", nullable=True),
        sa.Column("open_key", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_alerts_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["whatsapp_instances.id"],
            name=op.f("fk_alerts_instance_id_whatsapp_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("open_key", name=op.f("uq_alerts_open_key")),
    )
    op.create_index("ix_alerts_tenant_raised", "alerts", ["tenant_id", "raised_at"])
    op.create_table(
        "alert_send_minutes",
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        _time("minute"),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("latency_ms_total", sa.BigInteger(), nullable=False),
        sa.Column("latency_calls", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["whatsapp_instances.id"],
            name=op.f("fk_alert_send_minutes_instance_id_whatsapp_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", "minute", name=op.f("pk_alert_send_minutes")),
    )
    op.create_index("ix_alert_send_minutes_tenant_minute", "alert_send_minutes", ["tenant_id", "minute"])
    op.create_table(
        "alert_webhook_marks",
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        _time("received_at"),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["whatsapp_instances.id"],
            name=op.f("fk_alert_webhook_marks_instance_id_whatsapp_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_alert_webhook_marks")),
    )


def downgrade() -> None:
    op.drop_table("alert_webhook_marks")
    op.drop_index("ix_alert_send_minutes_tenant_minute", table_name="alert_send_minutes")
    op.drop_table("alert_send_minutes")
    op.drop_index("ix_alerts_tenant_raised", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("alert_rules")
