"""A campaign's contacts: adding them, removing one nobody has written to yet, and forgetting a
person erased at their request.

Contacts are added in chunks: phones read as typed (a national form is a number of the tenant's
default country, as everywhere: phones.typed_phone), duplicates merged (either Brazilian form counts
once), invalid rows reported with their line, opt-outs excluded, missing inbox contacts created.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.importing import ContactRow
from messaging_whatsapp.campaigns.lifecycle import CLOSED
from messaging_whatsapp.campaigns.locks import lock_campaigns
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignContactStatus,
    LogType,
    Severity,
    campaign_contacts_table,
)
from messaging_whatsapp.campaigns.queries import get_campaign
from messaging_whatsapp.campaigns.schemas import CampaignContactIn, ImportReport, RejectedRow
from messaging_whatsapp.consent.consents import ConsentEvent, record_consents
from messaging_whatsapp.consent.models import ConsentSource, ConsentStatus
from messaging_whatsapp.consent.service import opted_out_phones
from messaging_whatsapp.db import generic_plans, insert_rows, new_id, one_of
from messaging_whatsapp.errors import Conflict, NotFound
from messaging_whatsapp.inbox.models import Contact
from messaging_whatsapp.inbox.ticketing import Origin, campaign_origin
from messaging_whatsapp.phones import InvalidPhone, phone_variants, typed_phone
from messaging_whatsapp.tenancy.service import tenant_country

# Rows handled per round of statements (inserts are paged by SQLAlchemy; IN lists stay under
# PostgreSQL's 32,767 parameters: two phone forms per row).
CONTACT_CHUNK = 5_000
# A report lists at most this many rejected rows (it counts them all).
MAX_REJECTED_LISTED = 1_000


def contact_rows(contacts: Iterable[CampaignContactIn]) -> list[ContactRow]:
    """Contacts from a request as rows numbered from 1."""
    return [
        ContactRow(
            phone=contact.phone,
            name=contact.name,
            variables=dict(contact.variables),
            line=index + 1,
            opted_in=contact.opted_in,
        )
        for index, contact in enumerate(contacts)
    ]


@dataclass
class _Reading:
    """How an import reads its phones (the tenant's country), and the people it has seen so far."""

    country: str
    seen: set[str] = field(default_factory=set)


@dataclass
class _Chunk:
    """Rows of one statement, normalised, de-duplicated and not opted out."""

    phones: list[str]
    rows: dict[str, ContactRow]


async def add_contacts(
    session: AsyncSession,
    campaign: Campaign,
    rows: Iterable[ContactRow],
    *,
    now: datetime,
    log: bool = True,
    imported: bool = False,
) -> ImportReport:
    """Add contacts: phones normalised, duplicates merged, invalid rows reported, opt-outs excluded.
    People new to the tenant get their first touch: `import` (a CSV file: `imported`) or
    `campaign`, with the campaign's name."""
    if campaign.status in CLOSED:
        raise Conflict(
            f"campaign is {campaign.status}; contacts can no longer be added",
            code="campaign_not_editable",
            details={"status": campaign.status},
        )
    report = ImportReport()
    reading = _Reading(await tenant_country(session, campaign.tenant_id))
    pending: list[ContactRow] = []
    for row in rows:
        pending.append(row)
        if len(pending) >= CONTACT_CHUNK:
            await _add_chunk(session, campaign, pending, reading, report, now, imported)
            pending = []
    if pending:
        await _add_chunk(session, campaign, pending, reading, report, now, imported)
    if report.added:
        await session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id)
            .values(
                total_contacts=Campaign.total_contacts + report.added,
                pending_count=Campaign.pending_count + report.added,
                updated_at=now,
            )
        )
        await session.refresh(campaign)
    if log and report.added:
        message = f"{report.added} contacts added"
        details = report.model_dump(exclude={"rejected"})
        await logs.add_logs(
            session, [logs.new_log(campaign, LogType.CONTACT_ADDED, Severity.INFO, message, details=details)]
        )
    return report


