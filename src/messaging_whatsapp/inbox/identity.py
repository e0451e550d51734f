"""Who an inbound message is from: one contact per person, however the provider names them.

A person is named by their canonical phone, by Meta's business-scoped user id (BSUID), by a
gateway's LID, or by a phone and one of those. A message naming only an identity lands on the
contact of that identity (created without a phone). A payload naming two of them ties them
together: the identity is attached to the phone's contact, and a contact known only by that
identity is merged into it (its conversations, tickets and messages move, then it goes; the
consent ledger follows in consent/, called by the worker). A contact that has a phone of its
own is never merged into another phone's: it only gives the identity up, since one identity
names one person now.

Runs inside the worker's transaction, tenant by tenant; running it again for the same input
finds everything already tied (idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.batch import ContactMerge, InboundItem
from messaging_whatsapp.db import insert_for, new_id, one_of, utcnow
from messaging_whatsapp.inbox.activity import sync_open_tickets
from messaging_whatsapp.inbox.models import (
    OPEN_TICKET_STATUSES,
    Contact,
    Conversation,
    Message,
    Ticket,
    contacts_table,
)

IDENTITY_COLUMNS = ("phone", "bsuid", "lid")


@dataclass(frozen=True, slots=True)
class Person:
    """The names a payload gives one person (at least one is set)."""

    phone: str | None
    bsuid: str | None
    lid: str | None

    def names(self) -> list[tuple[str, str]]:
        """(column, value) of each name given."""
        return [
            (column, value) for column, value in zip(IDENTITY_COLUMNS, self.as_tuple(), strict=True) if value
        ]

    def as_tuple(self) -> tuple[str | None, str | None, str | None]:
        """(phone, bsuid, lid)."""
        return self.phone, self.bsuid, self.lid


def person_of(item: InboundItem) -> Person:
    """The item's sender: a LID is a JID ("…@lid"), a BSUID is not ("BR.1502576394655843")."""
    user_id = item.message.user_id
    lid = user_id if user_id and "@" in user_id else None
    bsuid = user_id if user_id and lid is None else None
    return Person(item.phone, bsuid, lid)


@dataclass
class _Stored:
    id: str
    phone: str | None
    bsuid: str | None
    lid: str | None
    created_at: datetime

    def get(self, column: str) -> str | None:
        """The stored value of one of IDENTITY_COLUMNS."""
        value: str | None = getattr(self, column)
        return value

    def as_person(self) -> Person:
        """The names stored."""
        return Person(self.phone, self.bsuid, self.lid)


async def resolve_contacts(session: AsyncSession, items: list[InboundItem]) -> list[ContactMerge]:
    """Fill in each item's contact: found by any name it gives, created where none is, identities
    attached and contacts merged as the payload ties them; returns the merges made."""
    merges: list[ContactMerge] = []
    by_tenant: dict[str, dict[tuple[str | None, str | None, str | None], list[InboundItem]]] = {}
    for item in items:
        by_tenant.setdefault(item.entry.tenant_id, {}).setdefault(person_of(item).as_tuple(), []).append(item)
    for tenant_id in sorted(by_tenant):
        people = by_tenant[tenant_id]
        resolver = _TenantContacts(session, tenant_id)
        await resolver.load([Person(*key) for key in people])
        # Sorted, so concurrent workers take the same rows in the same order.
        for key in sorted(people, key=lambda k: tuple(value or "" for value in k)):
            contact_id = await resolver.contact_for(Person(*key), merges)
            for item in people[key]:
                item.contact_id = contact_id
    return merges


