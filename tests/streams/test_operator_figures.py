"""What the operator's view reads from every backend (Redis, the queue table on PostgreSQL and on
SQLite): each group's oldest unacknowledged entry, and replaying named DLQ entries."""

from __future__ import annotations

from datetime import timedelta

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.streams.base import StreamEntry, StreamNames, Streams
from messaging_whatsapp.streams.records import dead_letter_fields


async def test_a_group_knows_when_its_oldest_unacknowledged_entry_was_appended(
    streams: Streams, stream: str
) -> None:
    await streams.ensure_group(stream, "g")
    [info] = (await streams.info(stream)).groups
    assert info.oldest_unacked_at is None

    before = utcnow() - timedelta(seconds=1)
    first, _second = await streams.append_many(stream, [{"n": "1"}, {"n": "2"}])
    after = utcnow() + timedelta(seconds=1)
    # Unread entries count: a stopped consumer leaves them there.
    [info] = (await streams.info(stream)).groups
    assert info.oldest_unacked_at is not None
    assert before <= info.oldest_unacked_at <= after

    # Read and pending: still the first one's time.
    read = await streams.read(stream, "g", "c", count=1)
    assert [entry.id for entry in read] == [first]
    [pending] = (await streams.info(stream)).groups
    assert pending.pending == 1
    assert pending.oldest_unacked_at == info.oldest_unacked_at

    rest = await streams.read(stream, "g", "c", count=10)
    await streams.ack(stream, "g", [first, *(entry.id for entry in rest)])
    [done] = (await streams.info(stream)).groups
    assert (done.pending, done.oldest_unacked_at) == (0, None)


async def test_replaying_named_dlq_entries_moves_those_only(
    streams: Streams, stream: str, names: StreamNames
) -> None:
    await streams.ensure_group(stream, "g")
    dead = [
        await streams.append(
            names.dlq, dead_letter_fields(stream, "g", StreamEntry(stream, "7", {"n": str(n)}), "boom")
        )
        for n in range(3)
    ]
    not_a_record = await streams.append(names.dlq, {"something": "else"})

    moved = await streams.replay_dlq_entries([dead[2], dead[0], "nonsense", "999-0", "999", not_a_record])

    assert moved == [dead[0], dead[2]]
    assert [entry.fields for entry in await streams.read(stream, "g", "c", count=10)] == [
        {"n": "0"},
        {"n": "2"},
    ]
    assert (await streams.info(names.dlq)).length == 2
    assert await streams.replay_dlq_entries([dead[0]]) == []
    assert await streams.replay_dlq_entries([dead[1]]) == [dead[1]]
