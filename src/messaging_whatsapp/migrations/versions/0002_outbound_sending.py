"""outbound sending

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:49:55.953490
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orphan_receipts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("provider_message_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_title", sa.Text(), nullable=True),
        sa.Column("created_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orphan_receipts")),
    )
    with op.batch_alter_table("orphan_receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orphan_receipts_message", ["instance_id", "provider_message_id"], unique=False
        )

    with op.batch_alter_table("whatsapp_instances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_success_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_health_update", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("send_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("send_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("claimed_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("next_attempt_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_messages_send_state_next_attempt", ["send_state", "next_attempt_at"], unique=False
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_messages_tenant_id_idempotency_key"), ["tenant_id", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("whatsapp_instances", schema=None) as batch_op:
        batch_op.drop_column("last_health_update")
        batch_op.drop_column("last_success_at")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_messages_tenant_id_idempotency_key"), type_="unique")
        batch_op.drop_index("ix_messages_send_state_next_attempt")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("send_attempts")
        batch_op.drop_column("send_state")
        batch_op.drop_column("idempotency_key")

    with op.batch_alter_table("orphan_receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_orphan_receipts_message")

    op.drop_table("orphan_receipts")
