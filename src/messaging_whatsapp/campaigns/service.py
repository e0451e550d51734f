"""Creating, editing and deleting campaigns: their settings and pacing, numbers and variations.

Reading campaigns is in campaigns/queries.py, their contacts in campaigns/contacts.py, and their
life cycle in campaigns/lifecycle.py; sending belongs to the dispatcher (campaigns/dispatcher.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.contacts import add_contacts, contact_rows
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignInstance,
    CampaignLog,
    CampaignMessage,
    CampaignStatus,
    LogType,
    Severity,
)
from messaging_whatsapp.campaigns.queries import get_campaign
from messaging_whatsapp.campaigns.schemas import (
    PACING_FIELDS,
    CampaignCreate,
    CampaignInstanceIn,
    CampaignMessageIn,
    CampaignSettings,
    CampaignUpdate,
    ImportReport,
    PacingIn,
    numbers_of,
)
from messaging_whatsapp.campaigns.templates import check_variations
from messaging_whatsapp.campaigns.variations import variation_row
from messaging_whatsapp.db import new_id
from messaging_whatsapp.errors import Conflict, NotFound
from messaging_whatsapp.instances.models import WhatsAppInstance

EDITABLE = frozenset({CampaignStatus.DRAFT.value, CampaignStatus.PAUSED.value})


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
    await check_variations(session, campaign)
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
    if numbers is not None or data.messages is not None:
        await check_variations(session, campaign)
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
                order=message.order if message.order else index,
                **variation_row(message),
                usage_count=0,
                created_at=now,
                updated_at=now,
            )
        )
