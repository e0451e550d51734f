"""WhatsApp instances: a number of a tenant through one provider (seed 001's "tenant binding")."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin


class InstanceStatus(enum.StrEnum):
    """Whether the engine may use the instance (independent of its WhatsApp connection)."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    PAUSED = "paused"
    # Taken off the tenant by an admin (unbind): nothing is sent or received through it, its
    # history stays; binding the number again brings it back.
    UNBOUND = "unbound"


class AiMode(enum.StrEnum):
    """What the AI assistant does with this number's customers' messages (assistant/)."""

    OFF = "off"
    # A suggested reply is shown to the agent in the composer; nothing is sent by itself.
    DRAFTS = "drafts"
    # The assistant answers, until a person takes over the ticket.
    AUTO = "auto"


class WhatsAppInstance(IdMixin, TimestampMixin, Base):
    """One WhatsApp number of a tenant, with its provider ids, encrypted credentials and health."""

    __tablename__ = "whatsapp_instances"
    __table_args__ = (UniqueConstraint("provider", "routing_key"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    display_number: Mapped[str] = mapped_column(String(32))
    # What the provider's payload names the instance by: Meta phone number id, Twilio number,
    # Evolution / WuzAPI / simulator instance name. Unique per provider so auto-detection is exact.
    routing_key: Mapped[str] = mapped_column(String(200))
    phone_number_id: Mapped[str | None] = mapped_column(String(64), default=None)
    waba_id: Mapped[str | None] = mapped_column(String(64), default=None)
    account_sid: Mapped[str | None] = mapped_column(String(64), default=None)
    instance_name: Mapped[str | None] = mapped_column(String(200), default=None)
    api_url: Mapped[str | None] = mapped_column(String(500), default=None)
    # Fernet token of a JSON object of the secrets (access token, app secret, auth token, api key,
    # hmac key, verify token, webhook secret). Never logged, never returned by the API.
    credentials_encrypted: Mapped[str] = mapped_column(Text)

    connection_state: Mapped[str] = mapped_column(String(16), default="open")
    connection_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    connection_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default=InstanceStatus.ACTIVE.value)

    # Health (seed 002); scoring rules live in instances/service.py.
    health_score: Mapped[float] = mapped_column(default=100.0)
    msgs_sent_today: Mapped[int] = mapped_column(default=0)
    msgs_delivered_today: Mapped[int] = mapped_column(default=0)
    msgs_read_today: Mapped[int] = mapped_column(default=0)
    msgs_failed_today: Mapped[int] = mapped_column(default=0)
    consecutive_errors: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(default=None)
    # The instance's local date the daily counters belong to (seed 002's health_last_reset).
    counters_date: Mapped[date | None] = mapped_column(Date, default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    last_health_update: Mapped[datetime | None] = mapped_column(default=None)
    # When the score last recovered its point for an hour without failures (instances/recovery.py).
    health_recovered_at: Mapped[datetime | None] = mapped_column(default=None)
    daily_limit: Mapped[int] = mapped_column(default=1000)
    # Meta's 24-hour limit of unique people a business portfolio may start conversations with
    # (250, 2,000, 10,000, 100,000; None: unlimited), shared by every number of the portfolio.
    messaging_tier: Mapped[int | None] = mapped_column(default=250)
    warmup_started_at: Mapped[datetime | None] = mapped_column(default=None)
    timezone: Mapped[str] = mapped_column(String(64), default="America/Sao_Paulo")
    ai_mode: Mapped[str] = mapped_column(String(8), default=AiMode.OFF.value, server_default=AiMode.OFF.value)


instances_table: Table = WhatsAppInstance.__table__  # type: ignore[assignment]
