"""Event mappings per tenant, the events consumed, and publishing an event onto events:materials.

The entry format on events:materials is the one our own events stream uses (outbox/service.py):
`event_id`, `event_type`, `tenant_id`, `payload` (a JSON object as text) and optionally
`occurred_at` (ISO 8601). External producers with Redis write exactly that; POST /api/v1/events
appends exactly that, so one consumer (worker/notifications.py) handles both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import insert_for, new_id, utcnow
from messaging_whatsapp.errors import InvalidInput, NotFound
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.notifications.models import EventMapping, EventType, InboundEvent
from messaging_whatsapp.notifications.schemas import MappingChange
from messaging_whatsapp.pagination import decode_time_cursor, encode_cursor
from messaging_whatsapp.providers.capabilities import takes_templates
from messaging_whatsapp.streams.base import Streams


async def list_mappings(session: AsyncSession, tenant_id: str) -> list[EventMapping]:
    """The tenant's mappings, in the order of the event types."""
    order = list(EventType)
    found = await session.scalars(select(EventMapping).where(EventMapping.tenant_id == tenant_id))
    return sorted(found, key=lambda m: order.index(EventType(m.event_type)))


async def mapping_for(session: AsyncSession, tenant_id: str, event_type: str) -> EventMapping | None:
    """The tenant's mapping of one event type, if it has one."""
    return await session.scalar(
        select(EventMapping).where(EventMapping.tenant_id == tenant_id, EventMapping.event_type == event_type)
    )


async def put_mapping(
    session: AsyncSession, tenant_id: str, event_type: EventType, change: MappingChange
) -> EventMapping:
    """Create or replace the mapping of one event type; a number named must be the tenant's (404)
    and able to send templates (422 template_unsupported)."""
    if change.instance_id is not None:
        await _template_number(session, tenant_id, change.instance_id)
    now = utcnow()
    values = {
        "template": change.template,
        "language": change.language,
        "parameters": change.parameters,
        "instance_id": change.instance_id,
        "updated_at": now,
    }
    row = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "event_type": event_type.value,
        "created_at": now,
        **values,
    }
    statement = insert_for(session, EventMapping).values(row)
    # One statement: two admins saving at once both succeed, the later one wins.
    await session.execute(
        statement.on_conflict_do_update(index_elements=["tenant_id", "event_type"], set_=values)
    )
    mapping = await mapping_for(session, tenant_id, event_type.value)
    if mapping is None:  # pragma: no cover - just written in this transaction
        raise RuntimeError("the mapping just written is missing")
    await session.refresh(mapping)
    return mapping


async def _template_number(session: AsyncSession, tenant_id: str, instance_id: str) -> None:
    provider = await session.scalar(
        select(WhatsAppInstance.provider).where(
            WhatsAppInstance.id == instance_id, WhatsAppInstance.tenant_id == tenant_id
        )
    )
    if provider is None:
        raise NotFound(f"instance {instance_id} not found")
    if not takes_templates(provider):
        raise InvalidInput(
            f"instance {instance_id} ({provider}) cannot send templates; choose a Meta, Twilio or "
            "simulator number, or none",
            code="template_unsupported",
        )


async def delete_mapping(session: AsyncSession, tenant_id: str, event_type: EventType) -> None:
    """Remove the mapping of one event type (its events are then skipped with no_mapping); 404
    when there is none."""
    removed = await session.execute(
        delete(EventMapping)
        .where(EventMapping.tenant_id == tenant_id, EventMapping.event_type == event_type.value)
        .returning(EventMapping.id)
    )
    if removed.first() is None:
        raise NotFound(f"no mapping for {event_type.value}")


async def list_events(
    session: AsyncSession, tenant_id: str, cursor: str | None, limit: int
) -> tuple[list[InboundEvent], str | None]:
    """The tenant's events consumed, newest first, with the next page's cursor."""
    query = select(InboundEvent).where(InboundEvent.tenant_id == tenant_id)
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(
            or_(
                InboundEvent.received_at < at, and_(InboundEvent.received_at == at, InboundEvent.id < last_id)
            )
        )
    query = query.order_by(InboundEvent.received_at.desc(), InboundEvent.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    next_cursor = (
        encode_cursor(rows[limit - 1].received_at, rows[limit - 1].id) if len(rows) > limit else None
    )
    return rows[:limit], next_cursor


def materials_entry(
    tenant_id: str,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    occurred_at: datetime | None = None,
) -> dict[str, str]:
    """The events:materials entry of one event, exactly as an external producer writes it."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "tenant_id": tenant_id,
        "occurred_at": (occurred_at or utcnow()).isoformat(),
        "payload": orjson.dumps(payload).decode(),
    }


async def publish_event(streams: Streams, stream: str, entry: dict[str, str]) -> str:
    """Durably append an event to events:materials (the consumer takes it from there); its entry id.
    Raises StreamError when the stream backend cannot take it."""
    return await streams.append(stream, entry)


async def template_numbers(session: AsyncSession, tenant_id: str) -> list[WhatsAppInstance]:
    """The tenant's numbers that can send templates (what a mapping may name), by name."""
    found = await session.scalars(
        select(WhatsAppInstance)
        .where(WhatsAppInstance.tenant_id == tenant_id)
        .order_by(WhatsAppInstance.name)
    )
    return [instance for instance in found if takes_templates(instance.provider)]


async def forget_old_events(session: AsyncSession, before: datetime) -> int:
    """Delete every tenant's events consumed before `before` (their ids become new again); how many."""
    removed = await session.execute(
        delete(InboundEvent).where(InboundEvent.received_at < before).returning(InboundEvent.id)
    )
    return len(removed.all())
