"""Every message joins its conversation's open ticket; a message that finds none opens one.

Set-based for a whole batch (the worker's inbound messages, a burst of sends, a campaign pass):
one SELECT of the open tickets, one INSERT of the missing ones (the partial unique index "one
open ticket per conversation" settles a race with another writer), one SELECT of what was
inserted. Safe to run again: a conversation with an open ticket keeps it.

Origins of a ticket an outbound opens (seed 003's Ticket.source): `campaign` (with the campaign's
name), `outbound` (an agent's or an API client's one-to-one message), `automation` (the engine's
own sends). Such a ticket is `open` like any other: the customer's reply joins it (bringing its ad
or UTM attribution, if any), and the tenant's inactivity rule closes it when nobody answers.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import custom_plans, generic_plans, insert_rows, new_id, one_of
from messaging_whatsapp.inbox.activity import sync_open_tickets
from messaging_whatsapp.inbox.attribution import UTM_KEYS
from messaging_whatsapp.inbox.models import (
    OPEN_TICKET_PREDICATE,
    OPEN_TICKET_STATUSES,
    Direction,
    SenderType,
    Ticket,
    TicketStatus,
    contacts_table,
    messages_table,
    tickets_table,
)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a session of attendance (or a contact) came from, when an outbound starts it."""

    source: str
    medium: str | None = None
    campaign: str | None = None

    def ticket_columns(self) -> dict[str, Any]:
        """The ticket's origin columns."""
        return {"source": self.source, "medium": self.medium, "campaign": self.campaign}

    def contact_columns(self) -> dict[str, Any]:
        """A contact's first-touch columns."""
        return {"first_source": self.source, "first_medium": self.medium, "first_campaign": self.campaign}


# A one-to-one send that starts a session, by who sent it.
OUTBOUND_ORIGINS = {
    SenderType.USER.value: Origin("outbound", "agent"),
    SenderType.SYSTEM.value: Origin("automation", "system"),
    SenderType.AI.value: Origin("automation", "ai"),
}


def campaign_origin(campaign_name: str) -> Origin:
    """The origin of a session (and a first touch) a campaign's message starts."""
    return Origin("campaign", "campaign", campaign_name[:200])


async def open_tickets(
    session: AsyncSession,
    openings: dict[str, dict[str, Any]],
    now: datetime,
    *,
    inbound: bool = False,
    opened: dict[str, str] | None = None,
) -> dict[str, str]:
    """conversation id -> its open ticket id, for every conversation of `openings`; where none is
    open, one is opened with that conversation's columns (`tenant_id`, origin, `opened_at`), and
    noted in `opened` (conversation id -> ticket id) when given.

    `inbound`: the openings are customers' messages, not stored yet; an open ticket that has no
    customer message yet (an outbound opened it) takes the ad and UTM attribution of this first one.
    """
    if not openings:
        return {}
    conversation_ids = sorted(openings)
    tickets = await open_ticket_ids(session, conversation_ids)
    if inbound:
        await _attribute_first_inbound(session, {tickets[cid]: openings[cid] for cid in tickets}, now)
    missing = [cid for cid in conversation_ids if cid not in tickets]
    if not missing:
        return tickets
    rows = [_ticket_row(cid, openings[cid], now) for cid in missing]
    insert, params = insert_rows(session, tickets_table, rows)
    # The predicate must be literal SQL: PostgreSQL cannot match a bound parameter to the
    # partial index "one open ticket per conversation".
    statement = insert.on_conflict_do_nothing(
        index_elements=["conversation_id"], index_where=text(OPEN_TICKET_PREDICATE)
    )
    async with generic_plans(session):
        await session.execute(statement, params)
    new = await open_ticket_ids(session, missing)
    tickets.update(new)
    await sync_open_tickets(session, missing)
    if opened is not None:
        opened.update(new)
    return tickets


async def open_ticket_ids(session: AsyncSession, conversation_ids: list[str]) -> dict[str, str]:
    """conversation id -> its open ticket id, for those of the conversations that have one."""
    query = select(Ticket.conversation_id, Ticket.id).where(
        one_of(session, Ticket.conversation_id, conversation_ids), Ticket.status.in_(OPEN_TICKET_STATUSES)
    )
    # Callers run this among bulk inserts under reusable plans, and tickets grow meanwhile.
    async with custom_plans(session):
        rows = await session.execute(query)
    return {row.conversation_id: row.id for row in rows}


# What a customer's first message may add to a ticket an outbound opened.
_FIRST_INBOUND_KEYS = ("ad_id", "click_id", *UTM_KEYS)


async def _attribute_first_inbound(
    session: AsyncSession, openings: dict[str, dict[str, Any]], now: datetime
) -> None:
    """Fill the ad and UTM fields of open tickets that have no customer message yet (one an agent
    or a campaign opened) from the customer's first message, keeping the ticket's origin. One
    statement per ticket, only for messages that bring an ad or a UTM link: rare."""
    m = messages_table.c
    for ticket_id, opening in openings.items():
        values = {key: opening[key] for key in _FIRST_INBOUND_KEYS if opening.get(key)}
        if not values:
            continue
        customer_wrote = select(m.id).where(m.ticket_id == ticket_id, m.direction == Direction.INBOUND.value)
        await session.execute(
            update(tickets_table)
            .where(
                tickets_table.c.id == ticket_id,
                tickets_table.c.ad_id.is_(None),
                tickets_table.c.utm_source.is_(None),
                tickets_table.c.utm_campaign.is_(None),
                ~customer_wrote.exists(),
            )
            .values(**values, updated_at=now)
        )


def _ticket_row(conversation_id: str, opening: dict[str, Any], now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": new_id(),
        "conversation_id": conversation_id,
        "status": TicketStatus.OPEN.value,
        "source": None,
        "medium": None,
        "campaign": None,
        "ad_id": None,
        "click_id": None,
        **{key: None for key in UTM_KEYS},
        "opened_at": now,
        "closed_at": None,
        "close_reason": None,
        "created_at": now,
        "updated_at": now,
    }
    row.update(opening)
    return row


async def record_first_touch(
    session: AsyncSession, tenant_id: str, contact_ids: Collection[str], origin: Origin, now: datetime
) -> None:
    """Give the contacts that have no first touch yet this one (one statement for the batch)."""
    if not contact_ids:
        return
    c = contacts_table.c
    await session.execute(
        update(contacts_table)
        .where(c.tenant_id == tenant_id, one_of(session, c.id, contact_ids), c.first_source.is_(None))
        .values(**origin.contact_columns(), updated_at=now)
    )
