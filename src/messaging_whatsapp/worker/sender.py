"""The sender: takes queued messages off the outbound stream and hands them to their providers.

Never twice: a message is claimed in the database (pending -> claimed, committed) before its
request leaves (sending/claims.py), so a redelivered stream entry or a second sender finds
nothing to claim. The outcome is recorded afterwards, a batch in one transaction: the messages
themselves (sending/outcomes.py), receipts that overtook the send (the inbox), the campaign
contacts that follow them, the numbers' health, opt-outs the provider reported, numbers it
refused, and the events to publish. When the sender dies between the claim and the record, or
the provider's answer is lost, the message is not sent again: receipts settle it where the
provider echoes our id (Meta's callback data, Twilio's status callback URL, WuzAPI's chosen id,
the simulator), and otherwise it ends failed with reason `unknown_outcome` after a grace period.
Better one message missed and reported than one customer messaged twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp import metrics
from messaging_whatsapp.alerts.signals import calls_of, record_calls
from messaging_whatsapp.campaigns.progress import follow_messages
from messaging_whatsapp.consent.service import opted_out_phones
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import SendState
from messaging_whatsapp.inbox.receipts import apply_orphan_receipts
from messaging_whatsapp.instances.health import record_outcomes
from messaging_whatsapp.outbox.service import PublishedEvent, relay_outbox, write_outbox
from messaging_whatsapp.privacy.optouts import opt_out
from messaging_whatsapp.providers.base import ProviderName, SendProvider
from messaging_whatsapp.providers.registry import SENDERS
from messaging_whatsapp.providers.trace import SendTrace
from messaging_whatsapp.sending.claims import Claim, claim_messages, take_due
from messaging_whatsapp.sending.delivery import Delivery, SendOutcome
from messaging_whatsapp.sending.outcomes import (
    OPTED_OUT,
    health_of,
    pause_refused_instances,
    record_failed,
    record_sent,
    record_unknown,
    record_waiting,
    refused_optouts,
    settle_stale_claims,
)
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.sending.ratelimit import RateLimiter, open_rate_limiter
from messaging_whatsapp.streams.base import StreamEntry, StreamError
from messaging_whatsapp.streams.records import dead_letter_fields

logger = logging.getLogger(__name__)

SENDER_GROUP = "senders"
SWEEP_SECONDS = 1.0


def consumer_name() -> str:
    """This process's consumer name in the senders' group."""
    return f"sender-{socket.gethostname()}-{os.getpid()}"


@dataclass
class SendBatch:
    """What one pass did."""

    read: int = 0
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    unknown: int = 0
    dead_lettered: list[str] = field(default_factory=list)


class Sender:
    """Consumes the outbound stream until told to stop."""

    def __init__(
        self,
        context: EngineContext,
        providers: Mapping[ProviderName, SendProvider] = SENDERS,
        *,
        consumer: str | None = None,
        http: httpx.AsyncClient | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._context = context
        self._settings = context.settings
        self._consumer = consumer or consumer_name()
        self._clock = clock
        self._delivery = Delivery(
            context.settings,
            context.cipher,
            providers,
            limiter or open_rate_limiter(context.settings),
            http=http,
            clock=clock,
            rng=rng,
        )
        self._last_sweep = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; survives backend outages by waiting and retrying.

        SENDER_BATCHES_IN_FLIGHT batches go at once, so a batch waiting for its slowest provider
        answer does not hold the next one back (the sends of all of them share the concurrency gate).
        """
        await self.ensure_group()
        try:
            lanes = range(self._settings.sender_batches_in_flight)
            await asyncio.gather(*(self._run_lane(stop, sweeps=lane == 0) for lane in lanes))
        finally:
            await self.close()

    async def _run_lane(self, stop: asyncio.Event, *, sweeps: bool) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
                if sweeps and time.monotonic() - self._last_sweep >= SWEEP_SECONDS:
                    await self.sweep()
            except StreamError:
                logger.warning("stream backend unavailable; retrying in 1 s", exc_info=True)
                await asyncio.sleep(1.0)
            except Exception:
                logger.exception("sender batch failed; retrying in 1 s")
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        """Release the HTTP clients and the rate limiter."""
        await self._delivery.close()

    async def ensure_group(self) -> None:
        """Create the senders' consumer group (from the start of the stream) unless it exists."""
        while True:
            try:
                await self._context.streams.ensure_group(self._context.names.outbound, SENDER_GROUP)
                return
            except StreamError:
                logger.warning("stream backend unavailable; retrying in 1 s")
                await asyncio.sleep(1.0)

    async def run_once(self, block_ms: int | None = None) -> SendBatch:
        """Claim one batch of offered messages, send them, record what happened."""
        streams = self._context.streams
        stream = self._context.names.outbound
        entries = await streams.read(
            stream,
            SENDER_GROUP,
            self._consumer,
            self._settings.sender_batch_size,
            self._settings.worker_block_ms if block_ms is None else block_ms,
        )
        batch = SendBatch(read=len(entries))
        if not entries:
            return batch
        message_ids = await self._message_ids(entries)
        async with self._context.sessions() as session, session.begin():
            claims = await claim_messages(session, message_ids, self._clock())
        # Claimed rows carry the work from here; the entries are done with.
        await streams.ack(stream, SENDER_GROUP, [entry.id for entry in entries])
        batch.claimed = len(claims)
        if not claims:
            return batch
        stopped = await self._opted_out(claims)
        outcomes = [
            SendOutcome(c, SendState.DONE, error=OPTED_OUT) for c in claims if c.message.id in stopped
        ]
        outcomes += await asyncio.gather(
            *(self._delivery.deliver(c) for c in claims if c.message.id not in stopped)
        )
        await self._record(outcomes, batch)
        return batch

    async def _opted_out(self, claims: list[Claim]) -> set[str]:
        """Messages whose recipient opted out after they were queued (a campaign's, typically)."""
        by_tenant: dict[str, list[Claim]] = {}
        for claim in claims:
            by_tenant.setdefault(claim.message.tenant_id, []).append(claim)
        stopped: set[str] = set()
        async with self._context.sessions() as session:
            for tenant_id, group in sorted(by_tenant.items()):
                phones = await opted_out_phones(session, tenant_id, {c.phone for c in group if c.phone})
                stopped |= {c.message.id for c in group if c.opted_out or (c.phone and c.phone in phones)}
        return stopped

    async def _message_ids(self, entries: list[StreamEntry]) -> list[str]:
        ids: list[str] = []
        for entry in entries:
            message_id = entry.fields.get("message_id")
            if message_id:
                ids.append(message_id)
                continue
            await self._context.streams.dead_letter(
                self._context.names.outbound, SENDER_GROUP, entry, "entry has no message_id"
            )
        return sorted(set(ids))

    # ----------------------------------------------------------------------------------------------
    # Record

    async def _record(self, outcomes: list[SendOutcome], batch: SendBatch) -> None:
        now = self._clock()
        sent = [o for o in outcomes if o.result is not None]
        failed = [o for o in outcomes if o.result is None and o.state is SendState.DONE]
        async with self._context.sessions() as session, session.begin():
            published = await _record_sent(session, sent, now)
            published += await record_failed(session, failed, now)
            # Seed 000: a campaign contact follows its message (its logs with the send's trace).
            await follow_messages(session, [o.claim.message.id for o in failed], now, _traces(failed))
            await record_waiting(session, [o for o in outcomes if o.state is SendState.WAITING])
            await record_unknown(session, [o for o in outcomes if o.state is SendState.UNKNOWN], now)
            published += await record_outcomes(session, health_of(outcomes), now)
            published += await opt_out(session, refused_optouts(outcomes, now), now)
            published += await pause_refused_instances(session, outcomes, now)
            # For the alert rules: the calls per number and minute (error rate, latency).
            await record_calls(session, calls_of(outcomes), now)
            outbox = await write_outbox(session, published, self._context.names.events)
        await relay_outbox(self._context, outbox)
        for outcome in outcomes:
            _count(outcome, batch)
            _time(outcome)
            _log(outcome)
        await self._dead_letter([o for o in outcomes if o.exhausted], batch)

    async def _dead_letter(self, outcomes: list[SendOutcome], batch: SendBatch) -> None:
        for outcome in outcomes:
            assert outcome.error is not None
            message = outcome.claim.message
            entry = StreamEntry(
                stream=self._context.names.outbound,
                id=message.id,
                fields={"message_id": message.id, "tenant_id": message.tenant_id},
                deliveries=message.send_attempts,
            )
            reason = f"retries exhausted after {message.send_attempts} attempts: {outcome.error}"
            fields = dead_letter_fields(self._context.names.outbound, SENDER_GROUP, entry, reason)
            batch.dead_lettered.append(await self._context.streams.append(self._context.names.dlq, fields))

    # ----------------------------------------------------------------------------------------------
    # Sweeps

    async def sweep(self) -> None:
        """Offer due retries and lost entries again; settle claims whose outcome never came."""
        self._last_sweep = time.monotonic()
        async with self._context.sessions() as session, session.begin():
            due, published = await take_due(session, self._clock())
            outbox = await write_outbox(session, published, self._context.names.events)
        await relay_outbox(self._context, outbox)
        await offer_messages(self._context, due)
        await self._settle_stale_claims()

    async def _settle_stale_claims(self) -> int:
        """Claimed or answer-lost messages past the grace period end failed: unknown_outcome."""
        now = self._clock()
        cutoff = now - timedelta(seconds=self._settings.send_outcome_grace_seconds)
        async with self._context.sessions() as session, session.begin():
            settled, published = await settle_stale_claims(session, cutoff, now)
            await follow_messages(session, settled, now)
            outbox = await write_outbox(session, published, self._context.names.events)
        await relay_outbox(self._context, outbox)
        return len(settled)


