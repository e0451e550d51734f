"""The event stream's frames as the API writes them: events published together leave together."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import async_sessionmaker

from messaging_whatsapp.api.events import Audience, _frames
from messaging_whatsapp.realtime.events import RealtimeEvent
from messaging_whatsapp.realtime.hub import MAX_PENDING, LocalHub, Retention
from messaging_whatsapp.tenancy.access import Principal


def _events(chunk: bytes) -> list[tuple[str, str]]:
    """(event type, message id) of each frame in a written chunk."""
    return re.findall(rb"event: (\w+)\ndata: \{\"message_id\":\"(\w+)\"", chunk)  # type: ignore[return-value]


def _stream(hub: LocalHub) -> AsyncIterator[bytes]:
    """Tenant A's admin's stream (an admin hears all of the tenant's events: no lookups)."""
    return _frames(hub, Audience(Principal("tenant-a", "admin"), async_sessionmaker()), None, None, 5)


async def test_events_published_together_leave_in_one_write_in_order_and_only_to_their_tenant() -> None:
    hub = LocalHub(Retention(keep_events=100, keep_seconds=900, max_events=100))
    about = {"message_id": "m1", "conversation_id": "c1"}
    stream = _stream(hub)
    async with asyncio.timeout(10):
        assert (await anext(stream)).startswith(b": stream open")
        await hub.publish(
            [
                RealtimeEvent("tenant-a", "new_message", about),
                RealtimeEvent("tenant-b", "new_message", {"message_id": "m2", "conversation_id": "c2"}),
                RealtimeEvent("tenant-a", "conversation_updated", about),
            ]
        )
        chunk = await anext(stream)
    assert _events(chunk) == [(b"new_message", b"m1"), (b"conversation_updated", b"m1")]
    await stream.aclose()
    assert hub.subscribers == {}


async def test_a_client_cut_off_for_being_slow_gets_what_came_before_the_cut_then_the_stream_ends() -> None:
    hub = LocalHub(Retention(keep_events=MAX_PENDING + 10, keep_seconds=900, max_events=MAX_PENDING + 10))
    stream = _stream(hub)
    async with asyncio.timeout(10):
        await anext(stream)
        # Published while the client read nothing: it falls MAX_PENDING behind and is cut off.
        await hub.publish(
            [
                RealtimeEvent("tenant-a", "new_message", {"message_id": f"m{number}"})
                for number in range(MAX_PENDING + 5)
            ]
        )
        chunks = [chunk async for chunk in stream]
    received = [message_id for chunk in chunks for _, message_id in _events(chunk)]
    assert received == [f"m{number}".encode() for number in range(MAX_PENDING)]
    assert hub.subscribers == {}
