"""The transactional outbox: what a transaction wrote reaches the events stream once relayed, and
what a dead process left behind is relayed by the orphan sweep, on both deployments."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, insert, select, update

from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.outbox.models import OutboxEvent
from messaging_whatsapp.outbox.service import (
    ORPHANED_OUTBOX_AGE,
    PublishedEvent,
    relay_orphaned_outbox,
    relay_outbox,
    write_outbox,
)

EVENTS = [
    PublishedEvent("whatsapp_inbound_received", "tenant-a", {"message_id": "m1", "text": "Olá"}),
    PublishedEvent("whatsapp_delivery_confirmed", "tenant-b", {"message_id": "m2", "status": "read"}),
]


@pytest.fixture(params=["embedded", "scaled"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, stream_prefix: str) -> Iterator[Settings]:
    """Embedded (SQLite, table queue) or scaled (PostgreSQL, Redis Streams), of this test's own."""
    if request.param == "embedded":
        database_url = request.getfixturevalue("fresh_sqlite_url")
        yield Settings(_env_file=None, database_url=database_url, data_dir=tmp_path)  # type: ignore[call-arg]
        return
    redis_url = request.getfixturevalue("redis_url")
    yield Settings(
        _env_file=None,
        database_url=request.getfixturevalue("fresh_postgres_url"),
        redis_url=redis_url,
        stream_prefix=stream_prefix,
        data_dir=tmp_path,
    )  # type: ignore[call-arg]
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{stream_prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def context(settings: Settings) -> AsyncIterator[EngineContext]:
    """An engine context with a reader group on the events stream."""
    context = await EngineContext.open(settings)
    await context.streams.ensure_group(context.names.events, "readers")
    yield context
    await context.close()


async def _published(context: EngineContext) -> list[dict[str, str]]:
    entries = await context.streams.read(context.names.events, "readers", "test", 100)
    return [entry.fields for entry in entries]


async def _outbox_rows(context: EngineContext) -> int:
    async with context.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


async def test_relayed_events_reach_the_stream_in_order_and_leave_the_outbox(context: EngineContext) -> None:
    async with context.sessions() as session, session.begin():
        records = await write_outbox(session, EVENTS, context.names.events)

    assert await relay_outbox(context, records) == 2

    published = await _published(context)
    assert [entry["event_type"] for entry in published] == [event.type for event in EVENTS]
    assert [entry["tenant_id"] for entry in published] == ["tenant-a", "tenant-b"]
    assert json.loads(published[0]["payload"]) == {"message_id": "m1", "text": "Olá"}
    assert len({entry["event_id"] for entry in published}) == 2
    assert await _outbox_rows(context) == 0


async def test_a_rolled_back_transaction_publishes_nothing(context: EngineContext) -> None:
    async def failing_cause() -> None:
        async with context.sessions() as session, session.begin():
            await write_outbox(session, EVENTS, context.names.events)
            raise RuntimeError("the cause failed")

    with pytest.raises(RuntimeError):
        await failing_cause()

    assert await relay_orphaned_outbox(context) == 0
    assert await _outbox_rows(context) == 0
    assert await _published(context) == []


async def test_the_sweep_relays_what_a_dead_process_left_and_only_once_it_is_old(
    context: EngineContext,
) -> None:
    async with context.sessions() as session, session.begin():
        records = await write_outbox(session, EVENTS, context.names.events)
    # The process died here, before relaying: a fresh row is not an orphan yet.
    assert await relay_orphaned_outbox(context) == 0

    await _age_outbox(context)
    assert await relay_orphaned_outbox(context) == 2

    published = await _published(context)
    assert [entry["event_id"] for entry in published] == [entry["event_id"] for entry in records[0].entries]
    assert await _outbox_rows(context) == 0
    assert await relay_orphaned_outbox(context) == 0


async def test_the_sweep_relays_a_row_in_the_one_event_format_of_earlier_versions(
    context: EngineContext,
) -> None:
    legacy = {
        "event_id": "0190c0de-0000-7000-8000-000000000001",
        "event_type": "whatsapp_customer_opted_out",
        "tenant_id": "tenant-a",
        "occurred_at": "2026-11-20T12:00:00+00:00",
        "payload": {"phone": "+5511987654321", "reason": "keyword"},
    }
    async with context.sessions() as session, session.begin():
        await session.execute(
            insert(OutboxEvent).values(
                stream=context.names.events, payload=json.dumps(legacy), created_at=utcnow()
            )
        )
    await _age_outbox(context)

    assert await relay_orphaned_outbox(context) == 1

    [entry] = await _published(context)
    assert entry["event_id"] == legacy["event_id"]
    assert json.loads(entry["payload"]) == legacy["payload"]


async def _age_outbox(context: EngineContext) -> None:
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(OutboxEvent).values(created_at=utcnow() - ORPHANED_OUTBOX_AGE - timedelta(seconds=1))
        )


async def test_a_row_relayed_twice_reaches_live_screens_once(context: EngineContext) -> None:
    # Two relays of one row (an orphan sweep racing another): at least once on the stream, but a
    # live screen hears the event once.
    live = await context.realtime.subscribe("tenant-a")
    async with context.sessions() as session, session.begin():
        records = await write_outbox(session, [_read("m1")], context.names.events)
    await relay_outbox(context, records)
    await relay_outbox(context, records)

    assert [entry["event_type"] for entry in await _published(context)] == ["whatsapp_delivery_confirmed"] * 2
    first = await asyncio.wait_for(live.queue.get(), timeout=10)
    assert first is not None
    assert (first.type, json.loads(first.data)["message_id"]) == ("message_status", "m1")
    # The next one live is the next row's, not a copy.
    async with context.sessions() as session, session.begin():
        records = await write_outbox(session, [_read("m3")], context.names.events)
    await relay_outbox(context, records)
    following = await asyncio.wait_for(live.queue.get(), timeout=10)
    assert following is not None
    assert (following.type, json.loads(following.data)["message_id"]) == ("message_status", "m3")
    context.realtime.unsubscribe(live)


def _read(message_id: str) -> PublishedEvent:
    return PublishedEvent(
        "whatsapp_delivery_confirmed", "tenant-a", {"message_id": message_id, "status": "read"}
    )
