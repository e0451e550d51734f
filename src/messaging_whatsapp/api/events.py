"""`GET /api/v1/events/stream`: a tenant's live events as Server-Sent Events (realtime/)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterable
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging_whatsapp.deps import Context
from messaging_whatsapp.errors import EngineError, NotFound
from messaging_whatsapp.inbox.models import Conversation
from messaging_whatsapp.inbox.visibility import Viewer, visible_among
from messaging_whatsapp.realtime.events import StampedEvent, parse_event_id
from messaging_whatsapp.realtime.hub import Hub
from messaging_whatsapp.tenancy.access import Principal, check_access
from messaging_whatsapp.tenancy.deps import InboxReader, credentials_hold
from messaging_whatsapp.tenancy.models import UserRole

router = APIRouter(prefix="/api/v1/events", tags=["events"])

# Sent first: proxies and clients see the stream open before any event.
OPENED = b": stream open\n\n"
KEEP_ALIVE = b": keep-alive\n\n"
RETRY = b"retry: 1000\n\n"
# Events about no conversation: the role and scope that may read what they are about.
TEAM_LEAD_EVENTS = {
    "campaign_updated": (UserRole.SUPERVISOR, "campaigns:read"),
    "instance_updated": (UserRole.SUPERVISOR, "instances:read"),
}
# An agent's stream remembers this many conversations' visibility, each this long (a change
# of assignment forgets it at once; the time bounds what other changes can leave stale).
VISIBILITY_ENTRIES = 256
VISIBILITY_SECONDS = 30.0
# An open stream checks this often that its caller may still listen (the checks read a user's
# state cached for a second, or the API key's row).
CREDENTIALS_CHECK_SECONDS = 3.0


class Audience:
    """What one stream client may hear. Admins and supervisors: all of their tenant's events.
    Agents: only those of the conversations they may work (theirs, and the unassigned queue),
    looked up once per conversation (one small query) and remembered briefly; a ticket's
    assignment or closing forgets it. Campaign and number events only for roles that read them."""

    def __init__(self, principal: Principal, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.principal = principal
        self.viewer = Viewer.of(principal)
        self.sessions = sessions
        self.lead_events = {
            name for name, (role, scope) in TEAM_LEAD_EVENTS.items() if _allowed(principal, role, scope)
        }
        # conversation id -> (visible, when it was looked up)
        self.known: dict[str, tuple[bool, float]] = {}

    async def admits(self, event: StampedEvent) -> bool:
        """Whether the client may hear this event."""
        if event.type in TEAM_LEAD_EVENTS:
            return event.type in self.lead_events
        if not self.viewer.restricted:
            return True
        conversation_id = event.conversation_id
        if conversation_id is None:
            return False
        if event.type == "ticket_updated":
            # Visible before or after the change: the agent sees it arrive and leave.
            before = self.known.pop(conversation_id, (False, 0.0))[0]
            return before or await self._visible(conversation_id)
        return await self._visible(conversation_id)

    async def learn(self, events: Iterable[StampedEvent]) -> None:
        """Look up the conversations of a replayed backlog in one query (as many as are
        remembered; the rest one by one if they come up again)."""
        if self.viewer.restricted:
            unknown = {e.conversation_id for e in events if e.conversation_id} - self.known.keys()
            await self._look_up(set(sorted(unknown)[:VISIBILITY_ENTRIES]))

    async def _visible(self, conversation_id: str) -> bool:
        known = self.known.get(conversation_id)
        if known is None or time.monotonic() - known[1] > VISIBILITY_SECONDS:
            await self._look_up({conversation_id})
            known = self.known[conversation_id]
        return known[0]

    async def _look_up(self, conversation_ids: set[str]) -> None:
        if not conversation_ids:
            return
        async with self.sessions() as session:
            visible = await visible_among(session, self.principal.tenant_id, conversation_ids, self.viewer)
        moment = time.monotonic()
        for conversation_id in conversation_ids:
            self.known.pop(conversation_id, None)
            self.known[conversation_id] = (conversation_id in visible, moment)
        while len(self.known) > VISIBILITY_ENTRIES:
            del self.known[next(iter(self.known))]


def _allowed(principal: Principal, role: UserRole, scope: str) -> bool:
    try:
        check_access(principal, role, scope)
    except EngineError:
        return False
    return True


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
        Audience(principal, context.sessions),
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
    hub: Hub, audience: Audience, conversation_id: str | None, resume_from: str | None, keepalive: float
) -> AsyncIterator[bytes]:
    tenant_id = audience.principal.tenant_id
    credentials = Credentials(audience.principal, audience.sessions)
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
        await audience.learn(backlog)
        for event in backlog:
            last = parse_event_id(event.id)
            if await _wanted(event, conversation_id, audience):
                yield event.frame()
        # Woken at least every CREDENTIALS_CHECK_SECONDS (a keep-alive every few wakes) to see
        # that the caller may still listen.
        wakes_per_keepalive = math.ceil(keepalive / CREDENTIALS_CHECK_SECONDS)
        wake = keepalive / wakes_per_keepalive
        quiet_wakes = 0
        while True:
            # A timeout scope, not wait_for: no task per wait (each event woke one per client).
            try:
                async with asyncio.timeout(wake):
                    first = await subscription.queue.get()
            except TimeoutError:
                if not await credentials.hold(wake):
                    return  # The client reconnects and is refused: a page goes to its login.
                quiet_wakes += 1
                if quiet_wakes >= wakes_per_keepalive:
                    quiet_wakes = 0
                    yield KEEP_ALIVE
                continue
            quiet_wakes = 0
            if not await credentials.hold(wake):
                return
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
                if await _wanted(queued, conversation_id, audience):
                    frames.append(queued.frame())
            if frames:
                yield b"".join(frames)
            if taken[-1] is None:
                return  # Too slow (None comes last): the client reconnects with its last id and replays.
    finally:
        hub.unsubscribe(subscription)


class Credentials:
    """The stream's caller's credentials, checked again at most once per `every` seconds: a user
    deactivated, demoted or deleted, or a revoked key, stops hearing events within seconds."""

    def __init__(self, principal: Principal, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.principal = principal
        self.sessions = sessions
        self.checked_at = time.monotonic()

    async def hold(self, every: float) -> bool:
        """Whether they still hold (asked again only when `every` seconds have passed)."""
        now = time.monotonic()
        if now - self.checked_at < every:
            return True
        self.checked_at = now
        return await credentials_hold(self.sessions, self.principal)


async def _wanted(event: StampedEvent, conversation_id: str | None, audience: Audience) -> bool:
    if conversation_id is not None and event.conversation_id != conversation_id:
        return False
    return await audience.admits(event)


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
