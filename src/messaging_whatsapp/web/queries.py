"""What the pages show, read through the inbox's own services and visibility rules.

The list and the chat use inbox/service.py (so pages and the JSON API agree on who sees what);
this module only adds what a screen needs beside each item: the last message, the current ticket
and its assignee, quoted messages and reactions, the number's provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns.models import CampaignMessage
from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.inbox import service
from messaging_whatsapp.inbox.models import Contact, Conversation, Message, Ticket, TicketStatus
from messaging_whatsapp.inbox.schemas import ConversationItem
from messaging_whatsapp.inbox.visibility import Viewer, check_conversation
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.tenancy.models import Tenant, User

CHAT_PAGE = 60


@dataclass(frozen=True, slots=True)
class Filters:
    """The list's tab, status, number and search, as the page's query string gives them."""

    tab: str = "all"
    status: str = "open"
    instance_id: str | None = None
    q: str | None = None

    @classmethod
    def read(cls, tab: str | None, status: str | None, instance_id: str | None, q: str | None) -> Filters:
        """Known values only: anything else falls back to the default."""
        return cls(
            tab=tab if tab in ("mine", "unassigned", "all") else "all",
            status=status if status in ("open", "resolved") else "open",
            instance_id=(instance_id or "").strip()[:36] or None,
            q=(q or "").strip()[:100] or None,
        )

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for links and the live client)."""
        values = {"tab": self.tab, "status": self.status}
        if self.instance_id:
            values["instance_id"] = self.instance_id
        if self.q:
            values["q"] = self.q
        return values


@dataclass(slots=True)
class ConversationRow:
    """A conversation as the list shows it."""

    item: ConversationItem
    last_message: Message | None
    ticket: Ticket | None
    assignee: str | None
    number: str | None


@dataclass(slots=True)
class ChatMessage:
    """A message with what the chat shows beside it: the message it quotes, its reactions."""

    message: Message
    quoted: Message | None = None
    reactions: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Chat:
    """One conversation opened: its contact, number, messages and what the composer may send."""

    conversation: Conversation
    contact: Contact
    instance: WhatsAppInstance
    messages: list[ChatMessage]
    older_cursor: str | None


async def tenant_timezone(session: AsyncSession, tenant_id: str) -> str:
    """The tenant's time zone (dates on the pages are in it)."""
    zone = await session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id))
    return zone or "America/Sao_Paulo"


async def conversation_rows(
    session: AsyncSession,
    tenant_id: str,
    viewer: Viewer,
    filters: Filters,
    cursor: str | None,
    limit: int,
) -> tuple[list[ConversationRow], str | None]:
    """A page of the list with what each item shows."""
    page = await service.list_conversations(
        session,
        tenant_id,
        status=None,
        instance_id=filters.instance_id,
        cursor=cursor,
        limit=limit,
        viewer=viewer,
    )
    return await _rows(session, page.items), page.next_cursor


async def conversation_row(
    session: AsyncSession, tenant_id: str, viewer: Viewer, conversation_id: str
) -> ConversationRow:
    """One conversation of the list (NotFound when the viewer may not see it)."""
    await check_conversation(session, tenant_id, conversation_id, viewer)
    row = (
        await session.execute(
            select(Conversation, Contact)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Conversation.id == conversation_id)
        )
    ).one()
    return (await _rows(session, [service.conversation_item(*row)]))[0]


async def _rows(session: AsyncSession, items: list[ConversationItem]) -> list[ConversationRow]:
    ids = [item.id for item in items]
    if not ids:
        return []
    last = await _last_messages(session, ids)
    tickets = await _current_tickets(session, ids)
    instance_ids = {item.instance_id for item in items}
    found = await session.execute(
        select(WhatsAppInstance.id, WhatsAppInstance.display_number).where(
            WhatsAppInstance.id.in_(instance_ids)
        )
    )
    numbers = {instance_id: number for instance_id, number in found.all()}
    rows = []
    for item in items:
        ticket, assignee = tickets.get(item.id, (None, None))
        rows.append(ConversationRow(item, last.get(item.id), ticket, assignee, numbers.get(item.instance_id)))
    return rows