class _TenantContacts:
    """One tenant's contacts named by a batch, kept current as they are tied together."""

    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self._session = session
        self._tenant_id = tenant_id
        self._index: dict[tuple[str, str], _Stored] = {}

    async def load(self, people: list[Person]) -> None:
        wanted: dict[str, set[str]] = {column: set() for column in IDENTITY_COLUMNS}
        for person in people:
            for column, value in person.names():
                wanted[column].add(value)
        c = Contact
        conditions = [
            one_of(self._session, getattr(c, column), values) for column, values in wanted.items() if values
        ]
        rows = await self._session.execute(
            select(c.id, c.phone, c.bsuid, c.lid, c.created_at).where(
                c.tenant_id == self._tenant_id, or_(*conditions)
            )
        )
        for row in rows:
            self._remember(_Stored(row.id, row.phone, row.bsuid, row.lid, row.created_at))

    def _remember(self, stored: _Stored) -> None:
        for column in IDENTITY_COLUMNS:
            value = stored.get(column)
            if value:
                self._index[(column, value)] = stored

    def _forget(self, stored: _Stored, column: str) -> None:
        value = stored.get(column)
        if value and self._index.get((column, value)) is stored:
            del self._index[(column, value)]

    async def contact_for(self, person: Person, merges: list[ContactMerge]) -> str:
        found: list[_Stored] = []
        for key in person.names():
            stored = self._index.get(key)
            if stored is not None and stored not in found:
                found.append(stored)
        if not found:
            return await self._create(person)
        survivor = _survivor(found, person)
        for other in found:
            if other is survivor:
                continue
            if other.phone is None:
                merges.append(await self._merge(survivor, other))
            else:
                # Another person's phone: they keep it, the identity is this person's now.
                await self._give_up(
                    other, [column for column, value in person.names() if other.get(column) == value]
                )
        await self._attach(survivor, person)
        return survivor.id

    async def _create(self, person: Person) -> str:
        now = utcnow()
        column, value = person.names()[0]
        row = {
            "id": new_id(),
            "tenant_id": self._tenant_id,
            "phone": person.phone,
            "bsuid": person.bsuid,
            "lid": person.lid,
            "opted_out": False,
            "messages_received": 0,
            "created_at": now,
            "updated_at": now,
        }
        statement = insert_for(self._session, contacts_table).values(row)
        await self._session.execute(statement.on_conflict_do_nothing(index_elements=["tenant_id", column]))
        # Another worker may have created it meanwhile: the stored row is the one.
        stored = (
            await self._session.execute(
                select(Contact.id, Contact.phone, Contact.bsuid, Contact.lid, Contact.created_at).where(
                    Contact.tenant_id == self._tenant_id, getattr(Contact, column) == value
                )
            )
        ).one()
        contact = _Stored(stored.id, stored.phone, stored.bsuid, stored.lid, stored.created_at)
        self._remember(contact)
        if contact.as_person() != person:
            await self._attach(contact, person)
        return contact.id

    async def _attach(self, contact: _Stored, person: Person) -> None:
        """Give the contact the names the payload ties to it (the newest identity wins)."""
        changes = {column: value for column, value in person.names() if contact.get(column) != value}
        if not changes:
            return
        for column in changes:
            self._forget(contact, column)
            setattr(contact, column, changes[column])
        await self._session.execute(
            update(Contact)
            .where(Contact.id == contact.id, Contact.tenant_id == self._tenant_id)
            .values(**changes, updated_at=utcnow())
        )
        self._remember(contact)

    async def _give_up(self, contact: _Stored, columns: list[str]) -> None:
        for column in columns:
            self._forget(contact, column)
            setattr(contact, column, None)
        await self._session.execute(
            update(Contact)
            .where(Contact.id == contact.id, Contact.tenant_id == self._tenant_id)
            .values(**dict.fromkeys(columns), updated_at=utcnow())
        )

    async def _merge(self, survivor: _Stored, loser: _Stored) -> ContactMerge:
        for column in IDENTITY_COLUMNS:
            self._forget(loser, column)
        merge = await merge_contacts(self._session, self._tenant_id, survivor.id, loser.id)
        for column in ("bsuid", "lid"):
            if survivor.get(column) is None and loser.get(column) is not None:
                setattr(survivor, column, loser.get(column))
        self._remember(survivor)
        return merge


def _survivor(found: list[_Stored], person: Person) -> _Stored:
    """The phone's contact (campaigns, imports and other systems know it), else the oldest."""
    if person.phone is not None:
        for stored in found:
            if stored.phone == person.phone:
                return stored
    return min(found, key=lambda stored: (stored.created_at, stored.id))


