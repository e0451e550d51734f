"""The consent ledger is append-only in the database itself, on both databases: an entry cannot
be changed or deleted, except that an erasure may blank its phone and evidence."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from messaging_whatsapp.consent.consents import ConsentEvent, blank_consents, record_consents
from messaging_whatsapp.consent.models import Consent, ConsentSource, ConsentStatus
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from tests.helpers import create_tenant

PHONE = "+5511987654321"


async def _entry(context: EngineContext) -> str:
    tenant_id = await create_tenant(context)
    event = ConsentEvent(
        tenant_id,
        "contact-1",
        PHONE,
        ConsentStatus.OPTED_OUT,
        ConsentSource.KEYWORD,
        utcnow(),
        evidence="Sair",
    )
    async with context.sessions() as session, session.begin():
        await record_consents(session, [event])
    return tenant_id


@pytest.mark.parametrize(
    "change",
    [
        update(Consent).values(status="opted_in"),
        update(Consent).values(source="agent", phone=None, evidence=None, provider_message_id=None),
        update(Consent).values(evidence="outra coisa"),
        delete(Consent),
    ],
    ids=["status", "source-while-blanking", "evidence", "delete"],
)
async def test_an_entry_cannot_be_changed_or_deleted(context: EngineContext, change: object) -> None:
    await _entry(context)
    with pytest.raises(DBAPIError, match="append-only"):
        async with context.sessions() as session, session.begin():
            await session.execute(change)  # type: ignore[call-overload]


async def test_an_erasure_blanks_the_phone_and_evidence_only(context: EngineContext) -> None:
    tenant_id = await _entry(context)
    async with context.sessions() as session, session.begin():
        assert await blank_consents(session, tenant_id, None, [PHONE]) == 1
    async with context.sessions() as session:
        [entry] = (await session.scalars(select(Consent))).all()
    assert (entry.status, entry.source, entry.contact_id) == ("opted_out", "keyword", "contact-1")
    assert (entry.phone, entry.evidence) == (None, None)
