"""What a campaign's pages and exports read: its sends over time (overall and per number), its
contacts and logs as CSV, and each number's outlook for a new campaign (health, warm-up, room
today).

The timeline is counted from the campaign's contacts, whose sent, delivered, read and failed
times the receipts set once each: so its totals agree with the campaign's counters.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging_whatsapp.campaigns.models import (
    CampaignContact,
    CampaignContactStatus,
    CampaignInstance,
    CampaignLog,
    LogType,
    Severity,
)
from messaging_whatsapp.campaigns.pacing import WarmupSchedule, warmup_start
from messaging_whatsapp.campaigns.queries import get_campaign
from messaging_whatsapp.campaigns.report_schemas import NumberSeries, Timeline
from messaging_whatsapp.inbox.models import Contact
from messaging_whatsapp.instances.health import HealthView, unavailable_reason
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance

# Rows an export reads at a time: memory stays flat whatever the campaign's size.
EXPORT_CHUNK = 1000
STAGES = ("sent", "delivered", "read", "failed")


class Bucket(enum.StrEnum):
    """The timeline's step."""

    MINUTE = "minute"
    HOUR = "hour"


def _truncated(column: Any, bucket: Bucket, dialect: str) -> ColumnElement[Any]:
    """The time cut to its bucket, in the database's own way."""
    if dialect == "postgresql":
        return func.date_trunc(bucket.value, column)
    pattern = "%Y-%m-%d %H:%M:00" if bucket is Bucket.MINUTE else "%Y-%m-%d %H:00:00"
    return func.strftime(pattern, column)


