"""A tenant's webhook subscriptions and their deliveries: created (the secret shown once), listed,
deleted; a test event queued for one of them.

A subscription's URL must be one the engine may call: http or https, no credentials in it, and
(unless OUTBOUND_ALLOW_PRIVATE is on, for local development) a host that resolves to public
addresses only. The delivery pass checks again at every attempt through the guarded client, since
the host's DNS may change after the subscription was made.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import socket
from collections.abc import Collection, Sequence
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.crypto import Cipher
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.errors import InvalidInput, NotFound
from messaging_whatsapp.integrations.catalogue import TEST_EVENT, checked_event_types
from messaging_whatsapp.integrations.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from messaging_whatsapp.integrations.payloads import delivery_body
from messaging_whatsapp.integrations.schemas import SubscriptionCreate
from messaging_whatsapp.pagination import decode_time_cursor, encode_cursor
from messaging_whatsapp.providers.transport import is_public_address

SECRET_PREFIX = "whsec_"
# Standard Webhooks asks for 24 to 64 random bytes.
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and the base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


async def checked_url(url: str, *, allow_private: bool) -> str:
    """The URL when the engine may call it; InvalidInput saying why not (not http(s), credentials
    in it, a host that does not resolve or resolves to a private, loopback, link-local or
    metadata address)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidInput(f"url is not valid: {exc}", code="invalid_url") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("url must start with http:// or https://", code="invalid_url")
    if "@" in parts.netloc:
        raise InvalidInput("url must not carry credentials (user:password@)", code="invalid_url")
    if not parts.hostname:
        raise InvalidInput("url must name a host", code="invalid_url")
    try:
        host, port = parts.hostname, parts.port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise InvalidInput(f"url is not valid: {exc}", code="invalid_url") from exc
    if allow_private:
        return url
    addresses = await _addresses(host, port or (443 if parts.scheme == "https" else 80))
    refused = [address for address in addresses if not is_public_address(address)]
    if refused or not addresses:
        raise InvalidInput(
            f"{host} is not on the public internet ({', '.join(refused) or 'no address'}); the engine "
            "calls public addresses only (OUTBOUND_ALLOW_PRIVATE=true allows others, for local development)",
            code="private_address",
        )
    return url


async def _addresses(host: str, port: int) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host.split("%", 1)[0]))]
    except ValueError:
        pass
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InvalidInput(f"{host} does not resolve: {exc}", code="invalid_url") from exc
    return [str(info[4][0]) for info in found]


async def create_subscription(
    session: AsyncSession, cipher: Cipher, tenant_id: str, body: SubscriptionCreate, *, allow_private: bool
) -> tuple[WebhookSubscription, str]:
    """Store a subscription with a new secret (encrypted); returns it and the secret in clear, which
    is never shown again."""
    events = checked_event_types(body.events)
    url = await checked_url(body.url, allow_private=allow_private)
    secret = new_secret()
    now = utcnow()
    subscription = WebhookSubscription(
        id=new_id(),
        tenant_id=tenant_id,
        url=url,
        events=orjson.dumps(events).decode(),
        secret_encrypted=cipher.encrypt(secret),
        description=body.description.strip(),
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(subscription)
    await session.flush()
    return subscription, secret


async def list_subscriptions(
    session: AsyncSession, tenant_id: str, cursor: str | None = None, limit: int = 200
) -> tuple[list[WebhookSubscription], str | None]:
    """The tenant's subscriptions, newest first, with the next page's cursor."""
    query = select(WebhookSubscription).where(WebhookSubscription.tenant_id == tenant_id)
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(
            or_(
                WebhookSubscription.created_at < at,
                and_(WebhookSubscription.created_at == at, WebhookSubscription.id < last_id),
            )
        )
    query = query.order_by(WebhookSubscription.created_at.desc(), WebhookSubscription.id.desc())
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    last = rows[limit - 1] if len(rows) > limit else None
    return rows[:limit], encode_cursor(last.created_at, last.id) if last else None


async def get_subscription(
    session: AsyncSession, tenant_id: str, subscription_id: str
) -> WebhookSubscription:
    """The tenant's subscription; NotFound for one there is not (or another tenant's)."""
    found = await session.scalar(
        select(WebhookSubscription).where(
            WebhookSubscription.id == subscription_id, WebhookSubscription.tenant_id == tenant_id
        )
    )
    if found is None:
        raise NotFound("webhook subscription not found")
    return found


async def delete_subscription(session: AsyncSession, tenant_id: str, subscription_id: str) -> None:
    """Delete the subscription with its deliveries and their attempts; NotFound when there is none."""
    subscription = await get_subscription(session, tenant_id, subscription_id)
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.subscription_id == subscription.id)
    # Explicit, not only by the foreign keys' cascade: it holds whatever the connection's settings.
    await session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id))
    await session.delete(subscription)
    await session.flush()


