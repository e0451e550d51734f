"""Tickets (seed 003): the team's queue, who attends each, and how a ticket ends.

A ticket is one session of attendance inside a conversation. The worker opens one for a
customer's message when the conversation has none open (and so does an outbound that starts a
session: inbox/ticketing.py); it ends by inactivity (the scheduler), an agent's close (`manual`),
a sale, a lost sale (with its outcome: seed 003's lost_price, lost_timing...) or an exhausted
follow-up, and the customer's next message opens a new one.
Inactivity is time since the conversation's last message either way, so an agent's reply keeps a
ticket open too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.errors import Conflict, InvalidInput, NotFound
from messaging_whatsapp.inbox.activity import sync_open_tickets
from messaging_whatsapp.inbox.models import (
    OPEN_TICKET_STATUSES,
    Conversation,
    Ticket,
    TicketCloseReason,
    TicketStatus,
)
from messaging_whatsapp.inbox.visibility import EVERYONE, Viewer, check_conversation
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.pagination import decode_time_cursor, encode_cursor
from messaging_whatsapp.tenancy.models import Tenant, User


@dataclass(frozen=True, slots=True)
class ClosedTicket:
    """A ticket just closed, for the event that announces it."""

    id: str
    tenant_id: str
    conversation_id: str
    close_reason: str
    closed_at: datetime
    outcome: str | None = None

    def event(self) -> PublishedEvent:
        """`whatsapp_ticket_closed` for other systems."""
        payload = {
            "ticket_id": self.id,
            "conversation_id": self.conversation_id,
            "close_reason": self.close_reason,
            "outcome": self.outcome,
            "closed_at": self.closed_at.isoformat(),
        }
        return PublishedEvent("whatsapp_ticket_closed", self.tenant_id, payload)


async def close_inactive_tickets(session: AsyncSession, now: datetime) -> list[ClosedTicket]:
    """Close every open ticket whose conversation has had no message for its tenant's
    `ticket_inactivity_minutes` (tenants with 0 keep their tickets open)."""
    settings = await session.scalars(
        select(Tenant.ticket_inactivity_minutes).where(Tenant.ticket_inactivity_minutes > 0).distinct()
    )
    closed: list[ClosedTicket] = []
    # One statement per distinct setting, not per tenant: tenants share a few values.
    for minutes in list(settings):
        closed += await _close_idle_since(session, minutes, now - timedelta(minutes=minutes), now)
    return closed


async def _close_idle_since(
    session: AsyncSession, minutes: int, cutoff: datetime, now: datetime
) -> list[ClosedTicket]:
    reason = TicketCloseReason.INACTIVITY.value
    idle = select(Conversation.id).where(
        Conversation.id == Ticket.conversation_id, Conversation.last_message_at < cutoff
    )
    rows = await session.execute(
        update(Ticket)
        .where(
            # Not follow_up: a ticket with a follow-up running is left to it (it closes the
            # ticket itself when its last step passes without a reply).
            Ticket.status == TicketStatus.OPEN.value,
            Ticket.tenant_id.in_(select(Tenant.id).where(Tenant.ticket_inactivity_minutes == minutes)),
            idle.exists(),
        )
        .values(status=TicketStatus.CLOSED.value, closed_at=now, close_reason=reason, updated_at=now)
        .returning(Ticket.id, Ticket.tenant_id, Ticket.conversation_id)
        .execution_options(synchronize_session=False)
    )
    closed = [ClosedTicket(row.id, row.tenant_id, row.conversation_id, reason, now) for row in rows]
    await sync_open_tickets(session, {ticket.conversation_id for ticket in closed})
    return closed


async def list_tickets(
    session: AsyncSession, tenant_id: str, conversation_id: str, viewer: Viewer = EVERYONE
) -> list[Ticket]:
    """A conversation's tickets, newest first (one per session of attendance: a few per person)."""
    await check_conversation(session, tenant_id, conversation_id, viewer)
    query = (
        select(Ticket)
        .where(Ticket.tenant_id == tenant_id, Ticket.conversation_id == conversation_id)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
    )
    return list((await session.scalars(query)).all())


# The reasons an agent may close a ticket with (the others are the engine's own).
AGENT_CLOSE_REASONS = (TicketCloseReason.MANUAL, TicketCloseReason.SALE, TicketCloseReason.LOST)
MAX_OUTCOME = 500


def checked_outcome(reason: TicketCloseReason, outcome: str | None) -> str | None:
    """The close's outcome text, trimmed (None when blank); a lost sale must say why (422
    outcome_required), and only an agent's reasons are accepted (422 invalid_close_reason)."""
    if reason not in AGENT_CLOSE_REASONS:
        allowed = ", ".join(r.value for r in AGENT_CLOSE_REASONS)
        raise InvalidInput(f"reason must be one of {allowed}", code="invalid_close_reason")
    text = (outcome or "").strip()
    if len(text) > MAX_OUTCOME:
        raise InvalidInput(f"outcome is longer than {MAX_OUTCOME} characters", code="invalid_outcome")
    if reason is TicketCloseReason.LOST and not text:
        raise InvalidInput(
            "a lost ticket needs an outcome saying why (e.g. price, timing, competitor, no reply)",
            code="outcome_required",
        )
    return text or None


