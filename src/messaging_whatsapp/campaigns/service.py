"""The rules of campaigns: creating, editing, adding contacts, and the life cycle's transitions.

Sending belongs to the dispatcher (campaigns/dispatcher.py); this module decides what may happen
and records it, with a log for each step.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging_whatsapp.automation.service import opted_out_phones
from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.importing import ContactRow
from messaging_whatsapp.campaigns.locks import lock_campaigns
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignContactStatus,
    CampaignInstance,
    CampaignLog,
    CampaignMessage,
    CampaignStatus,
    LogType,
    PausedReason,
    Severity,
    campaign_contacts_table,
)
from messaging_whatsapp.campaigns.progress import withdraw_queued
from messaging_whatsapp.campaigns.schemas import (
    PACING_FIELDS,
    CampaignContactIn,
    CampaignContactItem,
    CampaignCreate,
    CampaignDetail,
    CampaignInstanceIn,
    CampaignItem,
    CampaignLogItem,
    CampaignMessageIn,
    CampaignSettings,
    CampaignStats,
    CampaignUpdate,
    ImportReport,
    PacingIn,
    RejectedRow,
    numbers_of,
)
from messaging_whatsapp.db import generic_plans, insert_rows, new_id, one_of, take_sqlite_writer
from messaging_whatsapp.errors import Conflict, InvalidInput, NotFound
from messaging_whatsapp.inbox.models import Contact
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.pagination import MAX_LIMIT, Page, decode_cursor, decode_time_cursor, encode_cursor
from messaging_whatsapp.phones import InvalidPhone, canonical_listed_phone, phone_variants

# Rows handled per round of statements (inserts are paged by SQLAlchemy; IN lists stay under
# PostgreSQL's 32,767 parameters: two phone forms per row).
CONTACT_CHUNK = 5_000
# A report lists at most this many rejected rows (it counts them all).
MAX_REJECTED_LISTED = 1_000
EDITABLE = frozenset({CampaignStatus.DRAFT.value, CampaignStatus.PAUSED.value})
CLOSED = frozenset({CampaignStatus.COMPLETED.value, CampaignStatus.CANCELLED.value})


class Action(enum.StrEnum):
    """What a user asks of a campaign's life cycle."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


# action -> {from status: to status}. Start goes to `scheduled` instead when scheduled_at is ahead.
TRANSITIONS: dict[Action, dict[CampaignStatus, CampaignStatus]] = {
    Action.START: {CampaignStatus.DRAFT: CampaignStatus.RUNNING},
    Action.PAUSE: {
        CampaignStatus.RUNNING: CampaignStatus.PAUSED,
        CampaignStatus.SCHEDULED: CampaignStatus.PAUSED,
    },
    Action.RESUME: {CampaignStatus.PAUSED: CampaignStatus.RUNNING},
    Action.CANCEL: {
        CampaignStatus.DRAFT: CampaignStatus.CANCELLED,
        CampaignStatus.SCHEDULED: CampaignStatus.CANCELLED,
        CampaignStatus.RUNNING: CampaignStatus.CANCELLED,
        CampaignStatus.PAUSED: CampaignStatus.CANCELLED,
    },
}


# --------------------------------------------------------------------------------------------------
# Reading


async def get_campaign(
    session: AsyncSession, tenant_id: str, campaign_id: str, *, lock: bool = False
) -> Campaign:
    """The tenant's campaign, or NotFound (also for another tenant's id)."""
    query = select(Campaign).where(Campaign.id == campaign_id, Campaign.tenant_id == tenant_id)
    if lock:
        await take_sqlite_writer(session)  # where FOR UPDATE means nothing
        query = query.with_for_update()
    campaign = await session.scalar(query)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


