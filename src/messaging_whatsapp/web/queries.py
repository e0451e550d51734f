"""What the pages show, read through the inbox's own services and visibility rules.

The list and the chat use inbox/service.py (so pages and the JSON API agree on who sees what and
in which order); this module only adds what a screen needs beside them: each item's number, a
message's Idempotency-Key and status rank (the page reconciles its optimistic copy with them),
the lead panel's tickets and users, the templates the tenant uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.assistant import service as assistant
from messaging_whatsapp.assistant.models import OPEN_STATUSES, AiReply, ReplyStatus
from messaging_whatsapp.campaigns.models import CampaignMessage
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.inbox import service
from messaging_whatsapp.inbox.chat import REACTION, with_quotes_and_reactions
from messaging_whatsapp.inbox.models import (
    OPEN_TICKET_STATUSES,
    Contact,
    Conversation,
    Direction,
    Message,
    Ticket,
)
from messaging_whatsapp.inbox.schemas import ConversationItem, MessageItem
from messaging_whatsapp.inbox.service import ConversationFilter, ConversationState, InboxTab, MessageOrder
from messaging_whatsapp.inbox.visibility import Viewer, check_conversation
from messaging_whatsapp.instances.models import AiMode, WhatsAppInstance
from messaging_whatsapp.templates.models import MessageTemplateRow, TemplateStatus
from messaging_whatsapp.templates.service import scope_of
from messaging_whatsapp.tenancy.access import Principal
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
    """A conversation as the list shows it: the API's item (with its last message and current
    ticket), the number it is on, and who sent its last message when it was ours (sender_type)."""

    item: ConversationItem
    number: str | None
    last_sender: str | None = None


@dataclass(slots=True)
class ChatMessage:
    """A message as the API lists it (with what it quotes and its reactions), and what the page
    needs to reconcile it: the Idempotency-Key it was sent with and how far along its status is."""

    message: MessageItem
    client_key: str | None
    rank: int


@dataclass(slots=True)
class Chat:
    """One conversation opened: its contact, number, newest messages and the cursor to older ones."""

    conversation: Conversation
    contact: Contact
    instance: WhatsAppInstance
    messages: list[ChatMessage]
    older_cursor: str | None


async def tenant_timezone(session: AsyncSession, tenant_id: str) -> str:
    """The tenant's time zone (dates on the pages are in it)."""
    zone = await session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id))
    return zone or "America/Sao_Paulo"


def _narrowed(filters: Filters, user_id: str | None) -> ConversationFilter:
    return ConversationFilter(
        tab=InboxTab(filters.tab),
        status=ConversationState(filters.status),
        instance_id=filters.instance_id,
        search=filters.q,
        user_id=user_id,
    )


async def conversation_rows(
    session: AsyncSession,
    principal: Principal,
    filters: Filters,
    cursor: str | None,
    limit: int,
) -> tuple[list[ConversationRow], str | None]:
    """A page of the list, as GET /api/v1/conversations gives it."""
    page = await service.list_conversations(
        session,
        principal.tenant_id,
        cursor=cursor,
        limit=limit,
        viewer=Viewer.of(principal),
        narrowed=_narrowed(filters, principal.user_id),
    )
    return await _rows(session, page.items), page.next_cursor


async def conversation_row(
    session: AsyncSession, principal: Principal, conversation_id: str
) -> ConversationRow:
    """One conversation of the list (NotFound when the caller may not see it)."""
    await check_conversation(session, principal.tenant_id, conversation_id, Viewer.of(principal))
    conversation = await session.get_one(Conversation, conversation_id)
    return (await _rows(session, await service.conversation_items(session, [conversation])))[0]


async def _rows(session: AsyncSession, items: list[ConversationItem]) -> list[ConversationRow]:
    if not items:
        return []
    found = await session.execute(
        select(WhatsAppInstance.id, WhatsAppInstance.display_number).where(
            WhatsAppInstance.id.in_({item.instance_id for item in items})
        )
    )
    numbers = {instance_id: number for instance_id, number in found.all()}
    senders = await _last_senders(session, items)
    return [ConversationRow(item, numbers.get(item.instance_id), senders.get(item.id)) for item in items]


