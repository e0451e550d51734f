"""The message templates a tenant's numbers may send, one row per (scope, name, language)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin


class TemplateStatus(enum.StrEnum):
    """Meta's template statuses (what the management API answers), plus REMOVED: Meta stopped
    listing it (deleted there), kept so history reads and the check can say so."""

    APPROVED = "APPROVED"
    PENDING = "PENDING"
    REJECTED = "REJECTED"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"
    IN_APPEAL = "IN_APPEAL"
    PENDING_DELETION = "PENDING_DELETION"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    ARCHIVED = "ARCHIVED"
    REMOVED = "REMOVED"


class TemplateSource(enum.StrEnum):
    """Where the row came from: Meta's list (sync) or created here for a simulator number."""

    META = "meta"
    LOCAL = "local"


# One template per scope, name and language (what a send names it by).
UNIQUE_KEY = ("tenant_id", "scope", "name", "language")


class MessageTemplateRow(IdMixin, TimestampMixin, Base):
    """A template of one scope: a Meta WABA (``waba:<id>``, shared by its numbers) or one simulator
    number (``instance:<id>``)."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint(*UNIQUE_KEY),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    category: Mapped[str] = mapped_column(String(24))
    components: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text)
    # The body's placeholders in order ("1", "2" or named); a send gives one value for each.
    parameter_names: Mapped[list[str]] = mapped_column(JSON)
    parameter_count: Mapped[int]
    meta_template_id: Mapped[str | None] = mapped_column(String(64), default=None)
    synced_at: Mapped[datetime | None] = mapped_column(default=None)


templates_table: Table = MessageTemplateRow.__table__  # type: ignore[assignment]