async def campaign_detail(session: AsyncSession, campaign: Campaign) -> CampaignDetail:
    """The campaign with its variations and numbers."""
    messages = await session.scalars(
        select(CampaignMessage)
        .where(CampaignMessage.campaign_id == campaign.id)
        .order_by(CampaignMessage.order, CampaignMessage.created_at)
    )
    instances = await session.scalars(
        select(CampaignInstance)
        .where(CampaignInstance.campaign_id == campaign.id)
        .order_by(CampaignInstance.instance_id)
    )
    return CampaignDetail.with_parts(campaign, list(messages), list(instances))


async def list_campaigns(
    session: AsyncSession, tenant_id: str, *, status: str | None, cursor: str | None, limit: int
) -> Page[CampaignItem]:
    """The tenant's campaigns, newest first."""
    query = select(Campaign).where(Campaign.tenant_id == tenant_id)
    if status:
        query = query.where(Campaign.status == status)
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(tuple_(Campaign.created_at, Campaign.id) < tuple_(at, last_id))
    rows = list(
        await session.scalars(query.order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit + 1))
    )
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return Page(items=[CampaignItem.of(row) for row in rows[:limit]], next_cursor=next_cursor)


async def list_campaign_contacts(
    session: AsyncSession,
    tenant_id: str,
    campaign_id: str,
    *,
    status: CampaignContactStatus | None,
    cursor: str | None,
    limit: int,
) -> Page[CampaignContactItem]:
    """The campaign's contacts in the order they were added, optionally of one status."""
    await get_campaign(session, tenant_id, campaign_id)
    query = (
        select(CampaignContact, Contact.phone, Contact.name)
        .join(Contact, Contact.id == CampaignContact.contact_id)
        .where(CampaignContact.campaign_id == campaign_id)
    )
    if status is not None:
        query = query.where(CampaignContact.status == status.value)
    if cursor:
        _, last_id = decode_cursor(cursor)
        query = query.where(CampaignContact.id > last_id)
    # Ids are time-ordered (UUIDv7): by id is the order they were added.
    rows = (await session.execute(query.order_by(CampaignContact.id).limit(limit + 1))).all()
    next_cursor = encode_cursor(None, rows[limit - 1][0].id) if len(rows) > limit else None
    return Page(
        items=[CampaignContactItem.of(row, phone, name) for row, phone, name in rows[:limit]],
        next_cursor=next_cursor,
    )


async def list_logs(
    session: AsyncSession,
    tenant_id: str,
    campaign_id: str,
    *,
    log_type: LogType | None,
    severity: Severity | None,
    limit: int,
    cursor: str | None = None,
) -> Page[CampaignLogItem]:
    """The campaign's logs, newest first."""
    query = select(CampaignLog).where(
        CampaignLog.campaign_id == campaign_id, CampaignLog.tenant_id == tenant_id
    )
    await get_campaign(session, tenant_id, campaign_id)
    if log_type is not None:
        query = query.where(CampaignLog.log_type == log_type.value)
    if severity is not None:
        query = query.where(CampaignLog.severity == severity.value)
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(tuple_(CampaignLog.created_at, CampaignLog.id) < tuple_(at, last_id))
    limit = min(limit, MAX_LIMIT)
    rows = list(
        await session.scalars(
            query.order_by(CampaignLog.created_at.desc(), CampaignLog.id.desc()).limit(limit + 1)
        )
    )
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return Page(items=[CampaignLogItem.of(row) for row in rows[:limit]], next_cursor=next_cursor)


