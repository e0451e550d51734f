"""The hourly rollup of messages the analytics read, and how far the worker has folded changes in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base

# Campaign of the messages sent outside any campaign (a key column cannot be NULL).
NO_CAMPAIGN = ""

# Upper edges, in seconds, of the duration histogram's buckets (the last bucket is open-ended):
# the p90 is read from them, exact to within its bucket (see analytics/rollup.py).
DURATION_EDGES: tuple[float, ...] = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 450, 600, 900, 1200, 1800,
    2700, 3600, 5400, 7200, 10800, 14400, 21600, 43200, 86400, 172800, 604800,
)  # fmt: skip


class AnalyticsHour(Base):
    """One number's messages created in one UTC hour, per campaign: counts by direction and
    stage, the durations' sums and histograms (for the mean and the p90), agents' first replies.

    Recomputed from the messages by the worker (analytics/rollup.py), never incremented, so a
    receipt applied twice or a backfilled time can never count twice.
    """

    __tablename__ = "analytics_hours"
    __table_args__ = (
        # Every query is one tenant's range of hours.
        Index("ix_analytics_hours_tenant_hour", "tenant_id", "hour"),
    )

    instance_id: Mapped[str] = mapped_column(
        ForeignKey("whatsapp_instances.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    inbound: Mapped[int] = mapped_column(default=0)
    outbound: Mapped[int] = mapped_column(default=0)
    sent: Mapped[int] = mapped_column(default=0)
    delivered: Mapped[int] = mapped_column(default=0)
    read: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    # Messages with both times known, and the sum of their seconds from sent to delivered / read.
    delivery_timed: Mapped[int] = mapped_column(default=0)
    delivery_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    read_timed: Mapped[int] = mapped_column(default=0)
    read_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # Counts per DURATION_EDGES bucket (one more for longer), as a JSON list.
    delivery_histogram: Mapped[list[int]] = mapped_column(JSON)
    read_histogram: Mapped[list[int]] = mapped_column(JSON)
    # Tickets whose first agent reply was written in this hour, and the seconds they waited.
    responses: Mapped[int] = mapped_column(default=0)
    response_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class AnalyticsCursor(Base):
    """Up to when message changes are folded into the rollup (one row)."""

    __tablename__ = "analytics_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    folded_until: Mapped[datetime]


hours_table: Table = AnalyticsHour.__table__  # type: ignore[assignment]
cursor_table: Table = AnalyticsCursor.__table__  # type: ignore[assignment]
ROLLUP_COLUMNS: tuple[str, ...] = tuple(c.name for c in hours_table.columns)
HourRow = Any
