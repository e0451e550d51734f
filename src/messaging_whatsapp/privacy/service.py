"""The privacy actions as the API and the command line run them: each in its transaction, its
events published once stored."""

from __future__ import annotations

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import checkpoint_sqlite, utcnow
from messaging_whatsapp.outbox.service import relay_outbox, write_outbox
from messaging_whatsapp.privacy.erasure import Erasure, erase_contact, erase_phone, forget_in_streams


async def erase(
    context: EngineContext, tenant_id: str, *, contact_id: str | None = None, phone: str | None = None
) -> Erasure:
    """Erase a contact (by id) or whatever is held about a canonical phone, announce it with
    `whatsapp_contact_erased`, then delete the stream entries about them and, on SQLite, the
    write-ahead log that still holds the deleted pages."""
    now = utcnow()
    async with context.sessions() as session, session.begin():
        if contact_id is not None:
            erasure = await erase_contact(session, tenant_id, contact_id, now)
        elif phone is not None:
            erasure = await erase_phone(session, tenant_id, phone, now)
        else:
            raise ValueError("erase needs a contact id or a phone")
        records = await write_outbox(session, [erasure.event(tenant_id, now)], context.names.events)
    await relay_outbox(context, records)
    await forget_in_streams(context.streams, context.names, erasure)
    await checkpoint_sqlite(context.engine, truncate=True)
    return erasure
