"""What the campaign pages read, on both databases: the timeline counted from the contacts (overall
and per number, per minute and per hour), the CSV exports with their filters, and each number's
outlook for a new campaign (health, warm-up, room today)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from messaging_whatsapp.campaigns import reports, service
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignContactStatus,
    LogType,
    Severity,
)
from messaging_whatsapp.campaigns.pacing import WarmupSchedule
from messaging_whatsapp.campaigns.reports import Bucket
from messaging_whatsapp.campaigns.schemas import CampaignCreate
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.instances.health import local_date
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from tests.helpers import bind, create_tenant

AT = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


async def _number(context: EngineContext, tenant_id: str, display: str) -> str:
    instance, _ = await bind(
        context,
        tenant_id,
        provider="simulator",
        display_number=display,
        instance_name=f"sim-{new_id()[-12:]}",
    )
    return instance.id


async def _campaign(context: EngineContext, tenant_id: str, instance_ids: list[str], people: int) -> Campaign:
    contacts = [{"phone": f"+55119876530{n:02d}", "name": f"Pessoa {n}"} for n in range(people)]
    contacts[0]["name"] = '=HYPERLINK("http://x")'
    async with context.sessions() as session, session.begin():
        campaign, _ = await service.create_campaign(
            session,
            tenant_id,
            CampaignCreate.model_validate(
                {
                    "name": "Natal",
                    "instance_ids": instance_ids,
                    "messages": [{"content": "Oi"}],
                    "contacts": contacts,
                }
            ),
            user_id=None,
            now=utcnow(),
        )
        return campaign


async def _contacts(context: EngineContext, campaign_id: str) -> list[str]:
    async with context.sessions() as session:
        return list(
            await session.scalars(
                select(CampaignContact.id)
                .where(CampaignContact.campaign_id == campaign_id)
                .order_by(CampaignContact.id)
            )
        )


async def _set(context: EngineContext, contact_id: str, **values: object) -> None:
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(CampaignContact).where(CampaignContact.id == contact_id).values(**values)
        )


async def _lines(lines: AsyncIterator[str]) -> list[list[str]]:
    text = "".join([line async for line in lines])
    return list(csv.reader(io.StringIO(text)))


async def test_the_timeline_counts_each_stage_per_bucket_and_per_number(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    first = await _number(context, tenant_id, "+551140028922")
    second = await _number(context, tenant_id, "+551140028923")
    campaign = await _campaign(context, tenant_id, [first, second], 4)
    a, b, c, d = await _contacts(context, campaign.id)
    minute = timedelta(minutes=1)
    sent = CampaignContactStatus.SENT.value
    await _set(context, a, status="read", instance_id=first, sent_at=AT, delivered_at=AT, read_at=AT + minute)
    await _set(
        context,
        b,
        status="delivered",
        instance_id=second,
        sent_at=AT + timedelta(seconds=30),
        delivered_at=AT + minute,
    )
    await _set(context, c, status=sent, instance_id=first, sent_at=AT + timedelta(hours=1, seconds=5))
    await _set(context, d, status="failed", instance_id=second, failed_at=AT + timedelta(hours=1, seconds=50))

    async with context.sessions() as session:
        by_minute = await reports.timeline(session, tenant_id, campaign.id, Bucket.MINUTE)
        by_hour = await reports.timeline(session, tenant_id, campaign.id, Bucket.HOUR)
        other_tenant = await create_tenant(context, "Outra")
        with pytest.raises(NotFound):
            await reports.timeline(session, other_tenant, campaign.id, Bucket.MINUTE)
        numbers = await reports.campaign_numbers(session, tenant_id, [campaign.id])
        assert numbers == {campaign.id: ["+551140028922", "+551140028923"]}
        assert await reports.campaign_numbers(session, other_tenant, [campaign.id]) == {}

    hour = timedelta(hours=1)
    assert by_minute.times == [AT, AT + minute, AT + hour]
    assert (by_minute.sent, by_minute.delivered, by_minute.read, by_minute.failed) == (
        [2, 0, 1],
        [1, 1, 0],
        [0, 1, 0],
        [0, 0, 1],
    )
    assert by_hour.times == [AT, AT + hour]
    assert (by_hour.sent, by_hour.delivered, by_hour.read, by_hour.failed) == ([2, 1], [2, 0], [1, 0], [0, 1])
    numbers = {series.display_number: series for series in by_hour.numbers}
    assert set(numbers) == {"+551140028922", "+551140028923"}
    assert (numbers["+551140028922"].sent, numbers["+551140028922"].read) == ([1, 1], [1, 0])
    assert (numbers["+551140028923"].sent, numbers["+551140028923"].failed) == ([1, 0], [0, 1])


async def test_the_exports_follow_their_filters_and_keep_formulas_as_text(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    number = await _number(context, tenant_id, "+551140028922")
    campaign = await _campaign(context, tenant_id, [number], 3)
    first, *_ = await _contacts(context, campaign.id)
    await _set(context, first, status="failed", error_code="131026", error_title="Message undeliverable")

    rows = await _lines(reports.export_contacts(context.sessions, tenant_id, campaign.id, None))
    assert rows[0] == list(reports.CONTACT_COLUMNS)
    assert len(rows) == 4
    assert rows[1][:3] == ["+5511987653000", '\'=HYPERLINK("http://x")', "failed"]
    assert rows[1][reports.CONTACT_COLUMNS.index("error_title")] == "Message undeliverable"
    failed = await _lines(
        reports.export_contacts(context.sessions, tenant_id, campaign.id, CampaignContactStatus.FAILED)
    )
    assert [row[0] for row in failed[1:]] == ["+5511987653000"]
    # Another tenant's campaign exports nothing but the header.
    other = await create_tenant(context, "Outra")
    assert len(await _lines(reports.export_contacts(context.sessions, other, campaign.id, None))) == 1

    logs = await _lines(reports.export_logs(context.sessions, tenant_id, campaign.id, None, None))
    assert logs[0] == list(reports.LOG_COLUMNS)
    assert [row[1:3] for row in logs[1:]] == [["created", "info"]]
    created = await _lines(
        reports.export_logs(context.sessions, tenant_id, campaign.id, LogType.CREATED, None)
    )
    assert [row[1] for row in created[1:]] == ["created"]
    warnings = await _lines(
        reports.export_logs(context.sessions, tenant_id, campaign.id, None, Severity.WARNING)
    )
    assert warnings[1:] == []
    started = await _lines(
        reports.export_logs(context.sessions, tenant_id, campaign.id, LogType.STARTED, None)
    )
    assert started[1:] == []


async def test_each_number_shows_its_health_warm_up_and_room_today(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    fresh = await _number(context, tenant_id, "+551140028922")
    busy = await _number(context, tenant_id, "+551140028923")
    paused = await _number(context, tenant_id, "+551140028924")
    gone = await _number(context, tenant_id, "+551140028925")
    now = utcnow()
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id == busy)
            .values(
                warmup_started_at=now - timedelta(days=2, hours=1),
                msgs_sent_today=30,
                counters_date=local_date("America/Sao_Paulo", now),
                health_score=62.0,
                timezone="America/Sao_Paulo",
            )
        )
        await session.execute(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id == paused)
            .values(status=InstanceStatus.PAUSED.value)
        )
        await session.execute(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id == gone)
            .values(status=InstanceStatus.UNBOUND.value)
        )
    async with context.sessions() as session:
        outlooks = {
            outlook.id: outlook
            for outlook in await reports.number_outlooks(session, tenant_id, now, WarmupSchedule(20, 2.0))
        }
    assert set(outlooks) == {fresh, busy, paused}
    assert (outlooks[fresh].warmup_day, outlooks[fresh].warmup_cap, outlooks[fresh].capacity_today) == (
        1,
        20,
        20,
    )
    # Day 3 of the warm-up: 20 * 2 * 2 = 80 today, 30 of them sent.
    busy_outlook = outlooks[busy]
    assert (busy_outlook.warmup_day, busy_outlook.warmup_cap, busy_outlook.sent_today) == (3, 80, 30)
    assert (busy_outlook.capacity_today, busy_outlook.health_status) == (50, "good")
    assert outlooks[paused].capacity_today == 0
    assert outlooks[paused].unavailable == "instance is paused"
