"""The events-out worker: the "webhooks" consumer group on the events stream, the delivery pass,
and the deletion of old deliveries, side by side in one task of the engine's process (and of the
`worker` command).

The producer of an event never waits on HTTP: it writes the event to the outbox, the relay
appends it to the stream, and this consumer turns it into delivery rows (committed, then
acknowledged: a crash in between makes the stream deliver it again, and the rows' unique key
keeps it one delivery). The delivery pass sends them, woken at once by new rows and otherwise
every WEBHOOK_DELIVERY_PASS_SECONDS for the retries that come due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from messaging_whatsapp import metrics
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.integrations.delivery import (
    CLAIM_BATCH,
    MAX_IN_FLIGHT,
    Claimed,
    attempt,
    claim_due,
    delivery_client,
    record,
    skip_inactive,
)
from messaging_whatsapp.integrations.fanout import StreamEvent, fan_out, read_event
from messaging_whatsapp.integrations.models import WebhookAttempt, WebhookDelivery
from messaging_whatsapp.streams.base import StreamError
from messaging_whatsapp.tenancy.models import Tenant

logger = logging.getLogger(__name__)

WEBHOOKS_GROUP = "webhooks"
# Events read from the stream at once.
FAN_OUT_BATCH = 500
# Deliveries past their retention are deleted this often, this many per statement.
CLEANUP_SECONDS = 600.0
CLEANUP_BATCH = 1000
# A claim's lease beyond the POST's own timeout: time to record the outcome.
LEASE_MARGIN = timedelta(seconds=30)


def consumer_name() -> str:
    """A consumer name unique to this process and worker."""
    return f"{socket.gethostname()}-{os.getpid()}-webhooks-{uuid.uuid4().hex[:6]}"


class WebhookWorker:
    """Turns published events into deliveries and delivers them, until told to stop."""

    def __init__(self, context: EngineContext, consumer: str | None = None) -> None:
        self._context = context
        self._consumer = consumer or consumer_name()
        self._stream = context.names.events
        self._wake = asyncio.Event()
        self._client = delivery_client(context.settings)

    async def run(self, stop: asyncio.Event) -> None:
        """The consumer, the delivery pass and the clean-up until `stop` is set."""
        try:
            await asyncio.gather(self._consume(stop), self._deliver(stop), self._clean(stop))
        finally:
            await self._client.aclose()

    async def close(self) -> None:
        """Release the HTTP connections (for a worker driven by hand, as tests do)."""
        await self._client.aclose()

    async def _consume(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._context.streams.ensure_group(self._stream, WEBHOOKS_GROUP)
                break
            except StreamError:
                logger.warning("stream backend unavailable; retrying in 1 s")
                await _pause(stop, 1.0)
        while not stop.is_set():
            try:
                await self.fan_out_once()
            except Exception:
                logger.exception("webhook fan-out failed; retrying in 1 s")
                await _pause(stop, 1.0)

    async def fan_out_once(self, block_ms: int | None = None) -> int:
        """Read a batch of events and add their deliveries; how many deliveries were new."""
        settings = self._context.settings
        streams = self._context.streams
        entries = await streams.read(
            self._stream,
            WEBHOOKS_GROUP,
            self._consumer,
            FAN_OUT_BATCH,
            settings.worker_block_ms if block_ms is None else block_ms,
        )
        if not entries:
            return 0
        events: list[StreamEvent] = []
        for entry in entries:
            try:
                events.append(read_event(entry.fields))
            except (KeyError, ValueError) as exc:
                # Not an event of ours (another writer's entry): nothing to deliver, nothing a
                # replay could fix; other consumers of the stream still see it.
                logger.warning("events stream entry %s is not an event, skipped: %s", entry.id, exc)
        async with self._context.sessions() as session, session.begin():
            added = await fan_out(session, events)
        await streams.ack(self._stream, WEBHOOKS_GROUP, [entry.id for entry in entries])
        if added:
            self._wake.set()
        return added

    async def _deliver(self, stop: asyncio.Event) -> None:
        """Start the due deliveries' attempts without waiting for them, up to MAX_IN_FLIGHT at
        once: a receiver that takes its whole timeout holds back nobody else's deliveries."""
        seconds = self._context.settings.webhook_delivery_pass_seconds
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                self._wake.clear()
                room = min(MAX_IN_FLIGHT - len(in_flight), CLAIM_BATCH)
                started = 0
                if room > 0:
                    try:
                        claimed = await self._claim(room)
                    except Exception:
                        logger.exception("webhook delivery pass failed; retrying")
                        claimed = []
                    for one in claimed:
                        task = asyncio.create_task(self._attempt(one), name=f"webhook-delivery-{one.id}")
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                    started = len(claimed)
                if started < CLAIM_BATCH or len(in_flight) >= MAX_IN_FLIGHT:
                    await _pause(stop, seconds, self._wake)
        finally:
            # Those under way finish (each within its timeout) rather than leave their lease to run out.
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def deliver_once(self) -> int:
        """Claim the due deliveries and make one attempt at each, side by side, waiting for them
        all; how many."""
        claimed = await self._claim(CLAIM_BATCH)
        await asyncio.gather(*(self._attempt(one) for one in claimed))
        return len(claimed)

    async def _claim(self, limit: int) -> list[Claimed]:
        settings = self._context.settings
        lease = timedelta(seconds=settings.webhook_delivery_timeout_seconds) + LEASE_MARGIN
        async with self._context.sessions() as session, session.begin():
            return await claim_due(session, utcnow(), lease, limit)

    async def _attempt(self, claimed: Claimed) -> None:
        settings = self._context.settings
        try:
            if not claimed.active:
                async with self._context.sessions() as session, session.begin():
                    await skip_inactive(session, claimed, utcnow())
                return
            outcome = await attempt(
                self._client,
                self._context.cipher,
                claimed,
                settings.webhook_delivery_timeout_seconds,
                utcnow(),
            )
            async with self._context.sessions() as session, session.begin():
                status = await record(session, settings, claimed, outcome)
        except Exception:
            # Its lease ends and another pass tries again.
            logger.exception(
                "webhook delivery %s attempt %d could not be recorded", claimed.id, claimed.attempt
            )
            return
        metrics.WEBHOOK_DELIVERY_ATTEMPTS.labels(status).inc()
        # Ids and the outcome only: never the URL (it may carry a token), the body or the secret.
        logger.info(
            "webhook delivery %s (subscription %s) attempt %d: %s, %s",
            claimed.id,
            claimed.subscription_id,
            claimed.attempt,
            outcome.status_code or outcome.error,
            status,
        )

    async def _clean(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.delete_expired()
            except Exception:
                logger.exception("deleting old webhook deliveries failed; retrying later")
            await _pause(stop, CLEANUP_SECONDS)

    async def delete_expired(self) -> int:
        """Delete the deliveries (and attempts) older than WEBHOOK_DELIVERY_RETENTION_DAYS, or than
        their tenant's message retention when that is shorter: their bodies may hold phones."""
        now = utcnow()
        default = timedelta(days=self._context.settings.webhook_delivery_retention_days)
        async with self._context.sessions() as session:
            shorter = [
                (row.id, timedelta(days=row.retention_messages_days))
                for row in await session.execute(
                    select(Tenant.id, Tenant.retention_messages_days).where(
                        Tenant.retention_messages_days.is_not(None),
                        Tenant.retention_messages_days < default.days,
                    )
                )
            ]
        deleted = await self._delete_before(now - default, None)
        for tenant_id, kept in shorter:
            deleted += await self._delete_before(now - kept, tenant_id)
        if deleted:
            logger.info("deleted %d webhook deliveries past their retention", deleted)
        return deleted

    async def _delete_before(self, before: datetime, tenant_id: str | None) -> int:
        deleted = 0
        while True:
            async with self._context.sessions() as session, session.begin():
                query = select(WebhookDelivery.id).where(WebhookDelivery.created_at < before)
                if tenant_id is not None:
                    query = query.where(WebhookDelivery.tenant_id == tenant_id)
                ids = list((await session.scalars(query.limit(CLEANUP_BATCH))).all())
                if not ids:
                    return deleted
                await session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
                await session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
            deleted += len(ids)


async def _pause(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Wait `seconds`, or less when `stop` (or `wake`) is set."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
