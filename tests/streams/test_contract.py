"""The stream contract, run on every backend: Redis, the queue table on PostgreSQL and on SQLite."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as redis
from sqlalchemy import delete

from messaging_whatsapp.db import create_engine, utcnow
from messaging_whatsapp.streams.base import StreamEntry, StreamError, StreamNames, Streams
from messaging_whatsapp.streams.models import StreamEntryRow
from messaging_whatsapp.streams.redis import RedisStreams
from messaging_whatsapp.streams.sql import SqlStreams
from tests.streams.conftest import MAX_DELIVERIES, VISIBILITY_MS, Backend

# Long enough that a pending entry's visibility timeout has surely run out.
PAST_VISIBILITY_S = VISIBILITY_MS / 1000 + 0.1


def messages(n: int) -> list[dict[str, str]]:
    """`n` distinct entries whose fields say which one they are."""
    return [{"n": str(i), "text": f"héllo {i}"} for i in range(n)]


async def drain(streams: Streams, stream: str, group: str, consumer: str) -> list[StreamEntry]:
    """Read and acknowledge until the group has nothing left for this consumer."""
    seen: list[StreamEntry] = []
    while batch := await streams.read(stream, group, consumer, count=7):
        seen += batch
        await streams.ack(stream, group, [entry.id for entry in batch])
    return seen


async def test_factory_picks_the_configured_backend(backend: Backend, streams: Streams) -> None:
    expected = RedisStreams if backend.name == "redis" else SqlStreams
    assert isinstance(streams, expected)


async def test_round_trip_preserves_fields_and_order(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "g")
    sent = messages(5)
    ids = [await streams.append(stream, fields) for fields in sent]

    got = await streams.read(stream, "g", "c1", count=10)

    assert [entry.id for entry in got] == ids
    assert [entry.fields for entry in got] == sent
    assert {entry.deliveries for entry in got} == {1}
    assert {entry.stream for entry in got} == {stream}
    await streams.ack(stream, "g", ids)
    assert await streams.read(stream, "g", "c1", count=10) == []
    await asyncio.sleep(PAST_VISIBILITY_S)
    assert await streams.read(stream, "g", "c2", count=10) == [], "an acked entry came back"


async def test_ensure_group_is_idempotent_and_reads_from_the_start(streams: Streams, stream: str) -> None:
    ids = await streams.append_many(stream, messages(2))
    await streams.ensure_group(stream, "g")
    await streams.ensure_group(stream, "g")

    assert [entry.id for entry in await streams.read(stream, "g", "c", count=10)] == ids


async def test_reading_an_unknown_group_raises(streams: Streams, stream: str) -> None:
    await streams.append(stream, {"a": "1"})
    with pytest.raises(StreamError):
        await streams.read(stream, "nobody", "c", count=1)


async def test_append_many_keeps_order(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "g")
    sent = messages(20)

    ids = await streams.append_many(stream, sent)

    assert len(set(ids)) == 20
    assert await streams.append_many(stream, []) == []
    got = await streams.read(stream, "g", "c", count=50)
    assert [entry.id for entry in got] == ids
    assert [entry.fields for entry in got] == sent


async def test_every_group_sees_every_entry(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "a")
    await streams.ensure_group(stream, "b")
    ids = await streams.append_many(stream, messages(10))

    for group in ("a", "b"):
        assert [entry.id for entry in await drain(streams, stream, group, "c")] == ids


async def test_consumers_of_one_group_never_share_an_entry(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "g")
    ids = await streams.append_many(stream, messages(120))

    batches = await asyncio.gather(*(drain(streams, stream, "g", f"c{i}") for i in range(3)))

    # Only first deliveries count: a consumer slowed past the visibility timeout (a loaded CI
    # machine) may legitimately see its entry reclaimed by another.
    got = [{entry.id for entry in batch if entry.deliveries == 1} for batch in batches]
    assert set().union(*got) == set(ids), "an entry was never handed out"
    assert sum(map(len, got)) == len(ids), "two consumers were handed the same entry"


async def test_concurrent_appends_and_reads_lose_and_duplicate_nothing(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "g")
    appended: list[str] = []
    received: list[str] = []  # first deliveries only, as above

    async def append(writer: int) -> None:
        for i in range(25):
            appended.append(await streams.append(stream, {"w": str(writer), "i": str(i)}))

    async def consume(consumer: str) -> None:
        deadline = time.monotonic() + 10
        while len(received) < 100 and time.monotonic() < deadline:
            batch = await streams.read(stream, "g", consumer, count=5, block_ms=50)
            received.extend(entry.id for entry in batch if entry.deliveries == 1)
            await streams.ack(stream, "g", [entry.id for entry in batch])

    await asyncio.gather(*(append(w) for w in range(4)), *(consume(f"c{i}") for i in range(3)))

    assert len(received) == len(set(received)), "an entry was handed out twice"
    assert sorted(received) == sorted(appended), "an entry was never handed out"


async def test_unacked_entry_is_reclaimed_after_the_visibility_timeout(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "g")
    [entry_id] = await streams.append_many(stream, [{"a": "1"}])
    handed_out = time.monotonic()
    [first] = await streams.read(stream, "g", "dead", count=1)

    early = await streams.read(stream, "g", "alive", count=1)
    # Judged only when that read came in time (a loaded machine may take longer than the timeout,
    # and then this read rightly reclaims it).
    if time.monotonic() - handed_out < VISIBILITY_MS / 1000:
        assert early == [], "reclaimed before the timeout"
    if not early:
        await asyncio.sleep(PAST_VISIBILITY_S)
        early = await streams.read(stream, "g", "alive", count=1)
    [again] = early

    assert (first.id, first.deliveries) == (entry_id, 1)
    assert (again.id, again.fields, again.deliveries) == (entry_id, {"a": "1"}, 2)
    await streams.ack(stream, "g", [again.id])
    await asyncio.sleep(PAST_VISIBILITY_S)
    assert await streams.read(stream, "g", "third", count=1) == []


async def test_reclaim_comes_before_new_entries(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "g")
    old, new = await streams.append_many(stream, messages(2))
    await streams.read(stream, "g", "dead", count=1)
    await asyncio.sleep(PAST_VISIBILITY_S)

    got = await streams.read(stream, "g", "alive", count=2)

    assert [(entry.id, entry.deliveries) for entry in got] == [(old, 2), (new, 1)]


async def _deliver_until_dead(streams: Streams, stream: str) -> StreamEntry:
    """Fail one entry on every delivery until `fail` moves it to the DLQ; returns its last delivery."""
    for attempt in range(1, MAX_DELIVERIES + 1):
        if attempt > 1:
            await asyncio.sleep(PAST_VISIBILITY_S)
        [entry] = await streams.read(stream, "g", f"c{attempt}", count=1)
        assert entry.deliveries == attempt
        dead = await streams.fail(stream, "g", entry, f"boom {attempt}")
        assert dead == (attempt == MAX_DELIVERIES)
    return entry


async def test_fail_moves_the_entry_to_the_dlq_after_max_deliveries(
    streams: Streams, stream: str, names: StreamNames
) -> None:
    await streams.ensure_group(stream, "g")
    [entry_id] = await streams.append_many(stream, [{"to": "+5511999990000", "body": "oi"}])

    await _deliver_until_dead(streams, stream)

    await streams.ensure_group(names.dlq, "ops")
    [dead] = await streams.read(names.dlq, "ops", "ops", count=10)
    assert dead.fields["stream"] == stream
    assert dead.fields["group"] == "g"
    assert dead.fields["entry_id"] == entry_id
    assert json.loads(dead.fields["fields"]) == {"to": "+5511999990000", "body": "oi"}
    assert dead.fields["error"] == f"boom {MAX_DELIVERIES}"
    assert dead.fields["deliveries"] == str(MAX_DELIVERIES)
    assert dead.fields["failed_at"]
    await asyncio.sleep(PAST_VISIBILITY_S)
    assert await streams.read(stream, "g", "later", count=10) == [], "a dead entry was delivered again"
    assert (await streams.info(stream)).groups[0].pending == 0


async def test_dead_letter_items_records_each_item_and_acknowledges_the_entry(
    streams: Streams, stream: str, names: StreamNames
) -> None:
    await streams.ensure_group(stream, "g")
    [entry_id] = await streams.append_many(stream, [{"body": "batch"}])
    [entry] = await streams.read(stream, "g", "c", count=1)

    ids = await streams.dead_letter_items(
        stream, "g", entry, [("messages[1]", "no id"), ("statuses[0]", "no status")]
    )

    assert len(ids) == 2
    await streams.ensure_group(names.dlq, "ops")
    dead = await streams.read(names.dlq, "ops", "ops", count=10)
    assert [(d.fields["item"], d.fields["error"]) for d in dead] == [
        ("messages[1]", "no id"),
        ("statuses[0]", "no status"),
    ]
    assert all(
        d.fields["entry_id"] == entry_id and json.loads(d.fields["fields"]) == {"body": "batch"} for d in dead
    )
    assert (await streams.info(stream)).groups[0].pending == 0


async def test_replay_dlq_puts_entries_back(streams: Streams, stream: str, names: StreamNames) -> None:
    await streams.ensure_group(stream, "g")
    await streams.append(stream, {"a": "1"})
    [entry] = await streams.read(stream, "g", "c", count=1)
    await streams.dead_letter(stream, "g", entry, "bad")
    await streams.append(stream, {"a": "2"})

    assert await streams.replay_dlq() == 1

    assert (await streams.info(names.dlq)).length == 0
    got = await streams.read(stream, "g", "c", count=10)
    assert [(entry.fields, entry.deliveries) for entry in got] == [({"a": "2"}, 1), ({"a": "1"}, 1)]
    assert await streams.replay_dlq() == 0


async def test_replay_dlq_respects_the_limit(streams: Streams, stream: str, names: StreamNames) -> None:
    await streams.ensure_group(stream, "g")
    await streams.append_many(stream, messages(3))
    for entry in await streams.read(stream, "g", "c", count=3):
        await streams.dead_letter(stream, "g", entry, "bad")

    assert await streams.replay_dlq(limit=2) == 2
    assert (await streams.info(names.dlq)).length == 1
    assert [entry.fields["n"] for entry in await streams.read(stream, "g", "c", count=10)] == ["0", "1"]


async def test_trim_keeps_pending_and_unread_entries(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "a")
    await streams.ensure_group(stream, "b")
    ids = await streams.append_many(stream, messages(4))
    await streams.read(stream, "a", "c", count=4)
    await streams.ack(stream, "a", ids[:2])

    assert await streams.trim(stream) == 0, "trimmed entries group b has not read"
    await drain(streams, stream, "b", "c")
    assert await streams.trim(stream) == 2
    assert (await streams.info(stream)).length == 2

    await asyncio.sleep(PAST_VISIBILITY_S)
    pending = await streams.read(stream, "a", "c2", count=4)
    assert [entry.id for entry in pending] == ids[2:], "trim dropped a pending entry"
    await streams.ack(stream, "a", ids[2:])
    assert await streams.trim(stream) == 2
    assert (await streams.info(stream)).length == 0


async def test_trim_without_groups_removes_nothing(streams: Streams, stream: str) -> None:
    await streams.append_many(stream, messages(3))

    assert await streams.trim(stream) == 0
    assert (await streams.info(stream)).length == 3


async def test_info_counts_entries_pending_consumers_and_lag(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "a")
    await streams.ensure_group(stream, "b")
    await streams.append_many(stream, messages(5))
    first = await streams.read(stream, "a", "c1", count=3)
    await streams.read(stream, "a", "c2", count=1)
    await streams.ack(stream, "a", [first[0].id])

    info = await streams.info(stream)

    assert (info.stream, info.length) == (stream, 5)
    groups = {group.name: group for group in info.groups}
    assert set(groups) == {"a", "b"}
    assert (groups["a"].pending, groups["a"].consumers, groups["a"].lag) == (3, 2, 1)
    assert (groups["b"].pending, groups["b"].consumers, groups["b"].lag) == (0, 0, 5)


async def test_info_of_a_missing_stream_is_empty(streams: Streams, stream: str) -> None:
    info = await streams.info(stream)

    assert (info.length, info.groups) == (0, [])


async def test_read_blocks_until_an_entry_is_appended(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "g")

    async def append_later() -> str:
        await asyncio.sleep(0.2)
        return await streams.append(stream, {"late": "yes"})

    started = time.monotonic()
    got, entry_id = await asyncio.gather(
        streams.read(stream, "g", "c", count=10, block_ms=5000), append_later()
    )

    assert [entry.id for entry in got] == [entry_id]
    assert time.monotonic() - started < 2, "the blocked read did not wake on the append"


async def test_read_on_an_empty_stream_returns_nothing(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "g")
    started = time.monotonic()

    assert await streams.read(stream, "g", "c", count=10, block_ms=0) == []
    assert time.monotonic() - started < 0.5
    blocked = time.monotonic()
    assert await streams.read(stream, "g", "c", count=10, block_ms=150) == []
    assert 0.1 <= time.monotonic() - blocked < 1


async def test_entry_deleted_while_pending_does_not_break_the_reader(
    backend: Backend, streams: Streams, stream: str
) -> None:
    await streams.ensure_group(stream, "g")
    gone, kept = await streams.append_many(stream, messages(2))
    await streams.read(stream, "g", "dead", count=2)
    await _delete_entry_data(backend, stream, gone)
    await asyncio.sleep(PAST_VISIBILITY_S)

    got = await streams.read(stream, "g", "alive", count=10)

    assert [entry.id for entry in got] == [kept]
    assert (await streams.info(stream)).groups[0].pending == 1


async def _delete_entry_data(backend: Backend, stream: str, entry_id: str) -> None:
    """Delete an entry behind the backend's back, as an operator or an old trim might."""
    if backend.redis_url:
        client = redis.from_url(backend.redis_url)
        try:
            await client.xdel(stream, entry_id)
        finally:
            await client.aclose()
        return
    engine = create_engine(backend.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(delete(StreamEntryRow).where(StreamEntryRow.id == int(entry_id)))
    finally:
        await engine.dispose()


async def test_ping(streams: Streams) -> None:
    assert await streams.ping() is True


# PostgreSQL only: sequence ids can commit out of order.


async def test_postgres_reader_waits_for_an_append_in_flight(postgres_url: str, names: StreamNames) -> None:
    engine = create_engine(postgres_url)
    streams = SqlStreams(engine, names, VISIBILITY_MS, MAX_DELIVERIES)
    stream = names.inbound
    try:
        await streams.ensure_group(stream, "g")
        async with engine.begin() as slow:
            # An append that has drawn its id but not committed yet...
            await streams._insert(slow, stream, [{"slow": "1"}])
            # ...overtaken by one that commits a larger id.
            await streams.append(stream, {"fast": "1"})
            reader = asyncio.create_task(streams.read(stream, "g", "c", count=10))
            await asyncio.sleep(0.2)
        got = await reader
        got += await streams.read(stream, "g", "c", count=10)
        assert [entry.fields for entry in got] == [{"slow": "1"}, {"fast": "1"}], "skipped the slow append"
    finally:
        await engine.dispose()


# Redis only.


async def test_unreachable_redis_raises_stream_error() -> None:
    streams = RedisStreams("redis://127.0.0.1:1/0", StreamNames(prefix="test:down:"), VISIBILITY_MS, 3)
    try:
        with pytest.raises(StreamError):
            await streams.append("test:down:s", {"a": "1"})
        with pytest.raises(StreamError):
            await streams.read("test:down:s", "g", "c", count=1)
        assert await streams.ping() is False
    finally:
        await streams.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own with appendonly on and fsync every second."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("redis-server is not on PATH and REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip("redis-server is not on PATH")
    port = _free_port()
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, server)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.kill()
        server.wait(timeout=10)


