"""Whose inbox a caller sees: everyone's (admins, supervisors), or an agent's own: the
conversations with one of their tickets, and the unassigned queue (open tickets nobody took).

Every inbox read and write of an agent goes through `visible_conversations`, so an agent never
reads, marks, closes or answers a conversation outside their part (404, as for another tenant's).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import one_of
from messaging_whatsapp.errors import Forbidden, NotFound
from messaging_whatsapp.inbox.models import OPEN_TICKET_STATUSES, Contact, Conversation, Ticket
from messaging_whatsapp.phones import InvalidPhone, phone_variants
from messaging_whatsapp.providers.outbound import identity_kind
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.models import UserRole
from messaging_whatsapp.tenancy.service import tenant_phone


@dataclass(frozen=True, slots=True)
class Viewer:
    """Everyone's inbox, or one agent's part of it (an agent API key has no tickets of its own)."""

    restricted: bool = False
    agent_id: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> Viewer:
        """An agent sees their part; admins and supervisors see everything."""
        if principal.role == UserRole.AGENT.value:
            return cls(restricted=True, agent_id=principal.user_id)
        return cls()

    def visible_conversations(self) -> ColumnElement[bool]:
        """A condition on Conversation: true for the conversations this viewer may work."""
        if not self.restricted:
            return true()
        mine = (
            exists().where(Ticket.conversation_id == Conversation.id, Ticket.assignee_id == self.agent_id)
            if self.agent_id
            else false()
        )
        # The conversation's row carries its open ticket and assignee (inbox/activity.py): the
        # queue needs no look at the tickets.
        queued = and_(Conversation.open_ticket_id.is_not(None), Conversation.assignee_id.is_(None))
        return or_(queued, mine)

    def visible_tickets(self) -> ColumnElement[bool]:
        """A condition on Ticket: the viewer's own tickets and the open ones nobody has taken."""
        if not self.restricted:
            return true()
        queued = and_(Ticket.assignee_id.is_(None), Ticket.status.in_(OPEN_TICKET_STATUSES))
        return or_(Ticket.assignee_id == self.agent_id, queued) if self.agent_id else queued

    def check_assignment(self, current: str | None, wanted: str | None) -> None:
        """An agent may take an unassigned ticket, or give back their own; the rest is a supervisor's."""
        if not self.restricted:
            return
        taking = current is None and wanted is not None and wanted == self.agent_id
        giving_back = current is not None and current == self.agent_id and wanted is None
        if not (taking or giving_back):
            raise Forbidden("an agent may take an unassigned ticket or give back their own")


EVERYONE = Viewer()


async def check_conversation(
    session: AsyncSession, tenant_id: str, conversation_id: str, viewer: Viewer
) -> None:
    """NotFound unless the conversation is the tenant's and the viewer may work it."""
    found = await session.scalar(
        select(Conversation.id).where(
            Conversation.id == conversation_id,
            Conversation.tenant_id == tenant_id,
            viewer.visible_conversations(),
        )
    )
    if found is None:
        raise NotFound(f"conversation {conversation_id} not found")


async def check_recipient(session: AsyncSession, tenant_id: str, phone: str, viewer: Viewer) -> None:
    """Forbidden unless the viewer may write to this person: an agent only in a conversation they
    work (a phone that is not valid is left for the send's own checks to refuse)."""
    if not viewer.restricted:
        return
    person: ColumnElement[bool]
    if identity_kind(phone) is not None:
        # A person known by a BSUID or a LID.
        person = or_(Contact.bsuid == phone.strip(), Contact.lid == phone.strip())
    else:
        try:
            person = Contact.phone.in_(phone_variants(await tenant_phone(session, tenant_id, phone)))
        except InvalidPhone:
            return
    found = await session.scalar(
        select(Conversation.id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(Contact.tenant_id == tenant_id, person, viewer.visible_conversations())
        .limit(1)
    )
    if found is None:
        raise Forbidden("an agent writes only in their conversations and the unassigned queue")


async def check_contact(session: AsyncSession, tenant_id: str, contact_id: str, viewer: Viewer) -> None:
    """NotFound unless the contact is the tenant's and, for an agent, in a conversation they work."""
    query = select(Contact.id).where(Contact.id == contact_id, Contact.tenant_id == tenant_id)
    if viewer.restricted:
        query = query.join(Conversation, Conversation.contact_id == Contact.id).where(
            viewer.visible_conversations()
        )
    if await session.scalar(query.limit(1)) is None:
        raise NotFound(f"contact {contact_id} not found")


async def visible_among(
    session: AsyncSession, tenant_id: str, conversation_ids: Collection[str], viewer: Viewer
) -> set[str]:
    """Which of these conversations are the tenant's and the viewer may work (one query)."""
    if not conversation_ids:
        return set()
    query = select(Conversation.id).where(
        Conversation.tenant_id == tenant_id,
        one_of(session, Conversation.id, sorted(conversation_ids)),
        viewer.visible_conversations(),
    )
    return set(await session.scalars(query))
