"""One dispatcher pass over one running campaign, inside the dispatcher's transaction.

In order: complete the campaign when no contact is left to try or in flight; outside its send
window, wait; pause the numbers whose health fell or whose last sends failed in a row (and let
recovered ones send again); work out which numbers may send now and how much
(campaigns/capacity.py: pacing, warm-up, daily limits, caps, messages still unresolved); take that
many contacts and hand them out (campaigns/handout.py); move the numbers' pacing and the
campaign's counters on; log the limits that held contacts back and say why the campaign waits
when it sent nothing (campaigns/waiting.py).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.capacity import BATCH_SIZE, Hold, capacities, next_midnight, plan_holds
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
from messaging_whatsapp.campaigns.rotation import assign
from messaging_whatsapp.campaigns.templates import fit_to_window
from messaging_whatsapp.campaigns.usage import campaign_sends_since, portfolio_budgets, recent_usage
from messaging_whatsapp.campaigns.waiting import log_holds, set_waiting, waiting_reason, window_hold
from messaging_whatsapp.inbox.models import Message, SendState
from messaging_whatsapp.instances.health import HealthView
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.tenancy.models import Tenant

# A number whose messages failed this many times in a row (failures about the number) is paused
# for the campaign, with `health_issue` and `instance_paused`, until it recovers or is resumed.
CIRCUIT_FAILURES = 3
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
    # Held back only until the senders resolve some of a number's messages: worth another pass soon.
    senders_behind: bool = False
    message_ids: list[str] = field(default_factory=list)


async def run_pass(
    session: AsyncSession, campaign: Campaign, now: datetime, *, warmup: WarmupSchedule, rng: random.Random
) -> PassResult:
    """One pass over one running campaign in the caller's transaction: complete it when nothing is
    left, otherwise hand out what its numbers may send now, and say what holds the rest back."""
    result = PassResult()
    if await _finished(session, campaign, now):
        result.completed = True
        return result
    tenant_zone = (
        await session.scalar(select(Tenant.timezone).where(Tenant.id == campaign.tenant_id)) or "UTC"
    )
    if not in_send_window(campaign.send_window, tenant_zone, now):
        assert campaign.send_window is not None
        hold = window_hold(campaign.send_window, tenant_zone, now)
        await _wait(session, campaign, [hold], [], now)
        return result
    links = await _links(session, campaign)
    await logs.add_logs(session, _health_changes(campaign, links, now))
    instances = [instance for _, instance in links]
    in_flight = await _in_flight(session, [instance.id for instance in instances])
    all_paces = {instance.id: pace_for(campaign, link, instance) for link, instance in links}
    capped = [i for i, pace in all_paces.items() if pace.capped or pace.max_identical_per_hour]
    usage = await recent_usage(session, instances, capped, now)
    campaign_today: dict[str, int] = {}
    if any(pace.campaign_daily_limit is not None for pace in all_paces.values()):
        since = next_midnight(tenant_zone, now) - timedelta(days=1)
        campaign_today = await campaign_sends_since(session, campaign.id, since)
    room = capacities(links, all_paces, in_flight, campaign_today, usage, now, warmup, tenant_zone)
    result.senders_behind = room.window_full
    capacity = sum(min(slot.capacity, slot.daily_remaining) for slot in room.slots)
    taken = await take_contacts(session, campaign, min(capacity, BATCH_SIZE), now) if capacity else []
    if not taken:
        await _wait(session, campaign, room.holds, room.idle, now)
        return result
    taken, opted_out = await without_opt_outs(session, campaign, taken, now)
    result.opted_out = len(opted_out)
    chosen = assign(
        RotationMode(campaign.rotation_mode),
        room.slots,
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
    pairs = list(zip(taken, chosen, strict=False))
    planned, refused = plan(pairs, variations, instances, all_paces, usage, budgets)
    planned = await fit_to_window(session, campaign, planned, variations, instances, now)
    # Capacity was counted before the contacts, and limits may refuse some: those wait.
    await give_back(session, [contact for contact, _ in taken[len(chosen) :]] + refused)
    message_ids = await hand_out(session, campaign, planned, variations, now)
    await _move_pacing(session, campaign, links, room.paces, [h.instance_id for h in planned], now, rng)
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
    holds = room.holds + plan_holds(pairs, refused, instances, usage, budgets, now)
    if planned:
        await log_holds(session, campaign, holds, now)
        set_waiting(campaign, None, now)
    else:
        await _wait(session, campaign, holds, room.idle, now)
    result.handed = len(planned)
    result.message_ids = message_ids
    return result


async def _wait(
    session: AsyncSession, campaign: Campaign, holds: list[Hold], idle: list[tuple[str, str]], now: datetime
) -> None:
    """Nothing went out in this pass: log the limits that hold it, and say why it waits."""
    if campaign.pending_count <= 0:
        # Nothing left to hold back: what remains is on its way.
        set_waiting(campaign, None, now)
        return
    await log_holds(session, campaign, holds, now)
    set_waiting(campaign, waiting_reason(holds, idle), now)


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
        # The circuit: a few failures in a row about the number stop it here before its score
        # has fallen (an unpaced number would otherwise fail a whole batch).
        tripped = health.consecutive_errors >= CIRCUIT_FAILURES
        if (tripped or not health.is_healthy) and not link.paused:
            reason = f"health score {health.score:g}, {health.consecutive_errors} errors in a row"
            link.paused, link.paused_reason = True, reason
            what = "Failures in a row" if tripped and health.is_healthy else "Health below the threshold"
            issue = logs.log_health_issue(campaign, instance.id, f"{what}: {reason}", health.score)
            paused = logs.log_instance_paused(campaign, instance.id, reason, health.score)
            issue.created_at = paused.created_at = now
            new_logs += [issue, paused]
        elif (
            health.is_healthy
            and not tripped
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


async def _move_pacing(
    session: AsyncSession,
    campaign: Campaign,
    links: list[tuple[CampaignInstance, WhatsAppInstance]],
    paces: dict[str, Pace],
    handed_by: list[str],
    now: datetime,
    rng: random.Random,
) -> None:
    counts = Counter(handed_by)
    selected = []
    for link, instance in links:
        sent = counts.get(instance.id)
        if not sent:
            continue
        pace = paces[instance.id]
        if link.sent_count == 0:
            # Once per number and campaign, not per message.
            reason = f"{instance.display_number} chosen by {campaign.rotation_mode} rotation"
            selected.append(logs.log_instance_selected(campaign, instance.id, reason, now))
        link.sent_count += sent
        link.last_sent_at = now
        link.next_send_at = pace.next_send_at(now, rng)
        if instance.warmup_started_at != warmup_start(instance, now):
            instance.warmup_started_at = warmup_start(instance, now)
    await logs.add_logs(session, selected)
