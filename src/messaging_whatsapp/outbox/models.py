"""The outbox table: the events one transaction wrote for a stream, relayed after its commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, utcnow
from messaging_whatsapp.streams.models import BigId


class OutboxEvent(Base):
    """The events one transaction wrote for a stream (a JSON list of entries), relayed after commit."""

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stream: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