async def campaign_stats(session: AsyncSession, tenant_id: str) -> CampaignStats:
    """Totals over the tenant's campaigns."""
    c = Campaign
    counted = await session.execute(
        select(c.status, func.count()).where(c.tenant_id == tenant_id).group_by(c.status)
    )
    by_status = {status: int(count) for status, count in counted}
    totals = (
        await session.execute(
            select(
                func.coalesce(func.sum(c.total_contacts), 0),
                func.coalesce(func.sum(c.sent_count), 0),
                func.coalesce(func.sum(c.delivered_count), 0),
                func.coalesce(func.sum(c.read_count), 0),
                func.coalesce(func.sum(c.failed_count), 0),
                func.coalesce(func.sum(c.opted_out_count), 0),
            ).where(c.tenant_id == tenant_id)
        )
    ).one()
    total, sent, delivered, read, failed, opted_out = (int(value) for value in totals)
    return CampaignStats(
        campaigns=sum(by_status.values()),
        by_status=by_status,
        total_contacts=total,
        sent=sent,
        delivered=delivered,
        read=read,
        failed=failed,
        opted_out=opted_out,
        delivery_rate=round(100.0 * delivered / sent, 2) if sent else 0.0,
        read_rate=round(100.0 * read / delivered, 2) if delivered else 0.0,
    )


# --------------------------------------------------------------------------------------------------
# Creating and editing


async def create_campaign(
    session: AsyncSession, tenant_id: str, data: CampaignCreate, *, user_id: str | None, now: datetime
) -> tuple[Campaign, ImportReport]:
    """Store a draft campaign with its variations, numbers and contacts; log `created`."""
    campaign = Campaign(
        id=new_id(),
        tenant_id=tenant_id,
        name=data.name.strip(),
        description=data.description,
        rotation_mode=data.rotation_mode.value,
        status=CampaignStatus.DRAFT.value,
        scheduled_at=data.scheduled_at,
        created_by=user_id,
        created_at=now,
        updated_at=now,
    )
    _apply_settings(campaign, data.settings)
    session.add(campaign)
    await session.flush()
    numbers = numbers_of(data.instance_ids, data.instances) or []
    await _replace_instances(session, campaign, numbers)
    await _replace_messages(session, campaign, data.messages, now, existing=[])
    report = await add_contacts(session, campaign, contact_rows(data.contacts), now=now, log=False)
    await logs.add_logs(session, [logs.log_campaign_created(campaign, user_id, len(numbers))])
    return campaign, report


async def update_campaign(
    session: AsyncSession,
    tenant_id: str,
    campaign_id: str,
    data: CampaignUpdate,
    *,
    user_id: str | None,
    now: datetime,
) -> Campaign:
    """Change a draft or paused campaign."""
    campaign = await get_campaign(session, tenant_id, campaign_id, lock=True)
    if campaign.status not in EDITABLE:
        raise Conflict(
            f"campaign is {campaign.status}; only draft or paused campaigns can be changed",
            code="campaign_not_editable",
            details={"status": campaign.status},
        )
    changes = data.model_dump(exclude_unset=True)
    new_logs: list[CampaignLog] = []
    if "name" in changes and data.name is not None:
        campaign.name = data.name.strip()
    if "description" in changes:
        campaign.description = data.description
    if data.rotation_mode is not None and data.rotation_mode.value != campaign.rotation_mode:
        new_logs.append(
            logs.new_log(
                campaign,
                LogType.ROTATION_CHANGED,
                Severity.INFO,
                f"Rotation changed from {campaign.rotation_mode} to {data.rotation_mode.value}",
                details={"from": campaign.rotation_mode, "to": data.rotation_mode.value},
                created_by=user_id,
            )
        )
        campaign.rotation_mode = data.rotation_mode.value
    if data.settings is not None:
        _apply_settings(campaign, data.settings)
    if "scheduled_at" in changes:
        campaign.scheduled_at = data.scheduled_at
    numbers = numbers_of(data.instance_ids, data.instances)
    if numbers is not None:
        await _replace_instances(session, campaign, numbers)
    if data.messages is not None:
        existing = list(
            await session.scalars(select(CampaignMessage).where(CampaignMessage.campaign_id == campaign.id))
        )
        await _replace_messages(session, campaign, data.messages, now, existing=existing)
    campaign.updated_at = now
    await logs.add_logs(session, new_logs)
    await session.flush()
    return campaign