def _wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"redis-server exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail("redis-server did not start listening")


async def _supports_waitaof(url: str) -> bool:
    client = redis.from_url(url, decode_responses=True)
    try:
        version = str((await client.info("server"))["redis_version"])
    finally:
        await client.aclose()
    return tuple(int(part) for part in version.split(".")[:2]) >= (7, 2)


async def test_fsync_mode_waits_for_the_aof(aof_redis: str) -> None:
    names = StreamNames(prefix="test:fsync:")
    streams = RedisStreams(aof_redis, names, VISIBILITY_MS, MAX_DELIVERIES, fsync=True)
    try:
        if not await _supports_waitaof(aof_redis):
            # An old server must be refused, not used without the durability asked for.
            with pytest.raises(StreamError, match="WAITAOF"):
                await streams.append(names.inbound, {"a": "1"})
            return
        await streams.ensure_group(names.inbound, "g")
        entry_id = await streams.append(names.inbound, {"a": "1"})
        more = await streams.append_many(names.inbound, messages(2))
        got = await streams.read(names.inbound, "g", "c", count=10)
        assert [entry.id for entry in got] == [entry_id, *more]
    finally:
        await streams.close()


async def test_fsync_mode_refuses_a_server_without_aof(redis_url: str, stream_prefix: str) -> None:
    client = redis.from_url(redis_url, decode_responses=True)
    try:
        aof_on = (await client.config_get("appendonly")).get("appendonly") == "yes"
    finally:
        await client.aclose()
    if aof_on:
        pytest.skip("the shared test Redis has appendonly on")
    streams = RedisStreams(redis_url, StreamNames(prefix=stream_prefix), VISIBILITY_MS, 3, fsync=True)
    try:
        with pytest.raises(StreamError, match="appendonly"):
            await streams.append(f"{stream_prefix}s", {"a": "1"})
    finally:
        await streams.close()


