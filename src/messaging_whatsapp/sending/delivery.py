"""A claimed message's way to its provider: the number's state, rate limits, its circuit breaker, the call.

Nothing here touches the database. A Delivery turns a claim into an outcome (sent; retry at a
time; deferred by a limit or the breaker; failed; or unknown when the answer was lost) and the
sender records a batch of outcomes at once (sending/outcomes.py). It keeps what outlives one
message: a connection pool and a breaker per number, the decrypted sending identities, the
limiter, and the gate that caps provider calls in flight.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from messaging_whatsapp.config import Settings
from messaging_whatsapp.crypto import Cipher
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Message, SendState
from messaging_whatsapp.instances.health import unavailable_reason
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.instances.service import decrypt_credentials, sender_account
from messaging_whatsapp.providers.base import GATEWAYS, ProviderName, SendProvider, TypingProvider
from messaging_whatsapp.providers.http import provider_client
from messaging_whatsapp.providers.outbound import (
    ButtonsContent,
    ErrorClass,
    OutboundMedia,
    OutboundMediaType,
    OutboundMessage,
    ReplyButton,
    SenderAccount,
    SendError,
    SendResult,
    TemplateContent,
)
from messaging_whatsapp.providers.trace import SendTrace, tracing
from messaging_whatsapp.sending.breaker import CircuitBreaker
from messaging_whatsapp.sending.claims import Claim
from messaging_whatsapp.sending.ratelimit import RateLimiter, send_limits

logger = logging.getLogger(__name__)

# How long "typing..." shows before a campaign message on an unofficial gateway.
TYPING_SECONDS = (1.0, 3.0)
# A limited send waits in the sender this long at most; a longer wait goes back to the database.
MAX_INLINE_WAIT = 2.0
# Errors that say the provider or the number is in trouble (not this one message).
BREAKER_ERRORS = frozenset({ErrorClass.RETRY, ErrorClass.UNKNOWN_OUTCOME, ErrorClass.PAUSE_CHANNEL})
# Providers whose receipts identify a message even when the send's answer was lost.
ECHOING_PROVIDERS = frozenset(
    {ProviderName.META, ProviderName.TWILIO, ProviderName.WUZAPI, ProviderName.SIMULATOR}
)


@dataclass
class SendOutcome:
    """What became of one claimed message."""

    claim: Claim
    state: SendState
    result: SendResult | None = None
    error: SendError | None = None
    next_attempt_at: datetime | None = None
    # Deferred by a breaker or a rate limit: not an attempt.
    deferred: bool = False
    exhausted: bool = False
    # The provider call as made (duration, HTTP status, request and answer), when one was made.
    trace: SendTrace | None = None


class Delivery:
    """Hands claimed messages to their providers, within each number's limits."""

    def __init__(
        self,
        settings: Settings,
        cipher: Cipher,
        providers: Mapping[ProviderName, SendProvider],
        limiter: RateLimiter,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._cipher = cipher
        self._providers = providers
        self._limiter = limiter
        # A given client serves every instance (tests); otherwise each instance gets its own pool.
        self._shared_http = http
        self._pools: dict[str, httpx.AsyncClient] = {}
        self._clock = clock
        self._rng = rng or random.Random()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._accounts: dict[str, tuple[datetime, SenderAccount]] = {}
        self._gate = asyncio.Semaphore(settings.sender_concurrency)

    async def close(self) -> None:
        """Release the HTTP clients and the rate limiter."""
        if self._shared_http is not None:
            await self._shared_http.aclose()
        for client in self._pools.values():
            await client.aclose()
        self._pools.clear()
        await self._limiter.close()

    async def deliver(self, claim: Claim) -> SendOutcome:
        """Send one claimed message if its number, the limits and the breaker allow; what happened."""
        instance = claim.instance
        now = self._clock()
        if instance.status == InstanceStatus.UNBOUND.value:
            # Not coming back by waiting: fail now rather than after every retry.
            error = SendError(ErrorClass.FIX_REQUEST, "instance_unbound", "the number was unbound")
            return self._failure(claim, error)
        reason = unavailable_reason(instance, now)
        if reason is not None:
            return self._failure(claim, SendError(ErrorClass.RETRY, "instance_unavailable", reason))
        provider = ProviderName(instance.provider)
        if claim.phone is None and claim.identity is None:
            unreachable = SendError(
                ErrorClass.INVALID_RECIPIENT,
                "recipient_unreachable",
                f"a {provider.value} number cannot send to this person (known only by another provider's id)",
            )
            return self._failure(claim, unreachable)
        limits = send_limits(self._settings, provider, instance.tenant_id, instance.id, claim.to)
        wait = await self._limiter.acquire(limits)
        while 0 < wait <= MAX_INLINE_WAIT:
            await asyncio.sleep(wait)
            wait = await self._limiter.acquire(limits)
        if wait > 0:
            return SendOutcome(
                claim, SendState.WAITING, next_attempt_at=now + timedelta(seconds=wait), deferred=True
            )
        # Asked last, so a probe the breaker lets through always reaches the provider and reports.
        breaker = self._breaker(instance.id)
        if not breaker.allow(time.monotonic()):
            retry_in = max(breaker.retry_at(time.monotonic()) - time.monotonic(), 0.1)
            return SendOutcome(
                claim, SendState.WAITING, next_attempt_at=now + timedelta(seconds=retry_in), deferred=True
            )
        return await self._send(claim, provider, breaker)

    async def _send(self, claim: Claim, provider: ProviderName, breaker: CircuitBreaker) -> SendOutcome:
        message = outbound_message(claim.message, claim.to)
        adapter = self._providers[provider]
        trace: SendTrace | None = None
        try:
            async with self._gate:
                if (claim.message.extra or {}).get("typing") and isinstance(adapter, TypingProvider):
                    await self._show_typing(adapter, claim, message.to)
                with tracing() as trace:
                    result = await adapter.send(
                        self._http(claim.instance), self._account(claim.instance), message
                    )
        except SendError as error:
            if error.error_class in BREAKER_ERRORS:
                breaker.record_failure(time.monotonic())
            else:
                # The provider answered: it is up, whatever it thought of this message.
                breaker.record_success()
            failure = self._failure(claim, error)
            failure.trace = trace
            return failure
        except Exception:
            breaker.record_failure(time.monotonic())
            # A bug between sending and reading the answer: the request may have gone.
            logger.exception("provider %s raised while sending message %s", provider.value, claim.message.id)
            unexpected = SendError(
                ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome", "the provider call failed unexpectedly"
            )
            return self._failure(claim, unexpected)
        breaker.record_success()
        return SendOutcome(claim, SendState.DONE, result=result, trace=trace)

    async def _show_typing(self, adapter: TypingProvider, claim: Claim, to: str) -> None:
        """A person types before they send: campaign messages on the gateways do too."""
        seconds = self._rng.uniform(*TYPING_SECONDS)
        try:
            await adapter.show_typing(self._http(claim.instance), self._account(claim.instance), to, seconds)
        except (SendError, httpx.HTTPError) as exc:
            # Only a courtesy: the message still goes.
            logger.info("typing presence failed for message %s: %s", claim.message.id, exc)

    def _failure(self, claim: Claim, error: SendError) -> SendOutcome:
        if error.error_class is ErrorClass.UNKNOWN_OUTCOME:
            if ProviderName(claim.instance.provider) in ECHOING_PROVIDERS:
                return SendOutcome(claim, SendState.UNKNOWN, error=error)
            return SendOutcome(claim, SendState.DONE, error=error)
        if not error.retryable:
            return SendOutcome(claim, SendState.DONE, error=error)
        attempts = claim.message.send_attempts
        if attempts >= self._settings.send_max_attempts:
            return SendOutcome(claim, SendState.DONE, error=error, exhausted=True)
        return SendOutcome(
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
        account = sender_account(instance, decrypt_credentials(instance, self._cipher), self._settings)
        self._accounts[instance.id] = (instance.updated_at, account)
        return account


def outbound_message(message: Message, phone: str) -> OutboundMessage:
    """The provider-neutral message to send for a stored outbound message (`phone` may be an
    identity: a BSUID or a LID JID, as providers/outbound.py RecipientKind says)."""
    extra = message.extra or {}
    to = phone.removeprefix("+")
    reply_to = message.quoted_provider_message_id
    if message.media is not None:
        media = message.media
        return OutboundMessage(
            message.id,
            to,
            media=OutboundMedia(
                OutboundMediaType(media["type"]), media["url"], media.get("caption"), media.get("filename")
            ),
            reply_to=reply_to,
        )
    if "template" in extra:
        template = extra["template"]
        return OutboundMessage(
            message.id,
            to,
            template=TemplateContent(template["name"], template["language"], tuple(template["parameters"])),
            reply_to=reply_to,
        )
    if "buttons" in extra:
        buttons = tuple(ReplyButton(b["id"], b["title"]) for b in extra["buttons"])
        return OutboundMessage(
            message.id, to, buttons=ButtonsContent(message.content or "", buttons), reply_to=reply_to
        )
    return OutboundMessage(message.id, to, text=message.content or "", reply_to=reply_to)
