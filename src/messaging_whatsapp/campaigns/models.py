"""Campaigns (seed 002): a message, in a few variations, to many contacts across several numbers."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin, new_id, utcnow


class RotationMode(enum.StrEnum):
    """How the dispatcher picks the next instance (DESIGN section 9)."""

    ROUND_ROBIN = "round_robin"
    BALANCED = "balanced"
    INTELLIGENT = "intelligent"


class CampaignStatus(enum.StrEnum):
    """Where a campaign is in its life."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class PausedReason(enum.StrEnum):
    """Why a campaign is paused; only some pauses end on their own."""

    MANUAL = "manual"
    # Every instance of the campaign disconnected; resumed when one reconnects (seed 000).
    INSTANCE_DISCONNECTED = "instance_disconnected"


class CampaignContactStatus(enum.StrEnum):
    """Where one contact of a campaign is."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    OPTED_OUT = "opted_out"
    SKIPPED = "skipped"


# Contacts the dispatcher may still take; every other status is final for dispatching.
OPEN_CONTACT_STATUSES = (CampaignContactStatus.PENDING.value, CampaignContactStatus.SENDING.value)


class LogType(enum.StrEnum):
    """What a campaign log records: seed 002's 19 types, and seed 000's two."""

    CREATED = "created"
    STARTED = "started"
    PAUSED = "paused"
    RESUMED = "resumed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    INSTANCE_SELECTED = "instance_selected"
    INSTANCE_PAUSED = "instance_paused"
    INSTANCE_RESUMED = "instance_resumed"
    MESSAGE_SENT = "message_sent"
    MESSAGE_DELIVERED = "message_delivered"
    MESSAGE_READ = "message_read"
    MESSAGE_FAILED = "message_failed"
    ROTATION_CHANGED = "rotation_changed"
    CONTACT_ADDED = "contact_added"
    CONTACT_REMOVED = "contact_removed"
    LIMIT_REACHED = "limit_reached"
    HEALTH_ISSUE = "health_issue"
    ERROR = "error"
    CONTACT_OPTED_OUT = "contact_opted_out"
    INSTANCE_DISCONNECTED = "instance_disconnected"


class Severity(enum.StrEnum):
    """How much a log matters."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class PacingOverrides:
    """Pacing a campaign, or one of its numbers, sets in place of the provider's defaults
    (campaigns/pacing.py); None leaves the default (or, for a number, the campaign's setting)."""

    interval_min_s: Mapped[float | None] = mapped_column(default=None)
    interval_max_s: Mapped[float | None] = mapped_column(default=None)
    daily_limit: Mapped[int | None] = mapped_column(default=None)
    # The unofficial gateways' ban protection: sends a minute and an hour, identical texts an hour.
    max_per_minute: Mapped[int | None] = mapped_column(default=None)
    max_per_hour: Mapped[int | None] = mapped_column(default=None)
    max_identical_per_hour: Mapped[int | None] = mapped_column(default=None)
    # "typing..." before each message (the gateways that can show it).
    typing: Mapped[bool | None] = mapped_column(default=None)


class Campaign(PacingOverrides, IdMixin, TimestampMixin, Base):
    """A campaign with its sending settings and its counters (kept by set-based updates)."""

    __tablename__ = "campaigns"
    __table_args__ = (
        Index("ix_campaigns_tenant_created", "tenant_id", "created_at"),
        # Every dispatcher asks twice a second which changed in the last seconds (live progress).
        Index("ix_campaigns_updated_at", "updated_at"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    rotation_mode: Mapped[str] = mapped_column(String(16), default=RotationMode.INTELLIGENT.value)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT.value, index=True)
    paused_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    # Running but sending nothing: the limit that holds it back (a code and a sentence); None
    # while it sends. Kept by the dispatcher's passes (campaigns/waiting.py).
    waiting_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    waiting_message: Mapped[str | None] = mapped_column(Text, default=None)
    warmup: Mapped[bool] = mapped_column(default=True)
    # {"start": "08:00", "end": "20:00", "weekdays": [0..6]} in the tenant's time zone, or None.
    send_window: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    scheduled_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str | None] = mapped_column(String(36), default=None)
    total_contacts: Mapped[int] = mapped_column(default=0)
    pending_count: Mapped[int] = mapped_column(default=0)
    sent_count: Mapped[int] = mapped_column(default=0)
    delivered_count: Mapped[int] = mapped_column(default=0)
    read_count: Mapped[int] = mapped_column(default=0)
    failed_count: Mapped[int] = mapped_column(default=0)
    opted_out_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)


