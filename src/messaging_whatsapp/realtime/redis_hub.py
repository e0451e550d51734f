"""The scaled hub: one Redis Stream per tenant, read by one blocking reader per API process.

Any process publishes (the worker, the API); the stream assigns the ids, so they grow per tenant
and survive restarts. Retention: every append caps a stream at about the hard cap, and every few
seconds the publisher trims a tenant's stream of what is both past the count floor and older
than the time floor (a script, so the two checks and the trim are one step).

A process with stream clients runs one reader task for all of them: one XREAD over the streams
of the tenants it has clients of, never a connection per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from messaging_whatsapp.realtime.events import RealtimeEvent, StampedEvent, stamped
from messaging_whatsapp.realtime.hub import Hub, Mirror, Retention, Subscription
from messaging_whatsapp.redis_client import redis_client

logger = logging.getLogger(__name__)

# A stream's entries as the client decodes them: (id, fields).
Entries = list[tuple[str, dict[str, str]]]

# How long one XREAD waits; a tenant's first client is read from at the latest this much later
# (its position is fixed when it subscribes, so nothing is missed meanwhile).
READ_BLOCK_MS = 250
# Events replayed per XRANGE round trip.
REPLAY_PAGE = 1_000
# A publisher trims a tenant's stream at most this often, and at most this many entries a time.
TRIM_EVERY_SECONDS = 5.0
TRIM_CHUNK = 5_000
# Trims the oldest entries that are past the count floor (ARGV[1]) and older than the time
# floor's first id (ARGV[2]), at most ARGV[3] of them; returns how many went.
TRIM_SCRIPT = """
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
local old = redis.call('XRANGE', KEYS[1], '-', '(' .. ARGV[2], 'COUNT', math.min(excess, tonumber(ARGV[3])))
if #old == 0 then return 0 end
local last = old[#old][1]
local dash = string.find(last, '-', 1, true)
local after = string.sub(last, 1, dash - 1) .. '-' .. (tonumber(string.sub(last, dash + 1)) + 1)
return redis.call('XTRIM', KEYS[1], 'MINID', after)
"""


class RedisHub(Hub):
    """Per-tenant Redis Streams, trimmed by the retention, and one reader for this process."""

    def __init__(self, url: str, prefix: str, retention: Retention, mirror: Mirror | None = None) -> None:
        super().__init__(retention, mirror)
        self.redis: Redis = redis_client(url, decode_responses=True)
        self.prefix = f"{prefix}realtime:"
        self.trim = self.redis.register_script(TRIM_SCRIPT)
        # When this process last trimmed each tenant's stream (monotonic seconds).
        self.trimmed_at: dict[str, float] = {}
        # Where the reader is, per tenant this process has clients of.
        self.positions: dict[str, str] = {}
        self.reader: asyncio.Task[None] | None = None

    def key(self, tenant_id: str) -> str:
        """The tenant's stream."""
        return f"{self.prefix}{tenant_id}"

    async def append(self, events: list[RealtimeEvent]) -> None:
        """Append to the tenants' streams in one round trip (capped at about the hard cap, never
        below it), trimming those not trimmed for a while."""
        cap = self.retention.max_events
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                fields: dict[Any, Any] = {"type": event.type, "data": orjson.dumps(event.data).decode()}
                pipe.xadd(self.key(event.tenant_id), fields, maxlen=cap, approximate=True)
            moment = time.monotonic()
            for tenant_id in {event.tenant_id for event in events}:
                if moment - self.trimmed_at.get(tenant_id, 0.0) >= TRIM_EVERY_SECONDS:
                    self.trimmed_at[tenant_id] = moment
                    self.trim_old(pipe, tenant_id)
            await pipe.execute()

    def trim_old(self, client: Any, tenant_id: str) -> Any:
        """Trim the tenant's stream of what both floors let go (through `client`: a pipeline, or
        the connection itself); returns how many went when awaited on the connection."""
        floor_ms = time.time_ns() // 1_000_000 - int(self.retention.keep_seconds * 1000)
        return self.trim(
            keys=[self.key(tenant_id)],
            args=[self.retention.keep_events, f"{max(floor_ms, 0)}-0", TRIM_CHUNK],
            client=client,
        )

    async def replay(self, tenant_id: str, after: str) -> list[StampedEvent] | None:
        """The stream's entries after `after`; None when that entry was trimmed (or never was)."""
        key = self.key(tenant_id)
        if not await self.redis.xrange(key, after, after, count=1):
            return None
        replayed: list[StampedEvent] = []
        cursor = after
        while True:
            page = cast(Entries, await self.redis.xrange(key, f"({cursor}", "+", count=REPLAY_PAGE))
            replayed.extend(_stamped(entry_id, fields) for entry_id, fields in page)
            if len(page) < REPLAY_PAGE:
                return replayed
            cursor = page[-1][0]

    async def latest(self, tenant_id: str) -> str | None:
        """The newest entry's id."""
        newest = await self.redis.xrevrange(self.key(tenant_id), "+", "-", count=1)
        return str(newest[0][0]) if newest else None

    async def subscribe(self, tenant_id: str) -> Subscription:
        """Subscribe; a tenant new to this process is read from its newest entry on."""
        subscription = await super().subscribe(tenant_id)
        if tenant_id not in self.positions:
            position = await self.latest(tenant_id) or "0-0"
            self.positions.setdefault(tenant_id, position)
        if self.reader is None or self.reader.done():
            self.reader = asyncio.create_task(self._read(), name="realtime-reader")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Unsubscribe; the reader stops reading a tenant without clients here."""
        super().unsubscribe(subscription)
        if subscription.tenant_id not in self.subscribers:
            self.positions.pop(subscription.tenant_id, None)

    async def _read(self) -> None:
        while True:
            if not self.positions:
                await asyncio.sleep(READ_BLOCK_MS / 1000)
                continue
            streams: dict[Any, Any] = {self.key(tenant): at for tenant, at in self.positions.items()}
            try:
                answer = await self.redis.xread(streams, count=REPLAY_PAGE, block=READ_BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("realtime reader: reading the tenants' streams failed; retrying")
                await asyncio.sleep(1)
                continue
            for key, entries in cast(list[tuple[str, Entries]], answer or []):
                tenant_id = key[len(self.prefix) :]
                if tenant_id not in self.positions or not entries:
                    continue
                self.positions[tenant_id] = entries[-1][0]
                for entry_id, fields in entries:
                    self.deliver(tenant_id, _stamped(entry_id, fields))

    async def close(self) -> None:
        """Stop the reader and close the connections."""
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        await self.redis.aclose()


def _stamped(entry_id: str, fields: dict[str, str]) -> StampedEvent:
    return stamped(entry_id, fields["type"], fields["data"].encode())
