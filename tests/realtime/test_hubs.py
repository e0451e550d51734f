"""The realtime hubs: per-tenant ids, buffers and fan-out, in process and through Redis Streams."""

from __future__ import annotations

import asyncio

import jwt
import orjson
import pytest

from messaging_whatsapp.realtime.centrifugo import CentrifugoMirror, connection_token
from messaging_whatsapp.realtime.events import (
    RealtimeEvent,
    StampedEvent,
    parse_event_id,
    realtime_events,
)
from messaging_whatsapp.realtime.hub import LocalHub, Retention, Subscription
from messaging_whatsapp.realtime.redis_hub import RedisHub
from tests.fakes.centrifugo import FakeCentrifugo
from tests.fakes.http import FakeHttpServer

KEEP_100 = Retention(keep_events=100, keep_seconds=900, max_events=1_000)


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
    hub = LocalHub(Retention(keep_events=3, keep_seconds=0, max_events=3))
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
    worker = RedisHub(redis_url, stream_prefix, KEEP_100)
    api = RedisHub(redis_url, stream_prefix, KEEP_100)
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
        restarted = RedisHub(redis_url, stream_prefix, KEEP_100)
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


def test_retention_keeps_the_larger_of_the_count_and_the_time_floor_under_a_hard_cap() -> None:
    retention = Retention(keep_events=10_000, keep_seconds=900, max_events=50_000)
    now = 2_000_000_000_000
    fresh, stale = now - 60_000, now - 901_000
    # Never below the count floor, however old.
    assert not retention.trims(10_000, stale, now)
    # Past it: the old go, the last 15 minutes stay...
    assert retention.trims(10_001, stale, now)
    assert not retention.trims(40_000, fresh, now)
    # ... up to the hard cap.
    assert retention.trims(50_001, fresh, now)


async def test_local_hub_keeps_recent_events_past_the_count_until_the_cap() -> None:
    hub = LocalHub(Retention(keep_events=3, keep_seconds=900, max_events=5))
    await hub.publish([_event("tenant-a", n) for n in range(1, 8)])
    kept = hub.buffers["tenant-a"]
    # Every one is recent: kept past the count floor of 3, down to the cap of 5.
    assert _message_ids(list(kept)) == ["m3", "m4", "m5", "m6", "m7"]
    assert await hub.replay("tenant-a", kept[0].id) is not None


@pytest.mark.usefixtures("redis_cleanup")
async def test_redis_hub_trims_only_what_is_past_both_floors(redis_url: str, stream_prefix: str) -> None:
    recent = RedisHub(redis_url, stream_prefix, Retention(keep_events=3, keep_seconds=900, max_events=1_000))
    expired = RedisHub(redis_url, stream_prefix, Retention(keep_events=3, keep_seconds=0, max_events=1_000))
    try:
        await recent.publish([_event("tenant-a", n) for n in range(1, 11)])
        key = recent.key("tenant-a")
        # Ten events of the last 15 minutes: past the count floor, none old enough to go.
        assert await recent.trim_old(recent.redis, "tenant-a") == 0
        assert await recent.redis.xlen(key) == 10
        # With no time floor, all but the last three go (once their millisecond has passed).
        await asyncio.sleep(0.01)
        assert await expired.trim_old(expired.redis, "tenant-a") == 7
        kept = await expired.replay("tenant-a", "0-0")
        assert kept is None  # "0-0" was never kept: resync
        assert await expired.redis.xlen(key) == 3
        newest = await expired.latest("tenant-a")
        entries = await expired.redis.xrange(key)
        assert [orjson.loads(fields["data"])["message_id"] for _, fields in entries] == ["m8", "m9", "m10"]
        assert entries[-1][0] == newest
    finally:
        await recent.close()
        await expired.close()


async def test_centrifugo_mirror_publishes_to_the_org_and_conversation_channels() -> None:
    fake = FakeCentrifugo(api_key="centrifugo-key")
    with FakeHttpServer(fake) as server:
        hub = LocalHub(KEEP_100, CentrifugoMirror(server.base_url, "centrifugo-key"))
        # About no conversation: one channel, one publish; the messages two each, one batch.
        campaign = RealtimeEvent("tenant-a", "campaign_updated", {"campaign_id": "k1", "status": "running"})
        await hub.publish([campaign])
        await hub.close()
        hub = LocalHub(KEEP_100, CentrifugoMirror(server.base_url, "centrifugo-key"))
        await hub.publish([_event("tenant-a", 1), _event("tenant-a", 2)])
        await hub.close()  # waits for the posts in flight
        assert fake.published["chat:org:tenant-a"] == [
            {"type": "campaign_updated", "data": campaign.data},
            {"type": "new_message", "data": {"message_id": "m1", "conversation_id": "c1"}},
            {"type": "new_message", "data": {"message_id": "m2", "conversation_id": "c1"}},
        ]
        assert [item["data"]["message_id"] for item in fake.published["chat:conversation:c1"]] == ["m1", "m2"]
        assert [request.path for request in server.requests] == ["/api/publish", "/api/batch"]

        # A wrong key (401) or no server at all: logged, never raised into the publisher.
        for url, key in ((server.base_url, "wrong"), ("http://127.0.0.1:9", "centrifugo-key")):
            failing = LocalHub(KEEP_100, CentrifugoMirror(url, key))
            subscription = await failing.subscribe("tenant-a")
            await failing.publish([_event("tenant-a", 3)])
            assert _message_ids(await _received(subscription, 1)) == ["m3"]
            await failing.close()
        assert len(fake.published["chat:org:tenant-a"]) == 3


def test_centrifugo_connection_token_is_an_hs256_jwt_for_the_subject() -> None:
    token, expires = connection_token("a-centrifugo-token-secret-of-32-bytes!", "user-1", 3600)
    claims = jwt.decode(token, "a-centrifugo-token-secret-of-32-bytes!", algorithms=["HS256"])
    assert claims == {"sub": "user-1", "exp": expires}


def test_the_team_s_events_keep_their_ids_and_counts_under_the_live_names() -> None:
    def entry(event_type: str, payload: dict[str, object]) -> dict[str, str]:
        return {"event_type": event_type, "tenant_id": "t1", "payload": orjson.dumps(payload).decode()}

    campaign = {
        "id": "k1",
        "name": "Black Friday",
        "status": "running",
        "total_contacts": 10,
        "sent_count": 4,
    }
    queued = {"message_id": "m1", "conversation_id": "c1", "sender_type": "user", "sender_user_id": "u1"}
    events = realtime_events(
        [
            entry("campaign_updated", campaign),
            entry(
                "whatsapp_ticket_assigned", {"ticket_id": "k", "conversation_id": "c1", "assignee_id": None}
            ),
            entry("whatsapp_message_queued", {**queued, "status": "queued"}),
        ]
    )
    assert [(event.type, event.data) for event in events] == [
        ("campaign_updated", {"campaign_id": "k1", "status": "running", "total": 10, "sent": 4}),
        # Null says something here: back in the queue.
        ("ticket_updated", {"ticket_id": "k", "conversation_id": "c1", "assignee_id": None}),
        ("new_message", {**queued, "status": "queued", "direction": "outbound"}),
    ]
