"""The delivery pass: due deliveries claimed with a lease, POSTed signed, each attempt recorded.

A claim is one conditional UPDATE: it takes deliveries that are due and not under another
claim's lease, counts their attempt up and sets the lease; two passes (in one process or many)
never hold the same delivery at once. Only the claim whose attempt number is still the
delivery's records the outcome, so a pass that overran its lease (and saw the delivery claimed
again) cannot overwrite the newer attempt; its own attempt is still logged. A process that dies
mid-attempt leaves the delivery to be claimed again when the lease ends.

A 2xx answer is delivered. Anything else (another status, a timeout, a refused connection, a
private address the guarded client would not call) is retried after the next wait of
WEBHOOK_DELIVERY_RETRY_SECONDS (plus up to 20% at random, so many failures spread out) until
WEBHOOK_DELIVERY_WINDOW_SECONDS after the event, then the delivery fails. A 410 Gone fails it at
once and turns the subscription off (`disabled_reason`), its other pending deliveries failing too:
the receiver said the endpoint is gone for good.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.config import Settings
from messaging_whatsapp.crypto import Cipher
from messaging_whatsapp.db import insert_for, is_postgresql, new_id
from messaging_whatsapp.integrations.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from messaging_whatsapp.integrations.payloads import signed_headers
from messaging_whatsapp.providers.http import ProviderClient
from messaging_whatsapp.providers.transport import DestinationRefused, LeanTransport

logger = logging.getLogger(__name__)

# Deliveries one pass claims (they are sent at once, side by side), and the attempts one process
# has under way at most; the client keeps as many connections per receiver, so an attempt never
# waits for a connection (its timeout would count the wait as the receiver's).
CLAIM_BATCH = 50
MAX_IN_FLIGHT = 200
# What of a receiver's answer is kept with the attempt.
RESPONSE_EXCERPT = 1000
ERROR_LENGTH = 500
GONE = 410
GONE_REASON = "the receiver answered 410 Gone"
_OPEN = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this pass holds for one attempt."""

    id: str
    tenant_id: str
    subscription_id: str
    event_id: str
    occurred_at: datetime
    body: str
    attempt: int
    url: str
    secret_encrypted: str
    active: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: a status code (and a little of the answer), or why there was none."""

    attempted_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    response_body: str | None = None

    @property
    def delivered(self) -> bool:
        """The receiver took it (2xx)."""
        return self.status_code is not None and 200 <= self.status_code < 300


def delivery_client(settings: Settings) -> httpx.AsyncClient:
    """The client for subscribers' URLs: guarded (public addresses only, checked after DNS at
    each connection) unless OUTBOUND_ALLOW_PRIVATE; no redirects followed, no cookies kept."""
    timeout = settings.webhook_delivery_timeout_seconds
    transport = LeanTransport(max_connections=MAX_IN_FLIGHT, guarded=not settings.outbound_allow_private)
    return ProviderClient(
        transport=transport, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), follow_redirects=False
    )


async def claim_due(
    session: AsyncSession, now: datetime, lease: timedelta, limit: int = CLAIM_BATCH
) -> list[Claimed]:
    """Claim up to `limit` due deliveries for one attempt each, in the session's transaction."""
    free = or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now)
    due = and_(WebhookDelivery.status.in_(_OPEN), WebhookDelivery.next_attempt_at <= now, free)
    candidates = select(WebhookDelivery.id).where(due).order_by(WebhookDelivery.next_attempt_at).limit(limit)
    if is_postgresql(session):
        # Passes side by side take different rows instead of queueing behind each other's locks.
        candidates = candidates.with_for_update(skip_locked=True)
    claimed = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(candidates.scalar_subquery()), due)
        .values(attempts=WebhookDelivery.attempts + 1, claimed_until=now + lease)
        .returning(
            WebhookDelivery.id,
            WebhookDelivery.tenant_id,
            WebhookDelivery.subscription_id,
            WebhookDelivery.event_id,
            WebhookDelivery.occurred_at,
            WebhookDelivery.body,
            WebhookDelivery.attempts,
        )
    )
    rows = claimed.all()
    if not rows:
        return []
    subscriptions = {
        row.id: row
        for row in await session.execute(
            select(
                WebhookSubscription.id,
                WebhookSubscription.url,
                WebhookSubscription.secret_encrypted,
                WebhookSubscription.active,
            ).where(WebhookSubscription.id.in_({row.subscription_id for row in rows}))
        )
    }
    return [
        Claimed(
            id=row.id,
            tenant_id=row.tenant_id,
            subscription_id=row.subscription_id,
            event_id=row.event_id,
            occurred_at=row.occurred_at,
            body=row.body,
            attempt=row.attempts,
            url=subscriptions[row.subscription_id].url,
            secret_encrypted=subscriptions[row.subscription_id].secret_encrypted,
            active=subscriptions[row.subscription_id].active,
        )
        for row in rows
    ]


