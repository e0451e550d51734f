"""Worker heartbeats: one row per engine process, rewritten every few seconds while it runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, utcnow


class WorkerHeartbeat(Base):
    """An engine process (server or worker) and when it last said it was alive."""

    __tablename__ = "worker_heartbeats"
    __table_args__ = (Index("ix_worker_heartbeats_beat_at", "beat_at"),)

    # Made at the process's start: host and pid alone repeat (a restarted container, a test run).
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # What the process was started as: all, api, webhook, inbound, sender, dispatcher, scheduler...
    role: Mapped[str] = mapped_column(String(40))
    # The parts it runs, space-separated (api webhook inbound sender dispatcher scheduler).
    parts: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the process stopped cleanly; a crashed one just stops beating.
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)