def _log(outcome: SendOutcome) -> None:
    """One INFO line per message that went or failed for good: ids and codes, never the text or
    the phone (personal data) nor anything of the number's credentials."""
    if not logger.isEnabledFor(logging.INFO):
        return
    message, instance = outcome.claim.message, outcome.claim.instance
    if outcome.result is not None:
        logger.info(
            "message %s sent through %s instance %s as %s",
            message.id,
            instance.provider,
            instance.id,
            outcome.result.provider_message_id,
        )
    elif outcome.state is SendState.DONE and outcome.error is not None:
        logger.info(
            "message %s failed through %s instance %s: %s",
            message.id,
            instance.provider,
            instance.id,
            outcome.error.code,
        )


async def _record_sent(session: AsyncSession, sent: list[SendOutcome], now: datetime) -> list[PublishedEvent]:
    """The sent messages, the receipts that arrived before their provider ids were stored, and the
    campaign contacts that follow them."""
    if not sent:
        return []
    published = await record_sent(session, sent, now)
    early = await apply_orphan_receipts(
        session, [(o.claim.instance.id, o.result.provider_message_id) for o in sent if o.result]
    )
    health_changes = await record_outcomes(session, early.health, now)
    await follow_messages(session, [o.claim.message.id for o in sent], now, _traces(sent))
    return early.published + published + health_changes