async def _last_messages(session: AsyncSession, conversation_ids: list[str]) -> dict[str, Message]:
    rank = (
        func.row_number()
        .over(partition_by=Message.conversation_id, order_by=(Message.created_at.desc(), Message.id.desc()))
        .label("rank")
    )
    ranked = select(Message.id, rank).where(Message.conversation_id.in_(conversation_ids)).subquery()
    found = await session.scalars(
        select(Message).join(ranked, and_(ranked.c.id == Message.id, ranked.c.rank == 1))
    )
    return {message.conversation_id: message for message in found}


async def _current_tickets(
    session: AsyncSession, conversation_ids: list[str]
) -> dict[str, tuple[Ticket, str | None]]:
    rank = (
        func.row_number()
        .over(partition_by=Ticket.conversation_id, order_by=(Ticket.created_at.desc(), Ticket.id.desc()))
        .label("rank")
    )
    ranked = select(Ticket.id, rank).where(Ticket.conversation_id.in_(conversation_ids)).subquery()
    rows = await session.execute(
        select(Ticket, User.email)
        .join(ranked, and_(ranked.c.id == Ticket.id, ranked.c.rank == 1))
        .outerjoin(User, User.id == Ticket.assignee_id)
    )
    return {ticket.conversation_id: (ticket, email) for ticket, email in rows.all()}


async def chat(
    session: AsyncSession,
    tenant_id: str,
    viewer: Viewer,
    conversation_id: str,
    before: datetime | None = None,
) -> Chat:
    """A conversation's newest messages (before `before`, for scrolling back), oldest first."""
    await check_conversation(session, tenant_id, conversation_id, viewer)
    conversation, contact, instance = (
        await session.execute(
            select(Conversation, Contact, WhatsAppInstance)
            .join(Contact, Contact.id == Conversation.contact_id)
            .join(WhatsAppInstance, WhatsAppInstance.id == Conversation.instance_id)
            .where(Conversation.id == conversation_id)
        )
    ).one()
    query = select(Message).where(Message.tenant_id == tenant_id, Message.conversation_id == conversation_id)
    if before is not None:
        query = query.where(Message.created_at < before)
    newest = list(
        await session.scalars(
            query.order_by(Message.created_at.desc(), Message.id.desc()).limit(CHAT_PAGE + 1)
        )
    )
    older = newest[CHAT_PAGE - 1].created_at.isoformat() if len(newest) > CHAT_PAGE else None
    messages = await with_context(session, conversation_id, list(reversed(newest[:CHAT_PAGE])))
    return Chat(conversation, contact, instance, messages, older)


async def chat_message(session: AsyncSession, tenant_id: str, viewer: Viewer, message_id: str) -> ChatMessage:
    """One message of a conversation the viewer works (NotFound otherwise)."""
    message = await session.scalar(
        select(Message).where(Message.id == message_id, Message.tenant_id == tenant_id)
    )
    if message is None:
        raise NotFound(f"message {message_id} not found")
    await check_conversation(session, tenant_id, message.conversation_id, viewer)
    found = await with_context(session, message.conversation_id, [message])
    if not found:
        raise NotFound(f"message {message_id} is a reaction")
    return found[0]


