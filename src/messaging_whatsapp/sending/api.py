"""POST /api/v1/messages and GET /api/v1/messages/{id}: thin over the sending service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.errors import RateLimited
from messaging_whatsapp.inbox.models import SenderType
from messaging_whatsapp.inbox.schemas import MessageItem
from messaging_whatsapp.inbox.service import message_item
from messaging_whatsapp.inbox.visibility import Viewer, check_conversation, check_recipient
from messaging_whatsapp.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from messaging_whatsapp.sending import scheduled, service
from messaging_whatsapp.sending.intake import MessageIntake
from messaging_whatsapp.sending.models import ScheduledStatus
from messaging_whatsapp.sending.ratelimit import RateLimiter, client_limit
from messaging_whatsapp.sending.schemas import QueuedMessageItem, ScheduledMessageItem, SendMessageRequest
from messaging_whatsapp.sending.submissions import Submission
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import InboxReader, MessageSender


async def limit_client(request: Request, context: Context) -> None:
    """The public API's per-client rate limit: 429 with Retry-After when it is used up."""
    limiter: RateLimiter = request.app.state.limiter
    client = request.client.host if request.client else "unknown"
    wait = await limiter.acquire(client_limit(context.settings, client))
    if wait > 0:
        raise RateLimited(f"too many requests from {client}; retry in {wait:.1f} s", retry_after=wait)


router = APIRouter(prefix="/api/v1", tags=["messages"], dependencies=[Depends(limit_client)])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


@router.post("/messages", status_code=202, response_model=QueuedMessageItem)
async def send_message(
    http: Request,
    request: SendMessageRequest,
    principal: MessageSender,
    context: Context,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Queue one message; 202 with the message and `to`, the E.164 number it goes to (a national
    `to`, "(11) 98765-4321", is a number of the tenant's default country; 422 invalid_phone when it
    is not a valid number). It then moves on to sent, delivered, read or failed. An agent writes
    only in the conversations they work (403 otherwise). With `send_at` (an ISO datetime with its
    offset, in the future, at most 90 days ahead) it is checked now and stored as scheduled: 202
    with `{"id", "status": "scheduled", "send_at", "to", ...}`, sent at that time."""
    viewer = Viewer.of(principal)
    if request.send_at is not None:
        return await _schedule(request, principal, context, viewer, idempotency_key)
    if viewer.restricted:
        async with context.sessions() as session:
            await check_recipient(session, principal.tenant_id, request.to, viewer)
    intake: MessageIntake = http.app.state.intake
    submission = Submission(
        principal.tenant_id,
        request,
        idempotency_key,
        SenderType.USER,
        sender_user_id=principal.user_id,
        sender_api_key_id=principal.api_key_id,
    )
    queued = await intake.submit(submission)
    # Serialised by pydantic in one step, the busiest route's answer costs a fraction of a dict
    # handed to the json module.
    body = QueuedMessageItem(**dict(message_item(queued.message)), to=queued.to).model_dump_json()
    return Response(body, status_code=202, media_type="application/json")


async def _schedule(
    request: SendMessageRequest,
    principal: Principal,
    context: EngineContext,
    viewer: Viewer,
    idempotency_key: str | None,
) -> Response:
    submission = Submission(
        principal.tenant_id,
        request,
        idempotency_key,
        SenderType.USER,
        sender_user_id=principal.user_id,
        sender_api_key_id=principal.api_key_id,
    )
    async with context.sessions() as session, session.begin():
        if viewer.restricted:
            await check_recipient(session, principal.tenant_id, request.to, viewer)
        item = scheduled.scheduled_item(await scheduled.schedule_message(session, submission, utcnow()))
    return Response(item.model_dump_json(), status_code=202, media_type="application/json")


@router.get("/scheduled-messages")
async def list_scheduled_messages(
    session: DbSession,
    principal: InboxReader,
    conversation_id: str | None = None,
    contact_id: str | None = None,
    status: ScheduledStatus | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[ScheduledMessageItem]:
    """Messages scheduled with `send_at`, newest first; `?conversation_id=`, `?contact_id=`,
    `?status=` (scheduled, sent, failed, cancelled)."""
    items, next_cursor = await scheduled.list_scheduled(
        session,
        principal.tenant_id,
        conversation_id=conversation_id,
        contact_id=contact_id,
        status=status,
        cursor=cursor,
        limit=limit,
        viewer=Viewer.of(principal),
    )
    return Page(items=items, next_cursor=next_cursor)


@router.delete("/scheduled-messages/{scheduled_id}")
async def cancel_scheduled_message(
    scheduled_id: str, session: DbSession, principal: MessageSender
) -> ScheduledMessageItem:
    """Cancel a scheduled message before it is sent (409 not_scheduled once sent, failed or cancelled)."""
    return await scheduled.cancel_scheduled(
        session, principal.tenant_id, scheduled_id, utcnow(), Viewer.of(principal)
    )


@router.get("/messages/{message_id}")
async def get_message(message_id: str, session: DbSession, principal: InboxReader) -> MessageItem:
    """One message as it moves on (with `error` when it failed)."""
    message = await service.get_message(session, principal.tenant_id, message_id)
    viewer = Viewer.of(principal)
    if viewer.restricted:
        await check_conversation(session, principal.tenant_id, message.conversation_id, viewer)
    return message_item(message)