def _traces(outcomes: list[SendOutcome]) -> dict[str, SendTrace | None]:
    """Each message's provider call (duration, HTTP status, request and answer), by message id."""
    return {o.claim.message.id: o.trace for o in outcomes}


def _time(outcome: SendOutcome) -> None:
    """The provider call's duration, for Prometheus."""
    if outcome.trace is not None and outcome.trace.duration_ms is not None:
        provider = outcome.claim.instance.provider
        metrics.PROVIDER_CALL_SECONDS.labels(provider).observe(outcome.trace.duration_ms / 1000)


def _count(outcome: SendOutcome, batch: SendBatch) -> None:
    if outcome.result is not None:
        batch.sent += 1
        metrics.SENDER_MESSAGES.labels("sent").inc()
    elif outcome.deferred:
        batch.deferred += 1
        metrics.SENDER_MESSAGES.labels("deferred").inc()
    elif outcome.state is SendState.WAITING:
        batch.retried += 1
        metrics.SENDER_MESSAGES.labels("retried").inc()
    elif outcome.state is SendState.UNKNOWN:
        batch.unknown += 1
        metrics.SENDER_MESSAGES.labels("unknown_outcome").inc()
    else:
        batch.failed += 1
        metrics.SENDER_MESSAGES.labels("failed").inc()
