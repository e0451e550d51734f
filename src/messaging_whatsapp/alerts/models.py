"""Alerts' tables: a tenant's rule changes, the alerts raised, and the two signals the workers keep
for them (sends per number and minute, each number's last webhook)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin


class AlertRule(IdMixin, TimestampMixin, Base):
    """A tenant's own setting of one rule; a rule without a row is at its default."""

    __tablename__ = "alert_rules"
    __table_args__ = (UniqueConstraint("tenant_id", "kind"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(default=True)
    threshold: Mapped[float]
    window_seconds: Mapped[int | None] = mapped_column(default=None)
    min_count: Mapped[int | None] = mapped_column(default=None)


class Alert(IdMixin, Base):
    """One alert: raised once when its rule's condition held, resolved once when it stopped."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_tenant_raised", "tenant_id", "raised_at"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    # The number it is about; None for the tenant's sends as a whole.
    instance_id: Mapped[str | None] = mapped_column(
        ForeignKey("whatsapp_instances.id", ondelete="CASCADE"), default=None
    )
    value: Mapped[float | None] = mapped_column(default=None)
    threshold: Mapped[float]
    raised_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    # tenant:kind:subject while open, NULL once resolved: unique, so two schedulers evaluating at
    # once cannot both raise the same alert (NULLs never collide, on either database).
    open_key: Mapped[str | None] = mapped_column(String(120), unique=True, default=None)


class SendMinute(Base):
    """A number's provider calls in one minute: how many went, failed, and how long they took."""

    __tablename__ = "alert_send_minutes"
    __table_args__ = (Index("ix_alert_send_minutes_tenant_minute", "tenant_id", "minute"),)

    instance_id: Mapped[str] = mapped_column(
        ForeignKey("whatsapp_instances.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    sent: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    latency_ms_total: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_calls: Mapped[int] = mapped_column(default=0)


class WebhookMark(Base):
    """The minute a number's last webhook was received (kept by the inbound worker)."""

    __tablename__ = "alert_webhook_marks"

    instance_id: Mapped[str] = mapped_column(
        ForeignKey("whatsapp_instances.id", ondelete="CASCADE"), primary_key=True
    )
    received_at: Mapped[datetime]
