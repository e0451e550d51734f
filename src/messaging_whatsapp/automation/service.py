"""Opt-outs: find who asked to stop, mark the contact, keep the record, say who newly opted out.

What an opt-out means to the campaigns that reach the person is the campaigns' to apply
(campaigns/progress.py); the worker calls both in one transaction (worker/optouts.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.automation.models import OptOut
from messaging_whatsapp.automation.optout import optout_keyword, optout_payload_keyword
from messaging_whatsapp.batch import InboundItem
from messaging_whatsapp.db import insert_for, new_id, one_of, utcnow
from messaging_whatsapp.inbox.models import Contact
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.phones import phone_variants


@dataclass(frozen=True, slots=True)
class OptOutCandidate:
    """A message that asked to stop, with who sent it."""

    tenant_id: str
    contact_id: str
    phone: str
    instance_id: str
    keyword: str | None
    text: str | None
    provider_message_id: str | None
    at: datetime
    # "keyword" when the person wrote it; "provider:<code>" when the provider refused to deliver
    # because the person blocked or unsubscribed (Meta 131050, Twilio 21610 / 63014).
    reason: str = "keyword"


def keyword_optouts(items: list[InboundItem]) -> list[OptOutCandidate]:
    """The stored customer messages that ask to stop (a keyword, or a quick reply's payload)."""
    candidates = []
    for item in items:
        if not item.from_customer:
            continue
        message = item.message
        keyword = optout_keyword(message.text) or optout_payload_keyword(message.button_payload)
        if keyword is None:
            continue
        candidates.append(
            OptOutCandidate(
                tenant_id=item.entry.tenant_id,
                contact_id=item.contact_id,
                phone=item.phone,
                instance_id=item.entry.instance_id,
                keyword=keyword,
                text=message.text or message.button_payload,
                provider_message_id=message.provider_message_id,
                at=message.timestamp,
            )
        )
    return candidates


async def apply_optouts(session: AsyncSession, candidates: list[OptOutCandidate]) -> list[OptOutCandidate]:
    """Opt the contacts out; returns the candidates that were not opted out before (once each)."""
    newly: list[OptOutCandidate] = []
    seen: set[str] = set()
    for candidate in sorted(candidates, key=lambda c: c.contact_id):
        if candidate.contact_id in seen:
            continue
        seen.add(candidate.contact_id)
        changed = await session.execute(
            update(Contact)
            .where(Contact.id == candidate.contact_id, Contact.opted_out.is_(False))
            .values(opted_out=True, opted_out_at=candidate.at, updated_at=utcnow())
            .returning(Contact.id)
        )
        await _record(session, candidate)
        if changed.first() is not None:
            newly.append(candidate)
    return newly


def optout_events(opted_out: list[OptOutCandidate]) -> list[PublishedEvent]:
    """`whatsapp_customer_opted_out` for each person who newly opted out."""
    return [
        PublishedEvent(
            type="whatsapp_customer_opted_out",
            tenant_id=candidate.tenant_id,
            payload={
                "phone": candidate.phone,
                "contact_id": candidate.contact_id,
                "instance_id": candidate.instance_id,
                "reason": candidate.reason,
                "keyword": candidate.keyword,
            },
        )
        for candidate in opted_out
    ]


async def _record(session: AsyncSession, candidate: OptOutCandidate) -> None:
    now = utcnow()
    statement = insert_for(session, OptOut.__table__).values(
        id=new_id(),
        tenant_id=candidate.tenant_id,
        phone=candidate.phone,
        instance_id=candidate.instance_id,
        keyword=candidate.keyword,
        original_text=candidate.text,
        provider_message_id=candidate.provider_message_id,
        reason=candidate.reason[:32],
        created_at=now,
        updated_at=now,
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=["tenant_id", "phone"]))


async def is_opted_out(session: AsyncSession, tenant_id: str, phone: str) -> bool:
    """Whether the person (canonical phone, either Brazilian form) opted out of this tenant."""
    variants = phone_variants(phone)
    record = exists().where(OptOut.tenant_id == tenant_id, OptOut.phone.in_(variants))
    contact = exists().where(
        Contact.tenant_id == tenant_id, Contact.phone.in_(variants), Contact.opted_out.is_(True)
    )
    return bool(await session.scalar(select(or_(record, contact))))


async def opted_out_phones(session: AsyncSession, tenant_id: str, phones: Collection[str]) -> set[str]:
    """Which of these canonical phones opted out of the tenant (record or contact, either Brazilian
    form); set-based, for lists of thousands."""
    by_variant = {variant: phone for phone in phones for variant in phone_variants(phone)}
    if not by_variant:
        return set()
    variants = list(by_variant)
    recorded = select(OptOut.phone).where(
        OptOut.tenant_id == tenant_id, one_of(session, OptOut.phone, variants)
    )
    flagged = select(Contact.phone).where(
        Contact.tenant_id == tenant_id, one_of(session, Contact.phone, variants), Contact.opted_out.is_(True)
    )
    stopped = await session.scalars(union_all(recorded, flagged))
    return {by_variant[variant] for variant in stopped}