async def close_ticket(
    session: AsyncSession,
    tenant_id: str,
    ticket_id: str,
    reason: TicketCloseReason,
    now: datetime,
    viewer: Viewer = EVERYONE,
    outcome: str | None = None,
) -> tuple[Ticket, ClosedTicket]:
    """An agent closes an open ticket: done with it (`manual`), won (`sale`) or lost (`lost`, with
    the outcome saying why); 409 ticket_closed when it already is."""
    outcome = checked_outcome(reason, outcome)
    ticket = await _visible_ticket(session, tenant_id, ticket_id, viewer)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found")
    # Conditional, so a scheduler closing it at the same moment leaves one close, not two.
    closed = await session.scalar(
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.status.in_(OPEN_TICKET_STATUSES))
        .values(
            status=TicketStatus.CLOSED.value,
            closed_at=now,
            close_reason=reason.value,
            outcome=outcome,
            # An agent who closes a ticket nobody had taken attended it: it becomes theirs.
            assignee_id=func.coalesce(Ticket.assignee_id, viewer.agent_id),
            updated_at=now,
        )
        .returning(Ticket.id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(ticket)
    if closed is None:
        raise _already_closed(ticket)
    await sync_open_tickets(session, [ticket.conversation_id])
    return ticket, ClosedTicket(ticket.id, tenant_id, ticket.conversation_id, reason.value, now, outcome)


async def list_queue(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: TicketStatus | None,
    assignee_id: str | None,
    cursor: str | None,
    limit: int,
    viewer: Viewer = EVERYONE,
) -> tuple[list[Ticket], str | None]:
    """The tenant's tickets the viewer works, newest first, by status and assignee; with the next
    page's cursor."""
    query = select(Ticket).where(Ticket.tenant_id == tenant_id, viewer.visible_tickets())
    if status is TicketStatus.OPEN:
        # A ticket with a follow-up running is open too (`?status=follow_up` narrows to those).
        query = query.where(Ticket.status.in_(OPEN_TICKET_STATUSES))
    elif status is not None:
        query = query.where(Ticket.status == status.value)
    if assignee_id is not None:
        query = query.where(Ticket.assignee_id == assignee_id)
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(or_(Ticket.created_at < at, and_(Ticket.created_at == at, Ticket.id < last_id)))
    query = query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def assign_ticket(
    session: AsyncSession,
    tenant_id: str,
    ticket_id: str,
    user_id: str | None,
    now: datetime,
    viewer: Viewer = EVERYONE,
) -> Ticket:
    """Give an open ticket to one of the tenant's active users, or to nobody (None); an agent may
    only take an unassigned one or give back their own."""
    ticket = await _visible_ticket(session, tenant_id, ticket_id, viewer)
    if ticket.status not in OPEN_TICKET_STATUSES:
        raise _already_closed(ticket)
    viewer.check_assignment(ticket.assignee_id, user_id)
    if user_id is not None:
        user = await session.scalar(
            select(User.id).where(User.id == user_id, User.tenant_id == tenant_id, User.is_active.is_(True))
        )
        if user is None:
            raise NotFound(f"user {user_id} not found")
    ticket.assignee_id = user_id
    ticket.updated_at = now
    await session.flush()
    await sync_open_tickets(session, [ticket.conversation_id])
    return ticket


async def _visible_ticket(session: AsyncSession, tenant_id: str, ticket_id: str, viewer: Viewer) -> Ticket:
    ticket = await session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, Ticket.tenant_id == tenant_id, viewer.visible_tickets())
    )
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found")
    return ticket


def _already_closed(ticket: Ticket) -> Conflict:
    return Conflict(
        f"ticket {ticket.id} is already closed ({ticket.close_reason}); the customer's next message "
        "opens a new one",
        code="ticket_closed",
        details={"status": ticket.status, "close_reason": ticket.close_reason},
    )


async def flag_wants_person(
    session: AsyncSession, tenant_id: str, ticket_id: str, conversation_id: str, now: datetime
) -> list[PublishedEvent]:
    """The customer is to be served by a person: flag the open ticket and put it back in the
    unassigned queue (once: a conditional UPDATE); the `whatsapp_ticket_assigned` to publish."""
    changed = await session.scalar(
        update(Ticket)
        .where(
            Ticket.id == ticket_id,
            Ticket.tenant_id == tenant_id,
            Ticket.status == TicketStatus.OPEN.value,
            Ticket.wants_person_at.is_(None),
        )
        .values(wants_person_at=now, assignee_id=None, updated_at=now)
        .returning(Ticket.id)
        .execution_options(synchronize_session=False)
    )
    if changed is None:
        return []
    await sync_open_tickets(session, [conversation_id])
    payload = {
        "ticket_id": ticket_id,
        "conversation_id": conversation_id,
        "status": TicketStatus.OPEN.value,
        "assignee_id": None,
        "wants_person": True,
    }
    return [PublishedEvent("whatsapp_ticket_assigned", tenant_id, payload)]
