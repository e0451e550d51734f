"""Events out's tables: a tenant's webhook subscriptions, one delivery per event and subscription,
and each attempt at a delivery."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin, utcnow


class DeliveryStatus(enum.StrEnum):
    """Where a delivery stands: waiting for its first attempt, waiting to be tried again after a
    failed one, accepted by the receiver (2xx), or given up on."""

    PENDING = "pending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookSubscription(IdMixin, TimestampMixin, Base):
    """A URL of a tenant's that hears the event types it asked for, signed with its own secret."""

    __tablename__ = "webhook_subscriptions"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # A JSON list of event types (integrations/catalogue.py), or ["*"] for all.
    events: Mapped[str] = mapped_column(Text)
    # `whsec_...`, encrypted with the engine's cipher (crypto/stored.py lists the column).
    secret_encrypted: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(500), default="")
    active: Mapped[bool] = mapped_column(default=True)
    # Why the engine turned it off (a 410 Gone from the receiver); None while active or when a
    # person did.
    disabled_reason: Mapped[str | None] = mapped_column(String(200), default=None)


class WebhookDelivery(IdMixin, Base):
    """One event for one subscription: the body signed and sent (fixed when the event arrives, so
    every attempt sends the same bytes), and where its attempts stand."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The events stream delivers at least once: a redelivered event finds its row.
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_deliveries_subscription_created", "subscription_id", "created_at"),
        # The delivery pass looks for due ones; finished deliveries have no next attempt.
        Index("ix_webhook_deliveries_next_attempt_at", "next_attempt_at"),
        Index("ix_webhook_deliveries_tenant_created", "tenant_id", "created_at"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime]
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    # Attempts started: a claim counts one up, and only the claim holding that number records it.
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    # A claim's lease: another pass may take the delivery only once it has passed.
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookAttempt(IdMixin, Base):
    """One POST of a delivery: when, how long, what the receiver answered (a little of it) or why
    there was no answer."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "number"),)

    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(36))
    number: Mapped[int]
    attempted_at: Mapped[datetime]
    duration_ms: Mapped[int]
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    response_body: Mapped[str | None] = mapped_column(String(1000), default=None)