async def with_context(
    session: AsyncSession, conversation_id: str, messages: list[Message]
) -> list[ChatMessage]:
    """The messages with the ones they quote and the reactions they got; reactions themselves are
    shown on their target, not as messages."""
    provider_ids = {m.provider_message_id for m in messages if m.provider_message_id}
    quoted_ids = {m.quoted_provider_message_id for m in messages if m.quoted_provider_message_id}
    quoted: dict[str, Message] = {}
    if quoted_ids:
        for found in await session.scalars(
            select(Message).where(
                Message.conversation_id == conversation_id, Message.provider_message_id.in_(quoted_ids)
            )
        ):
            quoted[found.provider_message_id or ""] = found
    reactions: dict[str, list[str]] = {}
    if provider_ids:
        for reaction in await session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.type == "reaction")
            .order_by(Message.created_at)
        ):
            target = (reaction.extra or {}).get("message_id")
            if target in provider_ids:
                # A later reaction of the same side replaces the earlier; an empty one removes it.
                reactions[target] = [reaction.content] if reaction.content else []
    return [
        ChatMessage(
            m,
            quoted.get(m.quoted_provider_message_id or ""),
            reactions.get(m.provider_message_id or "", []),
        )
        for m in messages
        if m.type != "reaction"
    ]


@dataclass(slots=True)
class Lead:
    """The lead panel: the contact, its tickets, and who a ticket may be given to."""

    conversation: Conversation
    contact: Contact
    tickets: list[Ticket]
    assignees: dict[str, str]
    users: list[User]


async def lead(session: AsyncSession, tenant_id: str, viewer: Viewer, conversation_id: str) -> Lead:
    """The conversation's contact and tickets (newest first) and the tenant's active users."""
    await check_conversation(session, tenant_id, conversation_id, viewer)
    conversation, contact = (
        await session.execute(
            select(Conversation, Contact)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Conversation.id == conversation_id)
        )
    ).one()
    tickets = list(
        await session.scalars(
            select(Ticket)
            .where(Ticket.conversation_id == conversation_id, Ticket.tenant_id == tenant_id)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(20)
        )
    )
    users = list(
        await session.scalars(
            select(User).where(User.tenant_id == tenant_id, User.is_active.is_(True)).order_by(User.email)
        )
    )
    return Lead(conversation, contact, tickets, {u.id: u.email for u in users}, users)


def open_ticket(tickets: list[Ticket]) -> Ticket | None:
    """The conversation's open ticket, if any."""
    return next((t for t in tickets if t.status == TicketStatus.OPEN.value), None)


async def templates(session: AsyncSession, tenant_id: str) -> list[dict[str, Any]]:
    """The approved templates the tenant already uses in its campaigns (name and language)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for template in await session.scalars(
        select(CampaignMessage.template).where(
            CampaignMessage.tenant_id == tenant_id, CampaignMessage.template.is_not(None)
        )
    ):
        if isinstance(template, dict) and isinstance(template.get("name"), str):
            language = str(template.get("language") or "pt_BR")
            found.setdefault((template["name"], language), {"name": template["name"], "language": language})
    return sorted(found.values(), key=lambda t: (t["name"], t["language"]))


async def instances(session: AsyncSession, tenant_id: str) -> list[WhatsAppInstance]:
    """The tenant's numbers, for the list's number filter."""
    return list(
        await session.scalars(
            select(WhatsAppInstance)
            .where(WhatsAppInstance.tenant_id == tenant_id)
            .order_by(WhatsAppInstance.display_number, WhatsAppInstance.name)
        )
    )


def matches(row: ConversationRow, filters: Filters, user_id: str | None) -> bool:
    """Whether a conversation belongs in the list under these filters (a live update may move it
    out: assigned to someone else, resolved)."""
    ticket = row.ticket
    resolved = ticket is not None and ticket.status != TicketStatus.OPEN.value
    if (filters.status == "resolved") != resolved:
        return False
    if filters.instance_id and row.item.instance_id != filters.instance_id:
        return False
    if filters.tab == "mine":
        return ticket is not None and ticket.assignee_id is not None and ticket.assignee_id == user_id
    if filters.tab == "unassigned":
        return ticket is not None and ticket.assignee_id is None and not resolved
    return True


async def contact_name(session: AsyncSession, contact_id: str) -> str | None:
    """A contact's name (the chat names the customer's messages by it)."""
    name: str | None = await session.scalar(select(Contact.name).where(Contact.id == contact_id))
    return name