async def test_purge_deletes_only_what_was_appended_before_the_cutoff(streams: Streams, stream: str) -> None:
    await streams.append_many(stream, [{"n": "old-1"}, {"n": "old-2"}])
    await asyncio.sleep(0.05)
    cutoff = utcnow()
    await asyncio.sleep(0.05)
    await streams.append(stream, {"n": "new"})
    await streams.ensure_group(stream, "g")

    assert await streams.purge(stream, cutoff) == 2

    remaining = await streams.read(stream, "g", "c", 10)
    assert [entry.fields["n"] for entry in remaining] == ["new"]
    assert await streams.purge(stream, cutoff) == 0


async def test_forget_deletes_only_the_entries_that_mention_a_needle(streams: Streams, stream: str) -> None:
    await streams.append_many(
        stream,
        [
            {"body": '{"from": "5511987654321", "text": "oi"}'},
            {"body": '{"from": "551187654321"}'},
            {"body": '{"from": "5521999990000"}'},
            {"other": "x", "body": "100%_literal"},
        ],
    )
    await streams.ensure_group(stream, "g")

    # Both Brazilian forms of one person; `%` and `_` are text, not patterns.
    assert await streams.forget(stream, {"5511987654321", "551187654321"}) == 2
    assert await streams.forget(stream, {"9%_"}) == 0
    assert await streams.forget(stream, set()) == 0

    remaining = await streams.read(stream, "g", "c", 10)
    assert [entry.fields["body"] for entry in remaining] == ['{"from": "5521999990000"}', "100%_literal"]


