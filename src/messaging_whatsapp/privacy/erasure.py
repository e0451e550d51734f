"""Erasing a person at their request (LGPD): what the engine holds about them goes in one
transaction, and if they had opted out, an HMAC of their phone keeps them unreachable.

Deleted: the contact, their conversations, tickets and messages (texts and media references),
their rows in campaigns and their opt-out record. Blanked: the phone and the evidence of their
entries in the consent ledger, which keeps the rest. Campaign logs name only the contact's id,
which then points at nothing. The stream entries that mention the phone (raw requests waiting or
dead-lettered, events published) are deleted by the caller after the commit (the streams are not
in the transaction): `forget_in_streams`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Delete, Result, delete, exists, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.assistant.models import AiReply
from messaging_whatsapp.campaigns.contacts import forget_contact
from messaging_whatsapp.consent.consents import blank_consents
from messaging_whatsapp.consent.models import OptOut
from messaging_whatsapp.consent.suppression import suppress, suppressed_phones
from messaging_whatsapp.db import secure_deletes
from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.inbox.models import Contact, Conversation, Message, Ticket
from messaging_whatsapp.inbox.search import compact_search_indexes
from messaging_whatsapp.integrations.service import forget_deliveries
from messaging_whatsapp.outbox.service import PublishedEvent, forget_outbox
from messaging_whatsapp.phones import phone_variants
from messaging_whatsapp.sending.models import ScheduledMessage
from messaging_whatsapp.streams.base import StreamNames, Streams

SUPPRESSION_REASON = "erased_opted_out"


@dataclass
class Erasure:
    """What an erasure removed; `phone` only to find the raw requests after the commit (never
    shown or announced)."""

    phone: str = field(repr=False)
    contact_id: str | None
    messages: int = 0
    conversations: int = 0
    tickets: int = 0
    campaign_contacts: int = 0
    opt_outs: int = 0
    consents_blanked: int = 0
    # Whether the person stays on the suppression list (they had opted out).
    suppressed: bool = False
    raw_requests: int = 0
    events: int = 0

    def event(self, tenant_id: str, at: datetime) -> PublishedEvent:
        """`whatsapp_contact_erased`: which contact went (never the phone) and what went with it."""
        payload = {
            key: value
            for key, value in asdict(self).items()
            if key not in ("phone", "raw_requests", "events")
        }
        payload["erased_at"] = at.isoformat()
        return PublishedEvent(type="whatsapp_contact_erased", tenant_id=tenant_id, payload=payload)


async def find_contact(session: AsyncSession, tenant_id: str, contact_id: str) -> Contact:
    """The tenant's contact, or NotFound."""
    contact = await session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.tenant_id == tenant_id)
    )
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    return contact


async def erase_phone(session: AsyncSession, tenant_id: str, phone: str, now: datetime) -> Erasure:
    """Erase whatever the tenant holds about a canonical phone (either Brazilian form): the contact
    if there is one, else the opt-out record and the ledger's entries. Commit, then forget the
    raw requests."""
    variants = phone_variants(phone)
    contact = await session.scalar(
        select(Contact).where(Contact.tenant_id == tenant_id, Contact.phone.in_(variants)).limit(1)
    )
    return await _erase(session, tenant_id, phone, contact, now)


async def erase_contact(session: AsyncSession, tenant_id: str, contact_id: str, now: datetime) -> Erasure:
    """Erase one contact of the tenant (NotFound for another's). Commit, then forget the raw requests."""
    contact = await find_contact(session, tenant_id, contact_id)
    # A person known only by a BSUID or a LID is found in raw requests and events by it.
    key = contact.phone or contact.bsuid or contact.lid or contact.id
    return await _erase(session, tenant_id, key, contact, now)


async def forget_in_streams(streams: Streams, names: StreamNames, erasure: Erasure) -> None:
    """Delete the stream entries that mention the phone in either form (with or without `+`): the
    raw requests waiting or dead-lettered, and the events published about the person."""
    needles = _needles(erasure.phone)
    waiting = await streams.forget(names.inbound, needles)
    erasure.raw_requests = waiting + await streams.forget(names.dlq, needles)
    erasure.events += await streams.forget(names.events, needles)


