"""POST /api/v1/messages and GET /api/v1/messages/{id}: thin over the sending service."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from messaging_whatsapp.api.deps import Context, CurrentPrincipal, DbSession
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import RateLimited
from messaging_whatsapp.inbox.models import SenderType
from messaging_whatsapp.inbox.schemas import MessageItem
from messaging_whatsapp.inbox.service import message_item
from messaging_whatsapp.sending import service
from messaging_whatsapp.sending.ratelimit import RateLimiter, client_limit
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.sending.sender import offer_messages
from messaging_whatsapp.streams.base import StreamError


async def limit_client(request: Request, context: Context) -> None:
    """The public API's per-client rate limit: 429 with Retry-After when it is used up."""
    limiter: RateLimiter = request.app.state.limiter
    client = request.client.host if request.client else "unknown"
    wait = await limiter.acquire(client_limit(context.settings, client))
    if wait > 0:
        raise RateLimited(f"too many requests from {client}; retry in {wait:.1f} s", retry_after=wait)


router = APIRouter(prefix="/api/v1", tags=["messages"], dependencies=[Depends(limit_client)])
logger = logging.getLogger(__name__)

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


@router.post("/messages", status_code=202, response_model=MessageItem)
async def send_message(
    request: SendMessageRequest,
    session: DbSession,
    context: Context,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Queue one message; 202 with the message, which then moves on to sent, delivered, read or failed."""
    queued = await service.queue_message(
        session,
        principal.tenant_id,
        request,
        idempotency_key=idempotency_key,
        sender_type=SenderType.USER,
        now=utcnow(),
    )
    item = message_item(queued.message)
    await session.commit()
    if queued.created:
        try:
            await offer_messages(context, [(queued.message.id, principal.tenant_id)])
        except StreamError:
            # Stored as queued: the senders' re-offer sweep picks it up when the stream is back.
            logger.warning("outbound stream unavailable; message %s waits for the re-offer", item.id)
    return JSONResponse(item.model_dump(mode="json"), status_code=202)


@router.get("/messages/{message_id}")
async def get_message(message_id: str, session: DbSession, principal: CurrentPrincipal) -> MessageItem:
    """One message as it moves on (with `error` when it failed)."""
    return message_item(await service.get_message(session, principal.tenant_id, message_id))
