"""Tables of the embedded stream backend (streams/sql.py): entries, consumer groups, pending."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, utcnow

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class StreamEntryRow(Base):
    """An appended entry; immutable until every group has acknowledged it and it is trimmed."""

    __tablename__ = "stream_entries"
    __table_args__ = (
        Index("ix_stream_entries_stream_id", "stream", "id"),
        # Ids must never be reused: a group's cursor is "last id handed out", and without
        # AUTOINCREMENT SQLite reuses ids once trimming has emptied the table.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stream: Mapped[str] = mapped_column(String(200))
    fields: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StreamGroupRow(Base):
    """A consumer group and the last entry id it has handed out."""

    __tablename__ = "stream_groups"

    stream: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StreamPendingRow(Base):
    """An entry handed to a consumer and not yet acknowledged (Redis' pending entries list)."""

    __tablename__ = "stream_pending"
    __table_args__ = (Index("ix_stream_pending_visible", "stream", "group_name", "visible_at"),)

    stream: Mapped[str] = mapped_column(String(200), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    consumer: Mapped[str] = mapped_column(String(200))
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    # When another consumer may reclaim it: delivery time plus the visibility timeout.
    visible_at: Mapped[datetime] = mapped_column()
