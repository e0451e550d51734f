"""An opt-out, however it was learnt (a keyword the person wrote, a provider refusing to deliver, a
user or system of the tenant recording it), reaches every domain in the same transaction: the
contact, the proof and the ledger, and every campaign. An opt-in undoes it for what comes next."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns.progress import opt_out_contacts
from messaging_whatsapp.consent.consents import ConsentEvent
from messaging_whatsapp.consent.models import ConsentSource, ConsentStatus
from messaging_whatsapp.consent.service import OptOutCandidate, apply_optin, apply_optouts, optout_events
from messaging_whatsapp.inbox.models import Contact
from messaging_whatsapp.outbox.service import PublishedEvent


async def opt_out(
    session: AsyncSession, candidates: list[OptOutCandidate], now: datetime
) -> list[PublishedEvent]:
    """Opt the people out and stop them in every campaign; one `whatsapp_customer_opted_out` for
    each person not opted out before."""
    if not candidates:
        return []
    newly = await apply_optouts(session, candidates)
    # Every candidate, not only the new ones: a person opted out before may still be pending in a
    # campaign that was filled in the meantime.
    await opt_out_contacts(session, sorted({candidate.contact_id for candidate in candidates}), now)
    return optout_events(newly)


async def record_choice(
    session: AsyncSession,
    contact: Contact,
    status: ConsentStatus,
    source: ConsentSource,
    actor: str | None,
    note: str | None,
    now: datetime,
) -> list[PublishedEvent]:
    """Record what the person told a user (`agent`) or a system (`api`) of the tenant; the events
    to publish (`whatsapp_customer_opted_out` / `_opted_in` when it changed anything)."""
    if status is ConsentStatus.OPTED_OUT:
        candidate = OptOutCandidate(
            tenant_id=contact.tenant_id,
            contact_id=contact.id,
            phone=contact.phone,
            instance_id=None,
            keyword=None,
            text=note,
            provider_message_id=None,
            at=now,
            reason=source.value,
            source=source,
            actor=actor,
        )
        return await opt_out(session, [candidate], now)
    consent = ConsentEvent(
        tenant_id=contact.tenant_id,
        contact_id=contact.id,
        phone=contact.phone,
        status=status,
        source=source,
        at=now,
        actor=actor,
        evidence=note,
    )
    if not await apply_optin(session, contact, consent):
        return []
    payload = {"phone": contact.phone, "contact_id": contact.id, "reason": source.value}
    return [PublishedEvent(type="whatsapp_customer_opted_in", tenant_id=contact.tenant_id, payload=payload)]
