"""Delivery and volume figures of a tenant's range of hours, read from the hourly rollup.

A range is read in whole hours: `from` rounds down to its hour and `to` up. Buckets by day are the
tenant's days (its time zone); hours are UTC hours shown in that zone (zones whose offset is not
whole hours see their days start at the hour holding local midnight).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.analytics.models import DURATION_EDGES, NO_CAMPAIGN, hours_table
from messaging_whatsapp.analytics.rollup import HOUR, hour_of, percentile
from messaging_whatsapp.analytics.schemas import (
    Bucket,
    CampaignDelivery,
    DeliveryFigures,
    DeliveryPoint,
    DeliveryReport,
    InstanceDelivery,
    InstanceVolume,
    VolumePoint,
    VolumeReport,
)
from messaging_whatsapp.campaigns.models import Campaign
from messaging_whatsapp.campaigns.queries import get_campaign
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.instances.service import get_instance
from messaging_whatsapp.tenancy.service import get_tenant

DEFAULT_RANGE = timedelta(days=7)
MAX_RANGE = timedelta(days=400)
P90 = 0.9


@dataclass(frozen=True)
class Period:
    """The whole UTC hours a query reads, the zone it is shown in and how it is bucketed."""

    start: datetime
    end: datetime
    zone: ZoneInfo
    bucket: Bucket

    def bucket_start(self, hour: datetime) -> datetime:
        """The start (in the tenant's zone) of the bucket a UTC hour belongs to."""
        local = hour.astimezone(self.zone)
        if self.bucket is Bucket.HOUR:
            return local
        return datetime.combine(local.date(), time(), self.zone)

    def bucket_starts(self) -> list[datetime]:
        """Every bucket of the range, in order, empty ones included (charts stay continuous)."""
        starts: dict[datetime, None] = {}
        hour = self.start
        while hour < self.end:
            starts.setdefault(self.bucket_start(hour), None)
            hour += HOUR
        return list(starts)


@dataclass(frozen=True)
class Filters:
    """One number and/or one campaign of the tenant (None: all)."""

    instance_id: str | None = None
    campaign_id: str | None = None


async def read_period(
    session: AsyncSession,
    tenant_id: str,
    now: datetime,
    start: datetime | None,
    end: datetime | None,
    bucket: Bucket,
) -> Period:
    """The range asked for (times without an offset are the tenant's), in whole hours; the last 7
    days by default. InvalidInput unless `from` is before `to` and at most 400 days apart."""
    zone = ZoneInfo((await get_tenant(session, tenant_id)).timezone)
    end = _zoned(end, zone) if end else now
    start = _zoned(start, zone) if start else end - DEFAULT_RANGE
    if start >= end:
        raise InvalidInput("from must be before to", code="range_reversed")
    if end - start > MAX_RANGE:
        raise InvalidInput(
            f"the range from {start.isoformat()} to {end.isoformat()} exceeds {MAX_RANGE.days} days"
        )
    last = hour_of(end)
    return Period(hour_of(start), last if last == end else last + HOUR, zone, bucket)


def _zoned(moment: datetime, zone: ZoneInfo) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(ZoneInfo("UTC"))


async def check_filters(session: AsyncSession, tenant_id: str, filters: Filters) -> None:
    """NotFound naming the number or campaign when it is not the tenant's."""
    if filters.instance_id is not None:
        await get_instance(session, tenant_id, filters.instance_id)
    if filters.campaign_id is not None:
        await get_campaign(session, tenant_id, filters.campaign_id)


async def _rows(session: AsyncSession, tenant_id: str, period: Period, filters: Filters) -> list[Any]:
    h = hours_table.c
    query = select(hours_table).where(h.tenant_id == tenant_id, h.hour >= period.start, h.hour < period.end)
    if filters.instance_id is not None:
        query = query.where(h.instance_id == filters.instance_id)
    if filters.campaign_id is not None:
        query = query.where(h.campaign_id == filters.campaign_id)
    return list(await session.execute(query))


@dataclass
class Tally:
    """Delivery figures summed over rollup rows."""

    outbound: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    delivery_timed: int = 0
    delivery_seconds: float = 0.0
    read_timed: int = 0
    read_seconds: float = 0.0
    delivery_histogram: list[int] = field(default_factory=lambda: [0] * (len(DURATION_EDGES) + 1))
    read_histogram: list[int] = field(default_factory=lambda: [0] * (len(DURATION_EDGES) + 1))

    def add(self, row: Any) -> None:
        """Add one rollup row."""
        for name in ("outbound", "sent", "delivered", "read", "failed", "delivery_timed", "read_timed"):
            setattr(self, name, getattr(self, name) + getattr(row, name))
        self.delivery_seconds += row.delivery_seconds
        self.read_seconds += row.read_seconds
        for index, count in enumerate(row.delivery_histogram):
            self.delivery_histogram[index] += count
        for index, count in enumerate(row.read_histogram):
            self.read_histogram[index] += count

    def figures(self) -> dict[str, Any]:
        """The counts, rates and times (DeliveryFigures' fields)."""
        return {
            "outbound": self.outbound,
            "sent": self.sent,
            "delivered": self.delivered,
            "read": self.read,
            "failed": self.failed,
            "delivery_rate": _rate(self.delivered, self.sent),
            "read_rate": _rate(self.read, self.delivered),
            "failure_rate": _rate(self.failed, self.outbound),
            "average_delivery_ms": _mean_ms(self.delivery_seconds, self.delivery_timed),
            "p90_delivery_ms": _ms(percentile(self.delivery_histogram, P90)),
            "average_read_ms": _mean_ms(self.read_seconds, self.read_timed),
            "p90_read_ms": _ms(percentile(self.read_histogram, P90)),
        }


def _rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _mean_ms(seconds: float, count: int) -> int | None:
    return round(1000 * seconds / count) if count else None


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(1000 * seconds)


async def delivery(session: AsyncSession, tenant_id: str, period: Period, filters: Filters) -> DeliveryReport:
    """Sent, delivered, read and failed with their rates and times: in total, per bucket, per
    number and per campaign."""
    rows = await _rows(session, tenant_id, period, filters)
    totals = Tally()
    buckets: dict[datetime, Tally] = defaultdict(Tally)
    per_instance: dict[str, Tally] = defaultdict(Tally)
    per_campaign: dict[str, Tally] = defaultdict(Tally)
    for row in rows:
        totals.add(row)
        buckets[period.bucket_start(row.hour)].add(row)
        per_instance[row.instance_id].add(row)
        per_campaign[row.campaign_id].add(row)
    names = await _instance_names(session, tenant_id)
    campaigns = await _campaign_names(session, tenant_id, [c for c in per_campaign if c != NO_CAMPAIGN])
    return DeliveryReport(
        start=period.start.astimezone(period.zone),
        end=period.end.astimezone(period.zone),
        bucket=period.bucket,
        timezone=str(period.zone),
        totals=DeliveryFigures(**totals.figures()),
        series=[_delivery_point(start, buckets.get(start)) for start in period.bucket_starts()],
        instances=[
            InstanceDelivery(
                instance_id=instance_id, name=names.get(instance_id, instance_id), **tally.figures()
            )
            for instance_id, tally in _busiest(per_instance)
        ],
        campaigns=[
            CampaignDelivery(
                campaign_id=campaign_id or None, name=campaigns.get(campaign_id), **tally.figures()
            )
            for campaign_id, tally in _busiest(per_campaign)
        ],
    )


def _delivery_point(start: datetime, tally: Tally | None) -> DeliveryPoint:
    tally = tally or Tally()
    return DeliveryPoint(
        start=start, sent=tally.sent, delivered=tally.delivered, read=tally.read, failed=tally.failed
    )


def _busiest(tallies: dict[str, Tally]) -> Iterator[tuple[str, Tally]]:
    """Most outbound messages first (the id breaks ties, so the order is stable)."""
    yield from sorted(tallies.items(), key=lambda item: (-item[1].outbound, item[0]))


async def volume(session: AsyncSession, tenant_id: str, period: Period, filters: Filters) -> VolumeReport:
    """Messages in and out per bucket and per number, the busiest hour of the day, and the agents'
    mean first response time per ticket."""
    rows = await _rows(session, tenant_id, period, filters)
    series: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    per_instance: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_hour_of_day: dict[int, int] = defaultdict(int)
    responses, waited = 0, 0.0
    for row in rows:
        for counts in (series[period.bucket_start(row.hour)], per_instance[row.instance_id]):
            counts[0] += row.inbound
            counts[1] += row.outbound
        by_hour_of_day[row.hour.astimezone(period.zone).hour] += row.inbound + row.outbound
        responses += row.responses
        waited += row.response_seconds
    inbound = sum(counts[0] for counts in per_instance.values())
    outbound = sum(counts[1] for counts in per_instance.values())
    peak = max(sorted(by_hour_of_day.items()), key=lambda item: item[1], default=None)
    names = await _instance_names(session, tenant_id)
    hours = (period.end - period.start) / HOUR
    return VolumeReport(
        start=period.start.astimezone(period.zone),
        end=period.end.astimezone(period.zone),
        bucket=period.bucket,
        timezone=str(period.zone),
        inbound=inbound,
        outbound=outbound,
        messages_per_hour=round((inbound + outbound) / hours, 2),
        peak_hour=f"{peak[0]:02d}:00" if peak and peak[1] else None,
        peak_hour_messages=peak[1] if peak else 0,
        responses=responses,
        average_response_ms=_mean_ms(waited, responses),
        series=[
            VolumePoint(start=start, inbound=series[start][0], outbound=series[start][1])
            for start in period.bucket_starts()
        ],
        instances=[
            InstanceVolume(
                instance_id=instance_id,
                name=names.get(instance_id, instance_id),
                inbound=counts[0],
                outbound=counts[1],
            )
            for instance_id, counts in sorted(per_instance.items(), key=lambda item: (-sum(item[1]), item[0]))
        ],
    )


async def _instance_names(session: AsyncSession, tenant_id: str) -> dict[str, str]:
    """Each number of the tenant by id: its display number, or its name on the gateway."""
    w = WhatsAppInstance
    rows = await session.execute(
        select(w.id, w.display_number, w.instance_name).where(w.tenant_id == tenant_id)
    )
    return {row.id: row.display_number or row.instance_name or row.id for row in rows}


async def _campaign_names(session: AsyncSession, tenant_id: str, ids: Iterable[str]) -> dict[str, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(Campaign.id, Campaign.name).where(Campaign.tenant_id == tenant_id, Campaign.id.in_(wanted))
    )
    return {row.id: row.name for row in rows}
