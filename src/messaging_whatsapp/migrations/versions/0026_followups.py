"""Follow-ups and scheduled messages: follow_ups (one running per ticket) and the log of their
steps (follow_up_steps), scheduled_messages ("send at" on POST /api/v1/messages); a ticket in
follow_up is an open session, so "one open ticket per conversation" covers both statuses.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_BEFORE = "status = 'open'"
OPEN_NOW = "status IN ('open', 'follow_up')"
RUNNING = "status = 'running'"
SCHEDULED = "status = 'scheduled'"


def _time(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _one_open_ticket(predicate: str) -> None:
    # A plain CREATE INDEX on both databases (no table rebuild on SQLite).
    op.drop_index("uq_tickets_one_open", table_name="tickets")
    op.create_index(
        "uq_tickets_one_open",
        "tickets",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text(predicate),
        postgresql_where=sa.text(predicate),
    )


def upgrade() -> None:
    _one_open_ticket(OPEN_NOW)
    op.create_table(
        "follow_ups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("business_hours_only", sa.Boolean(), nullable=False),
        sa.Column("close_ticket", sa.Boolean(), nullable=False),
        sa.Column("final_wait_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancel_reason", sa.String(length=32), nullable=True),
        sa.Column("current_step", sa.Integer(), nullable=False),
        _time("next_step_at", nullable=True),
        sa.Column("started_by_user_id", sa.String(length=36), nullable=True),
        sa.Column("started_by_api_key_id", sa.String(length=36), nullable=True),
        sa.Column("started_by_rule_id", sa.String(length=36), nullable=True),
        _time("started_at"),
        _time("ended_at", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _fk("follow_ups", "tenant_id", "tenants", "CASCADE"),
        _fk("follow_ups", "ticket_id", "tickets", "CASCADE"),
        _fk("follow_ups", "conversation_id", "conversations", "CASCADE"),
        _fk("follow_ups", "started_by_user_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_ups")),
    )
    op.create_index("ix_follow_ups_tenant_id", "follow_ups", ["tenant_id"])
    op.create_index("ix_follow_ups_ticket_created", "follow_ups", ["ticket_id", "created_at"])
    op.create_index("ix_follow_ups_conversation_id", "follow_ups", ["conversation_id"])
    op.create_index(
        "uq_follow_ups_one_running",
        "follow_ups",
        ["ticket_id"],
        unique=True,
        sqlite_where=sa.text(RUNNING),
        postgresql_where=sa.text(RUNNING),
    )
    op.create_index(
        "ix_follow_ups_running_due",
        "follow_ups",
        ["next_step_at"],
        sqlite_where=sa.text(RUNNING),
        postgresql_where=sa.text(RUNNING),
    )
    op.create_table(
        "follow_up_steps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("follow_up_id", sa.String(length=36), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _time("created_at"),
        _fk("follow_up_steps", "tenant_id", "tenants", "CASCADE"),
        _fk("follow_up_steps", "follow_up_id", "follow_ups", "CASCADE"),
        _fk("follow_up_steps", "message_id", "messages", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up_steps")),
        sa.UniqueConstraint("follow_up_id", "step", name=op.f("uq_follow_up_steps_follow_up_id_step")),
    )
    op.create_index("ix_follow_up_steps_tenant_id", "follow_up_steps", ["tenant_id"])
    op.create_index("ix_follow_up_steps_message_id", "follow_up_steps", ["message_id"])
    op.create_table(
        "scheduled_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("to", sa.String(length=160), nullable=False),
        sa.Column("contact_id", sa.String(length=36), nullable=True),
        sa.Column("conversation_id", sa.String(length=36), nullable=True),
        _time("send_at"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("sender_user_id", sa.String(length=36), nullable=True),
        sa.Column("sender_api_key_id", sa.String(length=36), nullable=True),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        _time("sent_at", nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _fk("scheduled_messages", "tenant_id", "tenants", "CASCADE"),
        _fk("scheduled_messages", "contact_id", "contacts", "CASCADE"),
        _fk("scheduled_messages", "conversation_id", "conversations", "CASCADE"),
        _fk("scheduled_messages", "sender_user_id", "users", "SET NULL"),
        _fk("scheduled_messages", "message_id", "messages", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_messages")),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_scheduled_messages_tenant_id_idempotency_key")
        ),
    )
    op.create_index(
        "ix_scheduled_messages_due",
        "scheduled_messages",
        ["send_at"],
        sqlite_where=sa.text(SCHEDULED),
        postgresql_where=sa.text(SCHEDULED),
    )
    op.create_index(
        "ix_scheduled_messages_tenant_created", "scheduled_messages", ["tenant_id", "created_at", "id"]
    )
    op.create_index(
        "ix_scheduled_messages_conversation", "scheduled_messages", ["conversation_id", "send_at"]
    )
    op.create_index("ix_scheduled_messages_contact", "scheduled_messages", ["contact_id", "send_at"])
    op.create_index("ix_scheduled_messages_message_id", "scheduled_messages", ["message_id"])


def downgrade() -> None:
    op.drop_table("scheduled_messages")
    op.drop_table("follow_up_steps")
    op.drop_table("follow_ups")
    # A follow_up ticket is an open one: it goes back to open before the narrower index returns.
    op.execute("UPDATE tickets SET status = 'open' WHERE status = 'follow_up'")
    _one_open_ticket(OPEN_BEFORE)
