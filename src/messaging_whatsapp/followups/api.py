"""The followups routes under /api/v1: thin over the service."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.followups import service
from messaging_whatsapp.followups.schemas import FollowUpItem, FollowUpRequest, StartedBy
from messaging_whatsapp.inbox.visibility import Viewer
from messaging_whatsapp.outbox.service import PublishedEvent, relay_outbox, write_outbox
from messaging_whatsapp.pagination import Page
from messaging_whatsapp.tenancy.deps import InboxReader, InboxWriter

router = APIRouter(prefix="/api/v1", tags=["followups"])


@router.post("/tickets/{ticket_id}/follow-ups", status_code=201, response_model=FollowUpItem)
async def start_follow_up(
    ticket_id: str, body: FollowUpRequest, session: DbSession, principal: InboxWriter, context: Context
) -> JSONResponse:
    """Start a follow-up on an open ticket: `steps` (1 to 10, each `delay_seconds` and exactly one
    of `text` or `template`), `business_hours_only`, `close_ticket` (default true) and
    `final_wait_seconds` (default: the last step's delay). 201 with the follow-up; the ticket is
    `follow_up` while it runs. 409 ticket_closed, follow_up_running, opted_out."""
    started_by = StartedBy(user_id=principal.user_id, api_key_id=principal.api_key_id)
    follow_up, events = await service.start_follow_up(
        session, principal.tenant_id, ticket_id, body, started_by, utcnow(), Viewer.of(principal)
    )
    item = await service.get_follow_up(session, principal.tenant_id, follow_up.id)
    await _announce(session, context, events)
    return JSONResponse(item.model_dump(mode="json"), status_code=201)


@router.get("/tickets/{ticket_id}/follow-ups")
async def list_follow_ups(ticket_id: str, session: DbSession, principal: InboxReader) -> Page[FollowUpItem]:
    """A ticket's follow-ups, newest first, each with `status` (running, cancelled, exhausted,
    completed), `cancel_reason` and its steps' outcomes."""
    items = await service.list_follow_ups(session, principal.tenant_id, ticket_id, Viewer.of(principal))
    return Page(items=items)


@router.get("/follow-ups/{follow_up_id}")
async def get_follow_up(follow_up_id: str, session: DbSession, principal: InboxReader) -> FollowUpItem:
    """One follow-up with its steps' outcomes."""
    return await service.get_follow_up(session, principal.tenant_id, follow_up_id, Viewer.of(principal))


@router.post("/follow-ups/{follow_up_id}/cancel")
async def cancel_follow_up(
    follow_up_id: str, session: DbSession, principal: InboxWriter, context: Context
) -> FollowUpItem:
    """Stop a running follow-up (`cancelled_by_user`); the ticket goes back to open. 409
    follow_up_ended when it already ended."""
    item, events = await service.cancel_follow_up(
        session, principal.tenant_id, follow_up_id, utcnow(), Viewer.of(principal)
    )
    await _announce(session, context, events)
    return item


async def _announce(session: DbSession, context: Context, events: list[PublishedEvent]) -> None:
    """The events go out only once the change is stored: written with it, relayed after commit."""
    records = await write_outbox(session, events, context.names.events)
    await session.commit()
    await relay_outbox(context, records)
