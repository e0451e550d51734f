"""The scaled stream backend: Redis Streams with native consumer groups.

Reclaiming uses XAUTOCLAIM with the visibility timeout as minimum idle time. Writes that must be
atomic (append_many, dead_letter, replay) go out as MULTI ... EXEC; in fsync mode a WAITAOF follows
on the same connection, since WAITAOF only covers the writes of the connection that sends it.

Single appends (the webhook's hot path) are coalesced: every append made while a round trip is in
flight waits for the next one, and goes with the others in one script call per stream, so a
burst of concurrent webhooks costs one command, not one each. An append still returns only once
Redis has answered it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError, ResponseError

from messaging_whatsapp.redis_client import redis_client
from messaging_whatsapp.streams.base import (
    GroupInfo,
    StoredEntry,
    StreamEntry,
    StreamError,
    StreamInfo,
    StreamNames,
)
from messaging_whatsapp.streams.records import dead_letter_fields, dead_letter_origin, require_fields

# How long WAITAOF may wait for the local fsync; appendfsync everysec needs up to a second.
FSYNC_TIMEOUT_MS = 2000
# DLQ entries examined per XRANGE by replay_dlq.
REPLAY_PAGE = 100
# Entries read per XRANGE while looking for a person's raw requests to forget.
FORGET_PAGE = 500

# Re-append the original only when the delete found the DLQ entry, so two concurrent replayers
# never append one entry twice; a script runs atomically, like MULTI/EXEC.
_REPLAY_SCRIPT = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
"""

# Append entries in order in one command: ARGV is, per entry, its number of field arguments
# followed by them. One command instead of one XADD each keeps a large batch cheap to send and
# its reply cheap to read.
_APPEND_MANY_SCRIPT = """
local ids, i = {}, 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return ids
"""

Command = tuple[str | int, ...]
# A stream entry id as Redis writes it: milliseconds, a dash, a sequence number.
_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


@contextmanager
def _redis_errors(action: str) -> Iterator[None]:
    """Report redis-py failures (connection refused, server errors) as StreamError."""
    try:
        yield
    except RedisError as exc:
        raise StreamError(f"redis stream {action} failed: {exc}") from exc


def _flatten(fields: dict[str, str]) -> list[str]:
    """XADD's field arguments: name, value, name, value..."""
    return [item for pair in fields.items() for item in pair]


def _append_many_command(stream: str, entries: list[dict[str, str]]) -> Command:
    """The script call appending `entries` to `stream` in order."""
    arguments: list[str | int] = []
    for fields in entries:
        flat = _flatten(fields)
        arguments += [len(flat), *flat]
    return ("EVAL", _APPEND_MANY_SCRIPT, 1, stream, *arguments)


def _settle(appends: list[tuple[dict[str, str], asyncio.Future[str]]], reply: Any) -> None:
    """Hand each waiting append its entry id, or the error that stopped the script."""
    for index, (_, future) in enumerate(appends):
        if future.done():
            continue
        if isinstance(reply, Exception):
            future.set_exception(StreamError(f"redis stream append failed: {reply}"))
        else:
            future.set_result(str(reply[index]))


def _id_after(entry_id: str) -> str:
    """The smallest stream id greater than `entry_id` ("ms-seq")."""
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _first_id_at(moment: datetime) -> str:
    """The smallest entry id appended at or after `moment` (an id starts with its milliseconds)."""
    return f"{int(moment.timestamp() * 1000)}-0"


def _id_time(entry_id: str) -> datetime:
    """When the entry was appended, from its id."""
    return datetime.fromtimestamp(_id_key(entry_id)[0] / 1000, UTC)


def _as_fields(data: dict[Any, Any]) -> dict[str, str]:
    return {str(key): str(value) for key, value in data.items()}


def _mentions(data: dict[Any, Any], needles: Collection[str]) -> bool:
    return any(needle in value for value in _as_fields(data).values() for needle in needles)


