"""Messages scheduled to be sent later ("send at"): stored checked, sent by the scheduler."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Table, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin

SCHEDULED_PREDICATE = "status = 'scheduled'"


class ScheduledStatus(enum.StrEnum):
    """Where a scheduled message is."""

    SCHEDULED = "scheduled"
    SENT = "sent"
    # A sending rule refused it at send_at (the error says which).
    FAILED = "failed"
    CANCELLED = "cancelled"


class ScheduledMessage(IdMixin, TimestampMixin, Base):
    """One message of POST /api/v1/messages with `send_at`: checked when scheduled, checked again and
    queued at its time (once: a conditional UPDATE from scheduled in the transaction of the insert)."""

    __tablename__ = "scheduled_messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        # The scheduler's pass: the scheduled ones that are due.
        Index(
            "ix_scheduled_messages_due",
            "send_at",
            sqlite_where=text(SCHEDULED_PREDICATE),
            postgresql_where=text(SCHEDULED_PREDICATE),
        ),
        # The listing, newest first, by conversation or contact.
        Index("ix_scheduled_messages_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_scheduled_messages_conversation", "conversation_id", "send_at"),
        Index("ix_scheduled_messages_contact", "contact_id", "send_at"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # The request as POST /api/v1/messages takes it, without send_at.
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The E.164 number (or BSUID, LID) it goes to, as read when it was scheduled.
    to: Mapped[str] = mapped_column(String(160))
    # Known when scheduled (the person and the number already talked), else set when sent.
    contact_id: Mapped[str | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), default=None
    )
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), default=None
    )
    send_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=ScheduledStatus.SCHEDULED.value)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    sender_user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    sender_api_key_id: Mapped[str | None] = mapped_column(String(36), default=None)
    message_id: Mapped[str | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None, index=True
    )
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)


scheduled_messages_table: Table = ScheduledMessage.__table__  # type: ignore[assignment]
