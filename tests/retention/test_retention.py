"""Data retention (LGPD) per tenant, on both databases: old messages and long-closed tickets go,
everything else stays; another tenant's data and a tenant without settings are untouched; a dry
run counts the same and deletes nothing; the scheduler applies it."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.engine import make_url

from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Contact, Conversation, Message, SendState
from messaging_whatsapp.retention.service import (
    RetentionReport,
    apply_retention,
    apply_retention_everywhere,
)
from messaging_whatsapp.streams.base import StreamEntry
from messaging_whatsapp.streams.records import dead_letter_fields
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.worker.scheduler import Scheduler
from tests.helpers import bind, create_outbound_message, create_tenant, wait_until
from tests.retention.inbox_data import (
    close_ticket_of,
    customer_writes,
    message_ids,
    number,
    set_retention,
    tickets,
)

ANA, BIA, CAIO = "5511987654321", "5511976543210", "5521998877665"


def counts(report: RetentionReport) -> dict[str, int | None]:
    """Each kind's count in the report (None: kept forever)."""
    return {kind: expiry and expiry.count for kind, expiry in report.kinds().items()}


async def _count(context: EngineContext, model: Any, tenant_id: str) -> int:
    async with context.sessions() as session:
        return int(
            await session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id))
            or 0
        )


async def test_messages_past_the_tenants_days_go_and_the_rest_stays(context: EngineContext) -> None:
    tenant_id = await create_tenant(context, "Loja")
    instance_id = await number(context, tenant_id)
    await customer_writes(context, tenant_id, instance_id, ANA, days_ago=40)
    await customer_writes(context, tenant_id, instance_id, BIA, days_ago=400)
    recent = await customer_writes(context, tenant_id, instance_id, ANA, days_ago=29)
    today = await customer_writes(context, tenant_id, instance_id, BIA)
    async with context.sessions() as session:
        last_messages = dict(
            (await session.execute(select(Conversation.id, Conversation.last_message_at))).all()
        )
    await set_retention(context, tenant_id, messages=30)

    async with context.sessions() as session:
        tenant = await tenancy_service.get_tenant(session, tenant_id)
    report = await apply_retention(context, tenant, utcnow())

    assert counts(report) == {"messages": 2, "closed_tickets": None, "raw_requests": None}
    assert report.as_json()["messages"]["days"] == 30
    assert await message_ids(context, tenant_id) == {recent, today}
    # The CRM stays as it was: both people, both conversations and what the inbox shows of them.
    assert await _count(context, Contact, tenant_id) == 2
    async with context.sessions() as session:
        assert (
            dict((await session.execute(select(Conversation.id, Conversation.last_message_at))).all())
            == last_messages
        )


async def test_other_tenants_and_tenants_without_settings_keep_everything(context: EngineContext) -> None:
    limited = await create_tenant(context, "Loja A")
    unlimited = await create_tenant(context, "Loja B")
    longer = await create_tenant(context, "Loja C")
    written: dict[str, set[str]] = {}
    for tenant_id in (limited, unlimited, longer):
        instance_id = await number(context, tenant_id)
        written[tenant_id] = {
            await customer_writes(context, tenant_id, instance_id, ANA, days_ago=100),
            await customer_writes(context, tenant_id, instance_id, BIA, days_ago=100),
        }
        await close_ticket_of(context, next(iter(written[tenant_id])), days_ago=100)
    await set_retention(context, limited, messages=30, closed_tickets=30)
    await set_retention(context, longer, messages=365, closed_tickets=365)

    reports = await apply_retention_everywhere(context, utcnow())

    assert {report.tenant_id: counts(report) for report in reports} == {
        limited: {"messages": 2, "closed_tickets": 1, "raw_requests": None},
        longer: {"messages": 0, "closed_tickets": 0, "raw_requests": None},
    }
    assert await message_ids(context, limited) == set()
    assert await message_ids(context, unlimited) == written[unlimited]
    assert await message_ids(context, longer) == written[longer]
    assert len(await tickets(context, unlimited)) == len(await tickets(context, longer)) == 2


