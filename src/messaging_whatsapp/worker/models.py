"""Worker bookkeeping: the idempotency keys of the stream entries whose effects are committed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, utcnow


class ProcessedEvent(Base):
    """A stream entry (or API idempotency key) whose effects are committed."""

    __tablename__ = "processed_events"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
