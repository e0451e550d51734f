"""The hourly rollup of messages the analytics read, and how far the worker has folded changes in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, UTCDateTime

# Campaign of the messages sent outside any campaign (a key column cannot be NULL).
NO_CAMPAIGN = ""

# Upper edges, in seconds, of the duration histogram's buckets (the last bucket is open-ended):
# the p90 is read from them, exact to within its bucket (see analytics/rollup.py).
DURATION_EDGES: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 450, 600, 900,
    1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400, 21600, 43200, 86400, 172800, 604800,
)  # fmt: skip


# The histograms' columns: delivery_h00..delivery_h34 and read_h00..read_h34, one per bucket of
# DURATION_EDGES and one for longer; plain integers, so a range's histogram is a SUM per column.
HISTOGRAM_BUCKETS = len(DURATION_EDGES) + 1
DELIVERY_HISTOGRAM = tuple(f"delivery_h{index:02d}" for index in range(HISTOGRAM_BUCKETS))
READ_HISTOGRAM = tuple(f"read_h{index:02d}" for index in range(HISTOGRAM_BUCKETS))
# The columns summed over a range (every figure but the key).
COUNTS = (
    "inbound",
    "outbound",
    "sent",
    "delivered",
    "read",
    "failed",
    "delivery_timed",
    "read_timed",
    "responses",
)
SECONDS = ("delivery_seconds", "read_seconds", "response_seconds")


# One number's messages created in one UTC hour, per campaign: counts by direction and stage, the
# durations' sums and histograms (for the mean and the p90), agents' first replies (tickets whose
# first agent reply was written in this hour, and the seconds they waited). Recomputed from the
# messages by the worker (analytics/rollup.py), never incremented, so a receipt applied twice or a
# backfilled time can never count twice. A Core table: its 70 histogram columns are generated.
hours_table = Table(
    "analytics_hours",
    Base.metadata,
    Column("instance_id", ForeignKey("whatsapp_instances.id", ondelete="CASCADE"), primary_key=True),
    Column("hour", UTCDateTime(), primary_key=True),
    Column("campaign_id", String(36), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    *(Column(name, Integer(), nullable=False, default=0) for name in COUNTS),
    *(Column(name, Float(), nullable=False, default=0.0) for name in SECONDS),
    *(Column(name, Integer(), nullable=False, default=0) for name in (*DELIVERY_HISTOGRAM, *READ_HISTOGRAM)),
    # Every query is one tenant's range of hours.
    Index("ix_analytics_hours_tenant_hour", "tenant_id", "hour"),
)


class AnalyticsCursor(Base):
    """Up to when message changes are folded into the rollup (one row)."""

    __tablename__ = "analytics_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    folded_until: Mapped[datetime]


cursor_table: Table = AnalyticsCursor.__table__  # type: ignore[assignment]