async def test_entries_before_pages_through_the_stream_oldest_first(streams: Streams, stream: str) -> None:
    ids = await streams.append_many(stream, messages(5))
    later = utcnow() + timedelta(hours=1)

    first = await streams.entries_before(stream, later, count=2)
    rest = await streams.entries_before(stream, later, after=first[-1].id, count=10)

    assert [entry.id for entry in first + rest] == ids
    assert [entry.fields for entry in first + rest] == messages(5)
    assert all(utcnow() - timedelta(minutes=1) < entry.appended_at <= utcnow() for entry in first + rest)
    assert await streams.entries_before(stream, utcnow() - timedelta(hours=1)) == []
    assert await streams.entries_before(stream, later, after=ids[-1]) == []


async def test_delete_removes_entries_and_their_pending_deliveries(streams: Streams, stream: str) -> None:
    await streams.ensure_group(stream, "g")
    ids = await streams.append_many(stream, messages(3))
    [pending] = await streams.read(stream, "g", "c1", count=1)

    assert await streams.delete(stream, [pending.id, ids[2]]) == 2
    assert await streams.delete(stream, [ids[2]]) == 0
    assert await streams.delete(stream, []) == 0

    await asyncio.sleep(PAST_VISIBILITY_S)
    assert [entry.fields["n"] for entry in await streams.read(stream, "g", "c2", count=10)] == ["1"]
    assert [entry.id for entry in await streams.entries_before(stream, utcnow() + timedelta(hours=1))] == [
        ids[1]
    ]
