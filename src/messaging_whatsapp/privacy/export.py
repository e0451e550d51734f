"""Everything the tenant holds about one person, in one JSON document (LGPD's right of access)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns.models import Campaign, CampaignContact
from messaging_whatsapp.campaigns.schemas import CampaignContactItem
from messaging_whatsapp.consent.consents import contact_consents
from messaging_whatsapp.consent.models import OptOut
from messaging_whatsapp.inbox.models import Contact, Conversation, Message, Ticket
from messaging_whatsapp.inbox.schemas import ContactItem, MessageItem, TicketItem
from messaging_whatsapp.inbox.service import conversation_item, message_item
from messaging_whatsapp.phones import phone_variants
from messaging_whatsapp.privacy.erasure import find_contact
from messaging_whatsapp.privacy.schemas import CampaignRowExport, ConsentItem, ContactExport, OptOutItem


async def export_contact(
    session: AsyncSession, tenant_id: str, contact_id: str, now: datetime
) -> ContactExport:
    """The contact, their conversations, tickets, messages, campaign rows, consents and opt-out
    record; NotFound for another tenant's contact."""
    contact = await find_contact(session, tenant_id, contact_id)
    variants = phone_variants(contact.phone) if contact.phone else []
    conversations = list(
        await session.scalars(
            select(Conversation)
            .where(Conversation.tenant_id == tenant_id, Conversation.contact_id == contact.id)
            .order_by(Conversation.created_at, Conversation.id)
        )
    )
    opt_out = await session.scalar(
        select(OptOut).where(OptOut.tenant_id == tenant_id, OptOut.phone.in_(variants)).limit(1)
    )
    return ContactExport(
        exported_at=now,
        contact=ContactItem.model_validate(contact),
        conversations=[conversation_item(conversation, contact) for conversation in conversations],
        tickets=await _tickets(session, tenant_id, [c.id for c in conversations]),
        messages=await _messages(session, tenant_id, contact.id),
        campaigns=await _campaign_rows(session, tenant_id, contact),
        consents=[
            ConsentItem.model_validate(entry)
            for entry in await contact_consents(session, tenant_id, contact.id, variants)
        ],
        opt_out=OptOutItem.model_validate(opt_out) if opt_out else None,
    )


async def _tickets(session: AsyncSession, tenant_id: str, conversation_ids: list[str]) -> list[TicketItem]:
    found = await session.scalars(
        select(Ticket)
        .where(Ticket.tenant_id == tenant_id, Ticket.conversation_id.in_(conversation_ids))
        .order_by(Ticket.created_at, Ticket.id)
    )
    return [TicketItem.model_validate(ticket) for ticket in found]


async def _messages(session: AsyncSession, tenant_id: str, contact_id: str) -> list[MessageItem]:
    found = await session.scalars(
        select(Message)
        .where(Message.tenant_id == tenant_id, Message.contact_id == contact_id)
        .order_by(Message.created_at, Message.id)
    )
    return [message_item(message) for message in found]


async def _campaign_rows(session: AsyncSession, tenant_id: str, contact: Contact) -> list[CampaignRowExport]:
    rows = await session.execute(
        select(CampaignContact, Campaign.name)
        .join(Campaign, Campaign.id == CampaignContact.campaign_id)
        .where(CampaignContact.tenant_id == tenant_id, CampaignContact.contact_id == contact.id)
        .order_by(CampaignContact.created_at, CampaignContact.id)
    )
    return [
        CampaignRowExport(
            **CampaignContactItem.of(row, contact.phone, contact.name).model_dump(),
            campaign_id=row.campaign_id,
            campaign_name=name,
        )
        for row, name in rows
    ]
