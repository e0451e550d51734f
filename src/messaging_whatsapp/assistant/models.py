"""The assistant's tables: a tenant's AI settings and each reply the assistant was asked for."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin, utcnow


class ReplyStatus(enum.StrEnum):
    """Where a reply stands. PENDING waits out the customer's burst (due_at moves with each new
    message); WORKING is claimed by one scheduler (until lease_until); the rest are final."""

    PENDING = "pending"
    WORKING = "working"
    # drafts mode: shown to the agent in the composer.
    DRAFTED = "drafted"
    # The agent sent something after it, or dismissed it.
    DISCARDED = "discarded"
    # auto mode: queued to the customer.
    SENT = "sent"
    # Nothing the knowledge base holds answers it: a person was called (auto) or told (drafts).
    HANDED_OFF = "handed_off"
    # Nothing was asked of the model (reason: opted_out, outside_window, agent_replied, ...).
    SKIPPED = "skipped"
    FAILED = "failed"


OPEN_STATUSES = (ReplyStatus.PENDING.value, ReplyStatus.WORKING.value)


class AssistantSettings(IdMixin, TimestampMixin, Base):
    """A tenant's overrides of the engine's AI settings, and its instructions and guardrails."""

    __tablename__ = "assistant_settings"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), unique=True)
    # An OpenAI-compatible server (".../v1"); None: the engine's AI_BASE_URL.
    base_url: Mapped[str | None] = mapped_column(String(500), default=None)
    # Fernet token of the tenant's key (crypto/stored.py lists the column); None: AI_API_KEY.
    api_key_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    # Added to the system prompt: who the assistant is, its tone; what it must never do.
    instructions: Mapped[str] = mapped_column(Text, default="")
    guardrails: Mapped[str] = mapped_column(Text, default="")
    # Sent when the knowledge base does not answer (auto mode); None: the engine's default.
    handoff_message: Mapped[str | None] = mapped_column(Text, default=None)


class AiReply(IdMixin, TimestampMixin, Base):
    """One answer the assistant owes a conversation: asked for by a burst of customer messages,
    then drafted, sent, handed off or skipped. Its text and sources stay for the agents."""

    __tablename__ = "ai_replies"
    __table_args__ = (
        Index("ix_ai_replies_status_due_at", "status", "due_at"),
        Index("ix_ai_replies_conversation_created", "conversation_id", "created_at"),
        # One waiting reply a conversation: a new message of the burst moves its due time instead.
        Index(
            "uq_ai_replies_conversation_pending",
            "conversation_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), default=None)
    instance_id: Mapped[str] = mapped_column(ForeignKey("whatsapp_instances.id", ondelete="CASCADE"))
    # The mode of the number when the reply was asked for (off, drafts, auto).
    mode: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=ReplyStatus.PENDING.value)
    # The newest customer message it answers (the burst's last): the reply goes with it (data
    # retention, erasure).
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    text: Mapped[str | None] = mapped_column(Text, default=None)
    # [{"id": chunk id, "source": "Title > Heading"}] of the chunks the answer cites.
    sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    # Why it was skipped, handed off or failed (a code: opted_out, outside_window, no_answer...).
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
