"""Reading campaigns: one campaign (optionally locked for a change), its detail, the tenant's
campaigns, a campaign's contacts and logs (cursor-paginated), and totals over the tenant's campaigns.
"""

from __future__ import annotations

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignContactStatus,
    CampaignInstance,
    CampaignLog,
    CampaignMessage,
    LogType,
    Severity,
)
from messaging_whatsapp.campaigns.report_schemas import CampaignLogItem, CampaignStats
from messaging_whatsapp.campaigns.schemas import (
    CampaignContactItem,
    CampaignDetail,
    CampaignItem,
)
from messaging_whatsapp.db import take_sqlite_writer
from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.inbox.models import Contact
from messaging_whatsapp.pagination import MAX_LIMIT, Page, decode_cursor, decode_time_cursor, encode_cursor


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
