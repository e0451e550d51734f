"""Opt-outs: find who asked to stop, mark the contact, keep the record and the ledger's entry,
say who newly opted out; and who may not be messaged.

What an opt-out means to the campaigns that reach the person is the campaigns' to apply
(campaigns/progress.py); privacy/optouts.py calls both in one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.batch import ContactMerge, InboundItem
from messaging_whatsapp.consent.consents import ConsentEvent, record_consents
from messaging_whatsapp.consent.models import Consent, ConsentSource, ConsentStatus, OptOut
from messaging_whatsapp.consent.optout import optout_keyword, optout_payload_keyword
from messaging_whatsapp.consent.suppression import suppressed_phones, unsuppress
from messaging_whatsapp.db import insert_for, new_id, one_of, utcnow
from messaging_whatsapp.inbox.models import Contact
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.phones import phone_variants
from messaging_whatsapp.tenancy.models import Tenant


@dataclass(frozen=True, slots=True)
class OptOutCandidate:
    """A message that asked to stop, with who sent it."""

    tenant_id: str
    contact_id: str
    # None for a person known only by a BSUID or a LID: the contact's flag and the ledger keep it.
    phone: str | None
    instance_id: str | None
    keyword: str | None
    text: str | None
    provider_message_id: str | None
    at: datetime
    # "keyword" when the person wrote it; "provider:<code>" when the provider refused to deliver
    # because the person blocked or unsubscribed (Meta 131050, Twilio 21610 / 63014).
    reason: str = "keyword"
    source: ConsentSource = ConsentSource.KEYWORD
    # Who recorded it: the user or API key; the provider's error code for a provider block.
    actor: str | None = None

    def consent(self) -> ConsentEvent:
        """The ledger's entry for this opt-out."""
        return ConsentEvent(
            tenant_id=self.tenant_id,
            contact_id=self.contact_id,
            phone=self.phone,
            status=ConsentStatus.OPTED_OUT,
            source=self.source,
            at=self.at,
            actor=self.actor,
            provider_message_id=self.provider_message_id,
            evidence=self.text,
        )


def keyword_optouts(items: list[InboundItem]) -> list[OptOutCandidate]:
    """The stored customer messages that ask to stop (a keyword, or a quick reply's payload)."""
    candidates = []
    for item in items:
        if not item.from_customer:
            continue
        message = item.message
        source = ConsentSource.KEYWORD
        keyword = optout_keyword(message.text)
        if keyword is None:
            source = ConsentSource.BUTTON
            keyword = optout_payload_keyword(message.button_payload)
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
                source=source,
            )
        )
    return candidates


async def apply_optouts(session: AsyncSession, candidates: list[OptOutCandidate]) -> list[OptOutCandidate]:
    """Opt the contacts out, each with its entry in the consent ledger; returns the candidates that
    were not opted out before (once each)."""
    await record_consents(session, [candidate.consent() for candidate in candidates])
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
    if candidate.phone is None:
        return
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


async def opted_out_phones(session: AsyncSession, tenant_id: str, phones: Collection[str]) -> set[str]:
    """Which of these canonical phones opted out of the tenant (record, contact or, once erased, the
    suppression list; either Brazilian form); set-based, for lists of thousands."""
    by_variant = {variant: phone for phone in phones for variant in phone_variants(phone)}
    if not by_variant:
        return set()
    suppressed = await suppressed_phones(session, tenant_id, phones)
    variants = list(by_variant)
    recorded = select(OptOut.phone).where(
        OptOut.tenant_id == tenant_id, one_of(session, OptOut.phone, variants)
    )
    flagged = select(Contact.phone).where(
        Contact.tenant_id == tenant_id, one_of(session, Contact.phone, variants), Contact.opted_out.is_(True)
    )
    stopped = await session.scalars(union_all(recorded, flagged))
    return suppressed | {by_variant[variant] for variant in stopped}


async def apply_optin(session: AsyncSession, contact: Contact, consent: ConsentEvent) -> bool:
    """Let the person be messaged again (they asked for it: `consent` says how); their opt-out
    record and any suppression go, the ledger keeps both. True when they were opted out."""
    await record_consents(session, [consent])
    if contact.phone is None:
        # Known by an identity alone: the contact's flag is the whole opt-out.
        was_opted_out = contact.opted_out
    else:
        variants = phone_variants(contact.phone)
        removed = await session.execute(
            delete(OptOut)
            .where(OptOut.tenant_id == contact.tenant_id, OptOut.phone.in_(variants))
            .returning(OptOut.id)
        )
        unsuppressed = await unsuppress(session, contact.tenant_id, contact.phone)
        was_opted_out = contact.opted_out or bool(removed.all()) or unsuppressed
    contact.opted_out = False
    contact.opted_out_at = None
    return was_opted_out


async def keep_suppressed_opted_out(session: AsyncSession, items: list[InboundItem]) -> None:
    """A person erased after opting out who writes again comes back as a new contact: opted out
    from the start, as the suppression list says (of their phone, or of the BSUID or LID they
    were known by)."""
    phones: dict[str, set[str]] = defaultdict(set)
    for item in items:
        # A person known only by a BSUID or a LID was suppressed by it (privacy/erasure.py).
        name = item.phone or item.message.user_id
        if name is not None:
            phones[item.entry.tenant_id].add(name)
    # Only tenants that ever suppressed anyone have a key: usually none, one query.
    guarded = await session.scalars(
        select(Tenant.id).where(Tenant.id.in_(list(phones)), Tenant.suppression_key.is_not(None))
    )
    for tenant_id in guarded:
        suppressed = await suppressed_phones(session, tenant_id, phones[tenant_id])
        if suppressed:
            await session.execute(
                update(Contact)
                .where(
                    Contact.tenant_id == tenant_id,
                    or_(
                        Contact.phone.in_(suppressed),
                        Contact.bsuid.in_(suppressed),
                        Contact.lid.in_(suppressed),
                    ),
                    Contact.opted_out.is_(False),
                )
                .values(opted_out=True, opted_out_at=utcnow(), updated_at=utcnow())
            )


async def follow_merges(session: AsyncSession, merges: list[ContactMerge]) -> None:
    """What the consent side keeps of merged contacts moves to the survivor: the ledger's entries
    (re-pointed, the one change migration 0014 lets the ledger take) and an opt-out the survivor's
    phone must now carry."""
    for merge in merges:
        await session.execute(
            update(Consent)
            .where(Consent.tenant_id == merge.tenant_id, Consent.contact_id == merge.loser_id)
            .values(contact_id=merge.survivor_id)
        )
        if merge.opted_out and merge.survivor_phone is not None:
            await _record(
                session,
                OptOutCandidate(
                    tenant_id=merge.tenant_id,
                    contact_id=merge.survivor_id,
                    phone=merge.survivor_phone,
                    instance_id=None,
                    keyword=None,
                    text=None,
                    provider_message_id=None,
                    at=merge.opted_out_at or utcnow(),
                    reason="merged",
                ),
            )