async def delete_campaign(session: AsyncSession, tenant_id: str, campaign_id: str) -> None:
    """Delete a draft campaign (its logs stay: they are the audit trail)."""
    campaign = await get_campaign(session, tenant_id, campaign_id, lock=True)
    if campaign.status != CampaignStatus.DRAFT.value:
        raise Conflict(
            f"campaign is {campaign.status}; only a draft can be deleted (cancel it instead)",
            code="campaign_not_editable",
            details={"status": campaign.status},
        )
    await session.delete(campaign)
    await session.flush()


def _apply_pacing(target: Campaign | CampaignInstance, pacing: PacingIn) -> None:
    """Copy the pacing fields; a lone minimum interval is also the maximum (a fixed gap)."""
    for name in PACING_FIELDS:
        setattr(target, name, getattr(pacing, name))
    if pacing.interval_min_s is not None and pacing.interval_max_s is None:
        target.interval_max_s = pacing.interval_min_s


def _apply_settings(campaign: Campaign, settings: CampaignSettings) -> None:
    _apply_pacing(campaign, settings)
    campaign.warmup = settings.warmup
    campaign.send_window = settings.send_window.model_dump(mode="json") if settings.send_window else None


async def _replace_instances(
    session: AsyncSession, campaign: Campaign, numbers: Sequence[CampaignInstanceIn]
) -> None:
    """The campaign sends through exactly these of the tenant's numbers, with their overrides
    (pacing state of numbers it keeps is kept)."""
    wanted = {number.id: number for number in numbers}
    if wanted:
        found = set(
            await session.scalars(
                select(WhatsAppInstance.id).where(
                    WhatsAppInstance.id.in_(list(wanted)), WhatsAppInstance.tenant_id == campaign.tenant_id
                )
            )
        )
        missing = [instance_id for instance_id in wanted if instance_id not in found]
        if missing:
            raise NotFound(f"instance {missing[0]} not found")
    await session.execute(
        delete(CampaignInstance).where(
            CampaignInstance.campaign_id == campaign.id, CampaignInstance.instance_id.not_in(list(wanted))
        )
    )
    kept = {
        link.instance_id: link
        for link in await session.scalars(
            select(CampaignInstance).where(CampaignInstance.campaign_id == campaign.id)
        )
    }
    for instance_id, number in wanted.items():
        link = kept.get(instance_id)
        if link is None:
            link = CampaignInstance(
                campaign_id=campaign.id, instance_id=instance_id, tenant_id=campaign.tenant_id
            )
            session.add(link)
        _apply_pacing(link, number)
        link.warmup = number.warmup


async def _replace_messages(
    session: AsyncSession,
    campaign: Campaign,
    messages: Sequence[CampaignMessageIn],
    now: datetime,
    *,
    existing: Sequence[CampaignMessage],
) -> None:
    for old in existing:
        # Campaign contacts keep the id of the variation they got; the text is in their message.
        await session.delete(old)
    for index, message in enumerate(messages):
        session.add(
            CampaignMessage(
                id=new_id(),
                campaign_id=campaign.id,
                tenant_id=campaign.tenant_id,
                content=message.content,
                order=message.order if message.order else index,
                media=message.media.model_dump(mode="json") if message.media else None,
                usage_count=0,
                created_at=now,
                updated_at=now,
            )
        )


# --------------------------------------------------------------------------------------------------
# Contacts


def contact_rows(contacts: Iterable[CampaignContactIn]) -> list[ContactRow]:
    """Contacts from a request as rows numbered from 1."""
    return [
        ContactRow(phone=contact.phone, name=contact.name, variables=dict(contact.variables), line=index + 1)
        for index, contact in enumerate(contacts)
    ]


@dataclass
class _Chunk:
    """Rows of one statement, normalised, de-duplicated and not opted out."""

    phones: list[str]
    rows: dict[str, ContactRow]


