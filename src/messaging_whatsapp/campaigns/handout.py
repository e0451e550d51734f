"""The contacts of one dispatcher pass: taking them, and what each one gets.

Contacts are taken pending -> sending with SKIP LOCKED (PostgreSQL) or under SQLite's single
writer, and the ones who opted out since the import are dropped. Each gets the least used
variation its number may still send (identical-text and portfolio limits), rendered with its
`{{variables}}`, stored as a queued message; the number, variation and message are recorded on
it. Contacts taken but refused by the limits go back to pending.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignContactStatus,
    CampaignMessage,
    campaign_contacts_table,
)
from messaging_whatsapp.campaigns.pacing import Pace
from messaging_whatsapp.campaigns.rotation import Slot
from messaging_whatsapp.campaigns.usage import RecentUsage, portfolio_of
from messaging_whatsapp.consent.service import opted_out_phones
from messaging_whatsapp.db import generic_plans, one_of, rows_table
from messaging_whatsapp.inbox.models import Contact, SenderType
from messaging_whatsapp.inbox.ticketing import campaign_origin
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.capabilities import takes_templates
from messaging_whatsapp.sending.queue import BulkMessage, store_queued_messages

# A variable with no value in the contact's data reads as this (`{{name}}` -> "").
VARIABLE = re.compile(r"\{\{\s*([\w.-]+)\s*\}\}")
DEFAULT_VARIABLE_VALUES = {"name": ""}
# The number, variation and message each campaign contact of a pass got.
HANDED_COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("id", String()),
    ("instance_id", String()),
    ("campaign_message_id", String()),
    ("message_id", String()),
]


@dataclass(frozen=True, slots=True)
class Handout:
    """A contact, the number chosen for it, the variation and its text."""

    contact: CampaignContact
    instance_id: str
    variation: CampaignMessage
    text: str
    typing: bool
    # A template variation, its parameters filled for this contact (campaigns/templates.py).
    template: dict[str, Any] | None = None


def render(content: str, variables: dict[str, Any] | None) -> str:
    """Fill `{{variable}}`s from the contact's values (unknown ones become empty)."""
    values = {**DEFAULT_VARIABLE_VALUES, **(variables or {})}

    def value(match: re.Match[str]) -> str:
        return str(values.get(match.group(1), "")).strip()

    return re.sub(r"[ \t]+([,.!?])", r"\1", VARIABLE.sub(value, content))