def _moment(value: datetime | str) -> datetime:
    """A bucket as an aware UTC time (SQLite answers text, PostgreSQL a naive or aware time)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def timeline(session: AsyncSession, tenant_id: str, campaign_id: str, bucket: Bucket) -> Timeline:
    """Sent, delivered, read and failed per bucket, overall and per number (NotFound for another
    tenant's campaign); buckets with nothing are left out."""
    await get_campaign(session, tenant_id, campaign_id)
    dialect = session.get_bind().dialect.name
    counts: dict[tuple[datetime, str | None], dict[str, int]] = {}
    for stage in STAGES:
        column = getattr(CampaignContact, f"{stage}_at")
        at = _truncated(column, bucket, dialect).label("at")
        rows = await session.execute(
            select(at, CampaignContact.instance_id, func.count())
            .where(
                CampaignContact.campaign_id == campaign_id,
                CampaignContact.tenant_id == tenant_id,
                column.is_not(None),
            )
            .group_by(at, CampaignContact.instance_id)
        )
        for moment, instance_id, count in rows:
            key = (_moment(moment), instance_id)
            counts.setdefault(key, dict.fromkeys(STAGES, 0))[stage] += int(count)
    times = sorted({moment for moment, _ in counts})
    names = await _number_names(session, tenant_id, campaign_id)
    instance_ids = sorted({instance_id for _, instance_id in counts if instance_id} | set(names))
    overall = {stage: [0] * len(times) for stage in STAGES}
    per_number = {instance_id: {stage: [0] * len(times) for stage in STAGES} for instance_id in instance_ids}
    index = {moment: position for position, moment in enumerate(times)}
    for (moment, instance_id), stages in counts.items():
        for stage, count in stages.items():
            overall[stage][index[moment]] += count
            if instance_id:
                per_number[instance_id][stage][index[moment]] += count
    return Timeline(
        bucket=bucket.value,
        times=times,
        **overall,
        numbers=[
            NumberSeries(instance_id=instance_id, display_number=names.get(instance_id, ""), **series)
            for instance_id, series in per_number.items()
        ],
    )


async def _number_names(session: AsyncSession, tenant_id: str, campaign_id: str) -> dict[str, str]:
    """The campaign's numbers as people read them."""
    rows = await session.execute(
        select(WhatsAppInstance.id, WhatsAppInstance.display_number)
        .join(CampaignInstance, CampaignInstance.instance_id == WhatsAppInstance.id)
        .where(CampaignInstance.campaign_id == campaign_id, WhatsAppInstance.tenant_id == tenant_id)
    )
    return {instance_id: number for instance_id, number in rows}


async def campaign_numbers(
    session: AsyncSession, tenant_id: str, campaign_ids: list[str]
) -> dict[str, list[str]]:
    """Each campaign's numbers as people read them (a list shows which numbers a campaign uses)."""
    if not campaign_ids:
        return {}
    rows = await session.execute(
        select(CampaignInstance.campaign_id, WhatsAppInstance.display_number)
        .join(WhatsAppInstance, WhatsAppInstance.id == CampaignInstance.instance_id)
        .where(CampaignInstance.campaign_id.in_(campaign_ids), CampaignInstance.tenant_id == tenant_id)
        .order_by(WhatsAppInstance.display_number)
    )
    found: dict[str, list[str]] = {}
    for campaign_id, number in rows:
        found.setdefault(campaign_id, []).append(number)
    return found


CONTACT_COLUMNS = (
    "phone",
    "name",
    "status",
    "instance_id",
    "attempts",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "replied_at",
    "error_code",
    "error_title",
    "variables",
)
LOG_COLUMNS = (
    "created_at",
    "log_type",
    "severity",
    "message",
    "instance_id",
    "contact_id",
    "http_status",
    "duration_ms",
    "campaign_progress",
    "details",
)


def _csv_line(values: Iterable[Any]) -> str:
    """One CSV line; a cell a spreadsheet would run as a formula is quoted as text."""
    out = io.StringIO()
    csv.writer(out).writerow([_cell(value) for value in values])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return ";".join(f"{key}={item}" for key, item in value.items())
    text = str(value)
    # CSV injection: a customer's name such as =HYPERLINK(...) must stay text in Excel.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") and not text[1:2].isdigit() else text


async def export_contacts(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    campaign_id: str,
    status: CampaignContactStatus | None,
) -> AsyncIterator[str]:
    """The campaign's contacts (optionally of one status) as CSV lines, header first, read in
    chunks in the order they were added."""
    yield _csv_line(CONTACT_COLUMNS)
    last_id = ""
    while True:
        query = (
            select(CampaignContact, Contact.phone, Contact.name)
            .join(Contact, Contact.id == CampaignContact.contact_id)
            .where(
                CampaignContact.campaign_id == campaign_id,
                CampaignContact.tenant_id == tenant_id,
                CampaignContact.id > last_id,
            )
            .order_by(CampaignContact.id)
            .limit(EXPORT_CHUNK)
        )
        if status is not None:
            query = query.where(CampaignContact.status == status.value)
        async with sessions() as session:
            rows = (await session.execute(query)).all()
        for row, phone, name in rows:
            values = [phone, name, *(getattr(row, column) for column in CONTACT_COLUMNS[2:])]
            yield _csv_line(values)
        if len(rows) < EXPORT_CHUNK:
            return
        last_id = rows[-1][0].id


async def export_logs(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    campaign_id: str,
    log_type: LogType | None,
    severity: Severity | None,
) -> AsyncIterator[str]:
    """The campaign's logs (optionally of one type and severity) as CSV lines, newest first."""
    yield _csv_line(LOG_COLUMNS)
    after: tuple[datetime, str] | None = None
    while True:
        query = select(CampaignLog).where(
            CampaignLog.campaign_id == campaign_id, CampaignLog.tenant_id == tenant_id
        )
        if log_type is not None:
            query = query.where(CampaignLog.log_type == log_type.value)
        if severity is not None:
            query = query.where(CampaignLog.severity == severity.value)
        if after is not None:
            query = query.where(tuple_(CampaignLog.created_at, CampaignLog.id) < tuple_(*after))
        query = query.order_by(CampaignLog.created_at.desc(), CampaignLog.id.desc()).limit(EXPORT_CHUNK)
        async with sessions() as session:
            rows = list(await session.scalars(query))
        for log in rows:
            yield _csv_line(getattr(log, column) for column in LOG_COLUMNS)
        if len(rows) < EXPORT_CHUNK:
            return
        after = (rows[-1].created_at, rows[-1].id)


@dataclass(frozen=True, slots=True)
class NumberOutlook:
    """A number as someone picking it for a campaign sees it: health, warm-up, room today."""

    id: str
    name: str
    display_number: str
    provider: str
    connection_state: str
    status: str
    health_score: float
    health_status: str
    sent_today: int
    daily_limit: int
    # The warm-up's day (1 the first) and today's cap under it.
    warmup_day: int
    warmup_cap: int
    # What it may still send today: the smaller of its daily limit and the warm-up cap, less
    # what it sent (0 when it cannot send now).
    capacity_today: int
    unavailable: str | None


async def number_outlooks(
    session: AsyncSession, tenant_id: str, now: datetime, warmup: WarmupSchedule
) -> list[NumberOutlook]:
    """The tenant's numbers a campaign may use (all but unbound ones), by display number."""
    instances = await session.scalars(
        select(WhatsAppInstance)
        .where(
            WhatsAppInstance.tenant_id == tenant_id, WhatsAppInstance.status != InstanceStatus.UNBOUND.value
        )
        .order_by(WhatsAppInstance.display_number, WhatsAppInstance.id)
    )
    return [_outlook(instance, now, warmup) for instance in instances]


def _outlook(instance: WhatsAppInstance, now: datetime, warmup: WarmupSchedule) -> NumberOutlook:
    health = HealthView.of(instance, now)
    started = warmup_start(instance, now)
    cap = warmup.cap(started, now, instance.daily_limit)
    reason = unavailable_reason(instance, now)
    room = 0 if reason else max(min(cap, instance.daily_limit) - health.sent_today, 0)
    return NumberOutlook(
        id=instance.id,
        name=instance.name,
        display_number=instance.display_number,
        provider=instance.provider,
        connection_state=instance.connection_state,
        status=instance.status,
        health_score=health.score,
        health_status=health.status.value,
        sent_today=health.sent_today,
        daily_limit=instance.daily_limit,
        warmup_day=max((now - started).days, 0) + 1,
        warmup_cap=cap,
        capacity_today=room,
        unavailable=reason,
    )