async def add_contacts(
    session: AsyncSession, campaign: Campaign, rows: Iterable[ContactRow], *, now: datetime, log: bool = True
) -> ImportReport:
    """Add contacts: phones normalised, duplicates merged, invalid rows reported, opt-outs excluded."""
    if campaign.status in CLOSED:
        raise Conflict(
            f"campaign is {campaign.status}; contacts can no longer be added",
            code="campaign_not_editable",
            details={"status": campaign.status},
        )
    report = ImportReport()
    seen: set[str] = set()
    pending: list[ContactRow] = []
    for row in rows:
        pending.append(row)
        if len(pending) >= CONTACT_CHUNK:
            await _add_chunk(session, campaign, pending, seen, report, now)
            pending = []
    if pending:
        await _add_chunk(session, campaign, pending, seen, report, now)
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
    row = (
        await session.execute(
            select(CampaignContact, Contact.phone)
            .join(Contact, Contact.id == CampaignContact.contact_id)
            .where(CampaignContact.id == campaign_contact_id, CampaignContact.campaign_id == campaign.id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"contact {campaign_contact_id} is not in campaign {campaign_id}")
    contact, phone = row
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
        f"Contact {phone} removed",
        details={"phone": phone},
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
    seen: set[str],
    report: ImportReport,
    now: datetime,
) -> None:
    chunk = _normalise(rows, seen, report)
    if not chunk.phones:
        return
    opted_out = await opted_out_phones(session, campaign.tenant_id, chunk.phones)
    report.opted_out += len(opted_out)
    phones = [phone for phone in chunk.phones if phone not in opted_out]
    if not phones:
        return
    contact_ids = await _contact_ids(session, campaign.tenant_id, phones, chunk.rows, now)
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


def _normalise(rows: list[ContactRow], seen: set[str], report: ImportReport) -> _Chunk:
    chunk = _Chunk(phones=[], rows={})
    for row in rows:
        try:
            phone = canonical_listed_phone(row.phone)
        except InvalidPhone as exc:
            report.invalid += 1
            if len(report.rejected) < MAX_REJECTED_LISTED:
                report.rejected.append(RejectedRow(line=row.line, phone=row.phone[:40], reason=str(exc)))
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
    session: AsyncSession, tenant_id: str, phones: list[str], rows: dict[str, ContactRow], now: datetime
) -> dict[str, str]:
    """The contact id of each phone, creating the contacts that do not exist yet."""
    by_variant = {variant: phone for phone in phones for variant in phone_variants(phone)}
    ids: dict[str, str] = {}

    async def load() -> None:
        found = await session.execute(
            select(Contact.phone, Contact.id).where(
                Contact.tenant_id == tenant_id, one_of(session, Contact.phone, list(by_variant))
            )
        )
        for variant, contact_id in found:
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


async def watch_campaign(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str, campaign_id: str, *, every: float = 0.5
) -> AsyncIterator[CampaignItem]:
    """The campaign now, then again each time it changes (looked at `every` seconds), until it
    completes or is cancelled (that state is the last one yielded)."""
    seen = None
    while True:
        async with sessions() as session:
            campaign = await get_campaign(session, tenant_id, campaign_id)
        if campaign.updated_at != seen:
            seen = campaign.updated_at
            yield CampaignItem.of(campaign)
        if campaign.status in CLOSED:
            return
        await asyncio.sleep(every)


# --------------------------------------------------------------------------------------------------
# Life cycle


