"""The events-in consumer: reads events:materials (consumer group "notifications") and turns each
event into a template notification (notifications/handling.py).

An event is handled in one transaction of its own (events in are few; one bad event never holds
back another); its entry is acknowledged only after that commits. An entry that can never be
handled (not the format, an unknown tenant, no customer_phone...) goes to the DLQ at once with its
reason; one that fails for another reason (the database away) is retried until it runs out of
deliveries, then goes to the DLQ too. The queued notification is offered after the commit; the
senders' re-offer sweep picks it up if that offer is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from messaging_whatsapp import metrics
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.notifications.handling import Handled, UnusableEvent, handle_event, read_entry
from messaging_whatsapp.notifications.service import forget_old_events
from messaging_whatsapp.outbox.service import relay_outbox
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.streams.base import StreamEntry, StreamError
from messaging_whatsapp.worker.inbound import HOUSEKEEPING_SECONDS, consumer_name, refused_data

logger = logging.getLogger(__name__)

NOTIFICATIONS_GROUP = "notifications"
# Events read per pass (each is handled in its own transaction).
BATCH = 50
# How long the events consumed are kept (the page, GET /api/v1/events, and their ids' claims).
EVENTS_KEPT = timedelta(days=90)
# The old ones are deleted this often (a scan of the table, so not on every trim).
PRUNE_SECONDS = 3600.0


@dataclass
class NotificationsPass:
    """What one pass over events:materials did."""

    read: int = 0
    handled: int = 0
    dead_lettered: int = 0
    retried: int = 0


class NotificationsWorker:
    """Consumes events:materials until told to stop."""

    def __init__(self, context: EngineContext, consumer: str | None = None) -> None:
        self._context = context
        self._consumer = consumer or consumer_name()
        self._stream = context.names.materials
        self._last_trim = 0.0
        self._last_prune = 0.0
        self._group_ready = False

    async def run(self, stop: asyncio.Event) -> None:
        """Handle events until `stop` is set; survives backend outages by waiting and retrying."""
        while not stop.is_set():
            try:
                await self.run_once()
                await self._trim()
            except StreamError:
                logger.warning("stream backend unavailable; retrying in 1 s", exc_info=True)
                await asyncio.sleep(1.0)
            except Exception:
                logger.exception("notifications pass failed; retrying in 1 s")
                await asyncio.sleep(1.0)

    async def run_once(self, block_ms: int | None = None) -> NotificationsPass:
        """Read a batch of events and handle each."""
        settings = self._context.settings
        if not self._group_ready:
            await self._context.streams.ensure_group(self._stream, NOTIFICATIONS_GROUP)
            self._group_ready = True
        entries = await self._context.streams.read(
            self._stream,
            NOTIFICATIONS_GROUP,
            self._consumer,
            BATCH,
            settings.worker_block_ms if block_ms is None else block_ms,
        )
        outcome = NotificationsPass(read=len(entries))
        for entry in entries:
            await self._handle(entry, outcome)
        return outcome

    async def _handle(self, entry: StreamEntry, outcome: NotificationsPass) -> None:
        streams = self._context.streams
        try:
            event = read_entry(entry.fields)
        except UnusableEvent as exc:
            await self._dead_letter(entry, str(exc), outcome)
            return
        try:
            async with self._context.sessions() as session, session.begin():
                handled = await handle_event(session, event, self._context.names.events, utcnow())
        except Exception as exc:
            if refused_data(exc):
                logger.warning("event %s cannot be stored: %s", event.event_id, exc)
                await self._dead_letter(
                    entry, f"unusable event {event.event_id}: the database refused it", outcome
                )
                return
            logger.warning("event %s failed (delivery %d)", event.event_id, entry.deliveries, exc_info=True)
            moved = await streams.fail(self._stream, NOTIFICATIONS_GROUP, entry, f"handling failed: {exc!r}")
            metrics.EVENTS_IN.labels("dead_lettered" if moved else "retried").inc()
            if moved:
                outcome.dead_lettered += 1
            else:
                outcome.retried += 1
            return
        await self._after_commit(handled)
        metrics.EVENTS_IN.labels(handled.outcome).inc()
        if handled.dead_letter is not None:
            logger.warning("event %s goes to the DLQ: %s", event.event_id, handled.dead_letter)
            await streams.dead_letter(self._stream, NOTIFICATIONS_GROUP, entry, handled.dead_letter)
            outcome.dead_lettered += 1
            return
        await streams.ack(self._stream, NOTIFICATIONS_GROUP, [entry.id])
        outcome.handled += 1

    async def _after_commit(self, handled: Handled) -> None:
        """Announce what was decided and offer the notification; committed is committed, so a
        failure here is left to the outbox's orphan sweep and the senders' re-offer sweep."""
        try:
            await relay_outbox(self._context, handled.outbox)
        except Exception:
            logger.warning("events-in outbox not relayed; the orphan sweep will", exc_info=True)
        if not handled.queued:
            return
        try:
            await offer_messages(self._context, handled.queued)
        except StreamError:
            logger.warning("outbound stream unavailable; the notification waits for the re-offer")

    async def _dead_letter(self, entry: StreamEntry, reason: str, outcome: NotificationsPass) -> None:
        logger.warning("events:materials entry %s goes to the DLQ: %s", entry.id, reason)
        await self._context.streams.dead_letter(self._stream, NOTIFICATIONS_GROUP, entry, reason)
        metrics.EVENTS_IN.labels("unusable").inc()
        outcome.dead_lettered += 1

    async def _trim(self) -> None:
        """Drop the entries every group acknowledged, now and then; and, less often, the events
        consumed longer ago than EVENTS_KEPT."""
        now = time.monotonic()
        if now - self._last_trim < HOUSEKEEPING_SECONDS:
            return
        self._last_trim = now
        await self._context.streams.trim(self._stream)
        if now - self._last_prune < PRUNE_SECONDS:
            return
        self._last_prune = now
        async with self._context.sessions() as session, session.begin():
            await forget_old_events(session, utcnow() - EVENTS_KEPT)


async def run_notifications_worker(context: EngineContext, stop: asyncio.Event) -> None:
    """This process's events-in consumer until `stop` is set (one: events in are few)."""
    await NotificationsWorker(context).run(stop)
