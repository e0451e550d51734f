"""The campaign dispatcher: the loop that hands each running campaign's contacts to the outbound path.

Each round starts the scheduled campaigns whose time has come, runs one pass over each running
campaign, and publishes live progress (`campaign_updated`); at start-up it first offers again the
messages a killed dispatcher stored but never offered.

One pass over a campaign is one transaction: take the contacts it may send now (pending ->
sending), drop the ones who opted out, pick a number for each by the rotation mode, store their
messages as queued, move the numbers' pacing on; commit; then offer the messages to the senders.
A dispatcher killed mid-pass leaves nothing half-done (the transaction rolls back, the contacts are
still pending); one killed after the commit leaves queued messages that the senders' sweep offers
again. Contacts are taken with SKIP LOCKED (PostgreSQL) or under SQLite's single writer, so
several dispatchers never take the same contact. From `sending` on, the sender and the receipts
move a contact (campaigns/progress.py). The pass itself is in campaigns/dispatch_pass.py, what
its contacts get in campaigns/handout.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from messaging_whatsapp.campaigns.dispatch_pass import PassResult, run_pass
from messaging_whatsapp.campaigns.lifecycle import start_due_campaigns
from messaging_whatsapp.campaigns.locks import try_lock_campaign
from messaging_whatsapp.campaigns.logs import add_logs, log_error
from messaging_whatsapp.campaigns.models import Campaign, CampaignLog, CampaignStatus, LogType
from messaging_whatsapp.campaigns.pacing import WarmupSchedule
from messaging_whatsapp.campaigns.schemas import CampaignItem
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.inbox.models import Message, SenderType, SendState
from messaging_whatsapp.realtime.events import realtime_events
from messaging_whatsapp.sending.queue import REOFFER_AFTER, offer_messages

logger = logging.getLogger(__name__)

PASS_SECONDS = 0.5
# A pass held back only by numbers' messages still on their way looks again this soon: the
# senders resolve a window of them in tens of milliseconds, and half a second idle halved the rate.
SENDERS_BEHIND_SECONDS = 0.05
# A queued campaign message older than this at start-up may have lost its stream entry.
ORPHAN_AFTER = timedelta(seconds=5)
# Live progress: at most one `campaign_updated` per campaign this often.
PROGRESS_INTERVAL = timedelta(milliseconds=500)
# Live screens: at most one `campaign_updated` per campaign this often (a new status at once).
LIVE_INTERVAL = timedelta(seconds=1)
# How far back a progress check looks: a campaign's updated_at is the time its writer's
# transaction started, which may commit seconds later, and a change held back by the interval
# must still be found by the next checks.
PROGRESS_LOOKBACK = timedelta(seconds=30)
# The same dispatch error is logged on its campaign at most this often.
ERROR_LOG_EVERY = timedelta(hours=1)


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
        # What live screens last heard of each campaign: (updated_at, when, status).
        self._live: dict[str, tuple[datetime, float, str]] = {}
        self._senders_behind = False
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
                pause = SENDERS_BEHIND_SECONDS if self._senders_behind else PASS_SECONDS
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)

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
        self._senders_behind = False
        for campaign_id in campaign_ids:
            try:
                result = await self.dispatch(campaign_id)
            except Exception as exc:
                # One campaign's trouble must not hold the others back; its log says what it was.
                logger.exception("dispatch pass over campaign %s failed; retrying", campaign_id)
                await self._log_error(campaign_id, exc)
                continue
            handed += result.handed
            self._senders_behind = self._senders_behind or result.senders_behind
        await self.publish_progress()
        return handed

    async def _log_error(self, campaign_id: str, exc: Exception) -> None:
        """An `error` log on the campaign, at most once an hour for the same error."""
        now = self._clock()
        message = f"Dispatch failed: {type(exc).__name__}: {exc}"[:500]
        try:
            async with self._context.sessions() as session, session.begin():
                campaign = await session.get(Campaign, campaign_id)
                if campaign is None or await session.scalar(
                    select(CampaignLog.id).where(
                        CampaignLog.campaign_id == campaign_id,
                        CampaignLog.log_type == LogType.ERROR.value,
                        CampaignLog.message == message,
                        CampaignLog.created_at >= now - ERROR_LOG_EVERY,
                    )
                ):
                    return
                await add_logs(session, [log_error(campaign, message, {"error": type(exc).__name__}, now)])
        except Exception:
            logger.exception("could not write the error log of campaign %s", campaign_id)

    async def publish_progress(self) -> int:
        """`campaign_updated` on the events stream for campaigns whose counters or status moved,
        at most once per PROGRESS_INTERVAL each, and to live screens at most once per
        LIVE_INTERVAL each (a new status at once); returns how many went to the stream."""
        since = self._progress_checked_at
        self._progress_checked_at = self._clock()
        async with self._context.sessions() as session:
            query = select(Campaign).where(Campaign.updated_at >= since - PROGRESS_LOOKBACK)
            changed = list(await session.scalars(query))
        entries = []
        live = []
        moment = time.monotonic()
        self._forget_published(moment)
        for campaign in changed:
            entry = _progress_event(campaign, self._clock())
            if self._live_due(campaign, moment):
                live.append(entry)
            last = self._published.get(campaign.id)
            if last is not None and (
                last[0] == campaign.updated_at or moment - last[1] < PROGRESS_INTERVAL.total_seconds()
            ):
                continue
            self._published[campaign.id] = (campaign.updated_at, moment)
            entries.append(entry)
        if entries:
            await self._context.streams.append_many(self._context.names.events, entries)
        if live:
            # A snapshot of committed counters: nothing to roll back, so no outbox row.
            await self._context.realtime.publish(realtime_events(live))
        return len(entries)

    def _live_due(self, campaign: Campaign, moment: float) -> bool:
        """Whether live screens hear of the campaign now (and note it if so): a change they have
        not heard of, and either a new status or LIVE_INTERVAL since the last. A change held
        back is found again by the next checks (they look PROGRESS_LOOKBACK back)."""
        last = self._live.get(campaign.id)
        if last is not None and (
            last[0] == campaign.updated_at
            or (last[2] == campaign.status and moment - last[1] < LIVE_INTERVAL.total_seconds())
        ):
            return False
        self._live[campaign.id] = (campaign.updated_at, moment, campaign.status)
        return True

    def _forget_published(self, moment: float) -> None:
        """Drop what was published about campaigns no progress check can see again."""
        horizon = 2 * PROGRESS_LOOKBACK.total_seconds()
        for campaign_id, (_, published_at) in list(self._published.items()):
            if moment - published_at > horizon:
                del self._published[campaign_id]
        for campaign_id, (_, published_at, _) in list(self._live.items()):
            if moment - published_at > horizon:
                del self._live[campaign_id]

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
            result = await run_pass(session, campaign, now, warmup=self._warmup, rng=self._rng)
        if result.message_ids:
            await offer_messages(
                self._context, [(message_id, campaign.tenant_id) for message_id in result.message_ids]
            )
        return result


def _progress_event(campaign: Campaign, now: datetime) -> dict[str, str]:
    item = CampaignItem.of(campaign)
    payload = item.model_dump(
        mode="json",
        include={
            "id",
            "name",
            "status",
            "paused_reason",
            "waiting_reason",
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