async def transition(
    session: AsyncSession,
    tenant_id: str,
    campaign_id: str,
    action: Action,
    *,
    user_id: str | None,
    now: datetime,
) -> Campaign:
    """Start, pause, resume or cancel; 409 invalid_transition (with the current status) otherwise."""
    await lock_campaigns(session, [campaign_id])  # a dispatcher's pass finishes first
    campaign = await get_campaign(session, tenant_id, campaign_id, lock=True)
    current = CampaignStatus(campaign.status)
    target = TRANSITIONS[action].get(current)
    if target is None:
        raise Conflict(
            f"cannot {action.value} a campaign that is {current.value}",
            code="invalid_transition",
            details={"status": current.value},
        )
    if action is Action.START:
        await _check_startable(session, campaign)
        if campaign.scheduled_at is not None and campaign.scheduled_at > now:
            target = CampaignStatus.SCHEDULED
    new_logs = _enter(campaign, target, action, user_id, now)
    # Within a second means also the messages already queued: those no sender took come back.
    if target is CampaignStatus.PAUSED:
        await withdraw_queued(session, campaign, back_to=CampaignContactStatus.PENDING, now=now)
    if target is CampaignStatus.CANCELLED:
        await withdraw_queued(session, campaign, back_to=CampaignContactStatus.SKIPPED, now=now)
        await _skip_pending(session, campaign, "campaign_cancelled", now)
    campaign.updated_at = now
    await logs.add_logs(session, new_logs)
    await session.flush()
    return campaign


def _enter(
    campaign: Campaign, target: CampaignStatus, action: Action, user_id: str | None, now: datetime
) -> list[CampaignLog]:
    campaign.status = target.value
    if target is CampaignStatus.SCHEDULED:
        return []
    if target is CampaignStatus.RUNNING:
        campaign.paused_reason = None
        if action is Action.START:
            campaign.started_at = now
            return [logs.log_campaign_started(campaign, user_id)]
        return [
            logs.new_log(campaign, LogType.RESUMED, Severity.INFO, "Campaign resumed", created_by=user_id)
        ]
    if target is CampaignStatus.PAUSED:
        campaign.paused_reason = PausedReason.MANUAL.value
        return [logs.new_log(campaign, LogType.PAUSED, Severity.INFO, "Campaign paused", created_by=user_id)]
    campaign.finished_at = now
    campaign.paused_reason = None
    return [
        logs.new_log(campaign, LogType.CANCELLED, Severity.WARNING, "Campaign cancelled", created_by=user_id)
    ]


async def _check_startable(session: AsyncSession, campaign: Campaign) -> None:
    missing = []
    if not await session.scalar(select(func.count()).where(CampaignMessage.campaign_id == campaign.id)):
        missing.append("a message")
    if not await session.scalar(select(func.count()).where(CampaignInstance.campaign_id == campaign.id)):
        missing.append("an instance")
    if campaign.total_contacts == 0:
        missing.append("a contact")
    if missing:
        raise InvalidInput(
            f"a campaign needs at least {', '.join(missing)} to start", code="campaign_incomplete"
        )


async def _skip_pending(session: AsyncSession, campaign: Campaign, reason: str, now: datetime) -> None:
    """Contacts not yet taken end `skipped` with the reason; ones in flight settle on their own."""
    skipped = len(
        (
            await session.execute(
                update(campaign_contacts_table)
                .where(
                    campaign_contacts_table.c.campaign_id == campaign.id,
                    campaign_contacts_table.c.status == CampaignContactStatus.PENDING.value,
                )
                .values(status=CampaignContactStatus.SKIPPED.value, error_code=reason, updated_at=now)
                .returning(campaign_contacts_table.c.id)
            )
        ).all()
    )
    campaign.pending_count -= skipped
    campaign.skipped_count += skipped


async def start_due_campaigns(session: AsyncSession, now: datetime) -> list[Campaign]:
    """Scheduled campaigns whose time has come start running (each logs `started`)."""
    due = list(
        await session.scalars(
            select(Campaign)
            .where(Campaign.status == CampaignStatus.SCHEDULED.value, Campaign.scheduled_at <= now)
            .with_for_update(skip_locked=True)
        )
    )
    for campaign in due:
        campaign.status = CampaignStatus.RUNNING.value
        campaign.started_at = now
        campaign.updated_at = now
    await logs.add_logs(session, [logs.log_campaign_started(campaign, None) for campaign in due])
    await session.flush()
    return due
