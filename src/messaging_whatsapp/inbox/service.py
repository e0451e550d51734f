"""Reading the inbox: contacts, conversations and messages of one tenant, cursor-paginated."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import InvalidInput, NotFound
from messaging_whatsapp.inbox.chat import REACTION, with_quotes_and_reactions
from messaging_whatsapp.inbox.models import (
    TEAM_SENDERS,
    Contact,
    Conversation,
    Message,
    Ticket,
    TicketStatus,
)
from messaging_whatsapp.inbox.schemas import (
    ContactItem,
    ContactRef,
    ConversationItem,
    CurrentTicket,
    LastMessage,
    Location,
    MessageError,
    MessageItem,
)
from messaging_whatsapp.inbox.search import narrow_to_matches
from messaging_whatsapp.inbox.visibility import EVERYONE, Viewer, check_contact, check_conversation
from messaging_whatsapp.pagination import Page, decode_time_cursor, encode_cursor
from messaging_whatsapp.providers.outbound import identity_kind
from messaging_whatsapp.tenancy.models import User
from messaging_whatsapp.tenancy.service import tenant_phone


async def list_contacts(
    session: AsyncSession,
    tenant_id: str,
    *,
    phone: str | None,
    cursor: str | None,
    limit: int,
    viewer: Viewer = EVERYONE,
) -> Page[ContactItem]:
    """The tenant's contacts the viewer works with, oldest first; `phone` (typed: a national form is
    a number of the tenant's default country) matches either Brazilian form, or is the BSUID or
    LID of a person known by it."""
    query = select(Contact).where(Contact.tenant_id == tenant_id)
    if viewer.restricted:
        query = query.where(
            exists().where(Conversation.contact_id == Contact.id, viewer.visible_conversations())
        )
    if phone and identity_kind(phone) is not None:
        # A person known by a BSUID or a LID is found by it.
        query = query.where(or_(Contact.bsuid == phone.strip(), Contact.lid == phone.strip()))
    elif phone:
        query = query.where(Contact.phone == await tenant_phone(session, tenant_id, phone))
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(
            or_(Contact.created_at > at, and_(Contact.created_at == at, Contact.id > last_id))
        )
    rows = list(
        (await session.scalars(query.order_by(Contact.created_at, Contact.id).limit(limit + 1))).all()
    )
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return Page(items=[ContactItem.model_validate(row) for row in rows[:limit]], next_cursor=next_cursor)


async def get_contact(
    session: AsyncSession, tenant_id: str, contact_id: str, viewer: Viewer = EVERYONE
) -> Contact:
    """One of the tenant's contacts the viewer works with (404 otherwise, as for another tenant's)."""
    await check_contact(session, tenant_id, contact_id, viewer)
    contact = await session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.tenant_id == tenant_id)
    )
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    return contact


async def rename_contact(
    session: AsyncSession, tenant_id: str, contact_id: str, name: str | None, viewer: Viewer = EVERYONE
) -> Contact:
    """Give a contact the name the team knows them by; it stays when their WhatsApp profile name
    changes. Blank clears it, and the profile name fills it in again."""
    contact = await get_contact(session, tenant_id, contact_id, viewer)
    cleaned = " ".join((name or "").split())
    contact.name = cleaned or None
    contact.named_by_team = bool(cleaned)
    contact.updated_at = utcnow()
    await session.flush()
    return contact


class InboxTab(enum.StrEnum):
    """The list's tabs: the caller's open tickets, the open ones nobody took, or every conversation."""

    MINE = "mine"
    UNASSIGNED = "unassigned"
    ALL = "all"


class ConversationState(enum.StrEnum):
    """`open`: a ticket is open (someone should answer); `resolved`: none is (`closed` is read as
    resolved, as before tickets: no conversation is ever closed by itself)."""

    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"


MAX_SEARCH = 100


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    """What the list shows: a tab, a state, one number, a search (None: no narrowing)."""

    tab: InboxTab = InboxTab.ALL
    status: ConversationState | None = None
    instance_id: str | None = None
    search: str | None = None
    # The caller, for the Mine tab.
    user_id: str | None = None


async def list_conversations(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: str | None = None,
    instance_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
    viewer: Viewer = EVERYONE,
    narrowed: ConversationFilter | None = None,
) -> Page[ConversationItem]:
    """The tenant's conversations the viewer works, most recent activity first: one index walk in
    (last_message_at, id) order (the columns the writers keep on the row), narrowed by `narrowed`."""
    narrowed = narrowed or ConversationFilter(
        status=ConversationState(status) if status else None, instance_id=instance_id
    )
    c = Conversation
    query = select(c).where(c.tenant_id == tenant_id, *await _narrowing(session, tenant_id, narrowed))
    if not _within_reach(narrowed, viewer):
        query = query.where(viewer.visible_conversations())
    typed = (narrowed.search or "").strip()
    if typed:
        query = await narrow_to_matches(session, query, tenant_id, typed)
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(tuple_(c.last_message_at, c.id) < tuple_(at, last_id))
    rows = list(
        (await session.scalars(query.order_by(c.last_message_at.desc(), c.id.desc()).limit(limit + 1))).all()
    )
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = encode_cursor(last.last_message_at or last.created_at, last.id) if last else None
    return Page(items=await conversation_items(session, rows[:limit]), next_cursor=next_cursor)


async def _narrowing(session: AsyncSession, tenant_id: str, narrowed: ConversationFilter) -> list[Any]:
    c = Conversation
    conditions: list[Any] = []
    if narrowed.tab is InboxTab.MINE:
        if narrowed.user_id is None:
            raise InvalidInput("tab=mine needs a user's login, not an API key")
        conditions.append(c.assignee_id == narrowed.user_id)
    elif narrowed.tab is InboxTab.UNASSIGNED:
        conditions += [c.assignee_id.is_(None), c.open_ticket_id.is_not(None)]
    if narrowed.status is ConversationState.OPEN:
        conditions.append(c.open_ticket_id.is_not(None))
    elif narrowed.status is not None:
        conditions.append(c.open_ticket_id.is_(None))
    if narrowed.instance_id:
        conditions.append(c.instance_id == narrowed.instance_id)
    if len((narrowed.search or "").strip()) > MAX_SEARCH:
        raise InvalidInput(f"q is longer than {MAX_SEARCH} characters", code="invalid_search")
    return conditions


def _within_reach(narrowed: ConversationFilter, viewer: Viewer) -> bool:
    """Whether the tab alone keeps to what the viewer may see (so the list need not check each
    conversation's tickets): an agent's own open tickets, and the unassigned queue."""
    mine = narrowed.tab is InboxTab.MINE and narrowed.user_id == viewer.agent_id
    return not viewer.restricted or mine or narrowed.tab is InboxTab.UNASSIGNED


async def mark_conversation_read(
    session: AsyncSession, tenant_id: str, conversation_id: str, viewer: Viewer = EVERYONE
) -> ConversationItem:
    """An agent has read the conversation: its unread count goes back to zero."""
    changed = await session.scalar(
        update(Conversation)
        .where(
            Conversation.id == conversation_id,
            Conversation.tenant_id == tenant_id,
            viewer.visible_conversations(),
        )
        .values(unread_count=0)
        .returning(Conversation.id)
        .execution_options(synchronize_session=False)
    )
    if changed is None:
        raise NotFound(f"conversation {conversation_id} not found")
    conversation = (
        await session.scalars(
            select(Conversation)
            .where(Conversation.id == conversation_id)
            .execution_options(populate_existing=True)
        )
    ).one()
    return (await conversation_items(session, [conversation]))[0]


async def conversation_items(
    session: AsyncSession, conversations: list[Conversation]
) -> list[ConversationItem]:
    """The list's items: each conversation with its contact, its current ticket and that ticket's
    assignee (three small lookups for the page, by primary keys and the tickets' conversation)."""
    if not conversations:
        return []
    contacts = {
        contact.id: contact
        for contact in await session.scalars(
            select(Contact).where(Contact.id.in_({c.contact_id for c in conversations}))
        )
    }
    tickets = await _current_tickets(session, conversations)
    assignees = {ticket.assignee_id for ticket in tickets.values() if ticket.assignee_id}
    names: dict[str, str] = {}
    if assignees:
        names = {
            row.id: row.email
            for row in await session.execute(select(User.id, User.email).where(User.id.in_(assignees)))
        }
    items = []
    for conversation in conversations:
        ticket = tickets.get(conversation.id)
        if ticket is not None and ticket.assignee_id:
            ticket = ticket.model_copy(update={"assignee_name": names.get(ticket.assignee_id)})
        items.append(conversation_item(conversation, contacts[conversation.contact_id], ticket))
    return items


async def _current_tickets(
    session: AsyncSession, conversations: list[Conversation]
) -> dict[str, CurrentTicket]:
    """conversation id -> its open ticket (kept on the row), or else its latest closed one."""
    current = {
        c.id: CurrentTicket(id=c.open_ticket_id, status=TicketStatus.OPEN.value, assignee_id=c.assignee_id)
        for c in conversations
        if c.open_ticket_id
    }
    # The customer asked for a person (talk_to_human) and is still waiting: the list flags it.
    conversation_of = {ticket.id: cid for cid, ticket in current.items()}
    for ticket_id in await waiting_for_person(session, list(conversation_of)):
        cid = conversation_of[ticket_id]
        current[cid] = current[cid].model_copy(update={"wants_person": True})
    if current:
        # The row says which ticket is open, not whether a follow-up runs on it: a look by key.
        following = await session.scalars(
            select(Ticket.id).where(
                Ticket.id.in_([t.id for t in current.values()]),
                Ticket.status == TicketStatus.FOLLOW_UP.value,
            )
        )
        for ticket_id in set(following):
            for key, ticket in current.items():
                if ticket.id == ticket_id:
                    current[key] = ticket.model_copy(update={"status": TicketStatus.FOLLOW_UP.value})
    resolved = [c.id for c in conversations if not c.open_ticket_id]
    if resolved:
        rows = await session.execute(
            select(Ticket.conversation_id, Ticket.id, Ticket.status, Ticket.assignee_id)
            .where(Ticket.conversation_id.in_(resolved))
            .order_by(Ticket.created_at, Ticket.id)
        )
        for row in rows:  # the latest of each conversation is read last
            current[row.conversation_id] = CurrentTicket(
                id=row.id, status=row.status, assignee_id=row.assignee_id
            )
    return current


async def waiting_for_person(session: AsyncSession, ticket_ids: list[str]) -> set[str]:
    """Those of these open tickets whose customer asked for a person (talk_to_human) with no
    answer from the team since (a user's message, or one typed on the business phone)."""
    if not ticket_ids:
        return set()
    answered = (
        select(Message.id)
        .where(
            Message.ticket_id == Ticket.id,
            Message.sender_type.in_(TEAM_SENDERS),
            Message.created_at >= Ticket.wants_person_at,
        )
        .exists()
    )
    rows = await session.scalars(
        select(Ticket.id).where(
            Ticket.id.in_(ticket_ids),
            Ticket.status == TicketStatus.OPEN.value,
            Ticket.wants_person_at.is_not(None),
            ~answered,
        )
    )
    return set(rows)


def conversation_item(
    conversation: Conversation, contact: Contact, ticket: CurrentTicket | None = None
) -> ConversationItem:
    """The API's item for a conversation and its contact (and its current ticket, when known)."""
    last_message = None
    if conversation.last_message_type and conversation.last_message_direction:
        last_message = LastMessage(
            type=conversation.last_message_type,
            direction=conversation.last_message_direction,
            preview=conversation.last_message_preview,
        )
    return ConversationItem(
        id=conversation.id,
        status=conversation.status,
        unread_count=conversation.unread_count,
        last_message_at=conversation.last_message_at,
        last_inbound_at=conversation.last_inbound_at,
        instance_id=conversation.instance_id,
        contact=ContactRef.model_validate(contact),
        created_at=conversation.created_at,
        last_message=last_message,
        ticket=ticket,
    )


class MessageOrder(enum.StrEnum):
    """`asc`: oldest first (the default); `desc`: newest first, for a chat that opens at the bottom
    and pages back in time with the cursor."""

    ASC = "asc"
    DESC = "desc"


async def list_messages(
    session: AsyncSession,
    tenant_id: str,
    conversation_id: str,
    *,
    cursor: str | None,
    limit: int,
    viewer: Viewer = EVERYONE,
    order: MessageOrder = MessageOrder.ASC,
) -> Page[MessageItem]:
    """A conversation's messages in the order they were stored (oldest first, or newest first with
    `order=desc`), each with the message it quotes and the reactions to it; reactions are not
    listed as messages of their own."""
    await check_conversation(session, tenant_id, conversation_id, viewer)
    query = select(Message).where(
        Message.tenant_id == tenant_id, Message.conversation_id == conversation_id, Message.type != REACTION
    )
    key = tuple_(Message.created_at, Message.id)
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(
            key < tuple_(at, last_id) if order is MessageOrder.DESC else key > tuple_(at, last_id)
        )
    if order is MessageOrder.DESC:
        query = query.order_by(Message.created_at.desc(), Message.id.desc())
    else:
        query = query.order_by(Message.created_at, Message.id)
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    items = await with_quotes_and_reactions(
        session, conversation_id, [message_item(row) for row in rows[:limit]]
    )
    return Page(items=items, next_cursor=next_cursor)


def message_item(message: Message) -> MessageItem:
    """The API view of a message."""
    error = None
    if message.error_code or message.error_title:
        error = MessageError(code=message.error_code, title=message.error_title)
    return MessageItem(
        id=message.id,
        conversation_id=message.conversation_id,
        instance_id=message.instance_id,
        ticket_id=message.ticket_id,
        direction=message.direction,
        sender_type=message.sender_type,
        sender_user_id=message.sender_user_id,
        sender_name=message.sender_name,
        type=message.type,
        content=message.content,
        media=message.media,
        extra=message.extra,
        sources=[str(chunk_id) for chunk_id in (message.extra or {}).get("sources") or []],
        quoted_provider_message_id=message.quoted_provider_message_id,
        status=message.status,
        provider_message_id=message.provider_message_id,
        sent_at=message.sent_at,
        delivered_at=message.delivered_at,
        read_at=message.read_at,
        error=error,
        created_at=message.created_at,
        location=_location(message),
    )


def _location(message: Message) -> Location | None:
    """A location message's place, from what its provider sent (kept in `extra`)."""
    if message.type != "location" or not message.extra:
        return None
    return Location.model_validate(
        {key: message.extra.get(key) for key in ("latitude", "longitude", "name", "address")}
    )
