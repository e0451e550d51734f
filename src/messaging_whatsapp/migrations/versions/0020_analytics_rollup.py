"""Analytics: the hourly message rollup, the worker's cursor, messages indexed by their last change

The rollup starts empty and without a cursor: the scheduler's first analytics pass folds every
stored message in (a full rebuild, as `rebuild-analytics` does), then only what changed.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rollup's figures as migration 0020 creates them (analytics/models.py names them the same).
COUNTS = (
    "inbound",
    "outbound",
    "sent",
    "delivered",
    "read",
    "failed",
    "delivery_timed",
    "read_timed",
    "responses",
)
SECONDS = ("delivery_seconds", "read_seconds", "response_seconds")
# 34 duration buckets and one for longer, for the delivery and for the read times.
HISTOGRAMS = tuple(f"{kind}_h{index:02d}" for kind in ("delivery", "read") for index in range(35))


def upgrade() -> None:
    op.create_table(
        "analytics_hours",
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("hour", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        *(sa.Column(name, sa.Float(), nullable=False) for name in SECONDS),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in HISTOGRAMS),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["whatsapp_instances.id"],
            name=op.f("fk_analytics_hours_instance_id_whatsapp_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_analytics_hours_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", "hour", "campaign_id", name=op.f("pk_analytics_hours")),
    )
    op.create_index("ix_analytics_hours_tenant_hour", "analytics_hours", ["tenant_id", "hour"])
    op.create_table(
        "analytics_cursor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("folded_until", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_cursor")),
    )
    op.create_index("ix_messages_updated_at", "messages", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_updated_at", table_name="messages")
    op.drop_table("analytics_cursor")
    op.drop_index("ix_analytics_hours_tenant_hour", table_name="analytics_hours")
    op.drop_table("analytics_hours")
