"""An opt-out, however it was learnt (a keyword the person wrote, a provider refusing to deliver),
reaches every domain in the same transaction: the contact and the proof, and every campaign."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.automation.service import OptOutCandidate, apply_optouts, optout_events
from messaging_whatsapp.campaigns.progress import opt_out_contacts
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
