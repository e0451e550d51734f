"""One dispatcher pass over one running campaign, inside the dispatcher's transaction.

In order: complete the campaign when no contact is left to try or in flight; outside its send
window, wait; pause the numbers whose health fell (and let recovered ones send again); work out
which numbers may send now and how much (pacing, warm-up, daily limits, messages still in flight);
take that many contacts and hand them out (campaigns/handout.py); move the numbers' pacing and the
campaign's counters on.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.handout import give_back, hand_out, plan, take_contacts, without_opt_outs
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignContactStatus,
    CampaignInstance,
    CampaignLog,
    CampaignMessage,
    CampaignStatus,
    LogType,
    RotationMode,
    Severity,
    campaigns_table,
)
from messaging_whatsapp.campaigns.pacing import Pace, WarmupSchedule, in_send_window, pace_for, warmup_start
from messaging_whatsapp.campaigns.rotation import Slot, assign
from messaging_whatsapp.campaigns.templates import fit_to_window
from messaging_whatsapp.campaigns.usage import RecentUsage, portfolio_budgets, recent_usage
from messaging_whatsapp.inbox.models import Message, SendState
from messaging_whatsapp.instances.health import HealthView, unavailable_reason
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.tenancy.models import Tenant

# Contacts one pass may take from one campaign (numbers sending as fast as allowed).
BATCH_SIZE = 500
IN_FLIGHT = [
    SendState.PENDING.value,
    SendState.WAITING.value,
    SendState.CLAIMED.value,
    SendState.UNKNOWN.value,
]


@dataclass
class PassResult:
    """What one pass over one campaign did."""

    handed: int = 0
    opted_out: int = 0
    completed: bool = False
    message_ids: list[str] = field(default_factory=list)


async def run_pass(
    session: AsyncSession, campaign: Campaign, now: datetime, *, warmup: WarmupSchedule, rng: random.Random
) -> PassResult:
    """One pass over one running campaign in the caller's transaction: complete it when nothing is
    left, otherwise hand out what its numbers may send now."""
    result = PassResult()
    if await _finished(session, campaign, now):
        result.completed = True
        return result
    tenant_zone = await session.scalar(select(Tenant.timezone).where(Tenant.id == campaign.tenant_id))
    if not in_send_window(campaign.send_window, tenant_zone or "UTC", now):
        return result
    links = await _links(session, campaign)
    await logs.add_logs(session, _health_changes(campaign, links, now))
    instances = [instance for _, instance in links]
    in_flight = await _in_flight(session, [instance.id for instance in instances])
    all_paces = {instance.id: pace_for(campaign, link, instance) for link, instance in links}
    capped = [i for i, pace in all_paces.items() if pace.capped or pace.max_identical_per_hour]
    usage = await recent_usage(session, instances, capped, now)
    slots, paces = _slots(links, all_paces, in_flight, usage, now, warmup)
    capacity = sum(min(slot.capacity, slot.daily_remaining) for slot in slots)
    if capacity == 0:
        return result
    taken = await take_contacts(session, campaign, min(capacity, BATCH_SIZE), now)
    if not taken:
        return result
    taken, opted_out = await without_opt_outs(session, campaign, taken, now)
    result.opted_out = len(opted_out)
    chosen = assign(
        RotationMode(campaign.rotation_mode),
        slots,
        len(taken),
        campaign.sent_count + campaign.failed_count,
    )
    variations = list(
        await session.scalars(
            select(CampaignMessage)
            .where(CampaignMessage.campaign_id == campaign.id)
            .order_by(CampaignMessage.order)
        )
    )
    budgets = portfolio_budgets(instances, usage)
    planned, refused = plan(
        list(zip(taken, chosen, strict=False)), variations, instances, all_paces, usage, budgets
    )
    planned = await fit_to_window(session, campaign, planned, variations, instances, now)
    # Capacity was counted before the contacts, and limits may refuse some: those wait.
    await give_back(session, [contact for contact, _ in taken[len(chosen) :]] + refused)
    message_ids = await hand_out(session, campaign, planned, variations, now)
    await _move_pacing(session, links, paces, [handout.instance_id for handout in planned], now, rng)
    k = campaigns_table.c
    # Increments, not values: senders and receipts move the other counters meanwhile.
    await session.execute(
        update(campaigns_table)
        .where(k.id == campaign.id)
        .values(
            pending_count=k.pending_count - (len(planned) + len(opted_out)),
            opted_out_count=k.opted_out_count + len(opted_out),
            updated_at=now,
        )
    )
    result.handed = len(planned)
    result.message_ids = message_ids
    return result


async def _finished(session: AsyncSession, campaign: Campaign, now: datetime) -> bool:
    """Complete the campaign when no contact is left to try or in flight."""
    left = await session.scalar(
        select(func.count()).where(
            CampaignContact.campaign_id == campaign.id,
            CampaignContact.status.in_(
                [CampaignContactStatus.PENDING.value, CampaignContactStatus.SENDING.value]
            ),
        )
    )
    if left:
        return False
    campaign.status = CampaignStatus.COMPLETED.value
    campaign.finished_at = now
    campaign.updated_at = now
    await logs.add_logs(
        session,
        [
            logs.new_log(
                campaign,
                LogType.COMPLETED,
                Severity.INFO,
                f"Campaign '{campaign.name}' completed",
                details={"sent": campaign.sent_count, "failed": campaign.failed_count},
                at=now,
            )
        ],
    )
    return True


async def _links(
    session: AsyncSession, campaign: Campaign
) -> list[tuple[CampaignInstance, WhatsAppInstance]]:
    rows = await session.execute(
        select(CampaignInstance, WhatsAppInstance)
        .join(WhatsAppInstance, WhatsAppInstance.id == CampaignInstance.instance_id)
        .where(CampaignInstance.campaign_id == campaign.id)
    )
    return [(link, instance) for link, instance in rows]


def _health_changes(
    campaign: Campaign, links: list[tuple[CampaignInstance, WhatsAppInstance]], now: datetime
) -> list[CampaignLog]:
    """A number whose health fell below the threshold is paused for this campaign (the others
    carry on); it takes part again once its health recovers."""
    new_logs = []
    for link, instance in links:
        health = HealthView.of(instance, now)
        if not health.is_healthy and not link.paused:
            reason = f"health score {health.score:g}, {health.consecutive_errors} errors in a row"
            link.paused, link.paused_reason = True, reason
            new_logs.append(
                logs.log_health_issue(
                    campaign, instance.id, f"Health below the threshold: {reason}", health.score
                )
            )
            new_logs.append(logs.log_instance_paused(campaign, instance.id, reason, health.score))
        elif (
            health.is_healthy
            and link.paused
            and link.paused_reason
            and link.paused_reason.startswith("health")
        ):
            link.paused, link.paused_reason = False, None
            new_logs.append(
                logs.new_log(
                    campaign,
                    LogType.INSTANCE_RESUMED,
                    Severity.INFO,
                    "Health recovered; the number sends for this campaign again",
                    instance_id=instance.id,
                    instance_health_score=health.score,
                    at=now,
                )
            )
    return new_logs


async def _in_flight(session: AsyncSession, instance_ids: list[str]) -> dict[str, int]:
    """Messages of these numbers on their way to the provider (queued, retrying, being sent)."""
    if not instance_ids:
        return {}
    counted = await session.execute(
        select(Message.instance_id, func.count())
        .where(Message.send_state.in_(IN_FLIGHT), Message.instance_id.in_(instance_ids))
        .group_by(Message.instance_id)
    )
    return {instance_id: int(count) for instance_id, count in counted}


def _slots(
    links: list[tuple[CampaignInstance, WhatsAppInstance]],
    all_paces: dict[str, Pace],
    in_flight: dict[str, int],
    usage: RecentUsage,
    now: datetime,
    warmup: WarmupSchedule,
) -> tuple[list[Slot], dict[str, Any]]:
    """The numbers that may send now, with their capacity for this pass.

    Today's count includes messages handed out but not sent yet, so a limit holds while the
    senders catch up.
    """
    slots = []
    paces = {}
    for link, instance in links:
        if link.paused or unavailable_reason(instance, now) is not None:
            continue
        if link.next_send_at is not None and link.next_send_at > now:
            continue
        pace = all_paces[instance.id]
        health = HealthView.of(instance, now)
        limit = pace.daily_limit
        if pace.warmup:
            limit = warmup.cap(warmup_start(instance, now), now, limit)
        sent_today = health.sent_today + in_flight.get(instance.id, 0)
        remaining = max(limit - sent_today, 0)
        if remaining == 0:
            continue
        capacity = 1 if pace.paced else BATCH_SIZE
        if pace.capped:
            capacity = min(capacity, usage.room(instance.id, pace))
        if capacity == 0:
            continue
        paces[instance.id] = (pace, instance)
        slots.append(
            Slot(
                instance_id=instance.id,
                health_score=health.score,
                sent_today=sent_today,
                capacity=capacity,
                daily_remaining=remaining,
                daily_limit=max(limit, 1),
            )
        )
    return slots, paces


async def _move_pacing(
    session: AsyncSession,
    links: list[tuple[CampaignInstance, WhatsAppInstance]],
    paces: dict[str, Any],
    handed_by: list[str],
    now: datetime,
    rng: random.Random,
) -> None:
    counts = Counter(handed_by)
    for link, instance in links:
        sent = counts.get(instance.id)
        if not sent:
            continue
        pace, _ = paces[instance.id]
        link.sent_count += sent
        link.last_sent_at = now
        link.next_send_at = pace.next_send_at(now, rng)
        if instance.warmup_started_at != warmup_start(instance, now):
            instance.warmup_started_at = warmup_start(instance, now)