async def attempt(
    client: httpx.AsyncClient, cipher: Cipher, claimed: Claimed, timeout: float, now: datetime
) -> Outcome:
    """POST the delivery's body, signed for this moment; never raises for what the receiver or
    the network did."""
    headers = signed_headers(cipher.decrypt(claimed.secret_encrypted), claimed.event_id, claimed.body, now)
    started = time.monotonic()
    try:
        # The whole exchange within the timeout: a receiver that trickles its answer is cut too.
        async with asyncio.timeout(timeout):
            response = await client.post(claimed.url, content=claimed.body.encode(), headers=headers)
    except DestinationRefused as exc:
        return _failed(now, started, f"refused: {exc} (OUTBOUND_ALLOW_PRIVATE is off)")
    except (TimeoutError, httpx.TimeoutException):
        return _failed(now, started, f"timeout: no answer within {timeout:g} s")
    except httpx.InvalidURL as exc:
        return _failed(now, started, f"invalid url: {exc}")
    except Exception as exc:  # whatever else the network or the receiver did: a failed attempt
        return _failed(now, started, f"{type(exc).__name__}: {exc}")
    excerpt = response.content[: RESPONSE_EXCERPT * 4].decode("utf-8", "replace")
    return Outcome(
        attempted_at=now,
        duration_ms=_elapsed_ms(started),
        status_code=response.status_code,
        error=None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}",
        response_body=_storable(excerpt)[:RESPONSE_EXCERPT] or None,
    )


def _storable(text: str) -> str:
    """The text without NUL, which PostgreSQL does not store (a receiver may answer anything)."""
    return text.replace("\x00", "")


def _failed(now: datetime, started: float, error: str) -> Outcome:
    return Outcome(attempted_at=now, duration_ms=_elapsed_ms(started), error=_storable(error)[:ERROR_LENGTH])


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def retry_at(
    settings: Settings, attempt_number: int, occurred_at: datetime, now: datetime
) -> datetime | None:
    """When to try again after failed attempt `attempt_number`, or None when that is past the
    window (the delivery fails)."""
    delays = settings.webhook_retry_delays
    delay = delays[min(attempt_number, len(delays)) - 1] * (1 + random.random() * 0.2)
    at = now + timedelta(seconds=delay)
    if at > occurred_at + timedelta(seconds=settings.webhook_delivery_window_seconds):
        return None
    return at


async def record(session: AsyncSession, settings: Settings, claimed: Claimed, outcome: Outcome) -> str:
    """Log the attempt and move the delivery on (delivered, retrying or failed), in the session's
    transaction; the status it now has ("superseded" when a newer claim holds it, "deleted" when
    its subscription was deleted meanwhile)."""
    now = outcome.attempted_at + timedelta(milliseconds=outcome.duration_ms)
    status, next_at = _next_step(settings, claimed, outcome, now)
    finished = now if status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED) else None
    moved = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == claimed.id, WebhookDelivery.attempts == claimed.attempt)
        .values(
            status=status.value,
            next_attempt_at=next_at,
            claimed_until=None,
            last_status_code=outcome.status_code,
            last_error=outcome.error,
            finished_at=finished,
        )
        .returning(WebhookDelivery.id)
    )
    result = status.value
    if moved.first() is None:
        if await session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.id == claimed.id)) is None:
            return "deleted"
        result = "superseded"  # its attempt happened all the same: it is logged
    await session.execute(
        insert_for(session, WebhookAttempt.__table__)
        .values(
            id=new_id(),
            delivery_id=claimed.id,
            tenant_id=claimed.tenant_id,
            number=claimed.attempt,
            attempted_at=outcome.attempted_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            error=outcome.error,
            response_body=outcome.response_body,
        )
        .on_conflict_do_nothing(index_elements=["delivery_id", "number"])
    )
    if result != "superseded" and outcome.status_code == GONE:
        await _disable(session, claimed.subscription_id, now)
    return result


def _next_step(
    settings: Settings, claimed: Claimed, outcome: Outcome, now: datetime
) -> tuple[DeliveryStatus, datetime | None]:
    if outcome.delivered:
        return DeliveryStatus.DELIVERED, None
    if outcome.status_code == GONE:
        return DeliveryStatus.FAILED, None
    at = retry_at(settings, claimed.attempt, claimed.occurred_at, now)
    return (DeliveryStatus.RETRYING, at) if at is not None else (DeliveryStatus.FAILED, None)


async def skip_inactive(session: AsyncSession, claimed: Claimed, now: datetime) -> None:
    """A delivery claimed for a subscription turned off meanwhile fails without an attempt."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == claimed.id, WebhookDelivery.attempts == claimed.attempt)
        .values(
            status=DeliveryStatus.FAILED.value,
            attempts=claimed.attempt - 1,
            next_attempt_at=None,
            claimed_until=None,
            last_error="the subscription is not active",
            finished_at=now,
        )
    )


async def _disable(session: AsyncSession, subscription_id: str, now: datetime) -> None:
    await session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id, WebhookSubscription.active.is_(True))
        .values(active=False, disabled_reason=GONE_REASON, updated_at=now)
    )
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription_id,
            WebhookDelivery.status.in_(_OPEN),
            or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
        )
        .values(
            status=DeliveryStatus.FAILED.value,
            next_attempt_at=None,
            last_error=f"not sent: {GONE_REASON} to another event",
            finished_at=now,
        )
    )