async def list_deliveries(
    session: AsyncSession, tenant_id: str, subscription_id: str, cursor: str | None, limit: int
) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], str | None]:
    """A subscription's deliveries, newest first, each with its attempts (oldest first), and the
    next page's cursor; NotFound for another tenant's subscription."""
    subscription = await get_subscription(session, tenant_id, subscription_id)
    query = select(WebhookDelivery).where(
        WebhookDelivery.subscription_id == subscription.id, WebhookDelivery.tenant_id == tenant_id
    )
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(
            or_(
                WebhookDelivery.created_at < at,
                and_(WebhookDelivery.created_at == at, WebhookDelivery.id < last_id),
            )
        )
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    last = rows[limit - 1] if len(rows) > limit else None
    page = rows[:limit]
    attempts = await _attempts_of(session, tenant_id, [row.id for row in page])
    next_cursor = encode_cursor(last.created_at, last.id) if last else None
    return [(row, attempts.get(row.id, [])) for row in page], next_cursor


async def _attempts_of(
    session: AsyncSession, tenant_id: str, delivery_ids: Sequence[str]
) -> dict[str, list[WebhookAttempt]]:
    if not delivery_ids:
        return {}
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.tenant_id == tenant_id, WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)
    )
    found: dict[str, list[WebhookAttempt]] = {}
    for attempt in await session.scalars(query):
        found.setdefault(attempt.delivery_id, []).append(attempt)
    return found


async def queue_test_event(session: AsyncSession, tenant_id: str, subscription_id: str) -> WebhookDelivery:
    """A test event for this one subscription (whatever types it wants), delivered by the next
    pass like any other; NotFound for another tenant's subscription."""
    subscription = await get_subscription(session, tenant_id, subscription_id)
    if not subscription.active:
        raise InvalidInput("the subscription is not active", code="subscription_inactive")
    now = utcnow()
    event_id = new_id()
    payload = {"message": "A test event from messaging-whatsapp.", "subscription_id": subscription.id}
    delivery = WebhookDelivery(
        id=new_id(),
        tenant_id=tenant_id,
        subscription_id=subscription.id,
        event_id=event_id,
        event_type=TEST_EVENT,
        occurred_at=now,
        body=delivery_body(TEST_EVENT, now, event_id, tenant_id, payload),
        status=DeliveryStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    await session.flush()
    return delivery


async def forget_deliveries(session: AsyncSession, tenant_id: str, needles: Collection[str]) -> int:
    """Delete the tenant's deliveries whose body mentions any of `needles` (a person erased at
    their request: the events about them sent or waiting to be sent), with their attempts; how many."""
    if not needles:
        return 0
    mentioned = or_(*(WebhookDelivery.body.contains(needle, autoescape=True) for needle in needles))
    ids = list(
        (
            await session.scalars(
                select(WebhookDelivery.id).where(WebhookDelivery.tenant_id == tenant_id, mentioned)
            )
        ).all()
    )
    if not ids:
        return 0
    await session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    return len(ids)
