"""AI replies (assistant/): a tenant's AI settings (endpoint, encrypted key, model, instructions,
guardrails, handoff message), each reply the assistant owes a conversation (one pending per
conversation: a burst moves its due time), and each number's ai_mode (off, drafts, auto).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 05:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db


revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assistant_settings",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=True),
        sa.Column("api_key_encrypted", sa.Text(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("guardrails", sa.Text(), nullable=False),
        sa.Column("handoff_message", sa.Text(), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_assistant_settings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistant_settings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_assistant_settings_tenant_id")),
    )
    op.create_table(
        "ai_replies",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("ticket_id", sa.String(length=36), nullable=True),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("due_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_ai_replies_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["whatsapp_instances.id"],
            name=op.f("fk_ai_replies_instance_id_whatsapp_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_ai_replies_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ai_replies_ticket_id_tickets"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_ai_replies_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_replies")),
    )
    with op.batch_alter_table("ai_replies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ai_replies_conversation_created", ["conversation_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_ai_replies_status_due_at", ["status", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ai_replies_message_id"), ["message_id"], unique=False)
        batch_op.create_index(
            "uq_ai_replies_conversation_pending",
            ["conversation_id"],
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )

    with op.batch_alter_table("whatsapp_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ai_mode", sa.String(length=8), server_default="off", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("whatsapp_instances", schema=None) as batch_op:
        batch_op.drop_column("ai_mode")
    with op.batch_alter_table("ai_replies", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_ai_replies_conversation_pending",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index("ix_ai_replies_status_due_at")
        batch_op.drop_index(batch_op.f("ix_ai_replies_message_id"))
        batch_op.drop_index("ix_ai_replies_conversation_created")
    op.drop_table("ai_replies")
    op.drop_table("assistant_settings")
