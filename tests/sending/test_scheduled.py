"""Scheduled messages ("send at") on both databases, on a clock the test moves: checked when
scheduled, sent once at their time however many schedulers run the pass, cancellable until then,
and a refusal at send time recorded with its error."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.errors import Conflict, EngineError, InvalidInput, NotFound
from messaging_whatsapp.inbox.models import Contact, Message
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.sending import scheduled
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.sending.submissions import Submission
from messaging_whatsapp.worker.scheduler import Scheduler
from tests.followups.test_follow_ups import PHONE, Clock, new_ticket, read_events


async def _schedule(context: EngineContext, tenant_id: str, clock: Clock, **body: Any) -> str:
    request = SendMessageRequest.model_validate({"to": f"+{PHONE}", "text": "Bom dia!", **body})
    async with context.sessions() as session, session.begin():
        row = await scheduled.schedule_message(session, Submission(tenant_id, request), clock())
        return row.id


async def _item(context: EngineContext, tenant_id: str, scheduled_id: str) -> dict[str, Any]:
    async with context.sessions() as session:
        items, _ = await scheduled.list_scheduled(
            session, tenant_id, conversation_id=None, contact_id=None, status=None, cursor=None, limit=50
        )
    return next(item.model_dump(mode="json") for item in items if item.id == scheduled_id)


async def _messages(context: EngineContext, tenant_id: str) -> list[str | None]:
    async with context.sessions() as session:
        rows = await session.scalars(
            select(Message.idempotency_key).where(
                Message.tenant_id == tenant_id, Message.direction == "outbound"
            )
        )
        return list(rows)


async def test_a_scheduled_message_is_sent_once_at_its_time(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    scheduled_id = await _schedule(
        context, ticketed.tenant_id, clock, send_at=(clock() + timedelta(minutes=5)).isoformat()
    )
    item = await _item(context, ticketed.tenant_id, scheduled_id)
    assert (item["status"], item["to"], item["conversation_id"]) == (
        "scheduled",
        f"+{PHONE}",
        ticketed.conversation_id,
    )
    other = await EngineContext.open(context.settings)
    try:
        first, second = Scheduler(context, clock=clock), Scheduler(other, clock=clock)
        await asyncio.gather(first.send_scheduled_messages(), second.send_scheduled_messages())
        assert await _messages(context, ticketed.tenant_id) == []
        clock.advance(301)
        taken = await asyncio.gather(first.send_scheduled_messages(), second.send_scheduled_messages())
        assert sorted(taken) == [0, 1]
        clock.advance(60)
        await asyncio.gather(first.send_scheduled_messages(), second.send_scheduled_messages())
    finally:
        await other.close()
    assert await _messages(context, ticketed.tenant_id) == [f"scheduled:{scheduled_id}"]
    item = await _item(context, ticketed.tenant_id, scheduled_id)
    assert item["status"] == "sent"
    assert item["message_id"] is not None
    [sent] = (await read_events(context))["whatsapp_scheduled_message_sent"]
    assert (sent["scheduled_message_id"], sent["message_id"]) == (scheduled_id, item["message_id"])


async def test_a_cancelled_message_is_never_sent(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    scheduled_id = await _schedule(
        context, ticketed.tenant_id, clock, send_at=(clock() + timedelta(minutes=1)).isoformat()
    )
    async with context.sessions() as session, session.begin():
        item = await scheduled.cancel_scheduled(session, ticketed.tenant_id, scheduled_id, clock())
    assert item.status == "cancelled"
    clock.advance(120)
    assert await Scheduler(context, clock=clock).send_scheduled_messages() == 0
    assert await _messages(context, ticketed.tenant_id) == []
    with pytest.raises(Conflict) as refused:
        async with context.sessions() as session, session.begin():
            await scheduled.cancel_scheduled(session, ticketed.tenant_id, scheduled_id, clock())
    assert refused.value.code == "not_scheduled"
    with pytest.raises(NotFound):
        async with context.sessions() as session, session.begin():
            await scheduled.cancel_scheduled(session, "another-tenant", scheduled_id, clock())


async def test_a_refusal_at_send_time_is_recorded(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    scheduled_id = await _schedule(
        context,
        ticketed.tenant_id,
        clock,
        instance_id=ticketed.instance_id,
        send_at=(clock() + timedelta(minutes=1)).isoformat(),
    )
    # The number is paused meanwhile: the rules, applied again at send time, refuse it.
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id == ticketed.instance_id)
            .values(status="paused")
        )
    clock.advance(61)
    assert await Scheduler(context, clock=clock).send_scheduled_messages() == 1
    item = await _item(context, ticketed.tenant_id, scheduled_id)
    assert item["status"] == "failed"
    assert item["error"]["code"] == "instance_unavailable"
    assert await _messages(context, ticketed.tenant_id) == []
    [failed] = (await read_events(context))["whatsapp_scheduled_message_failed"]
    assert failed["error"]["code"] == "instance_unavailable"
    assert json.dumps(failed)  # plain data


async def test_what_is_checked_when_scheduling(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    soon = (clock() + timedelta(minutes=1)).isoformat()
    cases: list[tuple[dict[str, Any], type[EngineError], str]] = [
        ({"send_at": (clock() - timedelta(seconds=1)).isoformat()}, InvalidInput, "invalid_send_at"),
        ({"send_at": (clock() + timedelta(days=91)).isoformat()}, InvalidInput, "invalid_send_at"),
        ({"send_at": soon, "to": "123"}, InvalidInput, "invalid_phone"),
        ({"send_at": soon, "instance_id": "00000000-0000-0000-0000-000000000000"}, NotFound, "not_found"),
    ]
    for body, error, code in cases:
        with pytest.raises(error) as refused:
            await _schedule(context, ticketed.tenant_id, clock, **body)
        assert refused.value.code == code, body
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(Contact).where(Contact.tenant_id == ticketed.tenant_id).values(opted_out=True)
        )
    with pytest.raises(Conflict) as opted_out:
        await _schedule(context, ticketed.tenant_id, clock, send_at=soon)
    assert opted_out.value.code == "opted_out"
