"""Inbox data of a given age for the retention tests: messages written through the ingest batch,
then dated back (the engine stores a message with the time it arrived)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.inbox.models import Message, Ticket, TicketCloseReason, TicketStatus
from messaging_whatsapp.providers.events import InboundMessage, MessageType
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.tenancy.schemas import TenantUpdate
from messaging_whatsapp.worker.ingest import apply_entries
from tests.helpers import bind


async def number(context: EngineContext, tenant_id: str) -> str:
    """A new simulator number of the tenant; its instance id."""
    instance, _ = await bind(
        context,
        tenant_id,
        provider="simulator",
        display_number="+551140028922",
        instance_name=f"sim-{new_id()[-12:]}",
    )
    return instance.id


async def customer_writes(
    context: EngineContext,
    tenant_id: str,
    instance_id: str,
    phone: str,
    text: str = "Oi",
    *,
    days_ago: float = 0,
) -> str:
    """A customer's message, stored `days_ago` days back; its id."""
    provider_id = f"SIM-{new_id()}"
    message = InboundMessage(provider_id, phone, MessageType.TEXT, utcnow(), text=text)
    async with context.sessions() as session, session.begin():
        await apply_entries(
            session, [IngestEntry(new_id(), tenant_id, instance_id, utcnow(), [message])], "events"
        )
        message_id = await session.scalar(
            select(Message.id).where(
                Message.instance_id == instance_id, Message.provider_message_id == provider_id
            )
        )
        assert message_id is not None
        if days_ago:
            await session.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(created_at=utcnow() - timedelta(days=days_ago))
            )
    return message_id


async def close_ticket_of(context: EngineContext, message_id: str, *, days_ago: float) -> str:
    """Close the ticket the message opened, `days_ago` days back; the ticket's id."""
    async with context.sessions() as session, session.begin():
        ticket_id = await session.scalar(select(Message.ticket_id).where(Message.id == message_id))
        assert ticket_id is not None
        await session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id)
            .values(
                status=TicketStatus.CLOSED.value,
                close_reason=TicketCloseReason.MANUAL.value,
                closed_at=utcnow() - timedelta(days=days_ago),
            )
        )
    return ticket_id


async def set_retention(context: EngineContext, tenant_id: str, **days: int | None) -> None:
    """Set retention settings of the tenant as the API does (`messages=30` for retention_messages_days)."""
    changes = TenantUpdate(**{f"retention_{kind}_days": value for kind, value in days.items()})
    async with context.sessions() as session, session.begin():
        await tenancy_service.update_tenant(session, tenant_id, changes)


async def message_ids(context: EngineContext, tenant_id: str) -> set[str]:
    """The ids of the tenant's messages."""
    async with context.sessions() as session:
        return set((await session.scalars(select(Message.id).where(Message.tenant_id == tenant_id))).all())


async def tickets(context: EngineContext, tenant_id: str) -> dict[str, str]:
    """The tenant's tickets: id to status."""
    async with context.sessions() as session:
        rows = await session.execute(select(Ticket.id, Ticket.status).where(Ticket.tenant_id == tenant_id))
        return {row.id: row.status for row in rows}
