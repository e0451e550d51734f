"""Delivery and volume figures of a tenant's range of hours, read from the hourly rollup.

A range is read in whole hours: `from` rounds down to its hour and `to` up. Buckets by day are the
tenant's days (its time zone); hours are UTC hours shown in that zone (zones whose offset is not
whole hours see their days start at the hour holding local midnight).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.analytics.models import (
    COUNTS,
    DELIVERY_HISTOGRAM,
    NO_CAMPAIGN,
    READ_HISTOGRAM,
    SECONDS,
    hours_table,
)
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
# The years a range may name: far wider than any figures, and clear of datetime's own limits.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
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
    end = _zoned(end, zone, "to") if end else now
    start = _zoned(start, zone, "from") if start else end - DEFAULT_RANGE
    if start >= end:
        raise InvalidInput("from must be before to", code="range_reversed")
    if end - start > MAX_RANGE:
        raise InvalidInput(
            f"the range from {start.isoformat()} to {end.isoformat()} exceeds {MAX_RANGE.days} days"
        )
    last = hour_of(end)
    return Period(hour_of(start), last if last == end else last + HOUR, zone, bucket)


def _zoned(moment: datetime, zone: ZoneInfo, name: str) -> datetime:
    """The moment in UTC (one without an offset is the tenant's); InvalidInput outside the years
    figures can exist for (a year 1 or 9999 would also overflow the range arithmetic)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    outside = InvalidInput(
        f"{name} must fall between {EARLIEST.year} and {LATEST.year - 1}", code="invalid_range"
    )
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise outside from None
    if not EARLIEST <= moment < LATEST:
        raise outside
    return moment


async def check_filters(session: AsyncSession, tenant_id: str, filters: Filters) -> None:
    """NotFound naming the number or campaign when it is not the tenant's."""
    if filters.instance_id is not None:
        await get_instance(session, tenant_id, filters.instance_id)
    if filters.campaign_id is not None:
        await get_campaign(session, tenant_id, filters.campaign_id)


def _where(tenant_id: str, period: Period, filters: Filters) -> list[Any]:
    h = hours_table.c
    conditions = [h.tenant_id == tenant_id, h.hour >= period.start, h.hour < period.end]
    if filters.instance_id is not None:
        conditions.append(h.instance_id == filters.instance_id)
    if filters.campaign_id is not None:
        conditions.append(h.campaign_id == filters.campaign_id)
    return conditions


_SUMMED = (*COUNTS, *SECONDS, *DELIVERY_HISTOGRAM, *READ_HISTOGRAM)


async def _parts(session: AsyncSession, tenant_id: str, period: Period, filters: Filters) -> list[Any]:
    """The range's figures summed by the database per (number, campaign): a few rows."""
    h = hours_table.c
    query = (
        select(h.instance_id, h.campaign_id, *(func.sum(h[name]).label(name) for name in _SUMMED))
        .where(*_where(tenant_id, period, filters))
        .group_by(h.instance_id, h.campaign_id)
    )
    return list(await session.execute(query))


async def _hours(session: AsyncSession, tenant_id: str, period: Period, filters: Filters) -> list[Any]:
    """The range's counts summed by the database per UTC hour (for the series and the peak hour)."""
    h = hours_table.c
    counted = ("inbound", "outbound", "sent", "delivered", "read", "failed")
    query = (
        select(h.hour, *(func.sum(h[name]).label(name) for name in counted))
        .where(*_where(tenant_id, period, filters))
        .group_by(h.hour)
    )
    return list(await session.execute(query))


@dataclass
class Tally:
    """Figures summed over parts of the rollup (rows of _parts)."""

    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_SUMMED, 0))

    def add(self, part: Any) -> None:
        """Add one part."""
        for name in _SUMMED:
            self.sums[name] += getattr(part, name) or 0

    def count(self, name: str) -> int:
        """One summed count."""
        return int(self.sums[name])

    def figures(self) -> dict[str, Any]:
        """The counts, rates and times (DeliveryFigures' fields)."""
        sums, count = self.sums, self.count
        delivery_histogram = [count(name) for name in DELIVERY_HISTOGRAM]
        read_histogram = [count(name) for name in READ_HISTOGRAM]
        return {
            "outbound": count("outbound"),
            "sent": count("sent"),
            "delivered": count("delivered"),
            "read": count("read"),
            "failed": count("failed"),
            "delivery_rate": _rate(count("delivered"), count("sent")),
            "read_rate": _rate(count("read"), count("delivered")),
            "failure_rate": _rate(count("failed"), count("outbound")),
            "average_delivery_ms": _mean_ms(sums["delivery_seconds"], count("delivery_timed")),
            "p90_delivery_ms": _ms(percentile(delivery_histogram, P90)),
            "average_read_ms": _mean_ms(sums["read_seconds"], count("read_timed")),
            "p90_read_ms": _ms(percentile(read_histogram, P90)),
        }


