"""Claiming queued messages for sending, never twice, and taking the ones due for another try.

A message is claimed in the database (pending -> claimed, committed) before its request leaves,
so a redelivered stream entry or a second sender finds nothing to claim. Retries that come due,
and messages whose stream entry was lost, are taken again by the senders' sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import one_of
from messaging_whatsapp.inbox.models import Contact, Message, SendState, messages_table
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.providers.base import REACHES, ProviderName
from messaging_whatsapp.providers.outbound import RecipientKind
from messaging_whatsapp.sending.parts import release_followers
from messaging_whatsapp.sending.queue import REOFFER_AFTER

# Messages a sweep offers again at most.
DUE_PER_SWEEP = 1000


@dataclass(frozen=True, slots=True)
class Claim:
    """A message this sender won, with the recipient's phone and the number it goes through."""

    message: Message
    # None for a person known only by an identity (`identity`: a BSUID or a LID JID).
    phone: str | None
    instance: WhatsAppInstance
    identity: str | None = None
    # The contact's own opt-out flag (what stops a person who has no phone to look up).
    opted_out: bool = False

    @property
    def to(self) -> str:
        """Where the message goes: the phone when there is one, else the identity."""
        to = self.phone or self.identity
        if to is None:
            raise ValueError(f"message {self.message.id}: its contact has neither phone nor identity")
        return to


async def claim_messages(session: AsyncSession, message_ids: list[str], now: datetime) -> list[Claim]:
    """pending -> claimed for the messages still pending; the caller commits before any request
    leaves. The claims are detached from the session, to be used after it closes."""
    if not message_ids:
        return []
    m = messages_table.c
    won = (
        (
            await session.execute(
                update(messages_table)
                .where(one_of(session, m.id, message_ids), m.send_state == SendState.PENDING.value)
                .values(
                    send_state=SendState.CLAIMED.value,
                    claimed_at=now,
                    send_attempts=m.send_attempts + 1,
                    updated_at=now,
                )
                .returning(m.id)
            )
        )
        .scalars()
        .all()
    )
    if not won:
        return []
    rows = await session.execute(
        select(Message, Contact.phone, WhatsAppInstance, Contact.bsuid, Contact.lid, Contact.opted_out)
        .join(Contact, Contact.id == Message.contact_id)
        .join(WhatsAppInstance, WhatsAppInstance.id == Message.instance_id)
        .where(one_of(session, Message.id, won))
    )
    claims = [
        Claim(message, phone, instance, _identity(instance, bsuid, lid), opted_out)
        for message, phone, instance, bsuid, lid, opted_out in rows
    ]
    session.expunge_all()
    return claims


def _identity(instance: WhatsAppInstance, bsuid: str | None, lid: str | None) -> str | None:
    """The identity this number can send to (Meta: the BSUID; the gateways: the LID)."""
    provider = ProviderName(instance.provider)
    for kind, value in ((RecipientKind.BSUID, bsuid), (RecipientKind.LID, lid)):
        if value and provider in REACHES[kind]:
            return value
    return None


async def take_due(
    session: AsyncSession, now: datetime
) -> tuple[list[tuple[str, str]], list[PublishedEvent]]:
    """The (message id, tenant id) of messages due for another try, marked pending and not due again
    for REOFFER_AFTER; the caller commits, then offers them. A long text's held parts whose part
    before went out are among them, and those whose part before failed end failed: the events
    to publish of those (sending/parts.py)."""
    published = await release_followers(session, now)
    m = messages_table.c
    due = (
        await session.execute(
            select(m.id, m.tenant_id, m.send_state)
            .where(
                m.send_state.in_([SendState.PENDING.value, SendState.WAITING.value]),
                m.next_attempt_at <= now,
            )
            .order_by(m.next_attempt_at)
            .limit(DUE_PER_SWEEP)
        )
    ).all()
    if not due:
        return [], published
    await session.execute(
        update(messages_table)
        .where(
            one_of(session, m.id, [row.id for row in due]),
            m.send_state.in_([SendState.PENDING.value, SendState.WAITING.value]),
        )
        .values(send_state=SendState.PENDING.value, next_attempt_at=now + REOFFER_AFTER)
    )
    return [(row.id, row.tenant_id) for row in due], published