async def take_contacts(
    session: AsyncSession, campaign: Campaign, limit: int, now: datetime
) -> list[tuple[CampaignContact, str]]:
    """pending -> sending for up to `limit` contacts nobody else is taking; with their phones."""
    c = campaign_contacts_table.c
    candidates = (
        select(c.id)
        .where(c.campaign_id == campaign.id, c.status == CampaignContactStatus.PENDING.value)
        .order_by(c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    taken = list(
        await session.scalars(
            update(CampaignContact)
            .where(
                CampaignContact.id.in_(candidates),
                CampaignContact.status == CampaignContactStatus.PENDING.value,
            )
            .values(
                status=CampaignContactStatus.SENDING.value,
                sending_at=now,
                attempts=CampaignContact.attempts + 1,
                updated_at=now,
            )
            .returning(CampaignContact)
            .execution_options(populate_existing=True)
        )
    )
    if not taken:
        return []
    query = select(Contact.id, Contact.phone).where(
        one_of(session, Contact.id, {contact.contact_id for contact in taken})
    )
    # Campaigns add people by phone, so each has one.
    phones = {contact_id: phone or "" for contact_id, phone in await session.execute(query)}
    taken.sort(key=lambda contact: contact.id)
    return [(contact, phones[contact.contact_id]) for contact in taken]


async def without_opt_outs(
    session: AsyncSession, campaign: Campaign, taken: list[tuple[CampaignContact, str]], now: datetime
) -> tuple[list[tuple[CampaignContact, str]], list[CampaignContact]]:
    """Check opt-out at send time: who opted out since the import ends `opted_out`, with a log."""
    stopped = await opted_out_phones(session, campaign.tenant_id, {phone for _, phone in taken})
    if not stopped:
        return taken, []
    out = [contact for contact, phone in taken if phone in stopped]
    await session.execute(
        update(campaign_contacts_table)
        .where(one_of(session, campaign_contacts_table.c.id, [contact.id for contact in out]))
        .values(status=CampaignContactStatus.OPTED_OUT.value, error_code="opted_out", updated_at=now)
    )
    await logs.add_logs(
        session,
        [logs.log_contact_opted_out(campaign, contact.contact_id, contact.id, now) for contact in out],
    )
    return [(contact, phone) for contact, phone in taken if phone not in stopped], out


def plan(
    pairs: list[tuple[tuple[CampaignContact, str], Slot]],
    variations: list[CampaignMessage],
    instances: list[WhatsAppInstance],
    paces: dict[str, Pace],
    usage: RecentUsage,
    budgets: dict[str, int],
) -> tuple[list[Handout], list[CampaignContact]]:
    """Pick each contact's variation, within the portfolio and identical-text limits.

    The least used variation goes first, so texts stay varied; on a number capping identical
    texts (a gateway's three an hour), a text sent that often this hour is passed over for another
    variation, and a contact no variation suits waits for a later pass, as does one beyond its
    portfolio's tier.
    """
    by_id = {instance.id: instance for instance in instances}
    used = {variation.id: variation.usage_count for variation in variations}
    planned: list[Handout] = []
    refused: list[CampaignContact] = []
    for (contact, _phone), slot in pairs:
        instance = by_id[slot.instance_id]
        pace = paces[instance.id]
        portfolio = portfolio_of(instance)
        if portfolio in budgets and budgets[portfolio] <= 0:
            refused.append(contact)
            continue
        identical = pace.max_identical_per_hour
        choice = None
        for variation in sorted(variations, key=lambda v: (used[v.id], v.order)):
            if variation.template is not None and not takes_templates(instance.provider):
                continue  # a gateway has no templates (campaigns/templates.py)
            text = render(variation.content, contact.variables)
            if identical is None or usage.may_repeat(instance.id, text, identical):
                choice = Handout(contact, instance.id, variation, text, pace.typing)
                break
        if choice is None:
            refused.append(contact)
            continue
        used[choice.variation.id] += 1
        if portfolio in budgets:
            budgets[portfolio] -= 1
        planned.append(choice)
    return planned, refused


async def hand_out(
    session: AsyncSession,
    campaign: Campaign,
    planned: list[Handout],
    variations: list[CampaignMessage],
    now: datetime,
) -> list[str]:
    """Store one queued message per planned contact; record the number and variation it got."""
    if not planned:
        return []
    items = [
        BulkMessage(
            contact_id=h.contact.contact_id,
            instance_id=h.instance_id,
            text=h.text,
            media=h.variation.media,
            typing=h.typing,
            template=h.template,
        )
        for h in planned
    ]
    async with generic_plans(session):  # the writes' foreign-key checks: primary-key lookups
        message_ids = await store_queued_messages(
            session,
            campaign.tenant_id,
            items,
            sender_type=SenderType.CAMPAIGN,
            now=now,
            origin=campaign_origin(campaign.name),
        )
        await _record_handouts(session, planned, message_ids)
    used = Counter(h.variation.id for h in planned)
    for variation in variations:
        variation.usage_count += used[variation.id]
    return message_ids


async def _record_handouts(session: AsyncSession, planned: list[Handout], message_ids: list[str]) -> None:
    """Each campaign contact's number, variation and message."""
    c = campaign_contacts_table.c
    rows = [
        (h.contact.id, h.instance_id, h.variation.id, message_id)
        for h, message_id in zip(planned, message_ids, strict=True)
    ]
    handed = rows_table(session, "handed", HANDED_COLUMNS, rows).c
    await session.execute(
        update(campaign_contacts_table)
        .where(c.id == handed.id)
        .values(
            instance_id=handed.instance_id,
            campaign_message_id=handed.campaign_message_id,
            message_id=handed.message_id,
        )
        .execution_options(synchronize_session=False)
    )


async def give_back(session: AsyncSession, contacts: list[CampaignContact]) -> None:
    """Contacts taken but not sent in this pass go back to pending (the attempt does not count)."""
    if not contacts:
        return
    c = campaign_contacts_table.c
    await session.execute(
        update(campaign_contacts_table)
        .where(one_of(session, c.id, [contact.id for contact in contacts]))
        .values(status=CampaignContactStatus.PENDING.value, sending_at=None, attempts=c.attempts - 1)
    )
