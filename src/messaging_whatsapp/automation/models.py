"""Opt-out records: the proof that a person asked not to be messaged (LGPD)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin


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
