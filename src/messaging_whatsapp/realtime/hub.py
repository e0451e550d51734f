"""The fan-out of realtime events to a process's stream clients, and the in-process hub.

Every hub keeps a buffer per tenant so a client that reconnects with the last id it saw gets
what it missed: at least the last `keep_events` AND at least the last `keep_seconds` of events
(whichever keeps more), never more than `max_events`, so memory stays bounded when a tenant is
busy. A hub only ever hands a tenant's events to that tenant's subscribers.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import orjson

from messaging_whatsapp.realtime.events import RealtimeEvent, StampedEvent, parse_event_id, stamped

# Events waiting for one slow client before it is cut off (it reconnects and replays).
MAX_PENDING = 1_000


class Subscription:
    """One stream client's queue of its tenant's events; None in it means: too slow, reconnect."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.queue: asyncio.Queue[StampedEvent | None] = asyncio.Queue()
        self.cut_off = False

    def offer(self, event: StampedEvent) -> None:
        """Queue an event; a client that fell MAX_PENDING behind is told to reconnect instead."""
        if self.cut_off:
            return
        if self.queue.qsize() >= MAX_PENDING:
            self.cut_off = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


class Mirror(Protocol):
    """Somewhere else the published events go, besides the hubs' own clients (Centrifugo)."""

    def send(self, events: list[RealtimeEvent]) -> None:
        """Hand the events over without waiting (never raises)."""

    async def close(self) -> None:
        """Let the posts in flight finish (bounded), then release the connections."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of a tenant's events a hub keeps for clients that reconnect."""

    keep_events: int
    keep_seconds: float
    max_events: int

    def trims(self, kept: int, oldest_ms: int, now_ms: int) -> bool:
        """Whether the oldest of `kept` events may go: past the count floor, and either past the
        hard cap or older than the time floor."""
        if kept <= self.keep_events:
            return False
        return kept > self.max_events or oldest_ms < now_ms - self.keep_seconds * 1000


class Hub:
    """Publishes committed events and hands them to this process's subscribers, per tenant; a
    mirror (Centrifugo), when configured, gets a copy of what this process publishes."""

    def __init__(self, retention: Retention, mirror: Mirror | None = None) -> None:
        self.subscribers: dict[str, set[Subscription]] = {}
        self.retention = retention
        self.mirror = mirror

    async def publish(self, events: list[RealtimeEvent]) -> None:
        """Stamp the events with their ids, keep them in the tenant's buffer, and fan them out."""
        if not events:
            return
        await self.append(events)
        if self.mirror is not None:
            self.mirror.send(events)

    async def append(self, events: list[RealtimeEvent]) -> None:
        """Stamp, keep and fan out (each hub its own way)."""
        raise NotImplementedError

    async def replay(self, tenant_id: str, after: str) -> list[StampedEvent] | None:
        """The tenant's events after `after`, in order; None when `after` is no longer (or never
        was) in the buffer: the client must resynchronise."""
        raise NotImplementedError

    async def latest(self, tenant_id: str) -> str | None:
        """The id of the tenant's newest event, if any is kept."""
        raise NotImplementedError

    async def subscribe(self, tenant_id: str) -> Subscription:
        """A new subscription; it receives every event published from now on."""
        subscription = Subscription(tenant_id)
        self.subscribers.setdefault(tenant_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop handing events to a client that left."""
        tenant = self.subscribers.get(subscription.tenant_id)
        if tenant is not None:
            tenant.discard(subscription)
            if not tenant:
                del self.subscribers[subscription.tenant_id]

    def deliver(self, tenant_id: str, event: StampedEvent) -> None:
        """Hand an event to the tenant's subscribers in this process."""
        for subscription in self.subscribers.get(tenant_id, ()):
            subscription.offer(event)

    async def close(self) -> None:
        """Release what the hub holds."""
        if self.mirror is not None:
            await self.mirror.close()


class LocalHub(Hub):
    """The embedded hub: the worker and the API share the process, so a buffer in memory does."""

    def __init__(self, retention: Retention, mirror: Mirror | None = None) -> None:
        super().__init__(retention, mirror)
        self.buffers: dict[str, deque[StampedEvent]] = {}
        self.last_ids: dict[str, tuple[int, int]] = {}

    def _next_id(self, tenant_id: str) -> str:
        # As Redis does: milliseconds and a sequence within one, never going back with the clock.
        last_ms, last_seq = self.last_ids.get(tenant_id, (0, -1))
        now_ms = time.time_ns() // 1_000_000
        next_id = (now_ms, 0) if now_ms > last_ms else (last_ms, last_seq + 1)
        self.last_ids[tenant_id] = next_id
        return f"{next_id[0]}-{next_id[1]}"

    async def append(self, events: list[RealtimeEvent]) -> None:
        """Stamp, buffer and fan out, in publication order."""
        for event in events:
            item = stamped(self._next_id(event.tenant_id), event.type, orjson.dumps(event.data))
            buffer = self.buffers.get(event.tenant_id)
            if buffer is None:
                buffer = self.buffers[event.tenant_id] = deque()
            buffer.append(item)
            self._trim(buffer)
            self.deliver(event.tenant_id, item)

    def _trim(self, buffer: deque[StampedEvent]) -> None:
        # The ids are the milliseconds they were stamped at.
        now_ms = time.time_ns() // 1_000_000
        while self.retention.trims(len(buffer), _millis(buffer[0].id), now_ms):
            buffer.popleft()

    async def replay(self, tenant_id: str, after: str) -> list[StampedEvent] | None:
        """The buffered events after `after`; None when it is not in the buffer."""
        buffer = self.buffers.get(tenant_id, deque())
        wanted = parse_event_id(after)
        for index in range(len(buffer) - 1, -1, -1):
            if parse_event_id(buffer[index].id) == wanted:
                return list(buffer)[index + 1 :]
        return None

    async def latest(self, tenant_id: str) -> str | None:
        """The newest buffered id."""
        buffer = self.buffers.get(tenant_id)
        return buffer[-1].id if buffer else None


def _millis(event_id: str) -> int:
    return int(event_id.split("-", 1)[0])