async def remove_contact(
    session: AsyncSession,
    tenant_id: str,
    campaign_id: str,
    campaign_contact_id: str,
    *,
    user_id: str | None,
    now: datetime,
) -> None:
    """Take a contact nobody has written to yet out of the campaign (log `contact_removed`)."""
    await lock_campaigns(session, [campaign_id])  # not while a dispatcher's pass may take it
    campaign = await get_campaign(session, tenant_id, campaign_id, lock=True)
    if campaign.status in CLOSED:
        raise Conflict(
            f"campaign is {campaign.status}; its contacts can no longer change",
            code="campaign_not_editable",
            details={"status": campaign.status},
        )
    contact = await session.scalar(
        select(CampaignContact).where(
            CampaignContact.id == campaign_contact_id, CampaignContact.campaign_id == campaign.id
        )
    )
    if contact is None:
        raise NotFound(f"contact {campaign_contact_id} is not in campaign {campaign_id}")
    if contact.status != CampaignContactStatus.PENDING.value:
        raise Conflict(
            f"the contact is {contact.status}: only a contact not yet written to can be removed",
            code="contact_not_pending",
            details={"status": contact.status},
        )
    await session.delete(contact)
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(
            total_contacts=Campaign.total_contacts - 1,
            pending_count=Campaign.pending_count - 1,
            updated_at=now,
        )
    )
    await session.refresh(campaign)
    removed = logs.new_log(
        campaign,
        LogType.CONTACT_REMOVED,
        Severity.INFO,
        # No phone: a log is kept for good, and the person may one day be erased (LGPD).
        "Contact removed",
        contact_id=contact.contact_id,
        campaign_contact_id=contact.id,
        created_by=user_id,
        at=now,
    )
    await logs.add_logs(session, [removed])


