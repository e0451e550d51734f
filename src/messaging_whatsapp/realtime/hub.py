"""The fan-out of realtime events to a process's stream clients, and the in-process hub.

Every hub keeps a buffer per tenant so a client that reconnects with the last id it saw gets
what it missed; a hub only ever hands a tenant's events to that tenant's subscribers.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

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


class Hub:
    """Publishes committed events and hands them to this process's subscribers, per tenant."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[Subscription]] = {}

    async def publish(self, events: list[RealtimeEvent]) -> None:
        """Stamp the events with their ids, keep them in the tenant's buffer, and fan them out."""
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


class LocalHub(Hub):
    """The embedded hub: the worker and the API share the process, so a buffer in memory does."""

    def __init__(self, buffer_events: int) -> None:
        super().__init__()
        self.buffer_events = buffer_events
        self.buffers: dict[str, deque[StampedEvent]] = {}
        self.last_ids: dict[str, tuple[int, int]] = {}

    def _next_id(self, tenant_id: str) -> str:
        # As Redis does: milliseconds and a sequence within one, never going back with the clock.
        last_ms, last_seq = self.last_ids.get(tenant_id, (0, -1))
        now_ms = time.time_ns() // 1_000_000
        next_id = (now_ms, 0) if now_ms > last_ms else (last_ms, last_seq + 1)
        self.last_ids[tenant_id] = next_id
        return f"{next_id[0]}-{next_id[1]}"

    async def publish(self, events: list[RealtimeEvent]) -> None:
        """Stamp, buffer and fan out, in publication order."""
        for event in events:
            item = stamped(self._next_id(event.tenant_id), event.type, orjson.dumps(event.data))
            buffer = self.buffers.get(event.tenant_id)
            if buffer is None:
                buffer = self.buffers[event.tenant_id] = deque(maxlen=self.buffer_events)
            buffer.append(item)
            self.deliver(event.tenant_id, item)

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