def _rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _mean_ms(seconds: float, count: int) -> int | None:
    return round(1000 * seconds / count) if count else None


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(1000 * seconds)


def _by_bucket(period: Period, hours: list[Any], names: tuple[str, ...]) -> dict[datetime, dict[str, int]]:
    """The hours' counts summed into the period's buckets, every bucket present."""
    buckets = {start: dict.fromkeys(names, 0) for start in period.bucket_starts()}
    for hour in hours:
        counts = buckets[period.bucket_start(hour.hour)]
        for name in names:
            counts[name] += int(getattr(hour, name) or 0)
    return buckets


async def delivery(session: AsyncSession, tenant_id: str, period: Period, filters: Filters) -> DeliveryReport:
    """Sent, delivered, read and failed with their rates and times: in total, per bucket, per
    number and per campaign."""
    parts = await _parts(session, tenant_id, period, filters)
    totals = Tally()
    per_instance: dict[str, Tally] = defaultdict(Tally)
    per_campaign: dict[str, Tally] = defaultdict(Tally)
    for part in parts:
        totals.add(part)
        per_instance[part.instance_id].add(part)
        per_campaign[part.campaign_id].add(part)
    stages = ("sent", "delivered", "read", "failed")
    buckets = _by_bucket(period, await _hours(session, tenant_id, period, filters), stages)
    names = await _instance_names(session, tenant_id)
    campaigns = await _campaign_names(session, tenant_id, [c for c in per_campaign if c != NO_CAMPAIGN])
    return DeliveryReport(
        start=period.start.astimezone(period.zone),
        end=period.end.astimezone(period.zone),
        bucket=period.bucket,
        timezone=str(period.zone),
        totals=DeliveryFigures(**totals.figures()),
        series=[DeliveryPoint(start=start, **counts) for start, counts in buckets.items()],
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


def _busiest(tallies: dict[str, Tally]) -> Iterator[tuple[str, Tally]]:
    """Most outbound messages first (the id breaks ties, so the order is stable)."""
    yield from sorted(tallies.items(), key=lambda item: (-item[1].count("outbound"), item[0]))


async def volume(session: AsyncSession, tenant_id: str, period: Period, filters: Filters) -> VolumeReport:
    """Messages in and out per bucket and per number, the busiest hour of the day, and the agents'
    mean first response time per ticket."""
    parts = await _parts(session, tenant_id, period, filters)
    hours = await _hours(session, tenant_id, period, filters)
    per_instance: dict[str, Tally] = defaultdict(Tally)
    for part in parts:
        per_instance[part.instance_id].add(part)
    totals = Tally()
    for tally in per_instance.values():
        for name in ("inbound", "outbound", "responses", "response_seconds"):
            totals.sums[name] += tally.sums[name]
    by_hour_of_day: dict[int, int] = defaultdict(int)
    for hour in hours:
        by_hour_of_day[hour.hour.astimezone(period.zone).hour] += int(hour.inbound or 0) + int(
            hour.outbound or 0
        )
    peak = max(sorted(by_hour_of_day.items()), key=lambda item: item[1], default=None)
    names = await _instance_names(session, tenant_id)
    inbound, outbound, responses = (
        totals.count("inbound"),
        totals.count("outbound"),
        totals.count("responses"),
    )
    return VolumeReport(
        start=period.start.astimezone(period.zone),
        end=period.end.astimezone(period.zone),
        bucket=period.bucket,
        timezone=str(period.zone),
        inbound=inbound,
        outbound=outbound,
        messages_per_hour=round((inbound + outbound) / ((period.end - period.start) / HOUR), 2),
        peak_hour=f"{peak[0]:02d}:00" if peak and peak[1] else None,
        peak_hour_messages=peak[1] if peak else 0,
        responses=responses,
        average_response_ms=_mean_ms(totals.sums["response_seconds"], responses),
        series=[
            VolumePoint(start=start, **counts)
            for start, counts in _by_bucket(period, hours, ("inbound", "outbound")).items()
        ],
        instances=[
            InstanceVolume(
                instance_id=instance_id,
                name=names.get(instance_id, instance_id),
                inbound=tally.count("inbound"),
                outbound=tally.count("outbound"),
            )
            for instance_id, tally in sorted(
                per_instance.items(),
                key=lambda item: (-item[1].count("inbound") - item[1].count("outbound"), item[0]),
            )
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