async def _add_chunk(
    session: AsyncSession,
    campaign: Campaign,
    rows: list[ContactRow],
    reading: _Reading,
    report: ImportReport,
    now: datetime,
    imported: bool,
) -> None:
    chunk = _normalise(rows, reading, report)
    if not chunk.phones:
        return
    opted_out = await opted_out_phones(session, campaign.tenant_id, chunk.phones)
    report.opted_out += len(opted_out)
    phones = [phone for phone in chunk.phones if phone not in opted_out]
    if not phones:
        return
    origin = campaign_origin(campaign.name)
    if imported:
        origin = replace(origin, source="import")
    contact_ids = await _contact_ids(session, campaign.tenant_id, phones, chunk.rows, now, origin)
    values = [
        {
            "id": new_id(),
            "campaign_id": campaign.id,
            "tenant_id": campaign.tenant_id,
            "contact_id": contact_ids[phone],
            "variables": _variables(chunk.rows[phone]),
            "status": CampaignContactStatus.PENDING.value,
            "status_rank": 0,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for phone in phones
    ]
    statement, params = insert_rows(session, campaign_contacts_table, values)
    statement = statement.on_conflict_do_nothing(index_elements=["campaign_id", "contact_id"])
    async with generic_plans(session):
        inserted = (await session.execute(statement, params)).rowcount  # type: ignore[attr-defined]

    report.added += inserted
    report.duplicates += len(phones) - inserted
    await record_consents(session, _import_consents(campaign, phones, chunk.rows, contact_ids, now))


def _import_consents(
    campaign: Campaign,
    phones: list[str],
    rows: dict[str, ContactRow],
    contact_ids: dict[str, str],
    now: datetime,
) -> list[ConsentEvent]:
    """The ledger's `import` entries of the rows that say the person agreed (opted-out ones are
    not among `phones`)."""
    return [
        ConsentEvent(
            tenant_id=campaign.tenant_id,
            contact_id=contact_ids[phone],
            phone=phone,
            status=ConsentStatus.OPTED_IN,
            source=ConsentSource.IMPORT,
            at=now,
            actor=campaign.id,
            evidence=f"campaign '{campaign.name}', line {rows[phone].line}",
        )
        for phone in phones
        if rows[phone].opted_in
    ]


def _normalise(rows: list[ContactRow], reading: _Reading, report: ImportReport) -> _Chunk:
    chunk = _Chunk(phones=[], rows={})
    seen = reading.seen
    for row in rows:
        try:
            phone = typed_phone(row.phone, reading.country)
        except InvalidPhone as exc:
            report.invalid += 1
            if len(report.rejected) < MAX_REJECTED_LISTED:
                report.rejected.append(RejectedRow(line=row.line, phone=row.phone[:40], reason=exc.message))
            continue
        # The same person under either Brazilian form counts once.
        key = phone_variants(phone)[-1]
        if phone in seen or key in seen:
            report.duplicates += 1
            continue
        seen.update({phone, key})
        chunk.phones.append(phone)
        chunk.rows[phone] = row
    return chunk


def _variables(row: ContactRow) -> dict[str, str] | None:
    variables = dict(row.variables)
    if row.name:
        variables["name"] = row.name
    return variables or None


async def _contact_ids(
    session: AsyncSession,
    tenant_id: str,
    phones: list[str],
    rows: dict[str, ContactRow],
    now: datetime,
    origin: Origin,
) -> dict[str, str]:
    """The contact id of each phone, creating the contacts that do not exist yet (with `origin` as
    their first touch)."""
    by_variant = {variant: phone for phone in phones for variant in phone_variants(phone)}
    ids: dict[str, str] = {}

    async def load() -> None:
        found = await session.execute(
            select(Contact.phone, Contact.id).where(
                Contact.tenant_id == tenant_id, one_of(session, Contact.phone, list(by_variant))
            )
        )
        for variant, contact_id in found:
            if variant is not None:
                ids.setdefault(by_variant[variant], contact_id)

    await load()
    missing = [phone for phone in phones if phone not in ids]
    if missing:
        rows_in = [
            {
                "id": new_id(),
                "tenant_id": tenant_id,
                "phone": phone,
                "name": rows[phone].name,
                **origin.contact_columns(),
                "opted_out": False,
                "messages_received": 0,
                "created_at": now,
                "updated_at": now,
            }
            for phone in missing
        ]
        statement, params = insert_rows(session, Contact.__table__, rows_in)  # type: ignore[arg-type]
        statement = statement.on_conflict_do_nothing(index_elements=["tenant_id", "phone"])
        async with generic_plans(session):
            created = await session.execute(
                statement.returning(Contact.__table__.c.phone, Contact.__table__.c.id), params
            )
        for phone, contact_id in created:
            ids[phone] = contact_id
        if len(ids) < len(phones):
            await load()  # created meanwhile by someone else
    return ids


async def forget_contact(session: AsyncSession, tenant_id: str, contact_id: str, now: datetime) -> int:
    """Delete a person's rows from every campaign (their erasure); one still waiting leaves its
    campaign's totals, one already written to stays counted. How many rows."""
    theirs = (CampaignContact.tenant_id == tenant_id, CampaignContact.contact_id == contact_id)
    # Not while a dispatcher's pass may be taking them: their status is read after the locks.
    await lock_campaigns(session, await session.scalars(select(CampaignContact.campaign_id).where(*theirs)))
    rows = list(await session.scalars(select(CampaignContact).where(*theirs)))
    for row in rows:
        if row.status == CampaignContactStatus.PENDING.value:
            await session.execute(
                update(Campaign)
                .where(Campaign.id == row.campaign_id)
                .values(
                    total_contacts=Campaign.total_contacts - 1,
                    pending_count=Campaign.pending_count - 1,
                    updated_at=now,
                )
            )
        await session.delete(row)
    await session.flush()
    return len(rows)
