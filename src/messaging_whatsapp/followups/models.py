"""Follow-up sequences on tickets (seed 003) and the log of each step's outcome."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Table, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin

RUNNING_PREDICATE = "status = 'running'"


class FollowUpStatus(enum.StrEnum):
    """Where a follow-up is: running its steps, or ended one of three ways."""

    RUNNING = "running"
    CANCELLED = "cancelled"
    # Its last step passed without a reply: the ticket closed (follow_up_exhausted).
    EXHAUSTED = "exhausted"
    # Its last step passed without a reply and it was asked not to close the ticket.
    COMPLETED = "completed"


class CancelReason(enum.StrEnum):
    """What stopped a follow-up before its end."""

    CUSTOMER_REPLIED = "customer_replied"
    AGENT_REPLIED = "agent_replied"
    TICKET_CLOSED = "ticket_closed"
    OPTED_OUT = "opted_out"
    WANTS_PERSON = "wants_person"
    CANCELLED_BY_USER = "cancelled_by_user"


class StepOutcome(enum.StrEnum):
    """What became of one step."""

    SENT = "sent"
    # Not sent, by design (a text step after the 24-hour window): the sequence goes on.
    SKIPPED = "skipped"
    # A sending rule refused it (the error says which): the sequence goes on.
    REFUSED = "refused"


class FollowUp(IdMixin, TimestampMixin, Base):
    """A sequence of messages sent on a quiet ticket until the customer answers.

    `current_step` is the index of the next step to send; equal to the number of steps, the
    follow-up waits out its final wait (`next_step_at`) and then ends. Every move of a step is a
    conditional UPDATE on (id, current_step, status running): two schedulers never take one twice.
    """

    __tablename__ = "follow_ups"
    __table_args__ = (
        # One running follow-up per ticket, even with two agents starting one at the same moment.
        Index(
            "uq_follow_ups_one_running",
            "ticket_id",
            unique=True,
            sqlite_where=text(RUNNING_PREDICATE),
            postgresql_where=text(RUNNING_PREDICATE),
        ),
        # The scheduler's pass: the running ones that are due.
        Index(
            "ix_follow_ups_running_due",
            "next_step_at",
            sqlite_where=text(RUNNING_PREDICATE),
            postgresql_where=text(RUNNING_PREDICATE),
        ),
        # A ticket's follow-ups, newest first (and a deleted ticket's cascade).
        Index("ix_follow_ups_ticket_created", "ticket_id", "created_at"),
        # The ingest batch stops the follow-ups of the conversations customers wrote in.
        Index("ix_follow_ups_conversation_id", "conversation_id"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # [{"delay_seconds", "text"} | {"delay_seconds", "template": {"name", "language", "parameters"}}]
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    business_hours_only: Mapped[bool] = mapped_column(default=False)
    # Exhausted: close the ticket (follow_up_exhausted); otherwise it ends completed, ticket open.
    close_ticket: Mapped[bool] = mapped_column(default=True)
    final_wait_seconds: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default=FollowUpStatus.RUNNING.value)
    cancel_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    current_step: Mapped[int] = mapped_column(default=0)
    next_step_at: Mapped[datetime | None] = mapped_column(default=None)
    # Who started it: a user, an API key, or an automation rule (ids kept as text: a rule or a key
    # may be deleted, the history stays).
    started_by_user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    started_by_api_key_id: Mapped[str | None] = mapped_column(String(36), default=None)
    started_by_rule_id: Mapped[str | None] = mapped_column(String(36), default=None)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class FollowUpStepLog(IdMixin, Base):
    """What became of one step of a follow-up: sent (with its message), skipped or refused (why)."""

    __tablename__ = "follow_up_steps"
    __table_args__ = (UniqueConstraint("follow_up_id", "step"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    follow_up_id: Mapped[str] = mapped_column(ForeignKey("follow_ups.id", ondelete="CASCADE"))
    step: Mapped[int]
    outcome: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None, index=True
    )
    # skipped: why (outside_service_window); refused: the sending rule's error code and message.
    reason: Mapped[str | None] = mapped_column(String(64), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime]


follow_ups_table: Table = FollowUp.__table__  # type: ignore[assignment]
follow_up_steps_table: Table = FollowUpStepLog.__table__  # type: ignore[assignment]
