"""The events-in routes under /api/v1: event mappings (admins), publishing an event (supervisors and
API keys with events:write) and the events consumed. Thin over the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.errors import InvalidInput, PayloadTooLarge
from messaging_whatsapp.notifications import service
from messaging_whatsapp.notifications.models import EventType
from messaging_whatsapp.notifications.schemas import (
    EventAccepted,
    EventIn,
    EventInItem,
    MappingChange,
    MappingItem,
)
from messaging_whatsapp.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from messaging_whatsapp.sending.api import limit_client
from messaging_whatsapp.streams.base import StreamError
from messaging_whatsapp.tenancy.deps import EventPublisher, IntegrationReader, IntegrationWriter

router = APIRouter(prefix="/api/v1", tags=["events in"])

# An event is a few fields for a template: 64 KiB is generous and keeps the stream small.
MAX_EVENT_BYTES = 64 * 1024
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/event-mappings")
async def list_mappings(session: DbSession, principal: IntegrationReader) -> Page[MappingItem]:
    """The tenant's event mappings (an event type without one is skipped with no_mapping)."""
    mappings = await service.list_mappings(session, principal.tenant_id)
    return Page(items=[MappingItem.of(mapping) for mapping in mappings])


@router.put("/event-mappings/{event_type}")
async def put_mapping(
    event_type: EventType, body: MappingChange, session: DbSession, principal: IntegrationWriter
) -> MappingItem:
    """Set the template an event type sends: `template`, `language` (default pt_BR) and
    `parameters`, the payload keys whose values fill it, in order; optional `instance_id`."""
    return MappingItem.of(await service.put_mapping(session, principal.tenant_id, event_type, body))


@router.delete("/event-mappings/{event_type}", status_code=204)
async def delete_mapping(event_type: EventType, session: DbSession, principal: IntegrationWriter) -> None:
    """Remove an event type's mapping (404 when it has none)."""
    await service.delete_mapping(session, principal.tenant_id, event_type)


@router.post("/events", status_code=202, response_model=EventAccepted, dependencies=[Depends(limit_client)])
async def publish_event(
    request: Request, event: EventIn, context: Context, principal: EventPublisher
) -> Response:
    """Publish an event of another system for the caller's tenant (`id`, `event_type`, `payload`):
    202 once it is durably on events:materials, as a producer with Redis would write it; what
    became of it shows in GET /api/v1/events. An id seen before notifies nobody again."""
    if len(await request.body()) > MAX_EVENT_BYTES:
        raise PayloadTooLarge(f"an event is at most {MAX_EVENT_BYTES // 1024} KiB")
    try:
        entry = service.materials_entry(
            principal.tenant_id, event.id, event.event_type, event.payload, event.occurred_at
        )
    except TypeError as exc:
        raise InvalidInput(f"payload cannot be stored as JSON: {exc}", code="validation_error") from exc
    try:
        await service.publish_event(context.streams, context.names.materials, entry)
    except StreamError:
        message = "the events stream is unavailable; retry later"
        return JSONResponse({"error": {"code": "unavailable", "message": message}}, status_code=503)
    return Response(
        EventAccepted(id=event.id).model_dump_json(), status_code=202, media_type="application/json"
    )


@router.get("/events")
async def list_events(
    session: DbSession,
    principal: IntegrationReader,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[EventInItem]:
    """The events consumed, newest first: `outcome` (notified, skipped, ignored, unusable, failed),
    `reason` and the notification's `message_id`."""
    found, next_cursor = await service.list_events(session, principal.tenant_id, cursor, limit)
    return Page(items=[EventInItem.of(event) for event in found], next_cursor=next_cursor)