async def _last_senders(session: AsyncSession, items: list[ConversationItem]) -> dict[str, str]:
    """Who sent the last message of the conversations whose last message is ours (the list says
    "AI:" rather than "You:" for the assistant's); the conversation row keeps only its direction."""
    ours = [
        item.id
        for item in items
        if item.last_message and item.last_message.direction == Direction.OUTBOUND.value
    ]
    if not ours:
        return {}
    newest = (
        select(Message.sender_type)
        .where(
            Message.conversation_id == Conversation.id,
            Message.direction == Direction.OUTBOUND.value,
            Message.type != REACTION,
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    found = await session.execute(select(Conversation.id, newest).where(Conversation.id.in_(ours)))
    return {conversation_id: sender for conversation_id, sender in found.all() if sender}


def matches(row: ConversationRow, filters: Filters, user_id: str | None) -> bool:
    """Whether a conversation belongs in the list under these filters (a live update may move it
    out: assigned to someone else, resolved); the list's own rules, inbox/service.py's."""
    ticket = row.item.ticket
    is_open = ticket is not None and ticket.status in OPEN_TICKET_STATUSES
    if (filters.status == "open") != is_open:
        return False
    if filters.instance_id and row.item.instance_id != filters.instance_id:
        return False
    if filters.tab == "mine":
        return is_open and ticket is not None and ticket.assignee_id == user_id
    if filters.tab == "unassigned":
        return is_open and ticket is not None and ticket.assignee_id is None
    return True


async def chat(
    session: AsyncSession, principal: Principal, conversation_id: str, cursor: str | None = None
) -> Chat:
    """A conversation's newest messages (or the ones before `cursor`), oldest first on the page."""
    page = await service.list_messages(
        session,
        principal.tenant_id,
        conversation_id,
        cursor=cursor,
        limit=CHAT_PAGE,
        viewer=Viewer.of(principal),
        order=MessageOrder.DESC,
    )
    conversation, contact, instance = (
        await session.execute(
            select(Conversation, Contact, WhatsAppInstance)
            .join(Contact, Contact.id == Conversation.contact_id)
            .join(WhatsAppInstance, WhatsAppInstance.id == Conversation.instance_id)
            .where(Conversation.id == conversation_id, Conversation.tenant_id == principal.tenant_id)
        )
    ).one()
    messages = await _reconcilable(session, list(reversed(page.items)))
    return Chat(conversation, contact, instance, messages, page.next_cursor)


async def chat_message(session: AsyncSession, principal: Principal, message_id: str) -> ChatMessage:
    """One message of a conversation the caller works (NotFound otherwise, and for a reaction,
    which the chat shows on its target)."""
    message = await session.scalar(
        select(Message).where(Message.id == message_id, Message.tenant_id == principal.tenant_id)
    )
    if message is None or message.type == REACTION:
        raise NotFound(f"message {message_id} not found")
    await check_conversation(session, principal.tenant_id, message.conversation_id, Viewer.of(principal))
    items = await with_quotes_and_reactions(session, message.conversation_id, [service.message_item(message)])
    return ChatMessage(items[0], message.idempotency_key, message.status_rank)


async def _reconcilable(session: AsyncSession, items: list[MessageItem]) -> list[ChatMessage]:
    found = await session.execute(
        select(Message.id, Message.idempotency_key, Message.status_rank).where(
            Message.id.in_([item.id for item in items])
        )
    )
    extra = {row.id: (row.idempotency_key, row.status_rank) for row in found}
    return [ChatMessage(item, *extra.get(item.id, (None, 0))) for item in items]


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
            .where(Conversation.id == conversation_id, Conversation.tenant_id == tenant_id)
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
    return next((t for t in tickets if t.status in OPEN_TICKET_STATUSES), None)


async def templates(
    session: AsyncSession, tenant_id: str, instance: WhatsAppInstance | None = None
) -> list[dict[str, Any]]:
    """The templates to offer (name and language): the number's approved stored templates, and
    the ones the tenant already uses in its campaigns."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    scope = scope_of(instance) if instance is not None else None
    if scope is not None:
        stored = await session.execute(
            select(MessageTemplateRow.name, MessageTemplateRow.language).where(
                MessageTemplateRow.tenant_id == tenant_id,
                MessageTemplateRow.scope == scope,
                MessageTemplateRow.status == TemplateStatus.APPROVED.value,
            )
        )
        for name, language in stored:
            found[(name, language)] = {"name": name, "language": language}
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


async def contact_name(session: AsyncSession, tenant_id: str, conversation_id: str) -> str | None:
    """The name of a conversation's contact (the chat names the customer's messages by it)."""
    name: str | None = await session.scalar(
        select(Contact.name)
        .join(Conversation, Conversation.contact_id == Contact.id)
        .where(Conversation.id == conversation_id, Conversation.tenant_id == tenant_id)
    )
    return name


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What the assistant has for the agent above the composer (drafts mode): its draft, the
    handoff it made instead when the knowledge base had no answer (until someone writes), or that
    it is still working on the customer's latest words."""

    draft: AiReply | None = None
    handoff: AiReply | None = None
    working: bool = False


# A reply still open after this long is stuck (its runner is down): no "writing" note for it.
WORKING_SHOWN = timedelta(minutes=2)


async def suggestion(session: AsyncSession, tenant_id: str, conversation: Conversation) -> Suggestion:
    """The conversation's suggestion now (the caller checked that the viewer may see it)."""
    draft = await assistant.current_draft(session, tenant_id, conversation.id)
    if draft is not None:
        return Suggestion(draft=draft)
    latest = next(iter(await assistant.conversation_replies(session, tenant_id, conversation.id, 1)), None)
    if latest is None or latest.mode != AiMode.DRAFTS.value:
        return Suggestion()
    if latest.status in OPEN_STATUSES:
        return Suggestion(working=utcnow() - latest.created_at < WORKING_SHOWN)
    waiting = conversation.last_message_direction == Direction.INBOUND.value
    handed_off = latest.status == ReplyStatus.HANDED_OFF.value
    return Suggestion(handoff=latest if handed_off and waiting else None)
