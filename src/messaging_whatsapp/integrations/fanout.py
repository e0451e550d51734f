"""Events to deliveries: each event on the events stream becomes one delivery row per active
subscription of its tenant that wants its type.

Rows are unique by (subscription, event id): the stream delivers at least once, and an event it
delivers again finds its rows and adds none. A subscription hears the events that happened after
it was made, not a backlog the consumer had not reached yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import insert_rows, new_id, one_of, utcnow
from messaging_whatsapp.integrations.catalogue import wants
from messaging_whatsapp.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from messaging_whatsapp.integrations.payloads import delivery_body


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """An event as the outbox (or the campaign dispatcher) wrote it on the events stream."""

    event_id: str
    event_type: str
    tenant_id: str
    occurred_at: datetime
    payload: dict[str, Any]


def read_event(fields: dict[str, str]) -> StreamEvent:
    """The event in a stream entry's fields; ValueError (or KeyError) when it is not one."""
    payload = orjson.loads(fields["payload"])
    if not isinstance(payload, dict):
        raise ValueError("the event's payload is not a JSON object")
    occurred_at = datetime.fromisoformat(fields["occurred_at"])
    if occurred_at.tzinfo is None:
        raise ValueError("the event's occurred_at has no time zone")
    event_id, event_type, tenant_id = fields["event_id"], fields["event_type"], fields["tenant_id"]
    if not (event_id and event_type and tenant_id) or len(event_id) > 64 or len(event_type) > 100:
        raise ValueError("the event's id, type or tenant is missing or too long")
    return StreamEvent(event_id, event_type, tenant_id, occurred_at, payload)


async def fan_out(session: AsyncSession, events: list[StreamEvent]) -> int:
    """Add the deliveries of these events (due at once) in the session's transaction; how many
    were new."""
    if not events:
        return 0
    tenants = sorted({event.tenant_id for event in events})
    query = select(
        WebhookSubscription.id,
        WebhookSubscription.tenant_id,
        WebhookSubscription.events,
        WebhookSubscription.created_at,
    ).where(one_of(session, WebhookSubscription.tenant_id, tenants), WebhookSubscription.active.is_(True))
    by_tenant: dict[str, list[tuple[str, list[str], datetime]]] = {}
    for row in await session.execute(query):
        by_tenant.setdefault(row.tenant_id, []).append((row.id, orjson.loads(row.events), row.created_at))
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for event in events:
        body: str | None = None
        for subscription_id, types, created_at in by_tenant.get(event.tenant_id, ()):
            if not wants(types, event.event_type) or event.occurred_at < created_at:
                continue
            body = body or delivery_body(
                event.event_type, event.occurred_at, event.event_id, event.tenant_id, event.payload
            )
            rows.append(_row(event, subscription_id, body, now))
    if not rows:
        return 0
    insert, params = insert_rows(session, WebhookDelivery.__table__, rows)  # type: ignore[arg-type]
    statement = insert.on_conflict_do_nothing(index_elements=["subscription_id", "event_id"]).returning(
        WebhookDelivery.id
    )
    return len((await session.scalars(statement, params)).all())


def _row(event: StreamEvent, subscription_id: str, body: str, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "tenant_id": event.tenant_id,
        "subscription_id": subscription_id,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "occurred_at": event.occurred_at,
        "body": body,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "claimed_until": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "finished_at": None,
    }
