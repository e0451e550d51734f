"""The integrations routes under /api/v1: thin over the service.

Webhook subscriptions (events out over HTTP): admins (and API keys with the integrations scopes)
create, list and delete them and read their deliveries. The secret is in the creation's answer
only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.integrations import service
from messaging_whatsapp.integrations.schemas import (
    DeliveryItem,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionItem,
)
from messaging_whatsapp.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from messaging_whatsapp.tenancy.deps import IntegrationReader, IntegrationWriter

router = APIRouter(prefix="/api/v1", tags=["integrations"])

SUBSCRIPTIONS = "/webhook-subscriptions"
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=500)]


@router.get(SUBSCRIPTIONS)
async def list_subscriptions(
    session: DbSession, principal: IntegrationReader, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Page[SubscriptionItem]:
    """The tenant's webhook subscriptions, newest first (never their secrets)."""
    found, next_cursor = await service.list_subscriptions(session, principal.tenant_id, cursor, limit)
    return Page(items=[SubscriptionItem.of(row) for row in found], next_cursor=next_cursor)


@router.post(SUBSCRIPTIONS, status_code=201)
async def create_subscription(
    body: SubscriptionCreate, session: DbSession, context: Context, principal: IntegrationWriter
) -> SubscriptionCreated:
    """Subscribe a URL to event types (`["*"]`: all); the answer holds its signing secret
    (`whsec_...`), shown this once."""
    subscription, secret = await service.create_subscription(
        session,
        context.cipher,
        principal.tenant_id,
        body,
        allow_private=context.settings.outbound_allow_private,
    )
    return SubscriptionCreated(**SubscriptionItem.of(subscription).model_dump(), secret=secret)


@router.get(SUBSCRIPTIONS + "/{subscription_id}")
async def get_subscription(
    subscription_id: str, session: DbSession, principal: IntegrationReader
) -> SubscriptionItem:
    """One subscription (never its secret)."""
    return SubscriptionItem.of(await service.get_subscription(session, principal.tenant_id, subscription_id))


@router.delete(SUBSCRIPTIONS + "/{subscription_id}", status_code=204)
async def delete_subscription(subscription_id: str, session: DbSession, principal: IntegrationWriter) -> None:
    """Delete a subscription with its deliveries; nothing more is sent to it."""
    await service.delete_subscription(session, principal.tenant_id, subscription_id)


@router.get(SUBSCRIPTIONS + "/{subscription_id}/deliveries")
async def list_deliveries(
    subscription_id: str,
    session: DbSession,
    principal: IntegrationReader,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[DeliveryItem]:
    """The subscription's deliveries, newest first, each with its attempts."""
    found, next_cursor = await service.list_deliveries(
        session, principal.tenant_id, subscription_id, cursor, limit
    )
    return Page(items=[DeliveryItem.of(row, attempts) for row, attempts in found], next_cursor=next_cursor)


@router.post(SUBSCRIPTIONS + "/{subscription_id}/test", status_code=202)
async def send_test_event(
    subscription_id: str, session: DbSession, principal: IntegrationWriter
) -> DeliveryItem:
    """Queue a `whatsapp_webhook_test` event for this subscription alone; the delivery pass sends
    it like any other (follow it in the deliveries)."""
    delivery = await service.queue_test_event(session, principal.tenant_id, subscription_id)
    return DeliveryItem.of(delivery, [])
