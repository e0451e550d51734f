"""`GET /api/v1/events/stream`: a tenant's live events as Server-Sent Events (realtime/)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from messaging_whatsapp.deps import Context
from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.inbox.models import Conversation
from messaging_whatsapp.inbox.visibility import Viewer
from messaging_whatsapp.realtime.events import StampedEvent, parse_event_id
from messaging_whatsapp.realtime.hub import Hub
from messaging_whatsapp.tenancy.deps import InboxReader

router = APIRouter(prefix="/api/v1/events", tags=["events"])

# Sent first: proxies and clients see the stream open before any event.
OPENED = b": stream open\n\n"
KEEP_ALIVE = b": keep-alive\n\n"
RETRY = b"retry: 1000\n\n"


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The event stream."}},
)
async def stream_events(
    principal: InboxReader,
    context: Context,
    conversation_id: Annotated[str | None, Query(max_length=64)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """The tenant's events as they happen (narrowed to one conversation if asked); with
    `Last-Event-ID`, the ones missed since first, or one `resync` when they are no longer kept."""
    if conversation_id is not None:
        async with context.sessions() as session:
            found = await session.scalar(
                select(Conversation.id).where(
                    Conversation.id == conversation_id,
                    Conversation.tenant_id == principal.tenant_id,
                    Viewer.of(principal).visible_conversations(),
                )
            )
        if found is None:
            raise NotFound(f"conversation {conversation_id} not found")
    # A malformed id is treated as absent: the client starts live.
    resume_from = last_event_id.strip() if last_event_id and parse_event_id(last_event_id) else None
    frames = _frames(
        context.realtime,
        principal.tenant_id,
        conversation_id,
        resume_from,
        context.settings.realtime_keepalive_seconds,
    )
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _frames(
    hub: Hub, tenant_id: str, conversation_id: str | None, resume_from: str | None, keepalive: float
) -> AsyncIterator[bytes]:
    # Subscribed before the replay is read: an event published meanwhile is in both, and the ids
    # drop the second copy; none falls between.
    subscription = await hub.subscribe(tenant_id)
    try:
        yield OPENED + RETRY
        last: tuple[int, int] | None = None
        backlog: list[StampedEvent] = []
        if resume_from is not None:
            replayed = await hub.replay(tenant_id, resume_from)
            if replayed is None:
                newest = await hub.latest(tenant_id)
                last = parse_event_id(newest)
                yield _resync(newest)
            else:
                last = parse_event_id(resume_from)
                backlog = replayed
        for event in backlog:
            last = parse_event_id(event.id)
            if conversation_id is None or event.conversation_id == conversation_id:
                yield event.frame()
        while True:
            # A timeout scope, not wait_for: no task per wait (each event woke one per client).
            try:
                async with asyncio.timeout(keepalive):
                    first = await subscription.queue.get()
            except TimeoutError:
                yield KEEP_ALIVE
                continue
            # What was published together (a message's new_message and conversation_updated)
            # leaves in one write: a send per client per event was most of a fan-out's cost.
            taken = [first, *_waiting(subscription.queue)]
            frames = []
            for queued in taken:
                if queued is None:
                    continue
                position = parse_event_id(queued.id)
                if last is not None and position is not None and position <= last:
                    continue
                last = position
                if conversation_id is None or queued.conversation_id == conversation_id:
                    frames.append(queued.frame())
            if frames:
                yield b"".join(frames)
            if taken[-1] is None:
                return  # Too slow (None comes last): the client reconnects with its last id and replays.
    finally:
        hub.unsubscribe(subscription)


def _waiting(queue: asyncio.Queue[StampedEvent | None]) -> list[StampedEvent | None]:
    """Everything already in the queue, taken without waiting."""
    taken = []
    while not queue.empty():
        taken.append(queue.get_nowait())
    return taken


def _resync(newest: str | None) -> bytes:
    data = orjson.dumps({"reason": "the events since Last-Event-ID are no longer kept; reload"})
    head = b"id: %s\n" % newest.encode() if newest else b""
    return head + b"event: resync\ndata: %s\n\n" % data
