"""Consent (LGPD): who may be messaged. The opt-out record of each phone, the append-only ledger
of every opt-in and opt-out with its evidence, and the suppression list that keeps an erased
person unreachable without keeping their phone."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin, utcnow


class ConsentStatus(enum.StrEnum):
    """What a consent event says about the person."""

    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class ConsentSource(enum.StrEnum):
    """How the engine learnt it."""

    KEYWORD = "keyword"  # the person wrote a stop word
    BUTTON = "button"  # the person tapped a quick reply that means stop
    AGENT = "agent"  # a user of the tenant recorded it (in the inbox or the API)
    API = "api"  # a system of the tenant recorded it with an API key
    IMPORT = "import"  # a campaign list said the person agreed
    PROVIDER_BLOCK = "provider_block"  # the provider refused: the person blocked or unsubscribed


class OptOut(IdMixin, TimestampMixin, Base):
    """One phone's opt-out from a tenant. Kept when the contact is erased, so no contact FK."""

    __tablename__ = "whatsapp_optouts"
    # Leads with tenant_id, so it serves every lookup by tenant: no index of tenant_id alone.
    __table_args__ = (UniqueConstraint("tenant_id", "phone"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20))
    instance_id: Mapped[str | None] = mapped_column(String(36), default=None)
    keyword: Mapped[str | None] = mapped_column(String(64), default=None)
    # The text as the person wrote it, and the message it came in.
    original_text: Mapped[str | None] = mapped_column(Text, default=None)
    provider_message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    reason: Mapped[str] = mapped_column(String(32), default="keyword")


class Consent(Base):
    """One opt-in or opt-out, with its source and evidence; never changed or deleted (the database
    refuses it) except that erasing the person blanks the phone and the evidence."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_tenant_id_contact_id", "tenant_id", "contact_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # No foreign keys: the ledger outlives the contact (and is never cascaded away).
    tenant_id: Mapped[str] = mapped_column(String(36))
    contact_id: Mapped[str | None] = mapped_column(String(36), default=None)
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    # The user or API key that recorded it; the provider's error code for a provider block.
    actor: Mapped[str | None] = mapped_column(String(64), default=None)
    # The message that said it (the provider's id) and its text, or the agent's note.
    provider_message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    evidence: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(IdMixin, Base):
    """An erased person who must stay unreachable: an HMAC of their phone under the tenant's own
    key (consent/suppression.py), the date and the reason; nothing that reads back to them."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("tenant_id", "phone_hash"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    phone_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
