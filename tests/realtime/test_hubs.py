"""The realtime hubs: per-tenant ids, buffers and fan-out, in process and through Redis Streams."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from messaging_whatsapp.realtime.events import (
    RealtimeEvent,
    StampedEvent,
    parse_event_id,
    realtime_events,
)
from messaging_whatsapp.realtime.hub import LocalHub, Subscription
from messaging_whatsapp.realtime.redis_hub import RedisHub


def _event(tenant_id: str, number: int) -> RealtimeEvent:
    return RealtimeEvent(tenant_id, "new_message", {"message_id": f"m{number}", "conversation_id": "c1"})


async def _received(subscription: Subscription, count: int) -> list[StampedEvent]:
    events = []
    async with asyncio.timeout(10):
        for _ in range(count):
            event = await subscription.queue.get()
            assert event is not None
            events.append(event)
    return events


def _message_ids(events: list[StampedEvent]) -> list[str]:
    return [orjson.loads(event.data)["message_id"] for event in events]


def test_outbox_events_become_small_realtime_events_without_content() -> None:
    inbound = {
        "message_id": "m1",
        "conversation_id": "c1",
        "contact_id": "p1",
        "instance_id": "i1",
        "from_phone": "+5511987654321",
        "text": "Oi",
        "message_type": "text",
    }
    read = {"message_id": "m2", "conversation_id": "c1", "instance_id": "i1", "status": "read"}
    entries = [
        {
            "event_type": "whatsapp_inbound_received",
            "tenant_id": "t1",
            "payload": orjson.dumps(inbound).decode(),
        },
        {
            "event_type": "whatsapp_delivery_confirmed",
            "tenant_id": "t1",
            "payload": orjson.dumps(read).decode(),
        },
        {"event_type": "something_else", "tenant_id": "t1", "payload": "{}"},
    ]
    events = realtime_events(entries)
    assert [event.type for event in events] == ["new_message", "conversation_updated", "message_status"]
    assert events[0].data == {
        "message_id": "m1",
        "conversation_id": "c1",
        "contact_id": "p1",
        "instance_id": "i1",
        "message_type": "text",
        "direction": "inbound",
    }
    assert events[2].data == read


def test_malformed_event_ids_are_none() -> None:
    assert parse_event_id("1733400000000-3") == (1733400000000, 3)
    for malformed in (None, "", "abc", "12", "1-2-3", "-1-0", "1-x"):
        assert parse_event_id(malformed) is None


async def test_local_hub_keeps_its_buffer_per_tenant_and_hands_out_nothing_across_tenants() -> None:
    hub = LocalHub(buffer_events=3)
    mine = await hub.subscribe("tenant-a")
    theirs = await hub.subscribe("tenant-b")
    await hub.publish([_event("tenant-a", n) for n in range(1, 6)])
    await hub.publish([_event("tenant-b", 9)])

    received = await _received(mine, 5)
    assert _message_ids(received) == ["m1", "m2", "m3", "m4", "m5"]
    ids = [parse_event_id(event.id) for event in received]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    assert _message_ids(await _received(theirs, 1)) == ["m9"]
    assert theirs.queue.empty()

    # Three kept: after the third, the fourth and fifth; the first was dropped: resync.
    replay = await hub.replay("tenant-a", received[2].id)
    assert replay is not None
    assert _message_ids(replay) == ["m4", "m5"]
    assert await hub.replay("tenant-a", received[0].id) is None
    assert await hub.replay("tenant-b", received[4].id) is None
    assert await hub.latest("tenant-a") == received[4].id
    hub.unsubscribe(mine)
    hub.unsubscribe(theirs)
    assert hub.subscribers == {}


@pytest.mark.usefixtures("redis_cleanup")
async def test_redis_hub_carries_events_from_another_process_and_keeps_them_across_restarts(
    redis_url: str, stream_prefix: str
) -> None:
    # The worker's hub and an API process's hub: apart, as separate processes are.
    worker = RedisHub(redis_url, stream_prefix, buffer_events=100)
    api = RedisHub(redis_url, stream_prefix, buffer_events=100)
    try:
        mine = await api.subscribe("tenant-a")
        theirs = await api.subscribe("tenant-b")
        await worker.publish([_event("tenant-a", n) for n in range(1, 4)])
        received = await _received(mine, 3)
        assert _message_ids(received) == ["m1", "m2", "m3"]
        assert theirs.queue.empty()

        # A new API process (a restart) replays from the stream with the same ids.
        api.unsubscribe(mine)
        api.unsubscribe(theirs)
        assert api.positions == {}
        restarted = RedisHub(redis_url, stream_prefix, buffer_events=100)
        try:
            replay = await restarted.replay("tenant-a", received[0].id)
            assert replay is not None
            assert [event.id for event in replay] == [event.id for event in received[1:]]
            assert await restarted.replay("tenant-a", "1-0") is None
            assert await restarted.latest("tenant-a") == received[2].id
        finally:
            await restarted.close()
    finally:
        await worker.close()
        await api.close()
