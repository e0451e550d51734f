"""The inbox API: contacts, conversations, their messages and tickets; reading, assigning, closing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.inbox import announcements, service, tickets
from messaging_whatsapp.inbox.models import TicketCloseReason, TicketStatus
from messaging_whatsapp.inbox.readmarks import NoReadMarks, ReadMarks
from messaging_whatsapp.inbox.schemas import (
    ContactItem,
    ContactUpdate,
    ConversationItem,
    MessageItem,
    TicketAssign,
    TicketClose,
    TicketItem,
)
from messaging_whatsapp.inbox.service import ConversationState, InboxTab
from messaging_whatsapp.inbox.visibility import Viewer
from messaging_whatsapp.outbox.service import PublishedEvent, relay_outbox, write_outbox
from messaging_whatsapp.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from messaging_whatsapp.tenancy.deps import InboxReader, InboxWriter

router = APIRouter(prefix="/api/v1", tags=["inbox"])
NO_READ_MARKS = NoReadMarks()
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/contacts")
async def list_contacts(
    session: DbSession,
    principal: InboxReader,
    phone: str | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[ContactItem]:
    """Contacts of the caller's tenant; `?phone=` finds one by phone in either Brazilian form, or by
    the BSUID or LID of a person known only by it."""
    viewer = Viewer.of(principal)
    return await service.list_contacts(
        session, principal.tenant_id, phone=phone, cursor=cursor, limit=limit, viewer=viewer
    )


@router.get("/contacts/{contact_id}")
async def get_contact(contact_id: str, session: DbSession, principal: InboxReader) -> ContactItem:
    """One contact (the lead panel): phone, name, opt-out state and date, first touch."""
    contact = await service.get_contact(session, principal.tenant_id, contact_id, Viewer.of(principal))
    return ContactItem.model_validate(contact)


@router.patch("/contacts/{contact_id}")
async def update_contact(
    contact_id: str, body: ContactUpdate, session: DbSession, principal: InboxWriter
) -> ContactItem:
    """Rename a contact (`name`; null or blank clears it); another tenant's, or for an agent one
    outside their conversations, is 404."""
    contact = await service.rename_contact(
        session, principal.tenant_id, contact_id, body.name, Viewer.of(principal)
    )
    return ContactItem.model_validate(contact)


@router.get("/conversations")
async def list_conversations(
    session: DbSession,
    principal: InboxReader,
    tab: InboxTab = InboxTab.ALL,
    status: ConversationState | None = None,
    instance_id: str | None = None,
    q: Annotated[str | None, Query(max_length=service.MAX_SEARCH)] = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[ConversationItem]:
    """Conversations of the caller's tenant, most recent activity first, each with its last message,
    unread count, current ticket and contact. `tab`: `mine` (open tickets assigned to the caller),
    `unassigned` (open tickets nobody took) or `all`; `status`: `open` (a ticket is open) or
    `resolved` (none is); `instance_id`: one number; `q`: a fragment of the contact's name or phone
    (any digits, either Brazilian form) or, from 3 characters, of a message's text."""
    narrowed = service.ConversationFilter(
        tab=tab, status=status, instance_id=instance_id, search=q, user_id=principal.user_id
    )
    return await service.list_conversations(
        session,
        principal.tenant_id,
        cursor=cursor,
        limit=limit,
        viewer=Viewer.of(principal),
        narrowed=narrowed,
    )


@router.get("/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: str,
    session: DbSession,
    principal: InboxReader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    order: service.MessageOrder = service.MessageOrder.ASC,
) -> Page[MessageItem]:
    """Messages of one conversation, oldest first (`order=desc`: newest first, the cursor going back
    in time), each with the message it `quoted` and its `reactions` (reactions are not listed as
    messages); a location message has its `location`."""
    viewer = Viewer.of(principal)
    return await service.list_messages(
        session, principal.tenant_id, conversation_id, cursor=cursor, limit=limit, viewer=viewer, order=order
    )


