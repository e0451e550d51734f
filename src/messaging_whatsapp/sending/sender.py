"""The sender: takes queued messages off the outbound stream and hands them to their providers.

Never twice: a message is claimed in the database (pending -> claimed, committed) before its
request leaves, so a redelivered stream entry or a second sender finds nothing to claim. The
outcome is recorded afterwards. When the sender dies between the two, or the provider's answer is
lost, the message is not sent again: receipts settle it where the provider echoes our id (Meta's
callback data, Twilio's status callback URL, WuzAPI's chosen id, the simulator), and otherwise it
ends failed with reason `unknown_outcome` after a grace period. Better one message missed and
reported than one customer messaged twice.
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
from typing import Any

import httpx
from sqlalchemy import String, bindparam, case, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from messaging_whatsapp import metrics
from messaging_whatsapp.automation.service import OptOutCandidate, apply_optouts, opted_out_phones
from messaging_whatsapp.campaigns.progress import follow_messages
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import one_of, rows_table, utcnow
from messaging_whatsapp.inbox.ingest import apply_orphan_receipts, optout_events
from messaging_whatsapp.inbox.models import Contact, Message, SenderType, SendState, messages_table
from messaging_whatsapp.instances.health import Outcomes, record_outcomes, unavailable_reason
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.instances.service import decrypt_credentials, pause_instances, webhook_url
from messaging_whatsapp.providers.base import (
    GATEWAYS,
    STATUS_RANK,
    DeliveryStatus,
    ErrorClass,
    ProviderName,
    SenderAccount,
    SendError,
    SendProvider,
    SendResult,
    TypingProvider,
)
from messaging_whatsapp.providers.http import provider_client
from messaging_whatsapp.providers.registry import SENDERS
from messaging_whatsapp.sending.breaker import CircuitBreaker
from messaging_whatsapp.sending.ratelimit import RateLimiter, open_rate_limiter, send_limits
from messaging_whatsapp.sending.service import REOFFER_AFTER, outbound_message
from messaging_whatsapp.streams.base import StreamEntry, StreamError
from messaging_whatsapp.streams.records import dead_letter_fields
from messaging_whatsapp.worker.outbox import PublishedEvent, relay_outbox, write_outbox

logger = logging.getLogger(__name__)

SENDER_GROUP = "senders"
# How long "typing..." shows before a campaign message on an unofficial gateway.
TYPING_SECONDS = (1.0, 3.0)
SWEEP_SECONDS = 1.0
# A limited send waits in the sender this long at most; a longer wait goes back to the database.
MAX_INLINE_WAIT = 2.0
# Errors that say the provider or the number is in trouble (not this one message).
BREAKER_ERRORS = frozenset({ErrorClass.RETRY, ErrorClass.UNKNOWN_OUTCOME, ErrorClass.PAUSE_CHANNEL})
# Providers whose receipts identify a message even when the send's answer was lost.
ECHOING_PROVIDERS = frozenset(
    {ProviderName.META, ProviderName.TWILIO, ProviderName.WUZAPI, ProviderName.SIMULATOR}
)
# A queued message whose recipient opted out before it left: it ends failed, unsent.
OPTED_OUT = SendError(ErrorClass.OPT_OUT, "opted_out", "the person opted out before the message was sent")
SENT_RANK = STATUS_RANK[DeliveryStatus.SENT]
FAILED_RANK = STATUS_RANK[DeliveryStatus.FAILED]


def consumer_name() -> str:
    """This process's consumer name in the senders' group."""
    return f"sender-{socket.gethostname()}-{os.getpid()}"


async def offer_messages(context: EngineContext, messages: list[tuple[str, str]]) -> None:
    """Put (message id, tenant id) pairs on the outbound stream for the senders."""
    if messages:
        await context.streams.append_many(
            context.names.outbound,
            [{"message_id": message_id, "tenant_id": tenant_id} for message_id, tenant_id in messages],
        )


@dataclass(frozen=True, slots=True)
class _Claim:
    message: Message
    phone: str
    instance: WhatsAppInstance


@dataclass
class _Outcome:
    claim: _Claim
    state: SendState
    result: SendResult | None = None
    error: SendError | None = None
    next_attempt_at: datetime | None = None
    # Deferred by a breaker or a rate limit: not an attempt.
    deferred: bool = False
    exhausted: bool = False


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
        self._providers = providers
        self._consumer = consumer or consumer_name()
        # A given client serves every instance (tests); otherwise each instance gets its own pool.
        self._shared_http = http
        self._pools: dict[str, httpx.AsyncClient] = {}
        self._limiter = limiter or open_rate_limiter(self._settings)
        self._clock = clock
        self._rng = rng or random.Random()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._accounts: dict[str, tuple[datetime, SenderAccount]] = {}
        self._gate = asyncio.Semaphore(self._settings.sender_concurrency)
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
        """Release the HTTP client and the rate limiter."""
        if self._shared_http is not None:
            await self._shared_http.aclose()
        for client in self._pools.values():
            await client.aclose()
        self._pools.clear()
        await self._limiter.close()

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
        claims = await self._claim(message_ids)
        # Claimed rows carry the work from here; the entries are done with.
        await streams.ack(stream, SENDER_GROUP, [entry.id for entry in entries])
        batch.claimed = len(claims)
        if not claims:
            return batch
        stopped = await self._opted_out(claims)
        outcomes = [_Outcome(c, SendState.DONE, error=OPTED_OUT) for c in claims if c.message.id in stopped]
        outcomes += await asyncio.gather(*(self._deliver(c) for c in claims if c.message.id not in stopped))
        await self._record(list(outcomes), batch)
        return batch

    async def _opted_out(self, claims: list[_Claim]) -> set[str]:
        """Messages whose recipient opted out after they were queued (a campaign's, typically)."""
        by_tenant: dict[str, list[_Claim]] = {}
        for claim in claims:
            by_tenant.setdefault(claim.message.tenant_id, []).append(claim)
        stopped: set[str] = set()
        async with self._context.sessions() as session:
            for tenant_id, group in sorted(by_tenant.items()):
                phones = await opted_out_phones(session, tenant_id, {claim.phone for claim in group})
                stopped |= {claim.message.id for claim in group if claim.phone in phones}
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
    # Claim

    async def _claim(self, message_ids: list[str]) -> list[_Claim]:
        """pending -> claimed, committed before any request leaves; returns what this sender won."""
        if not message_ids:
            return []
        now = self._clock()
        m = messages_table.c
        async with self._context.sessions() as session, session.begin():
            won = (
                (
                    await session.execute(
                        update(messages_table)
                        .where(one_of(session, m.id, message_ids), m.send_state == SendState.PENDING.value)
                        .values(
                            send_state=SendState.CLAIMED.value,
                            claimed_at=now,
                            send_attempts=m.send_attempts + 1,
                            updated_at=now,
                        )
                        .returning(m.id)
                    )
                )
                .scalars()
                .all()
            )
            if not won:
                return []
            rows = await session.execute(
                select(Message, Contact.phone, WhatsAppInstance)
                .join(Contact, Contact.id == Message.contact_id)
                .join(WhatsAppInstance, WhatsAppInstance.id == Message.instance_id)
                .where(one_of(session, Message.id, won))
            )
            claims = [_Claim(message, phone, instance) for message, phone, instance in rows]
            session.expunge_all()
        return claims

    # ----------------------------------------------------------------------------------------------
    # Deliver

    async def _deliver(self, claim: _Claim) -> _Outcome:
        instance = claim.instance
        now = self._clock()
        reason = unavailable_reason(instance, now)
        if reason is not None:
            return self._failure(claim, SendError(ErrorClass.RETRY, "instance_unavailable", reason))
        provider = ProviderName(instance.provider)
        limits = send_limits(self._settings, provider, instance.tenant_id, instance.id, claim.phone)
        wait = await self._limiter.acquire(limits)
        while 0 < wait <= MAX_INLINE_WAIT:
            await asyncio.sleep(wait)
            wait = await self._limiter.acquire(limits)
        if wait > 0:
            return _Outcome(
                claim, SendState.WAITING, next_attempt_at=now + timedelta(seconds=wait), deferred=True
            )
        # Asked last, so a probe the breaker lets through always reaches the provider and reports.
        breaker = self._breaker(instance.id)
        if not breaker.allow(time.monotonic()):
            retry_in = max(breaker.retry_at(time.monotonic()) - time.monotonic(), 0.1)
            return _Outcome(
                claim, SendState.WAITING, next_attempt_at=now + timedelta(seconds=retry_in), deferred=True
            )
        return await self._send(claim, provider, breaker)

    async def _send(self, claim: _Claim, provider: ProviderName, breaker: CircuitBreaker) -> _Outcome:
        message = outbound_message(claim.message, claim.phone)
        adapter = self._providers[provider]
        try:
            async with self._gate:
                if (claim.message.extra or {}).get("typing") and isinstance(adapter, TypingProvider):
                    await self._show_typing(adapter, claim, message.to)
                result = await adapter.send(
                    self._http(claim.instance), self._account(claim.instance), message
                )
        except SendError as error:
            if error.error_class in BREAKER_ERRORS:
                breaker.record_failure(time.monotonic())
            else:
                # The provider answered: it is up, whatever it thought of this message.
                breaker.record_success()
            return self._failure(claim, error)
        except Exception:
            breaker.record_failure(time.monotonic())
            # A bug between sending and reading the answer: the request may have gone.
            logger.exception("provider %s raised while sending message %s", provider.value, claim.message.id)
            unexpected = SendError(
                ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome", "the provider call failed unexpectedly"
            )
            return self._failure(claim, unexpected)
        breaker.record_success()
        return _Outcome(claim, SendState.DONE, result=result)

    async def _show_typing(self, adapter: TypingProvider, claim: _Claim, to: str) -> None:
        """A person types before they send: campaign messages on the gateways do too."""
        seconds = self._rng.uniform(*TYPING_SECONDS)
        try:
            await adapter.show_typing(self._http(claim.instance), self._account(claim.instance), to, seconds)
        except (SendError, httpx.HTTPError) as exc:
            # Only a courtesy: the message still goes.
            logger.info("typing presence failed for message %s: %s", claim.message.id, exc)

    def _failure(self, claim: _Claim, error: SendError) -> _Outcome:
        if error.error_class is ErrorClass.UNKNOWN_OUTCOME:
            if ProviderName(claim.instance.provider) in ECHOING_PROVIDERS:
                return _Outcome(claim, SendState.UNKNOWN, error=error)
            return _Outcome(claim, SendState.DONE, error=error)
        if not error.retryable:
            return _Outcome(claim, SendState.DONE, error=error)
        attempts = claim.message.send_attempts
        if attempts >= self._settings.send_max_attempts:
            return _Outcome(claim, SendState.DONE, error=error, exhausted=True)
        return _Outcome(
            claim,
            SendState.WAITING,
            error=error,
            next_attempt_at=self._clock() + self._backoff(attempts, error),
        )

    def _backoff(self, attempts: int, error: SendError) -> timedelta:
        """Exponential with full jitter, never sooner than the provider's Retry-After."""
        settings = self._settings
        ceiling = min(
            settings.send_backoff_max_seconds, settings.send_backoff_base_seconds * 2 ** (attempts - 1)
        )
        delay = self._rng.uniform(ceiling / 2, ceiling)
        return timedelta(seconds=max(delay, error.retry_after or 0.0))

    def _http(self, instance: WhatsAppInstance) -> httpx.AsyncClient:
        """The instance's connection pool (the lean transport: see providers/transport.py).

        One pool per instance keeps a slow number from holding the others' connections. A
        gateway's address is the tenant's to give: its pool refuses private addresses.
        """
        if self._shared_http is not None:
            return self._shared_http
        client = self._pools.get(instance.id)
        if client is None:
            tenant_aimed = ProviderName(instance.provider) in GATEWAYS
            client = provider_client(
                max_connections=self._settings.sender_concurrency,
                guarded=tenant_aimed and not self._settings.outbound_allow_private,
            )
            self._pools[instance.id] = client
        return client

    def _breaker(self, instance_id: str) -> CircuitBreaker:
        return self._breakers.setdefault(instance_id, CircuitBreaker())

    def _account(self, instance: WhatsAppInstance) -> SenderAccount:
        """The instance's sending identity, decrypted once per change of the instance."""
        cached = self._accounts.get(instance.id)
        if cached is not None and cached[0] == instance.updated_at:
            return cached[1]
        account = sender_account(
            instance, decrypt_credentials(instance, self._context.cipher), self._settings
        )
        self._accounts[instance.id] = (instance.updated_at, account)
        return account

    # ----------------------------------------------------------------------------------------------
    # Record

    async def _record(self, outcomes: list[_Outcome], batch: SendBatch) -> None:
        now = self._clock()
        async with self._context.sessions() as session, session.begin():
            published = await _record_sent(session, [o for o in outcomes if o.result is not None], now)
            published += await _record_failed(
                session, [o for o in outcomes if o.result is None and o.state is SendState.DONE], now
            )
            await _record_waiting(session, [o for o in outcomes if o.state is SendState.WAITING])
            await _record_unknown(session, [o for o in outcomes if o.state is SendState.UNKNOWN], now)
            await record_outcomes(session, _health(outcomes), now)
            published += await _opt_out_refused(session, outcomes, now)
            published += await _pause_refused_instances(session, outcomes, now)
            outbox = await write_outbox(session, published, self._context.names.events)
        await relay_outbox(self._context, outbox)
        for outcome in outcomes:
            _count(outcome, batch)
        await self._dead_letter([o for o in outcomes if o.exhausted], batch)

    async def _dead_letter(self, outcomes: list[_Outcome], batch: SendBatch) -> None:
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
        await self._offer_due()
        await self._settle_stale_claims()

    async def _offer_due(self) -> int:
        now = self._clock()
        m = messages_table.c
        async with self._context.sessions() as session, session.begin():
            due = (
                await session.execute(
                    select(m.id, m.tenant_id, m.send_state)
                    .where(
                        m.send_state.in_([SendState.PENDING.value, SendState.WAITING.value]),
                        m.next_attempt_at <= now,
                    )
                    .order_by(m.next_attempt_at)
                    .limit(1000)
                )
            ).all()
            if not due:
                return 0
            await session.execute(
                update(messages_table)
                .where(
                    one_of(session, m.id, [row.id for row in due]),
                    m.send_state.in_([SendState.PENDING.value, SendState.WAITING.value]),
                )
                .values(send_state=SendState.PENDING.value, next_attempt_at=now + REOFFER_AFTER)
            )
        await offer_messages(self._context, [(row.id, row.tenant_id) for row in due])
        return len(due)

    async def _settle_stale_claims(self) -> int:
        """Claimed or answer-lost messages past the grace period end failed: unknown_outcome."""
        now = self._clock()
        cutoff = now - timedelta(seconds=self._settings.send_outcome_grace_seconds)
        m = messages_table.c
        async with self._context.sessions() as session, session.begin():
            settled = (
                await session.execute(
                    update(messages_table)
                    .where(
                        m.send_state.in_([SendState.CLAIMED.value, SendState.UNKNOWN.value]),
                        m.claimed_at < cutoff,
                    )
                    .values(
                        send_state=SendState.DONE.value,
                        status=DeliveryStatus.FAILED.value,
                        status_rank=FAILED_RANK,
                        failed_at=now,
                        error_code="unknown_outcome",
                        error_title="the provider's answer was lost and no receipt settled the message",
                        updated_at=now,
                    )
                    .returning(m.id, m.tenant_id, m.instance_id, m.conversation_id)
                )
            ).all()
            published = [
                PublishedEvent(
                    "whatsapp_delivery_failed",
                    row.tenant_id,
                    _failed_payload(
                        row.id, row.instance_id, row.conversation_id, "unknown_outcome", "answer lost"
                    ),
                )
                for row in settled
            ]
            await follow_messages(session, [row.id for row in settled], now)
            outbox = await write_outbox(session, published, self._context.names.events)
        await relay_outbox(self._context, outbox)
        return len(settled)


def sender_account(
    instance: WhatsAppInstance, credentials: dict[str, str], settings: Settings
) -> SenderAccount:
    """What a provider needs to send as this instance."""
    provider = ProviderName(instance.provider)
    api_url = {
        ProviderName.META: settings.meta_graph_url,
        ProviderName.TWILIO: settings.twilio_api_url,
        ProviderName.SIMULATOR: settings.simulator_url or settings.public_url,
    }.get(provider, instance.api_url or "")
    callback = (
        webhook_url(instance, credentials, settings.public_url) if provider is ProviderName.TWILIO else None
    )
    return SenderAccount(
        display_number=instance.display_number,
        api_url=api_url,
        phone_number_id=instance.phone_number_id,
        waba_id=instance.waba_id,
        account_sid=instance.account_sid,
        instance_name=instance.instance_name or instance.routing_key,
        access_token=credentials.get("access_token"),
        auth_token=credentials.get("auth_token"),
        api_key=credentials.get("api_key") or credentials.get("webhook_secret"),
        status_callback_url=callback,
    )


# --------------------------------------------------------------------------------------------------
# Recording outcomes, set-based per batch


async def _record_sent(
    session: AsyncSession, outcomes: list[_Outcome], now: datetime
) -> list[PublishedEvent]:
    if not outcomes:
        return []
    m = messages_table.c
    rows = [
        (o.claim.message.id, o.claim.instance.id, o.result.provider_message_id) for o in outcomes if o.result
    ]
    sent = rows_table(session, "sent", SENT_COLUMNS, rows).c
    # An echo of our own send (Evolution's send.message, WuzAPI's IsFromMe) may have been stored
    # as a phone-typed message before we knew the id: it is this message, so it goes.
    echo = exists().where(
        m.instance_id == sent.instance_id, m.provider_message_id == sent.provider_message_id
    )
    await session.execute(
        delete(messages_table)
        .where(m.sender_type == SenderType.PHONE.value, echo)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(messages_table)
        .where(m.id == sent.id)
        .values(
            provider_message_id=sent.provider_message_id,
            send_state=SendState.DONE.value,
            status=_below(SENT_RANK, DeliveryStatus.SENT.value, m.status),
            status_rank=_below(SENT_RANK, SENT_RANK, m.status_rank),
            sent_at=func.coalesce(m.sent_at, now),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    keys = [(o.claim.instance.id, o.result.provider_message_id) for o in outcomes if o.result]
    published = await apply_orphan_receipts(session, keys)
    await follow_messages(session, [o.claim.message.id for o in outcomes], now)
    for outcome in outcomes:
        assert outcome.result is not None
        message = outcome.claim.message
        published.append(
            PublishedEvent(
                "whatsapp_message_sent",
                message.tenant_id,
                {
                    "message_id": message.id,
                    "provider_message_id": outcome.result.provider_message_id,
                    "instance_id": message.instance_id,
                    "conversation_id": message.conversation_id,
                    "status": DeliveryStatus.SENT.value,
                },
            )
        )
    return published


SENT_COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("id", String()),
    ("instance_id", String()),
    ("provider_message_id", String()),
]


def _below(rank: int, new: Any, current: Any) -> Any:
    """`new` where the message's status is still below `rank`, else what it has (never downgrade)."""
    return case((messages_table.c.status_rank < rank, new), else_=current)


async def _record_failed(
    session: AsyncSession, outcomes: list[_Outcome], now: datetime
) -> list[PublishedEvent]:
    if not outcomes:
        return []
    m = messages_table.c
    rows = []
    published = []
    for outcome in outcomes:
        assert outcome.error is not None
        message = outcome.claim.message
        rows.append({"b_id": message.id, "b_code": outcome.error.code[:32], "b_title": outcome.error.title})
        published.append(
            PublishedEvent(
                "whatsapp_delivery_failed",
                message.tenant_id,
                _failed_payload(
                    message.id,
                    message.instance_id,
                    message.conversation_id,
                    outcome.error.code,
                    outcome.error.title,
                ),
            )
        )
    await session.execute(
        update(messages_table)
        .where(m.id == bindparam("b_id"))
        .values(
            # A receipt may already have proven delivery: then the failure report is wrong.
            send_state=SendState.DONE.value,
            status=_below(FAILED_RANK, DeliveryStatus.FAILED.value, m.status),
            status_rank=_below(FAILED_RANK, FAILED_RANK, m.status_rank),
            failed_at=_below(FAILED_RANK, now, m.failed_at),
            error_code=_below(FAILED_RANK, bindparam("b_code"), m.error_code),
            error_title=_below(FAILED_RANK, bindparam("b_title"), m.error_title),
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
        rows,
    )
    await follow_messages(session, [row["b_id"] for row in rows], now)
    return published


def _failed_payload(
    message_id: str, instance_id: str, conversation_id: str, code: str, title: str
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "instance_id": instance_id,
        "conversation_id": conversation_id,
        "status": DeliveryStatus.FAILED.value,
        "error": {"code": code, "title": title},
    }


async def _record_waiting(session: AsyncSession, outcomes: list[_Outcome]) -> None:
    if not outcomes:
        return
    m = messages_table.c
    await session.execute(
        update(messages_table)
        .where(m.id == bindparam("b_id"))
        .values(
            send_state=SendState.WAITING.value,
            next_attempt_at=bindparam("b_next"),
            send_attempts=m.send_attempts - bindparam("b_refund"),
            error_code=bindparam("b_code"),
            error_title=bindparam("b_title"),
        )
        .execution_options(synchronize_session=False),
        [
            {
                "b_id": o.claim.message.id,
                "b_next": o.next_attempt_at,
                "b_refund": 1 if o.deferred else 0,
                "b_code": o.error.code[:32] if o.error else None,
                "b_title": o.error.title if o.error else None,
            }
            for o in outcomes
        ],
    )


async def _record_unknown(session: AsyncSession, outcomes: list[_Outcome], now: datetime) -> None:
    if not outcomes:
        return
    m = messages_table.c
    await session.execute(
        update(messages_table)
        .where(
            one_of(session, m.id, [o.claim.message.id for o in outcomes]),
            m.send_state == SendState.CLAIMED.value,
        )
        .values(send_state=SendState.UNKNOWN.value, claimed_at=now, updated_at=now)
    )


async def _opt_out_refused(
    session: AsyncSession, outcomes: list[_Outcome], now: datetime
) -> list[PublishedEvent]:
    """The provider says the person blocked or unsubscribed: honour it as an opt-out everywhere."""
    candidates = [
        OptOutCandidate(
            tenant_id=o.claim.message.tenant_id,
            contact_id=o.claim.message.contact_id,
            phone=o.claim.phone,
            instance_id=o.claim.instance.id,
            keyword=None,
            text=None,
            provider_message_id=None,
            at=now,
            reason=f"provider:{o.error.code}",
        )
        for o in outcomes
        if o.error is not None and o.error.error_class is ErrorClass.OPT_OUT and o.error is not OPTED_OUT
    ]
    if not candidates:
        return []
    return optout_events(await apply_optouts(session, candidates))


async def _pause_refused_instances(
    session: AsyncSession, outcomes: list[_Outcome], now: datetime
) -> list[PublishedEvent]:
    """The provider refuses the number itself (blocked, logged out, bad token): pause it, alert."""
    refusals: dict[str, tuple[_Claim, SendError]] = {}
    for outcome in outcomes:
        if outcome.error is not None and outcome.error.error_class is ErrorClass.PAUSE_CHANNEL:
            refusals[outcome.claim.instance.id] = (outcome.claim, outcome.error)
    if not refusals:
        return []
    reasons = {instance_id: str(error)[:500] for instance_id, (_, error) in refusals.items()}
    published = []
    for instance_id in await pause_instances(session, reasons, now):
        claim, error = refusals[instance_id]
        logger.error(
            "instance %s (%s) paused: the provider refused it: %s; resume it once fixed",
            instance_id,
            claim.instance.display_number,
            error,
        )
        published.append(
            PublishedEvent(
                "whatsapp_instance_paused",
                claim.instance.tenant_id,
                {
                    "instance_id": instance_id,
                    "display_number": claim.instance.display_number,
                    "reason": "provider_refused",
                    "error": {"code": error.code, "title": error.title},
                },
            )
        )
    return published


def _health(outcomes: list[_Outcome]) -> dict[str, Outcomes]:
    by_instance: dict[str, Outcomes] = {}
    for outcome in outcomes:
        if outcome.error is OPTED_OUT:
            # Never sent: says nothing about the number.
            continue
        counts = by_instance.setdefault(outcome.claim.instance.id, Outcomes())
        if outcome.result is not None:
            counts.sent += 1
        elif outcome.state is SendState.DONE:
            counts.failed += 1
    return by_instance


def _count(outcome: _Outcome, batch: SendBatch) -> None:
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