class RedisStreams:
    """Streams on Redis: one Redis stream per name, native groups and pending entries lists."""

    def __init__(
        self,
        url: str,
        names: StreamNames,
        visibility_timeout_ms: int,
        max_deliveries: int,
        fsync: bool = False,
    ) -> None:
        self.names = names
        self._client = redis_client(url, decode_responses=True)
        self._visibility_ms = visibility_timeout_ms
        self._max_deliveries = max_deliveries
        self._fsync = fsync
        self._fsync_checked = False
        # XAUTOCLAIM is a scan: resume it where the last read stopped instead of rescanning from 0.
        self._claim_cursors: dict[tuple[str, str], str] = {}
        self._waiting: list[tuple[str, dict[str, str], asyncio.Future[str]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, stream: str, fields: dict[str, str]) -> str:
        """Append one entry; returns its id once Redis (and, in fsync mode, the AOF) has it."""
        require_fields(fields)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.append((stream, fields, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_appends())
        return await future

    async def _flush_appends(self) -> None:
        """Send every waiting append in one round trip, until none is left waiting."""
        while self._waiting:
            batch, self._waiting = self._waiting, []
            by_stream: dict[str, list[tuple[dict[str, str], asyncio.Future[str]]]] = {}
            for stream, fields, future in batch:
                by_stream.setdefault(stream, []).append((fields, future))
            try:
                with _redis_errors("append"):
                    await self._check_fsync()
                    pipe = self._client.pipeline(transaction=False)
                    for stream, appends in by_stream.items():
                        pipe.execute_command(*_append_many_command(stream, [fields for fields, _ in appends]))
                    if self._fsync:
                        pipe.execute_command("WAITAOF", 1, 0, FSYNC_TIMEOUT_MS)
                    replies = await pipe.execute(raise_on_error=False)
                if self._fsync and (isinstance(replies[-1], Exception) or int(replies[-1][0]) < 1):
                    raise StreamError(
                        f"redis stream append: not fsynced to the AOF within {FSYNC_TIMEOUT_MS} ms"
                    )
            except (StreamError, OSError, asyncio.CancelledError) as exc:
                error = (
                    exc
                    if isinstance(exc, StreamError)
                    else StreamError(f"redis stream append failed: {exc!r}")
                )
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for appends, reply in zip(by_stream.values(), replies, strict=False):
                _settle(appends, reply)

    async def append_many(self, stream: str, entries: list[dict[str, str]]) -> list[str]:
        """Append entries in order, atomically, in one round trip."""
        for fields in entries:
            require_fields(fields)
        if not entries:
            return []
        [ids] = await self._atomic("append", [_append_many_command(stream, entries)])
        return [str(entry_id) for entry_id in ids]

    async def ensure_group(self, stream: str, group: str) -> None:
        """Create the group at id 0 (creating the stream too); an existing group is left alone."""
        with _redis_errors("ensure_group"):
            try:
                await self._client.xgroup_create(stream, group, id="0", mkstream=True)
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise

    async def read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int = 0
    ) -> list[StreamEntry]:
        """Reclaim entries idle past the visibility timeout, then read new ones (XREADGROUP >)."""
        with _redis_errors("read"):
            entries = await self._reclaim(stream, group, consumer, count)
            if len(entries) < count:
                # Never block when there is already something to hand back.
                wait_ms = 0 if entries else block_ms
                entries += await self._read_new(stream, group, consumer, count - len(entries), wait_ms)
        return entries

    async def ack(self, stream: str, group: str, ids: list[str]) -> None:
        """XACK the entries."""
        if not ids:
            return
        with _redis_errors("ack"):
            await self._client.xack(stream, group, *ids)

    async def dead_letter(self, stream: str, group: str, entry: StreamEntry, error: str) -> str:
        """Append the entry to the DLQ and acknowledge it in one MULTI/EXEC."""
        record = dead_letter_fields(stream, group, entry, error)
        dlq_id, _ = await self._atomic(
            "dead_letter",
            [("XADD", self.names.dlq, "*", *_flatten(record)), ("XACK", stream, group, entry.id)],
        )
        return str(dlq_id)

    async def dead_letter_items(
        self, stream: str, group: str, entry: StreamEntry, items: list[tuple[str, str]]
    ) -> list[str]:
        """XADD one DLQ entry per item and XACK the entry, in one MULTI/EXEC."""
        commands: list[Command] = [
            ("XADD", self.names.dlq, "*", *_flatten(dead_letter_fields(stream, group, entry, reason, item)))
            for item, reason in items
        ]
        replies = await self._atomic("dead_letter", [*commands, ("XACK", stream, group, entry.id)])
        return [str(dlq_id) for dlq_id in replies[: len(commands)]]

    async def fail(self, stream: str, group: str, entry: StreamEntry, error: str) -> bool:
        """Dead-letter the entry once its deliveries are used up; else leave it to be reclaimed."""
        if entry.deliveries < self._max_deliveries:
            return False
        await self.dead_letter(stream, group, entry, error)
        return True

    async def replay_dlq(self, limit: int | None = None) -> int:
        """Move DLQ entries back onto their streams, oldest first; returns how many moved."""
        moved = 0
        start = "-"
        while limit is None or moved < limit:
            with _redis_errors("replay_dlq"):
                page = await self._client.xrange(
                    self.names.dlq, min=start, max="+", count=REPLAY_PAGE if limit is None else limit - moved
                )
            if not page:
                break
            for dlq_id, fields in page:
                origin = dead_letter_origin(_as_fields(fields)) if fields else None
                # Entries that are not DLQ records stay where they are.
                if origin is not None and await self._replay_one(str(dlq_id), *origin):
                    moved += 1
            start = f"({page[-1][0]!s}"
        return moved

    async def replay_dlq_entries(self, ids: list[str]) -> list[str]:
        """Move the named DLQ entries back onto their streams, oldest first; the ids moved."""
        wanted = sorted({dlq_id for dlq_id in ids if _ENTRY_ID.fullmatch(dlq_id)}, key=_id_key)
        if not wanted:
            return []
        with _redis_errors("replay_dlq"):
            pipe = self._client.pipeline(transaction=False)
            for dlq_id in wanted:
                pipe.xrange(self.names.dlq, min=dlq_id, max=dlq_id, count=1)
            pages = await pipe.execute()
        moved: list[str] = []
        for dlq_id, page in zip(wanted, pages, strict=True):
            origin = dead_letter_origin(_as_fields(page[0][1])) if page and page[0][1] else None
            if origin is not None and await self._replay_one(dlq_id, *origin):
                moved.append(dlq_id)
        return moved

    async def info(self, stream: str) -> StreamInfo:
        """XLEN and XINFO GROUPS of the stream; per group, the oldest pending entry (XPENDING) and
        the oldest unread one (the first after the group's last delivered id) give its time."""
        with _redis_errors("info"):
            length = await self._client.xlen(stream)
            groups = await self._groups(stream)
            oldest = await self._oldest_unacked(stream, groups)
        return StreamInfo(
            stream=stream,
            length=length,
            groups=[
                GroupInfo(str(g["name"]), int(g["pending"]), int(g["consumers"]), g.get("lag"), at)
                for g, at in zip(groups, oldest, strict=True)
            ],
        )

    async def _oldest_unacked(self, stream: str, groups: list[dict[str, Any]]) -> list[datetime | None]:
        """Per group, when its oldest pending or unread entry was appended (None: up to date)."""
        if not groups:
            return []
        pipe = self._client.pipeline(transaction=False)
        for group in groups:
            pipe.xpending(stream, group["name"])
            pipe.xrange(stream, min=f"({group['last-delivered-id']!s}", max="+", count=1)
        replies = await pipe.execute()
        oldest: list[datetime | None] = []
        for summary, unread in zip(replies[::2], replies[1::2], strict=True):
            ids = [str(summary["min"])] if summary.get("pending") and summary.get("min") else []
            ids += [str(unread[0][0])] if unread else []
            oldest.append(_id_time(min(ids, key=_id_key)) if ids else None)
        return oldest

    async def trim(self, stream: str) -> int:
        """XTRIM MINID to the oldest entry some group still has pending or has not read yet."""
        with _redis_errors("trim"):
            groups = await self._groups(stream)
            if not groups:
                return 0
            # Group state first, pending lists second: entries that become pending in between
            # were unread at the first look, so they lie above that group's floor anyway.
            pipe = self._client.pipeline(transaction=False)
            for group in groups:
                pipe.xpending(stream, group["name"])
            summaries = await pipe.execute()
            floor = min(
                (self._group_floor(group, summary) for group, summary in zip(groups, summaries, strict=True)),
                key=_id_key,
            )
            return await self._client.xtrim(stream, minid=floor, approximate=False)

    async def purge(self, stream: str, older_than: datetime) -> int:
        """XTRIM MINID to the first id of `older_than` (a Redis entry id starts with its time)."""
        with _redis_errors("purge"):
            return int(await self._client.xtrim(stream, minid=_first_id_at(older_than), approximate=False))

    async def entries_before(
        self, stream: str, before: datetime, *, after: str | None = None, count: int = 100
    ) -> list[StoredEntry]:
        """XRANGE from just after `after` to just before the first id of `before`."""
        start = "-" if after is None else f"({after}"
        with _redis_errors("entries_before"):
            page = (
                await self._client.xrange(stream, min=start, max=f"({_first_id_at(before)}", count=count)
                or []
            )
        return [
            StoredEntry(str(entry_id), _as_fields(fields), _id_time(str(entry_id)))
            for entry_id, fields in page
            if fields is not None
        ]

    async def delete(self, stream: str, ids: list[str]) -> int:
        """XDEL the entries; a group that still had one pending acknowledges it at its next read."""
        if not ids:
            return 0
        with _redis_errors("delete"):
            return int(await self._client.xdel(stream, *ids))

    async def forget(self, stream: str, needles: Collection[str]) -> int:
        """Walk the stream a page at a time and XDEL the entries whose fields mention a needle."""
        forgotten = 0
        start = "-"
        with _redis_errors("forget"):
            while needles:
                page = await self._client.xrange(stream, min=start, max="+", count=FORGET_PAGE)
                if not page:
                    break
                matching = [
                    str(entry_id) for entry_id, fields in page if fields and _mentions(fields, needles)
                ]
                if matching:
                    forgotten += int(await self._client.xdel(stream, *matching))
                start = f"({page[-1][0]!s}"
        return forgotten

    async def ping(self) -> bool:
        """True when Redis answers PING."""
        try:
            return bool(await self._client.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        """Let waiting appends finish, then close the connection pool."""
        if self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher], timeout=5)
        await self._client.aclose()

    # Reading.

    async def _reclaim(self, stream: str, group: str, consumer: str, count: int) -> list[StreamEntry]:
        key = (stream, group)
        cursor, claimed, deleted = await self._client.xautoclaim(
            stream, group, consumer, self._visibility_ms, self._claim_cursors.get(key, "0-0"), count=count
        )
        self._claim_cursors[key] = str(cursor)
        live = [(str(entry_id), fields) for entry_id, fields in claimed if fields is not None]
        # Entries trimmed or deleted while pending have nothing to deliver: acknowledge them.
        # (Redis 7 lists them separately; 6.2 returns them among the claimed with nil fields.)
        gone = [*deleted, *(entry_id for entry_id, fields in claimed if fields is None)]
        if gone:
            await self._client.xack(stream, group, *gone)
        if not live:
            return []
        deliveries = await self._deliveries(stream, group, [entry_id for entry_id, _ in live])
        return [
            StreamEntry(stream, entry_id, _as_fields(fields), deliveries.get(entry_id, 1))
            for entry_id, fields in live
        ]

    async def _deliveries(self, stream: str, group: str, ids: Sequence[str]) -> dict[str, int]:
        """Delivery counts of pending entries (XAUTOCLAIM does not report them)."""
        pipe = self._client.pipeline(transaction=False)
        for entry_id in ids:
            pipe.xpending_range(stream, group, min=entry_id, max=entry_id, count=1)
        counts: dict[str, int] = {}
        for rows in await pipe.execute():
            for row in rows:
                counts[str(row["message_id"])] = int(row["times_delivered"])
        return counts

    async def _read_new(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StreamEntry]:
        # BLOCK 0 means "forever" to Redis; ours means "do not wait".
        reply = await self._client.xreadgroup(
            group, consumer, {stream: ">"}, count=count, block=block_ms if block_ms > 0 else None
        )
        return [
            StreamEntry(stream, str(entry_id), _as_fields(fields))
            for entry_id, fields in self._stream_rows(reply, stream)
            if fields is not None
        ]

    @staticmethod
    def _stream_rows(reply: Any, stream: str) -> list[tuple[Any, Any]]:
        """The (id, fields) rows of `stream` in an XREADGROUP reply, list- or dict-shaped."""
        if not reply:
            return []
        if isinstance(reply, dict):
            rows = reply.get(stream, [])
            return list(rows[0] if rows and isinstance(rows[0], list) else rows)
        return [tuple(row) for name, rows in reply if name == stream for row in rows]

    # Writing.

    async def _atomic(self, action: str, commands: list[Command]) -> list[Any]:
        """Run `commands` in MULTI/EXEC and return their replies; in fsync mode also wait for the
        AOF fsync. The pipeline is sent untransacted with explicit MULTI/EXEC because redis-py's
        transactional pipeline cannot put WAITAOF after the EXEC on the same connection."""
        with _redis_errors(action):
            await self._check_fsync()
            pipe = self._client.pipeline(transaction=False)
            pipe.execute_command("MULTI")
            for command in commands:
                pipe.execute_command(*command)
            pipe.execute_command("EXEC")
            if self._fsync:
                pipe.execute_command("WAITAOF", 1, 0, FSYNC_TIMEOUT_MS)
            replies = await pipe.execute()
        results: list[Any] = replies[len(commands) + 1]
        failures = [reply for reply in results if isinstance(reply, Exception)]
        if failures:
            raise StreamError(f"redis stream {action} failed: {failures[0]}")
        if self._fsync and int(replies[-1][0]) < 1:
            raise StreamError(f"redis stream {action}: not fsynced to the AOF within {FSYNC_TIMEOUT_MS} ms")
        return results

    async def _check_fsync(self) -> None:
        """Before the first durable write, make sure WAITAOF works here (Redis >= 7.2, AOF on),
        so a misconfigured server fails loudly instead of acknowledging unsynced writes."""
        if not self._fsync or self._fsync_checked:
            return
        try:
            await self._client.waitaof(1, 0, FSYNC_TIMEOUT_MS)
        except ResponseError as exc:
            raise StreamError(
                f"fsync durability needs WAITAOF: Redis >= 7.2 with appendonly yes (server said: {exc})"
            ) from exc
        self._fsync_checked = True

    async def _replay_one(self, dlq_id: str, stream: str, fields: dict[str, str]) -> bool:
        [new_id] = await self._atomic(
            "replay_dlq",
            [("EVAL", _REPLAY_SCRIPT, 2, self.names.dlq, stream, dlq_id, *_flatten(fields))],
        )
        return new_id is not None

    # Helpers.

    async def _groups(self, stream: str) -> list[dict[str, Any]]:
        try:
            return await self._client.xinfo_groups(stream)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return []
            raise

    @staticmethod
    def _group_floor(group: dict[str, Any], pending: dict[str, Any]) -> str:
        """The oldest id this group may still need: its oldest pending entry, else the next unread."""
        unread = _id_after(str(group["last-delivered-id"]))
        if pending.get("pending") and pending.get("min"):
            return min(str(pending["min"]), unread, key=_id_key)
        return unread
