"""A campaign's life cycle: the actions (start, pause, resume, cancel) and the transitions they
allow, starting scheduled campaigns when their time comes, and watching one until it closes.

Sending belongs to the dispatcher (campaigns/dispatcher.py); a transition decides what may happen
and records it, with a log for each step.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.locks import lock_campaigns
from messaging_whatsapp.campaigns.models import (
    Campaign,
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
from messaging_whatsapp.campaigns.queries import get_campaign
from messaging_whatsapp.campaigns.schemas import CampaignItem
from messaging_whatsapp.campaigns.templates import (
    check_templates_at_start,
    check_variations,
    check_window_at_start,
)
from messaging_whatsapp.errors import Conflict, InvalidInput, NotFound

# A campaign in these never moves again: its contacts are fixed and there is nothing left to watch.
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
        await check_variations(session, campaign)
        await check_templates_at_start(session, campaign)
        await check_window_at_start(session, campaign, now)
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


async def watch_campaign(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str, campaign_id: str, *, every: float = 0.5
) -> AsyncIterator[CampaignItem]:
    """The campaign now, then again each time it changes (looked at `every` seconds), until it
    completes or is cancelled (that state is the last one yielded) or is deleted."""
    seen = None
    while True:
        async with sessions() as session:
            try:
                campaign = await get_campaign(session, tenant_id, campaign_id)
            except NotFound:
                if seen is None:
                    raise
                return  # deleted while watched: nothing more will happen to it
        if campaign.updated_at != seen:
            seen = campaign.updated_at
            yield CampaignItem.of(campaign)
        if campaign.status in CLOSED:
            return
        await asyncio.sleep(every)
