"""The consent ledger (LGPD): every opt-in and opt-out, its source and evidence, only ever added
to. Erasing a person blanks the phone and the evidence of their entries, the one change the
database allows (migration 0013)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.consent.models import Consent, ConsentSource, ConsentStatus
from messaging_whatsapp.db import insert_rows, new_id

consents_table: Table = Consent.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One thing the person said (or the provider reported) about being messaged."""

    tenant_id: str
    contact_id: str | None
    # None for a person known only by a BSUID or a LID (the contact id says who).
    phone: str | None
    status: ConsentStatus
    source: ConsentSource
    at: datetime
    actor: str | None = None
    provider_message_id: str | None = None
    evidence: str | None = None


async def record_consents(session: AsyncSession, events: list[ConsentEvent]) -> None:
    """Add the events to the ledger."""
    if not events:
        return
    rows = [
        {
            "id": new_id(),
            "tenant_id": event.tenant_id,
            "contact_id": event.contact_id,
            "phone": event.phone,
            "status": event.status.value,
            "source": event.source.value,
            "actor": event.actor[:64] if event.actor else None,
            "provider_message_id": event.provider_message_id,
            "evidence": event.evidence,
            "created_at": event.at,
        }
        for event in events
    ]
    statement, params = insert_rows(session, consents_table, rows)
    await session.execute(statement, params)


async def contact_consents(
    session: AsyncSession, tenant_id: str, contact_id: str, phones: Collection[str]
) -> list[Consent]:
    """The ledger's entries about a contact (by id, or by phone before the contact existed), oldest first."""
    found = await session.scalars(
        select(Consent)
        .where(
            Consent.tenant_id == tenant_id,
            or_(Consent.contact_id == contact_id, Consent.phone.in_(phones)),
        )
        .order_by(Consent.created_at, Consent.id)
    )
    return list(found)


async def blank_consents(
    session: AsyncSession, tenant_id: str, contact_id: str | None, phones: Collection[str]
) -> int:
    """Erase the phone and the evidence from a person's entries (the rest stays); how many."""
    person: ColumnElement[bool] = Consent.phone.in_(phones)
    if contact_id is not None:
        person = or_(person, Consent.contact_id == contact_id)
    blanked = await session.execute(
        update(Consent)
        .where(Consent.tenant_id == tenant_id, person, Consent.phone.is_not(None))
        .values(phone=None, evidence=None, provider_message_id=None)
        .returning(Consent.id)
    )
    return len(blanked.all())