class CampaignInstance(PacingOverrides, Base):
    """A number a campaign sends through, with its pacing state and per-campaign overrides."""

    __tablename__ = "campaign_instances"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("whatsapp_instances.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(36))
    # Paused for this campaign only (health below the threshold); the others carry on.
    paused: Mapped[bool] = mapped_column(default=False)
    paused_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    # This number's warm-up on or off in this campaign (None: the campaign's setting).
    warmup: Mapped[bool | None] = mapped_column(default=None)
    sent_count: Mapped[int] = mapped_column(default=0)
    last_sent_at: Mapped[datetime | None] = mapped_column(default=None)
    # Pacing: the instance sends its next campaign message no earlier than this.
    next_send_at: Mapped[datetime | None] = mapped_column(default=None)


class CampaignMessage(IdMixin, TimestampMixin, Base):
    """One variation of the campaign's message, with `{{name}}`-style variables."""

    __tablename__ = "campaign_messages"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    content: Mapped[str] = mapped_column(Text)
    order: Mapped[int] = mapped_column(default=0)
    # {"type", "url", "caption", "filename"} as the send API takes it.
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # {"name", "language", "parameters"} of an approved template, parameters with `{{variables}}`;
    # `content` then holds the template's name (as a template message's content does).
    template: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    usage_count: Mapped[int] = mapped_column(default=0)


class CampaignContact(IdMixin, TimestampMixin, Base):
    """One contact of one campaign: what was sent, through which number, and how it went."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id"),
        # The dispatcher takes a campaign's next pending contacts in id order.
        Index("ix_campaign_contacts_campaign_status", "campaign_id", "status", "id"),
        Index("ix_campaign_contacts_message", "message_id"),
    )

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(36))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    # Values for the message's variables: the import's extra columns, and `name`.
    variables: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    status: Mapped[str] = mapped_column(String(16), default=CampaignContactStatus.PENDING.value)
    # Receipts only move a contact forward: sent 1, delivered 2, read 3 (failed and the rest 0).
    status_rank: Mapped[int] = mapped_column(default=0)
    instance_id: Mapped[str | None] = mapped_column(String(36), default=None)
    campaign_message_id: Mapped[str | None] = mapped_column(String(36), default=None)
    # Our outbound message (messages.id) and the provider's id for it.
    message_id: Mapped[str | None] = mapped_column(String(36), default=None)
    provider_message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    sending_at: Mapped[datetime | None] = mapped_column(default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    read_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    replied_at: Mapped[datetime | None] = mapped_column(default=None)
    error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    error_title: Mapped[str | None] = mapped_column(Text, default=None)


class CampaignLog(Base):
    """One thing that happened to a campaign. Immutable: nothing updates or deletes a log, and the
    database refuses it too (triggers in migration 0003).

    No foreign keys: a log outlives what it mentions (a deleted draft, an unbound number), as an
    audit trail must, and a cascade would have to delete it.
    """

    __tablename__ = "campaign_logs"
    __table_args__ = (
        Index("ix_campaign_logs_campaign_created", "campaign_id", "created_at"),
        Index("ix_campaign_logs_type_created", "log_type", "created_at"),
        Index("ix_campaign_logs_severity_created", "severity", "created_at"),
        Index("ix_campaign_logs_instance_created", "instance_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    campaign_id: Mapped[str] = mapped_column(String(36))
    log_type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    instance_id: Mapped[str | None] = mapped_column(String(36), default=None)
    contact_id: Mapped[str | None] = mapped_column(String(36), default=None)
    campaign_contact_id: Mapped[str | None] = mapped_column(String(36), default=None)
    duration_ms: Mapped[int | None] = mapped_column(default=None)
    request_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    response_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    http_status: Mapped[int | None] = mapped_column(default=None)
    campaign_progress: Mapped[float | None] = mapped_column(default=None)
    instance_health_score: Mapped[float | None] = mapped_column(default=None)
    created_by: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The tables themselves, for set-based statements (one name each, used across the package).
campaigns_table: Table = Campaign.__table__  # type: ignore[assignment]
campaign_contacts_table: Table = CampaignContact.__table__  # type: ignore[assignment]