async def test_a_message_still_on_its_way_to_the_provider_stays(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    instance, _ = await bind(
        context, tenant_id, provider="simulator", display_number="+551140028922", instance_name="sim-loja"
    )
    sent = await create_outbound_message(context, instance, ANA, "SIM-sent")
    waiting = await create_outbound_message(context, instance, ANA, "SIM-waiting", status="queued")
    async with context.sessions() as session, session.begin():
        await session.execute(update(Message).values(created_at=utcnow() - timedelta(days=10)))
        await session.execute(
            update(Message).where(Message.id == sent).values(send_state=SendState.DONE.value)
        )
        await session.execute(
            update(Message).where(Message.id == waiting).values(send_state=SendState.WAITING.value)
        )
    await set_retention(context, tenant_id, messages=1)

    [report] = await apply_retention_everywhere(context, utcnow())

    assert counts(report)["messages"] == 1
    assert await message_ids(context, tenant_id) == {waiting}


async def test_tickets_closed_past_the_tenants_days_go_and_their_messages_stay(
    context: EngineContext,
) -> None:
    tenant_id = await create_tenant(context, ticket_inactivity_minutes=0)
    instance_id = await number(context, tenant_id)
    long_closed = await customer_writes(context, tenant_id, instance_id, ANA, days_ago=100)
    recently_closed = await customer_writes(context, tenant_id, instance_id, BIA, days_ago=100)
    open_for_long = await customer_writes(context, tenant_id, instance_id, CAIO, days_ago=100)
    gone = await close_ticket_of(context, long_closed, days_ago=31)
    kept = await close_ticket_of(context, recently_closed, days_ago=29)
    await set_retention(context, tenant_id, closed_tickets=30)

    [report] = await apply_retention_everywhere(context, utcnow())

    assert counts(report) == {"messages": None, "closed_tickets": 1, "raw_requests": None}
    remaining = await tickets(context, tenant_id)
    assert gone not in remaining
    assert remaining[kept] == "closed"
    assert sorted(remaining.values()) == ["closed", "open"]
    async with context.sessions() as session:
        ticket_of = dict((await session.execute(select(Message.id, Message.ticket_id))).all())
    assert set(ticket_of) == {long_closed, recently_closed, open_for_long}
    assert ticket_of[long_closed] is None
    assert ticket_of[recently_closed] == kept


async def test_a_dry_run_counts_what_a_run_deletes_and_deletes_nothing(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    other_id = await create_tenant(context, "Outra")
    for tenant in (tenant_id, other_id):
        instance_id = await number(context, tenant)
        first = await customer_writes(context, tenant, instance_id, ANA, days_ago=60)
        await customer_writes(context, tenant, instance_id, BIA, days_ago=45)
        await customer_writes(context, tenant, instance_id, BIA, days_ago=1)
        await close_ticket_of(context, first, days_ago=50)
    await set_retention(context, tenant_id, messages=30, closed_tickets=40)
    await set_retention(context, other_id, messages=50)
    before = {tenant: await message_ids(context, tenant) for tenant in (tenant_id, other_id)}
    tickets_before = await tickets(context, tenant_id)
    now = utcnow()

    dry = await apply_retention_everywhere(context, now, dry_run=True)

    assert [(report.tenant_id, report.dry_run, counts(report)) for report in dry] == [
        (tenant_id, True, {"messages": 2, "closed_tickets": 1, "raw_requests": None}),
        (other_id, True, {"messages": 1, "closed_tickets": None, "raw_requests": None}),
    ]
    assert dry[0].as_json()["messages"]["cutoff"] == (now - timedelta(days=30)).isoformat()
    assert {tenant: await message_ids(context, tenant) for tenant in (tenant_id, other_id)} == before
    assert await tickets(context, tenant_id) == tickets_before

    done = await apply_retention_everywhere(context, now)

    assert [(report.dry_run, counts(report)) for report in done] == [(False, counts(r)) for r in dry]
    assert [len(await message_ids(context, tenant)) for tenant in (tenant_id, other_id)] == [1, 2]
    again = await apply_retention_everywhere(context, now)
    assert [report.total for report in again] == [0, 0]


async def test_one_tenant_named_is_the_only_one_touched(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    other_id = await create_tenant(context, "Outra")
    for tenant in (tenant_id, other_id):
        await customer_writes(context, tenant, await number(context, tenant), ANA, days_ago=10)
        await set_retention(context, tenant, messages=5)

    [report] = await apply_retention_everywhere(context, utcnow(), tenant_id=tenant_id)

    assert (report.tenant_id, counts(report)["messages"]) == (tenant_id, 1)
    assert len(await message_ids(context, other_id)) == 1
    no_settings = await create_tenant(context, "Sem retenção")
    [nothing] = await apply_retention_everywhere(context, utcnow(), tenant_id=no_settings)
    assert counts(nothing) == {"messages": None, "closed_tickets": None, "raw_requests": None}


async def test_the_scheduler_applies_retention(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    instance_id = await number(context, tenant_id)
    for phone in (ANA, BIA, CAIO):
        await customer_writes(context, tenant_id, instance_id, phone)
    await set_retention(context, tenant_id, messages=7)
    week_later = utcnow() + timedelta(days=8)

    assert [r.total for r in await Scheduler(context).apply_retention() or []] == [0]
    # Schedulers running together delete each message once (one holds the pass on PostgreSQL).
    runs = await asyncio.gather(
        *(Scheduler(context, clock=lambda: week_later).apply_retention() for _ in range(3))
    )

    assert sum(report.total for reports in runs for report in reports or []) == 3
    assert await message_ids(context, tenant_id) == set()


@pytest.fixture
async def unreachable_streams(fresh_sqlite_url: str, tmp_path: Path) -> AsyncIterator[EngineContext]:
    """An engine context whose Redis (for its streams) does not answer."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=fresh_sqlite_url,
        redis_url="redis://127.0.0.1:1/0",
        data_dir=tmp_path,
    )
    context = await EngineContext.open(settings)
    yield context
    await context.close()


async def test_a_failed_retention_pass_is_logged_and_the_scheduler_goes_on(
    unreachable_streams: EngineContext, caplog: pytest.LogCaptureFixture
) -> None:
    context = unreachable_streams
    await set_retention(context, await create_tenant(context), raw_requests=7)
    stop = asyncio.Event()

    running = asyncio.create_task(Scheduler(context).run(stop))

    async def logged() -> bool:
        return any("scheduler pass (retention) failed" in record.getMessage() for record in caplog.records)

    with caplog.at_level(logging.ERROR, logger="messaging_whatsapp.worker.scheduler"):
        await wait_until(logged, what="the failed retention pass in the log")
    assert not running.done(), "the scheduler stopped with its retention pass"
    stop.set()
    await asyncio.wait_for(running, 30)


@pytest.fixture
async def sqlite_without_secure_delete(fresh_sqlite_url: str, tmp_path: Path) -> AsyncIterator[EngineContext]:
    """An embedded engine on a SQLite built to leave deleted bytes in the file (secure_delete off
    by default), as many are."""
    settings = Settings(_env_file=None, database_url=fresh_sqlite_url, data_dir=tmp_path)  # type: ignore[call-arg]
    context = await EngineContext.open(settings)

    @event.listens_for(context.engine.sync_engine, "connect")
    def _insecure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA secure_delete = OFF")

    yield context
    await context.close()


async def test_on_sqlite_deleted_data_leaves_the_file(sqlite_without_secure_delete: EngineContext) -> None:
    context = sqlite_without_secure_delete
    tenant_id = await create_tenant(context)
    instance_id = await number(context, tenant_id)
    old = [await customer_writes(context, tenant_id, instance_id, ANA, days_ago=40) for _ in range(40)]
    recent = await customer_writes(context, tenant_id, instance_id, ANA)
    # Written into the rows alone: the events published for other systems carry the text too.
    async with context.sessions() as session, session.begin():
        for n, message_id in enumerate(old):
            await session.execute(
                update(Message).where(Message.id == message_id).values(content=f"segredo-antigo-{n:03d}")
            )
        await session.execute(update(Message).where(Message.id == recent).values(content="conversa-de-hoje"))
    inbound = StreamEntry(context.names.inbound, "1", {"tenant_id": tenant_id, "body": "pedido-secreto"}, 5)
    await context.streams.append(
        context.names.dlq, dead_letter_fields(context.names.inbound, "workers", inbound, "apply failed")
    )
    await set_retention(context, tenant_id, messages=30, raw_requests=1)

    [report] = await apply_retention_everywhere(context, utcnow() + timedelta(days=2))
    await context.close()

    assert (counts(report)["messages"], counts(report)["raw_requests"]) == (40, 1)
    path = make_url(context.settings.database_url).database or ""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = Path(path).read_bytes()
    assert b"conversa-de-hoje" in stored
    assert b"segredo-antigo" not in stored
    assert b"pedido-secreto" not in stored
