"""Shared steps of the automation tests: a tenant with a simulator number, customers writing
through the worker's batch applier, and what came out (events, automatic messages, firings)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from messaging_whatsapp.automation import service
from messaging_whatsapp.automation.models import RuleFiring
from messaging_whatsapp.automation.schemas import RuleIn
from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.inbox.models import Message, SenderType, Ticket
from messaging_whatsapp.outbox.models import OutboxEvent
from messaging_whatsapp.providers.events import InboundMessage, MessageType, NormalisedEvent
from messaging_whatsapp.worker.ingest import IngestResult, apply_entries
from tests.helpers import bind, create_tenant

MARIA = "5511987654321"


async def tenant_with_number(context: EngineContext, **options: Any) -> tuple[str, str]:
    """A new tenant and its simulator number's id."""
    tenant_id = await create_tenant(context, **options)
    instance, _ = await bind(
        context,
        tenant_id,
        provider="simulator",
        display_number="+551140028922",
        instance_name=f"sim-{new_id()[-12:]}",
    )
    return tenant_id, instance.id


def message(
    text: str | None = "Oi",
    *,
    phone: str = MARIA,
    pid: str | None = None,
    payload: str | None = None,
    at: datetime | None = None,
    from_me: bool = False,
) -> InboundMessage:
    """A customer's text (or button tap) as a provider's parser gives it."""
    kind = MessageType.BUTTON if payload else MessageType.TEXT
    return InboundMessage(
        pid or f"SIM-{new_id()}",
        phone,
        kind,
        at or utcnow(),
        text=text,
        button_payload=payload,
        from_me=from_me,
    )


async def apply(
    context: EngineContext, tenant_id: str, instance_id: str, *events: NormalisedEvent, key: str | None = None
) -> IngestResult:
    """Apply the events as one stream entry, as the inbound worker does, and commit."""
    entry = IngestEntry(key or new_id(), tenant_id, instance_id, utcnow(), list(events))
    async with context.sessions() as session, session.begin():
        return await apply_entries(session, [entry], "events")


async def outbox_payloads(context: EngineContext, tenant_id: str, event_type: str) -> list[dict[str, Any]]:
    """The payloads of the tenant's events of this type written to the outbox, in order."""
    async with context.sessions() as session:
        rows = (await session.scalars(select(OutboxEvent.payload).order_by(OutboxEvent.id))).all()
    found = []
    for row in rows:
        for entry in json.loads(row):
            if entry["event_type"] == event_type and entry["tenant_id"] == tenant_id:
                found.append(json.loads(entry["payload"]))
    return found


async def automatic_messages(context: EngineContext, tenant_id: str) -> list[Message]:
    """The tenant's messages sent by automation, oldest first."""
    async with context.sessions() as session:
        query = (
            select(Message)
            .where(Message.tenant_id == tenant_id, Message.sender_type == SenderType.SYSTEM.value)
            .order_by(Message.created_at, Message.id)
        )
        return list((await session.scalars(query)).all())


async def tickets(context: EngineContext, tenant_id: str) -> list[Ticket]:
    """The tenant's tickets, oldest first."""
    async with context.sessions() as session:
        query = select(Ticket).where(Ticket.tenant_id == tenant_id).order_by(Ticket.created_at, Ticket.id)
        return list((await session.scalars(query)).all())


async def firings(context: EngineContext, tenant_id: str) -> list[RuleFiring]:
    """The tenant's rule firings, oldest first."""
    async with context.sessions() as session:
        query = (
            select(RuleFiring)
            .where(RuleFiring.tenant_id == tenant_id)
            .order_by(RuleFiring.fired_at, RuleFiring.id)
        )
        return list((await session.scalars(query)).all())


async def create_rule(context: EngineContext, tenant_id: str, **body: Any) -> str:
    """A rule, as POST /api/v1/automation/rules creates it; its id."""
    async with context.sessions() as session, session.begin():
        rule = await service.create_rule(session, tenant_id, RuleIn.model_validate(body), utcnow())
        return rule.id
