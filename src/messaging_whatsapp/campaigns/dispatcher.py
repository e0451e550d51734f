"""The campaign dispatcher: hands each running campaign's contacts to the outbound path.

One pass over a campaign is one transaction: take the contacts it may send now (pending ->
sending), drop the ones who opted out, pick a number for each by the rotation mode, store their
messages as queued, move the numbers' pacing on; commit; then offer the messages to the senders.
A dispatcher killed mid-pass leaves nothing half-done (the transaction rolls back, the contacts are
still pending); one killed after the commit leaves queued messages that the senders' sweep offers
again. Contacts are taken with SKIP LOCKED (PostgreSQL) or under SQLite's single writer, so
several dispatchers never take the same contact. From `sending` on, the sender and the receipts
move a contact (campaigns/progress.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from messaging_whatsapp.automation.service import opted_out_phones
from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.lifecycle import start_due_campaigns
from messaging_whatsapp.campaigns.locks import try_lock_campaign
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
    campaign_contacts_table,
    campaigns_table,
)
from messaging_whatsapp.campaigns.pacing import (
    Pace,
    WarmupSchedule,
    in_send_window,
    pace_for,
    warmup_start,
)
from messaging_whatsapp.campaigns.rotation import Slot, assign
from messaging_whatsapp.campaigns.schemas import CampaignItem
from messaging_whatsapp.campaigns.usage import RecentUsage, portfolio_budgets, portfolio_of, recent_usage
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import generic_plans, new_id, one_of, rows_table, utcnow
from messaging_whatsapp.inbox.models import Contact, Message, SenderType, SendState
from messaging_whatsapp.instances.health import HealthView, unavailable_reason
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.sending.sender import offer_messages
from messaging_whatsapp.sending.service import REOFFER_AFTER, BulkMessage, store_queued_messages
from messaging_whatsapp.tenancy.models import Tenant

logger = logging.getLogger(__name__)

PASS_SECONDS = 0.5
# A queued campaign message older than this at start-up may have lost its stream entry.
ORPHAN_AFTER = timedelta(seconds=5)
# Live progress: at most one `campaign_updated` per campaign this often.
PROGRESS_INTERVAL = timedelta(milliseconds=500)
# How far back a progress check looks: a campaign's updated_at is the time its writer's
# transaction started, which may commit seconds later, and a change held back by the interval
# must still be found by the next checks.
PROGRESS_LOOKBACK = timedelta(seconds=30)
# Contacts one pass may take from one campaign (numbers sending as fast as allowed).
BATCH_SIZE = 500
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


def render(content: str, variables: dict[str, Any] | None) -> str:
    """Fill `{{variable}}`s from the contact's values (unknown ones become empty)."""
    values = {**DEFAULT_VARIABLE_VALUES, **(variables or {})}

    def value(match: re.Match[str]) -> str:
        return str(values.get(match.group(1), "")).strip()

    return re.sub(r"[ \t]+([,.!?])", r"\1", VARIABLE.sub(value, content))