def read_marks(request: Request) -> ReadMarks:
    """Where this process sends read receipts (the app sets it up; none elsewhere)."""
    marks: ReadMarks = getattr(request.app.state, "read_marks", NO_READ_MARKS)
    return marks


@router.post("/conversations/{conversation_id}/read")
async def mark_conversation_read(
    conversation_id: str,
    session: DbSession,
    principal: InboxWriter,
    context: Context,
    marks: Annotated[ReadMarks, Depends(read_marks)],
) -> ConversationItem:
    """Mark the conversation read by the team (its unread count back to zero); the customer sees
    their messages read (blue ticks) where the provider can show it (Meta, Evolution, WuzAPI),
    sent in the background: a provider's trouble never fails this call."""
    item = await service.mark_conversation_read(
        session, principal.tenant_id, conversation_id, Viewer.of(principal)
    )
    marks.conversation_read(principal.tenant_id, conversation_id)
    read = announcements.read_event(principal.tenant_id, conversation_id, principal.user_id)
    await _announce(session, context, read)
    return item


@router.get("/conversations/{conversation_id}/tickets")
async def list_tickets(conversation_id: str, session: DbSession, principal: InboxReader) -> Page[TicketItem]:
    """The conversation's tickets (sessions of attendance), newest first."""
    found = await tickets.list_tickets(session, principal.tenant_id, conversation_id, Viewer.of(principal))
    return Page(items=[TicketItem.model_validate(ticket) for ticket in found])


@router.post("/tickets/{ticket_id}/close")
async def close_ticket(
    ticket_id: str,
    session: DbSession,
    principal: InboxWriter,
    context: Context,
    body: TicketClose | None = None,
) -> TicketItem:
    """Close an open ticket: done with (`manual`), won (`sale`) or lost (`lost`, with an `outcome`
    saying why); the customer's next message opens a new one. Announced as `whatsapp_ticket_closed`."""
    body = body or TicketClose()
    ticket, closed = await tickets.close_ticket(
        session,
        principal.tenant_id,
        ticket_id,
        TicketCloseReason(body.reason),
        utcnow(),
        Viewer.of(principal),
        outcome=body.outcome,
    )
    item = TicketItem.model_validate(ticket)
    await _announce(session, context, closed.event())
    return item


async def _announce(session: AsyncSession, context: EngineContext, event: PublishedEvent) -> None:
    """The event goes out only once the change is stored: written with it, relayed after commit."""
    records = await write_outbox(session, [event], context.names.events)
    await session.commit()
    await relay_outbox(context, records)


@router.get("/tickets")
async def list_queue(
    session: DbSession,
    principal: InboxReader,
    status: TicketStatus | None = None,
    assignee_id: str | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[TicketItem]:
    """The team's queue: the tenant's tickets, newest first; `?status=open` (with those in
    follow_up), `?status=follow_up`, `?status=closed`, `?assignee_id=` (`me`: the caller's own)."""
    if assignee_id == "me":
        if principal.user_id is None:
            raise InvalidInput("assignee_id=me needs a user's login, not an API key")
        assignee_id = principal.user_id
    found, next_cursor = await tickets.list_queue(
        session,
        principal.tenant_id,
        status=status,
        assignee_id=assignee_id,
        cursor=cursor,
        limit=limit,
        viewer=Viewer.of(principal),
    )
    return Page(items=[TicketItem.model_validate(ticket) for ticket in found], next_cursor=next_cursor)


@router.post("/tickets/{ticket_id}/assign")
async def assign_ticket(
    ticket_id: str, body: TicketAssign, session: DbSession, principal: InboxWriter, context: Context
) -> TicketItem:
    """Give an open ticket to one of the tenant's users (`user_id`), or to nobody (null); an agent
    may take an unassigned ticket or give back their own."""
    ticket = await tickets.assign_ticket(
        session, principal.tenant_id, ticket_id, body.user_id, utcnow(), Viewer.of(principal)
    )
    item = TicketItem.model_validate(ticket)
    await _announce(session, context, announcements.assigned_event(ticket))
    return item
