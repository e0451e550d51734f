"""The privacy API (LGPD): a person's consent as the team records it, their data exported, and
their erasure."""

from __future__ import annotations

from fastapi import APIRouter

from messaging_whatsapp.consent.models import ConsentSource, ConsentStatus
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.inbox.schemas import ContactItem
from messaging_whatsapp.inbox.visibility import Viewer, check_contact
from messaging_whatsapp.outbox.service import relay_outbox, write_outbox
from messaging_whatsapp.privacy import service
from messaging_whatsapp.privacy.erasure import find_contact
from messaging_whatsapp.privacy.export import export_contact
from messaging_whatsapp.privacy.optouts import record_choice
from messaging_whatsapp.privacy.schemas import ConsentChoice, ContactExport, ErasureReport
from messaging_whatsapp.tenancy.deps import AdminPrincipal, InboxWriter

router = APIRouter(prefix="/api/v1", tags=["privacy"])


@router.post("/contacts/{contact_id}/consent")
async def record_consent(
    contact_id: str, body: ConsentChoice, session: DbSession, principal: InboxWriter, context: Context
) -> ContactItem:
    """Record that the person opted out (stopped everywhere, campaigns included) or back in, as
    they told a user (source `agent`) or a system (`api`) of the tenant; it joins the consent ledger."""
    await check_contact(session, principal.tenant_id, contact_id, Viewer.of(principal))
    contact = await find_contact(session, principal.tenant_id, contact_id)
    source = ConsentSource.AGENT if principal.user_id else ConsentSource.API
    actor = principal.user_id or principal.api_key_id
    events = await record_choice(
        session, contact, ConsentStatus(body.status), source, actor, body.note, utcnow()
    )
    records = await write_outbox(session, events, context.names.events)
    await session.commit()
    await relay_outbox(context, records)
    await session.refresh(contact)
    return ContactItem.model_validate(contact)


@router.get("/contacts/{contact_id}/export")
async def export(contact_id: str, session: DbSession, principal: AdminPrincipal) -> ContactExport:
    """Everything held about the person: contact, conversations, tickets, messages, campaign rows,
    the consent ledger (`consents`) and the opt-out record."""
    return await export_contact(session, principal.tenant_id, contact_id, utcnow())


@router.delete("/contacts/{contact_id}")
async def erase(contact_id: str, principal: AdminPrincipal, context: Context) -> ErasureReport:
    """Erase the person (LGPD): their contact, conversations, tickets, messages and campaign rows
    deleted, the ledger's evidence blanked, the DLQ's raw requests about them deleted; if they had
    opted out, an HMAC of the phone keeps them unreachable. Announced as `whatsapp_contact_erased`."""
    erasure = await service.erase(context, principal.tenant_id, contact_id=contact_id)
    return ErasureReport.model_validate(erasure, from_attributes=True)