async def merge_contacts(
    session: AsyncSession, tenant_id: str, survivor_id: str, loser_id: str
) -> ContactMerge:
    """Move everything of the inbox that is the loser's to the survivor, in the caller's
    transaction, then delete the loser: conversations (joined per number), tickets (one open per
    conversation: the earlier one stays), messages, counters, first touch and opt-out state."""
    contacts = {
        row.id: row
        for row in (
            await session.execute(
                select(Contact).where(Contact.tenant_id == tenant_id, Contact.id.in_([survivor_id, loser_id]))
            )
        ).scalars()
    }
    survivor, loser = contacts[survivor_id], contacts[loser_id]
    await _merge_conversations(session, tenant_id, survivor_id, loser_id)
    await session.execute(
        update(Message)
        .where(Message.tenant_id == tenant_id, Message.contact_id == loser_id)
        .values(contact_id=survivor_id)
    )
    merged = ContactMerge(
        tenant_id=tenant_id,
        survivor_id=survivor_id,
        loser_id=loser_id,
        survivor_phone=survivor.phone,
        opted_out=loser.opted_out and not survivor.opted_out,
        opted_out_at=loser.opted_out_at,
    )
    values: dict[str, Any] = {
        "messages_received": survivor.messages_received + loser.messages_received,
        "last_interaction_at": _latest(survivor.last_interaction_at, loser.last_interaction_at),
        # A name the team gave either of them wins over a profile name.
        "name": loser.name
        if loser.named_by_team and not survivor.named_by_team
        else survivor.name or loser.name,
        "named_by_team": survivor.named_by_team or loser.named_by_team,
        "wa_id": survivor.wa_id or loser.wa_id,
        "bsuid": survivor.bsuid or loser.bsuid,
        "lid": survivor.lid or loser.lid,
        "updated_at": utcnow(),
    }
    if loser.opted_out and not survivor.opted_out:
        values.update(opted_out=True, opted_out_at=loser.opted_out_at)
    if loser.created_at < survivor.created_at and loser.first_source is not None:
        # The first touch is the older contact's.
        values.update(
            first_source=loser.first_source,
            first_campaign=loser.first_campaign,
            first_medium=loser.first_medium,
        )
    # The loser's identities go first: the survivor takes them over under the unique indexes.
    await session.execute(delete(Contact).where(Contact.id == loser_id, Contact.tenant_id == tenant_id))
    await session.execute(
        update(Contact).where(Contact.id == survivor_id, Contact.tenant_id == tenant_id).values(**values)
    )
    # Both rows changed under the ORM's feet (Core statements): keep no stale copy in the session.
    session.expunge(survivor)
    session.expunge(loser)
    return merged


def _latest(first: datetime | None, second: datetime | None) -> datetime | None:
    present = [value for value in (first, second) if value is not None]
    return max(present) if present else None


async def _merge_conversations(
    session: AsyncSession, tenant_id: str, survivor_id: str, loser_id: str
) -> None:
    rows = await session.execute(
        select(Conversation).where(
            Conversation.tenant_id == tenant_id, Conversation.contact_id.in_([survivor_id, loser_id])
        )
    )
    kept: dict[str, Conversation] = {}
    losing: list[Conversation] = []
    for conversation in rows.scalars():
        if conversation.contact_id == survivor_id:
            kept[conversation.instance_id] = conversation
        else:
            losing.append(conversation)
    for conversation in losing:
        target = kept.get(conversation.instance_id)
        if target is None:
            # The survivor never talked through this number: the conversation just changes hands.
            await session.execute(
                update(Conversation).where(Conversation.id == conversation.id).values(contact_id=survivor_id)
            )
            continue
        await _join_conversation(session, tenant_id, target, conversation)
    for conversation in [*kept.values(), *losing]:
        session.expunge(conversation)


async def _join_conversation(
    session: AsyncSession, tenant_id: str, target: Conversation, other: Conversation
) -> None:
    """Both talked through one number: one conversation, with both's tickets and messages."""
    open_tickets = (
        await session.execute(
            select(Ticket.id, Ticket.conversation_id, Ticket.opened_at).where(
                Ticket.tenant_id == tenant_id,
                Ticket.conversation_id.in_([target.id, other.id]),
                Ticket.status.in_(OPEN_TICKET_STATUSES),
            )
        )
    ).all()
    if len(open_tickets) == 2:
        # One open ticket per conversation: the earlier keeps its attribution, the later's messages join it.
        first, later = sorted(open_tickets, key=lambda t: (t.opened_at is None, t.opened_at or 0, t.id))
        await session.execute(
            update(Message)
            .where(Message.tenant_id == tenant_id, Message.ticket_id == later.id)
            .values(ticket_id=first.id)
        )
        await session.execute(delete(Ticket).where(Ticket.id == later.id))
    await session.execute(
        update(Ticket)
        .where(Ticket.tenant_id == tenant_id, Ticket.conversation_id == other.id)
        .values(conversation_id=target.id)
    )
    await session.execute(
        update(Message)
        .where(Message.tenant_id == tenant_id, Message.conversation_id == other.id)
        .values(conversation_id=target.id)
    )
    newer = (
        other if _latest(target.last_message_at, other.last_message_at) != target.last_message_at else target
    )
    await session.execute(
        update(Conversation)
        .where(Conversation.id == target.id)
        .values(
            unread_count=target.unread_count + other.unread_count,
            last_message_type=newer.last_message_type,
            last_message_direction=newer.last_message_direction,
            last_message_preview=newer.last_message_preview,
            last_message_at=_latest(target.last_message_at, other.last_message_at),
            last_inbound_at=_latest(target.last_inbound_at, other.last_inbound_at),
            status=other.status if other.unread_count else target.status,
            updated_at=utcnow(),
        )
    )
    await session.execute(delete(Conversation).where(Conversation.id == other.id))
    await sync_open_tickets(session, [target.id])
