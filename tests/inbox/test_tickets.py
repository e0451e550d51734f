"""Tickets close after the tenant's time without a message (seed 003), by the scheduler, on both
databases: announced once, another tenant's setting apart, the next message opening a new one."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from sqlalchemy import select

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.inbox.models import SenderType, Ticket
from messaging_whatsapp.providers.events import InboundMessage, MessageType
from messaging_whatsapp.sending import service as sending_service
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.worker.ingest import apply_entries
from messaging_whatsapp.worker.scheduler import Scheduler
from tests.helpers import bind, create_tenant, published_events

PHONE = "5511987654321"


async def _number(context: EngineContext, tenant_id: str) -> str:
    instance, _ = await bind(
        context,
        tenant_id,
        provider="simulator",
        display_number="+551140028922",
        instance_name=f"sim-{new_id()[-12:]}",
    )
    return instance.id


async def _customer_writes(context: EngineContext, tenant_id: str, instance_id: str, at: datetime) -> None:
    message = InboundMessage(f"SIM-{new_id()}", PHONE, MessageType.TEXT, at, text="Oi")
    async with context.sessions() as session, session.begin():
        await apply_entries(session, [IngestEntry(new_id(), tenant_id, instance_id, at, [message])], "events")


async def _tickets(context: EngineContext, tenant_id: str) -> list[tuple[str, str | None]]:
    async with context.sessions() as session:
        rows = await session.execute(
            select(Ticket.status, Ticket.close_reason)
            .where(Ticket.tenant_id == tenant_id)
            .order_by(Ticket.created_at, Ticket.id)
        )
        return [(row.status, row.close_reason) for row in rows]


async def _close_at(context: EngineContext, moment: datetime) -> int:
    return await Scheduler(context, clock=lambda: moment).close_inactive_tickets()


async def test_an_idle_ticket_closes_and_the_next_message_opens_another(context: EngineContext) -> None:
    tenant_id = await create_tenant(context, ticket_inactivity_minutes=60)
    instance_id = await _number(context, tenant_id)
    start = utcnow()
    await _customer_writes(context, tenant_id, instance_id, start)

    assert await _close_at(context, start + timedelta(minutes=59)) == 0
    assert await _tickets(context, tenant_id) == [("open", None)]
    assert await _close_at(context, start + timedelta(minutes=61)) == 1
    assert await _close_at(context, start + timedelta(minutes=62)) == 0
    assert await _tickets(context, tenant_id) == [("closed", "inactivity")]
    [event] = await published_events(context, "whatsapp_ticket_closed")
    assert (event["tenant_id"], json.loads(event["payload"])["close_reason"]) == (tenant_id, "inactivity")

    await _customer_writes(context, tenant_id, instance_id, start + timedelta(minutes=90))
    assert await _tickets(context, tenant_id) == [("closed", "inactivity"), ("open", None)]


async def test_an_agents_reply_keeps_the_ticket_open(context: EngineContext) -> None:
    tenant_id = await create_tenant(context, ticket_inactivity_minutes=60)
    instance_id = await _number(context, tenant_id)
    start = utcnow() - timedelta(minutes=50)
    await _customer_writes(context, tenant_id, instance_id, start)
    reply = SendMessageRequest(to=f"+{PHONE}", instance_id=instance_id, text="Já vamos ver")
    async with context.sessions() as session, session.begin():
        await sending_service.queue_message(
            session, tenant_id, reply, idempotency_key=None, sender_type=SenderType.USER, now=utcnow()
        )

    assert await _close_at(context, start + timedelta(minutes=61)) == 0
    assert await _close_at(context, utcnow() + timedelta(minutes=61)) == 1


async def test_each_tenant_keeps_its_own_time_and_zero_never_closes(context: EngineContext) -> None:
    hourly = await create_tenant(context, "Loja A", ticket_inactivity_minutes=60)
    daily = await create_tenant(context, "Loja B")
    never = await create_tenant(context, "Loja C", ticket_inactivity_minutes=0)
    start = utcnow()
    for tenant_id in (hourly, daily, never):
        await _customer_writes(context, tenant_id, await _number(context, tenant_id), start)

    assert await _close_at(context, start + timedelta(hours=2)) == 1
    assert [await _tickets(context, t) for t in (hourly, daily, never)] == [
        [("closed", "inactivity")],
        [("open", None)],
        [("open", None)],
    ]
    assert await _close_at(context, start + timedelta(days=2)) == 1
    assert await _tickets(context, never) == [("open", None)]


async def test_schedulers_running_together_close_a_ticket_once(context: EngineContext) -> None:
    tenant_id = await create_tenant(context, ticket_inactivity_minutes=60)
    await _customer_writes(context, tenant_id, await _number(context, tenant_id), utcnow())
    later = utcnow() + timedelta(hours=2)

    closed = await asyncio.gather(*(_close_at(context, later) for _ in range(3)))

    assert sum(closed) == 1
    events = await published_events(context, "whatsapp_ticket_closed")
    assert len(events) == 1