class Dispatcher:
    """Runs passes over the running campaigns until told to stop."""

    def __init__(
        self,
        context: EngineContext,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        warmup: WarmupSchedule | None = None,
    ) -> None:
        self._context = context
        self._clock = clock
        self._rng = rng or random.Random()
        settings = context.settings
        self._progress_checked_at = self._clock() - PROGRESS_INTERVAL
        self._published: dict[str, tuple[datetime, float]] = {}
        self._warmup = warmup or WarmupSchedule(
            settings.campaign_warmup_first_day, settings.campaign_warmup_growth
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; errors are logged and the next pass tries again."""
        try:
            await self.reoffer_orphans()
        except Exception:
            logger.exception("could not re-offer queued campaign messages; the senders' sweep will")
        while not stop.is_set():
            try:
                handed = await self.run_once()
            except Exception:
                logger.exception("campaign dispatch pass failed; retrying")
                handed = 0
            if handed == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), PASS_SECONDS)

    async def reoffer_orphans(self) -> int:
        """On start: offer again the campaign messages a killed dispatcher stored but never offered.

        Without this they wait for the senders' re-offer sweep (minutes). An entry offered twice
        is harmless: a message is claimed once.
        """
        now = self._clock()
        async with self._context.sessions() as session, session.begin():
            orphans = (
                await session.execute(
                    update(Message)
                    .where(
                        Message.sender_type == SenderType.CAMPAIGN.value,
                        Message.send_state == SendState.PENDING.value,
                        Message.created_at < now - ORPHAN_AFTER,
                        Message.next_attempt_at > now,
                    )
                    .values(next_attempt_at=now + REOFFER_AFTER)
                    .returning(Message.id, Message.tenant_id)
                )
            ).all()
        await offer_messages(self._context, [(row.id, row.tenant_id) for row in orphans])
        if orphans:
            logger.info("re-offered %d queued campaign messages", len(orphans))
        return len(orphans)

    async def run_once(self) -> int:
        """One pass over every running campaign; returns how many contacts were handed out."""
        now = self._clock()
        async with self._context.sessions() as session, session.begin():
            await start_due_campaigns(session, now)
            campaign_ids = list(
                await session.scalars(
                    select(Campaign.id)
                    .where(Campaign.status == CampaignStatus.RUNNING.value)
                    .order_by(Campaign.id)
                )
            )
        handed = 0
        for campaign_id in campaign_ids:
            result = await self.dispatch(campaign_id)
            handed += result.handed
        await self.publish_progress()
        return handed

    async def publish_progress(self) -> int:
        """`campaign_updated` on the events stream for campaigns whose counters or status moved,
        at most once per PROGRESS_INTERVAL each; returns how many were published."""
        since = self._progress_checked_at
        self._progress_checked_at = self._clock()
        async with self._context.sessions() as session:
            query = select(Campaign).where(Campaign.updated_at >= since - PROGRESS_LOOKBACK)
            changed = list(await session.scalars(query))
        entries = []
        moment = time.monotonic()
        self._forget_published(moment)
        for campaign in changed:
            last = self._published.get(campaign.id)
            if last is not None and (
                last[0] == campaign.updated_at or moment - last[1] < PROGRESS_INTERVAL.total_seconds()
            ):
                continue
            self._published[campaign.id] = (campaign.updated_at, moment)
            entries.append(_progress_event(campaign, self._clock()))
        if entries:
            await self._context.streams.append_many(self._context.names.events, entries)
        return len(entries)

    def _forget_published(self, moment: float) -> None:
        """Drop what was published about campaigns no progress check can see again."""
        horizon = 2 * PROGRESS_LOOKBACK.total_seconds()
        for campaign_id, (_, published_at) in list(self._published.items()):
            if moment - published_at > horizon:
                del self._published[campaign_id]

    async def dispatch(self, campaign_id: str) -> PassResult:
        """One pass over one campaign, committed, then its messages offered to the senders."""
        now = self._clock()
        async with self._context.sessions() as session, session.begin():
            # Another dispatcher's pass has it: that one goes on.
            if not await try_lock_campaign(session, campaign_id):
                return PassResult()
            campaign = await session.scalar(select(Campaign).where(Campaign.id == campaign_id))
            if campaign is None or campaign.status != CampaignStatus.RUNNING.value:
                return PassResult()
            result = await self._pass(session, campaign, now)
        if result.message_ids:
            await offer_messages(
                self._context, [(message_id, campaign.tenant_id) for message_id in result.message_ids]
            )
        return result

    async def _pass(self, session: AsyncSession, campaign: Campaign, now: datetime) -> PassResult:
        result = PassResult()
        if await self._finished(session, campaign, now):
            result.completed = True
            return result
        tenant_zone = await session.scalar(select(Tenant.timezone).where(Tenant.id == campaign.tenant_id))
        if not in_send_window(campaign.send_window, tenant_zone or "UTC", now):
            return result
        links = await self._links(session, campaign)
        await logs.add_logs(session, _health_changes(campaign, links, now))
        instances = [instance for _, instance in links]
        in_flight = await _in_flight(session, [instance.id for instance in instances])
        all_paces = {instance.id: pace_for(campaign, link, instance) for link, instance in links}
        capped = [i for i, pace in all_paces.items() if pace.capped or pace.max_identical_per_hour]
        usage = await recent_usage(session, instances, capped, now)
        slots, paces = self._slots(links, all_paces, in_flight, usage, now)
        capacity = sum(min(slot.capacity, slot.daily_remaining) for slot in slots)
        if capacity == 0:
            return result
        taken = await _take_contacts(session, campaign, min(capacity, BATCH_SIZE), now)
        if not taken:
            return result
        taken, opted_out = await _without_opt_outs(session, campaign, taken, now)
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
        planned, refused = _plan(
            list(zip(taken, chosen, strict=False)), variations, instances, all_paces, usage, budgets
        )
        # Capacity was counted before the contacts, and limits may refuse some: those wait.
        await _give_back(session, [contact for contact, _ in taken[len(chosen) :]] + refused)
        message_ids = await self._hand_out(session, campaign, planned, variations, now)
        await self._move_pacing(session, links, paces, [handout.instance_id for handout in planned], now)
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

    async def _finished(self, session: AsyncSession, campaign: Campaign, now: datetime) -> bool:
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
        self, session: AsyncSession, campaign: Campaign
    ) -> list[tuple[CampaignInstance, WhatsAppInstance]]:
        rows = await session.execute(
            select(CampaignInstance, WhatsAppInstance)
            .join(WhatsAppInstance, WhatsAppInstance.id == CampaignInstance.instance_id)
            .where(CampaignInstance.campaign_id == campaign.id)
        )
        return [(link, instance) for link, instance in rows]

    def _slots(
        self,
        links: list[tuple[CampaignInstance, WhatsAppInstance]],
        all_paces: dict[str, Pace],
        in_flight: dict[str, int],
        usage: RecentUsage,
        now: datetime,
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
                limit = self._warmup.cap(warmup_start(instance, now), now, limit)
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

    async def _hand_out(
        self,
        session: AsyncSession,
        campaign: Campaign,
        planned: list[_Handout],
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
            )
            for h in planned
        ]
        async with generic_plans(session):  # the writes' foreign-key checks: primary-key lookups
            message_ids = await store_queued_messages(
                session, campaign.tenant_id, items, sender_type=SenderType.CAMPAIGN, now=now
            )
            await _record_handouts(session, planned, message_ids)
        used = Counter(h.variation.id for h in planned)
        for variation in variations:
            variation.usage_count += used[variation.id]
        return message_ids

    async def _move_pacing(
        self,
        session: AsyncSession,
        links: list[tuple[CampaignInstance, WhatsAppInstance]],
        paces: dict[str, Any],
        handed_by: list[str],
        now: datetime,
    ) -> None:
        counts = Counter(handed_by)
        for link, instance in links:
            sent = counts.get(instance.id)
            if not sent:
                continue
            pace, _ = paces[instance.id]
            link.sent_count += sent
            link.last_sent_at = now
            link.next_send_at = pace.next_send_at(now, self._rng)
            if instance.warmup_started_at != warmup_start(instance, now):
                instance.warmup_started_at = warmup_start(instance, now)


@dataclass(frozen=True, slots=True)
class _Handout:
    """A contact, the number chosen for it, the variation and its text."""

    contact: CampaignContact
    instance_id: str
    variation: CampaignMessage
    text: str
    typing: bool


def _plan(
    pairs: list[tuple[tuple[CampaignContact, str], Slot]],
    variations: list[CampaignMessage],
    instances: list[WhatsAppInstance],
    paces: dict[str, Pace],
    usage: RecentUsage,
    budgets: dict[str, int],
) -> tuple[list[_Handout], list[CampaignContact]]:
    """Pick each contact's variation, within the portfolio and identical-text limits.

    The least used variation goes first, so texts stay varied; on a number capping identical
    texts (a gateway's three an hour), a text sent that often this hour is passed over for another
    variation, and a contact no variation suits waits for a later pass, as does one beyond its
    portfolio's tier.
    """
    by_id = {instance.id: instance for instance in instances}
    used = {variation.id: variation.usage_count for variation in variations}
    planned: list[_Handout] = []
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
            text = render(variation.content, contact.variables)
            if identical is None or usage.may_repeat(instance.id, text, identical):
                choice = _Handout(contact, instance.id, variation, text, pace.typing)
                break
        if choice is None:
            refused.append(contact)
            continue
        used[choice.variation.id] += 1
        if portfolio in budgets:
            budgets[portfolio] -= 1
        planned.append(choice)
    return planned, refused


def _progress_event(campaign: Campaign, now: datetime) -> dict[str, str]:
    item = CampaignItem.of(campaign)
    payload = item.model_dump(
        mode="json",
        include={
            "id",
            "name",
            "status",
            "paused_reason",
            "total_contacts",
            "pending_count",
            "sent_count",
            "delivered_count",
            "read_count",
            "failed_count",
            "opted_out_count",
            "skipped_count",
            "progress",
            "success_rate",
            "delivery_rate",
            "read_rate",
        },
    )
    return {
        "event_id": new_id(),
        "event_type": "campaign_updated",
        "tenant_id": campaign.tenant_id,
        "occurred_at": now.isoformat(),
        "payload": json.dumps(payload, separators=(",", ":")),
    }


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


async def _record_handouts(session: AsyncSession, planned: list[_Handout], message_ids: list[str]) -> None:
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


async def _take_contacts(
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
    phones = {contact_id: phone for contact_id, phone in await session.execute(query)}
    taken.sort(key=lambda contact: contact.id)
    return [(contact, phones[contact.contact_id]) for contact in taken]


async def _without_opt_outs(
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


async def _give_back(session: AsyncSession, contacts: list[CampaignContact]) -> None:
    """Contacts taken but not sent in this pass go back to pending (the attempt does not count)."""
    if not contacts:
        return
    c = campaign_contacts_table.c
    await session.execute(
        update(campaign_contacts_table)
        .where(one_of(session, c.id, [contact.id for contact in contacts]))
        .values(status=CampaignContactStatus.PENDING.value, sending_at=None, attempts=c.attempts - 1)
    )
