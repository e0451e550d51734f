"""Events in: each tenant's mapping of an event type to a template, and every event consumed."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin


class EventType(enum.StrEnum):
    """The events other systems publish for us (seed 001, "Eventos Consumidos")."""

    QUOTE_CREATED = "quote_created"
    ORDER_STATUS_CHANGED = "order_status_changed"
    DELIVERY_STARTED = "delivery_started"
    DELIVERY_COMPLETED = "delivery_completed"


class EventOutcome(enum.StrEnum):
    """What became of an event: a notification queued, a deliberate skip, an event of a type we do
    not handle, one that can never be used (also in the DLQ), or a send the rules refused."""

    # Claimed, not decided yet: only ever seen inside the claiming transaction.
    PROCESSING = "processing"
    NOTIFIED = "notified"
    SKIPPED = "skipped"
    IGNORED = "ignored"
    UNUSABLE = "unusable"
    FAILED = "failed"


class EventMapping(IdMixin, TimestampMixin, Base):
    """Which approved template an event type sends, in which language, with which payload values as
    its parameters (in order), optionally through one number of the tenant."""

    __tablename__ = "event_mappings"
    __table_args__ = (UniqueConstraint("tenant_id", "event_type"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    template: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    # Payload keys, in the order of the template's parameters.
    parameters: Mapped[list[Any]] = mapped_column(JSON)
    # None: the best number that can send templates (as POST /api/v1/messages chooses).
    instance_id: Mapped[str | None] = mapped_column(
        ForeignKey("whatsapp_instances.id", ondelete="SET NULL"), default=None
    )


class InboundEvent(IdMixin, Base):
    """One event consumed, once per tenant and event id: its unique key is what makes a redelivered
    event notify once."""

    __tablename__ = "events_in"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id"),
        Index("ix_events_in_tenant_received", "tenant_id", "received_at"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # The producer's id of the event (what makes it idempotent).
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(16))
    # Why it was skipped, unusable or failed (not_requested, no_mapping, opted_out, ...).
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
    # The notification queued for it (no foreign key: retention may delete the message first).
    message_id: Mapped[str | None] = mapped_column(String(36), default=None)
    received_at: Mapped[datetime]