def _needles(phone: str) -> set[str]:
    """The phone's digits in either Brazilian form, as raw requests and events carry them."""
    return {variant.lstrip("+") for variant in phone_variants(phone)}


async def _erase(
    session: AsyncSession, tenant_id: str, phone: str, contact: Contact | None, now: datetime
) -> Erasure:
    # SQLite zeroes what is deleted, so the person's messages leave the file too.
    async with secure_deletes(await session.connection()):
        erasure = await _erase_held(session, tenant_id, phone, contact, now)
        # The search index's older segments would still hold the deleted texts.
        await compact_search_indexes(session)
        return erasure


async def _erase_held(
    session: AsyncSession, tenant_id: str, phone: str, contact: Contact | None, now: datetime
) -> Erasure:
    variants = phone_variants(phone)
    opted_out = await _had_opted_out(session, tenant_id, phone, contact)
    erasure = Erasure(phone=phone, contact_id=contact.id if contact else None, suppressed=opted_out)
    if opted_out:
        await suppress(session, tenant_id, phone, SUPPRESSION_REASON)
    erasure.opt_outs = await _deleted(
        session, delete(OptOut).where(OptOut.tenant_id == tenant_id, OptOut.phone.in_(variants))
    )
    erasure.consents_blanked = await blank_consents(session, tenant_id, erasure.contact_id, variants)
    erasure.events = await forget_outbox(session, tenant_id, _needles(phone))
    # Events out over HTTP keep each event's body per subscription until it is delivered.
    erasure.events += await forget_deliveries(session, tenant_id, _needles(phone))
    # Messages scheduled to the person (counted with their messages), also to one not yet a contact.
    scheduled_to: ColumnElement[bool] = ScheduledMessage.to.in_(variants)
    if contact is not None:
        scheduled_to = or_(scheduled_to, ScheduledMessage.contact_id == contact.id)
    erasure.messages += await _deleted(
        session, delete(ScheduledMessage).where(ScheduledMessage.tenant_id == tenant_id, scheduled_to)
    )
    if contact is not None:
        await _delete_contact(session, tenant_id, contact, erasure, now)
    if erasure == Erasure(phone=phone, contact_id=None):
        raise NotFound("nothing is held about this phone")
    return erasure


async def _had_opted_out(session: AsyncSession, tenant_id: str, phone: str, contact: Contact | None) -> bool:
    if contact is not None and contact.opted_out:
        return True
    recorded = exists().where(OptOut.tenant_id == tenant_id, OptOut.phone.in_(phone_variants(phone)))
    if await session.scalar(select(recorded)):
        return True
    return bool(await suppressed_phones(session, tenant_id, [phone]))


async def _delete_contact(
    session: AsyncSession, tenant_id: str, contact: Contact, erasure: Erasure, now: datetime
) -> None:
    conversations = select(Conversation.id).where(
        Conversation.tenant_id == tenant_id, Conversation.contact_id == contact.id
    )
    erasure.campaign_contacts = await forget_contact(session, tenant_id, contact.id, now)
    # The assistant's drafts and answers quote the person (their tickets' replies go with them).
    await session.execute(
        delete(AiReply).where(AiReply.tenant_id == tenant_id, AiReply.conversation_id.in_(conversations))
    )
    erasure.messages += await _deleted(
        session, delete(Message).where(Message.tenant_id == tenant_id, Message.contact_id == contact.id)
    )
    erasure.tickets = await _deleted(
        session,
        delete(Ticket).where(Ticket.tenant_id == tenant_id, Ticket.conversation_id.in_(conversations)),
    )
    erasure.conversations = await _deleted(
        session,
        delete(Conversation).where(
            Conversation.tenant_id == tenant_id, Conversation.contact_id == contact.id
        ),
    )
    await session.delete(contact)
    await session.flush()


async def _deleted(session: AsyncSession, statement: Delete) -> int:
    """Run a DELETE; how many rows it removed."""
    result: Result[tuple[int]] = await session.execute(statement.returning(literal_column("1")))
    return len(result.all())
