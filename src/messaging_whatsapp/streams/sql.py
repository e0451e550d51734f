"""The embedded stream backend: a queue table in the application database (SQLite or PostgreSQL).

Entries live in stream_entries under one global autoincrement id; each consumer group keeps the
last id it handed out in stream_groups; entries handed out and not yet acknowledged sit in
stream_pending with the time from which another consumer may reclaim them.

Ordering: a group advances past every id it has read, so an entry that commits with an id below
a group's last_id is never delivered to it. On PostgreSQL ids come from a sequence and concurrent
appenders can commit out of id order, so appenders hold a shared advisory lock on the stream for
their transaction and a reader takes it exclusively while it reads new entries: it waits for
in-flight appends to commit, and no append can draw an id while it reads. Appends never block each
other. On SQLite there is a single writer, so ids commit in order; a reading transaction starts
with BEGIN IMMEDIATE so that two readers (in any process) cannot both read the same last_id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import datetime, timedelta

from sqlalchemy import Executable, Select, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from messaging_whatsapp.db import secure_deletes, utcnow
from messaging_whatsapp.streams.base import (
    GroupInfo,
    StoredEntry,
    StreamEntry,
    StreamError,
    StreamInfo,
    StreamNames,
)
from messaging_whatsapp.streams.models import StreamEntryRow, StreamGroupRow, StreamPendingRow
from messaging_whatsapp.streams.records import (
    dead_letter_fields,
    dead_letter_origin,
    decode_fields,
    encode_fields,
    require_fields,
)

# How often a blocked read looks for entries appended by other processes; appends made through
# this object wake it at once. A stream busy in the last moments is looked at every
# POLL_INTERVAL_S; one quiet for a while less and less often, up to IDLE_POLL_INTERVAL_S: an idle
# embedded engine (half a dozen readers) otherwise spends a core's tenth on empty looks, and
# another process's append then waits at most half a second.
POLL_INTERVAL_S = 0.05
IDLE_POLL_INTERVAL_S = 0.5
# DLQ entries examined per query by replay_dlq.
REPLAY_PAGE = 100
# First half of the two-part advisory lock key, so our locks cannot collide with other users'.
_LOCK_CLASS = 0x5354  # "ST"

Entry = StreamEntryRow
Group = StreamGroupRow
Pending = StreamPendingRow


# The DLQ record format, shared with the Redis backend.


def _dlq_origin(text: str) -> tuple[str, dict[str, str]] | None:
    """Where a stored DLQ row came from; None for a row that is not a DLQ record (left in place)."""
    try:
        return dead_letter_origin(decode_fields(text))
    except ValueError:
        return None


def _entry_id(entry_id: str) -> int:
    try:
        return int(entry_id)
    except ValueError:
        raise StreamError(f"not an entry id of the SQL stream backend: {entry_id!r}") from None


def _is_row_id(text: str) -> bool:
    """Whether `text` can be an entry id of this backend (a BIGINT's digits)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


@contextmanager
def _database_errors(action: str) -> Iterator[None]:
    """Report driver and connection failures as StreamError, the one error callers handle."""
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        raise StreamError(f"stream {action} failed: {exc}") from exc


class SqlStreams:
    """Streams stored in the application database: the embedded, no-Redis deployment."""

    def __init__(
        self, engine: AsyncEngine, names: StreamNames, visibility_timeout_ms: int, max_deliveries: int
    ) -> None:
        self.names = names
        self._engine = engine
        self._visibility = timedelta(milliseconds=visibility_timeout_ms)
        self._max_deliveries = max_deliveries
        self._postgres = engine.dialect.name == "postgresql"
        # One event per stream, replaced after each append, so blocked readers here wake at once.
        self._appended: dict[str, asyncio.Event] = {}
        # When each stream last had entries to read or was appended to here (monotonic seconds).
        self._active_at: dict[str, float] = {}

    async def append(self, stream: str, fields: dict[str, str]) -> str:
        """Append one entry; returns its id once committed."""
        return (await self.append_many(stream, [fields]))[0]

    async def append_many(self, stream: str, entries: list[dict[str, str]]) -> list[str]:
        """Append entries in order with one INSERT in one transaction."""
        if not entries:
            return []
        with _database_errors("append"):
            async with self._engine.begin() as conn:
                ids = await self._insert(conn, stream, entries)
        self._wake(stream)
        return [str(entry_id) for entry_id in ids]

    async def ensure_group(self, stream: str, group: str) -> None:
        """Create the group at the start of the stream unless it exists."""
        with _database_errors("ensure_group"):
            async with self._engine.begin() as conn:
                await conn.execute(self._insert_group(stream, group))

    async def read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int = 0
    ) -> list[StreamEntry]:
        """Reclaim expired pending entries, then claim new ones, polling up to `block_ms`."""
        deadline = time.monotonic() + block_ms / 1000
        while True:
            # Taken before looking, so an append committed after the look still wakes us.
            appended = self._appended.setdefault(stream, asyncio.Event())
            entries = await self._read_once(stream, group, consumer, count)
            now = time.monotonic()
            if entries:
                self._active_at[stream] = now
            remaining = deadline - now
            if entries or remaining <= 0:
                return entries
            with suppress(TimeoutError):
                await asyncio.wait_for(appended.wait(), min(self._poll_interval(stream, now), remaining))

    def _poll_interval(self, stream: str, now: float) -> float:
        """How long a blocked read waits before looking again: a tenth of how long the stream has
        been quiet, between POLL_INTERVAL_S and IDLE_POLL_INTERVAL_S."""
        quiet = now - self._active_at.setdefault(stream, now)
        return min(IDLE_POLL_INTERVAL_S, max(POLL_INTERVAL_S, quiet / 10))

    async def ack(self, stream: str, group: str, ids: list[str]) -> None:
        """Drop the entries from the group's pending list."""
        if not ids:
            return
        entry_ids = [_entry_id(entry_id) for entry_id in ids]
        with _database_errors("ack"):
            async with self._engine.begin() as conn:
                await conn.execute(self._delete_pending(stream, group, entry_ids))

    async def dead_letter(self, stream: str, group: str, entry: StreamEntry, error: str) -> str:
        """Append the entry to the DLQ and acknowledge it, in one transaction."""
        record = dead_letter_fields(stream, group, entry, error)
        with _database_errors("dead_letter"):
            async with self._engine.begin() as conn:
                [dlq_id] = await self._insert(conn, self.names.dlq, [record])
                await conn.execute(self._delete_pending(stream, group, [_entry_id(entry.id)]))
        self._wake(self.names.dlq)
        return str(dlq_id)

    async def dead_letter_items(
        self, stream: str, group: str, entry: StreamEntry, items: list[tuple[str, str]]
    ) -> list[str]:
        """Append one DLQ entry per item and acknowledge the entry, in one transaction."""
        records = [dead_letter_fields(stream, group, entry, reason, item) for item, reason in items]
        with _database_errors("dead_letter"):
            async with self._engine.begin() as conn:
                ids = await self._insert(conn, self.names.dlq, records) if records else []
                await conn.execute(self._delete_pending(stream, group, [_entry_id(entry.id)]))
        self._wake(self.names.dlq)
        return [str(dlq_id) for dlq_id in ids]

    async def fail(self, stream: str, group: str, entry: StreamEntry, error: str) -> bool:
        """Dead-letter the entry once its deliveries are used up; else leave it to be reclaimed."""
        if entry.deliveries < self._max_deliveries:
            return False
        await self.dead_letter(stream, group, entry, error)
        return True

    async def replay_dlq(self, limit: int | None = None) -> int:
        """Move DLQ entries back onto their streams, oldest first; returns how many moved."""
        moved = 0
        after = 0
        with _database_errors("replay_dlq"):
            while limit is None or moved < limit:
                page = await self._dlq_page(after, REPLAY_PAGE if limit is None else limit - moved)
                if not page:
                    break
                for dlq_id, text in page:
                    origin = _dlq_origin(text)
                    if origin is not None and await self._replay_one(dlq_id, *origin):
                        moved += 1
                after = page[-1][0]
        return moved

    async def replay_dlq_entries(self, ids: list[str]) -> list[str]:
        """Move the named DLQ entries back onto their streams, oldest first; the ids moved."""
        wanted = sorted({int(dlq_id) for dlq_id in ids if _is_row_id(dlq_id)})
        if not wanted:
            return []
        moved: list[str] = []
        with _database_errors("replay_dlq"):
            async with self._engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(Entry.id, Entry.fields)
                        .where(Entry.stream == self.names.dlq, Entry.id.in_(wanted))
                        .order_by(Entry.id)
                    )
                ).all()
            for dlq_id, text in rows:
                origin = _dlq_origin(text)
                if origin is not None and await self._replay_one(dlq_id, *origin):
                    moved.append(str(dlq_id))
        return moved

    async def info(self, stream: str) -> StreamInfo:
        """Entry count and, per group, pending entries, consumers holding them, unread entries and
        when the oldest pending and the oldest unread entry were appended."""
        of_group = (Pending.stream == stream, Pending.group_name == Group.name)
        pending = select(func.count()).where(*of_group)
        consumers = select(func.count(func.distinct(Pending.consumer))).where(*of_group)
        lag = select(func.count()).where(Entry.stream == stream, Entry.id > Group.last_id)
        oldest_pending = (
            select(func.min(Entry.created_at))
            .select_from(Pending)
            .join(Entry, Entry.id == Pending.entry_id)
            .where(*of_group)
        )
        oldest_unread = (
            select(Entry.created_at)
            .where(Entry.stream == stream, Entry.id > Group.last_id)
            .order_by(Entry.id)
            .limit(1)
        )
        groups_query = (
            select(
                Group.name,
                pending.scalar_subquery(),
                consumers.scalar_subquery(),
                lag.scalar_subquery(),
                oldest_pending.scalar_subquery(),
                oldest_unread.scalar_subquery(),
            )
            .where(Group.stream == stream)
            .order_by(Group.name)
        )
        with _database_errors("info"):
            async with self._engine.connect() as conn:
                length = (await conn.execute(select(func.count()).where(Entry.stream == stream))).scalar_one()
                rows = (await conn.execute(groups_query)).all()
        groups = [
            GroupInfo(name, pending_, consumers_, lag_, _earliest(first, unread))
            for name, pending_, consumers_, lag_, first, unread in rows
        ]
        return StreamInfo(stream=stream, length=length, groups=groups)

    async def trim(self, stream: str) -> int:
        """Delete entries every group has read and none still has pending."""
        # One statement, so it sees a single snapshot: a reader advances last_id and inserts the
        # pending rows in one commit, so both are seen or neither is.
        floor = select(func.min(Group.last_id)).where(Group.stream == stream).scalar_subquery()
        still_pending = exists().where(Pending.stream == stream, Pending.entry_id == Entry.id)
        statement = delete(Entry).where(Entry.stream == stream, Entry.id <= floor, ~still_pending)
        with _database_errors("trim"):
            async with self._engine.begin() as conn:
                result = await conn.execute(statement)
        return result.rowcount

    async def purge(self, stream: str, older_than: datetime) -> int:
        """Delete the stream's entries created before `older_than`, and their pending rows."""
        old = select(Entry.id).where(Entry.stream == stream, Entry.created_at < older_than)
        with _database_errors("purge"):
            # Purges and deletes are retention: what they delete must leave the file (on SQLite).
            async with self._engine.begin() as conn, secure_deletes(conn):
                await conn.execute(delete(Pending).where(Pending.stream == stream, Pending.entry_id.in_(old)))
                result = await conn.execute(
                    delete(Entry).where(Entry.stream == stream, Entry.created_at < older_than)
                )
        return result.rowcount

    async def forget(self, stream: str, needles: Collection[str]) -> int:
        """Delete the stream's entries whose fields contain any of `needles`, and their pending rows."""
        if not needles:
            return 0
        mentioned = or_(*(Entry.fields.contains(needle, autoescape=True) for needle in needles))
        matching = select(Entry.id).where(Entry.stream == stream, mentioned)
        with _database_errors("forget"):
            async with self._engine.begin() as conn, secure_deletes(conn):
                await conn.execute(
                    delete(Pending).where(Pending.stream == stream, Pending.entry_id.in_(matching))
                )
                result = await conn.execute(delete(Entry).where(Entry.stream == stream, mentioned))
        return result.rowcount

    async def entries_before(
        self, stream: str, before: datetime, *, after: str | None = None, count: int = 100
    ) -> list[StoredEntry]:
        """The stream's entries created before `before`, in id order, from just after `after`."""
        query = (
            select(Entry.id, Entry.fields, Entry.created_at)
            .where(Entry.stream == stream, Entry.created_at < before)
            .order_by(Entry.id)
            .limit(count)
        )
        if after is not None:
            query = query.where(Entry.id > _entry_id(after))
        with _database_errors("entries_before"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return [
            StoredEntry(str(entry_id), decode_fields(text), created_at) for entry_id, text, created_at in rows
        ]

    async def delete(self, stream: str, ids: list[str]) -> int:
        """Delete the entries and their pending rows in one transaction."""
        if not ids:
            return 0
        entry_ids = [_entry_id(entry_id) for entry_id in ids]
        with _database_errors("delete"):
            async with self._engine.begin() as conn, secure_deletes(conn):
                await conn.execute(
                    delete(Pending).where(Pending.stream == stream, Pending.entry_id.in_(entry_ids))
                )
                result = await conn.execute(
                    delete(Entry).where(Entry.stream == stream, Entry.id.in_(entry_ids))
                )
        return result.rowcount

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self._engine.connect() as conn:
                await conn.execute(select(1))
        except (SQLAlchemyError, OSError):
            return False
        return True

    async def close(self) -> None:
        """Wake blocked readers; the engine belongs to the caller, who disposes of it."""
        for stream in list(self._appended):
            self._wake(stream)

    # Reading.

    async def _read_once(self, stream: str, group: str, consumer: str, count: int) -> list[StreamEntry]:
        with _database_errors("read"):
            # An unlocked look first, so idle polls never take the write or advisory lock.
            if not await self._has_work(stream, group):
                return []
            async with self._reader_transaction() as conn:
                entries = await self._reclaim(conn, stream, group, consumer, count)
                if len(entries) < count:
                    entries += await self._claim_new(conn, stream, group, consumer, count - len(entries))
        return entries

    async def _has_work(self, stream: str, group: str) -> bool:
        last_id = self._last_id(stream, group).scalar_subquery()
        expired = exists().where(
            Pending.stream == stream, Pending.group_name == group, Pending.visible_at <= utcnow()
        )
        unread = exists().where(Entry.stream == stream, Entry.id > last_id)
        async with self._engine.connect() as conn:
            known, has_expired, has_unread = (
                await conn.execute(select(last_id.is_not(None), expired, unread))
            ).one()
        if not known:
            raise StreamError(f"no consumer group {group!r} on stream {stream!r}")
        return bool(has_expired or has_unread)

    @asynccontextmanager
    async def _reader_transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.begin() as conn:
            if not self._postgres:
                # Take SQLite's write lock before the first read, not at the first write.
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    async def _reclaim(
        self, conn: AsyncConnection, stream: str, group: str, consumer: str, count: int
    ) -> list[StreamEntry]:
        now = utcnow()
        expired = (
            select(Pending.entry_id)
            .where(Pending.stream == stream, Pending.group_name == group, Pending.visible_at <= now)
            .order_by(Pending.entry_id)
            .limit(count)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite already holds the write lock
        )
        claimed = await conn.execute(
            update(Pending)
            .where(Pending.stream == stream, Pending.group_name == group, Pending.entry_id.in_(expired))
            .values(consumer=consumer, deliveries=Pending.deliveries + 1, visible_at=now + self._visibility)
            .returning(Pending.entry_id, Pending.deliveries)
        )
        deliveries = dict(claimed.all())
        if not deliveries:
            return []
        return await self._load(conn, stream, group, deliveries)

    async def _load(
        self, conn: AsyncConnection, stream: str, group: str, deliveries: dict[int, int]
    ) -> list[StreamEntry]:
        rows = await conn.execute(
            select(Entry.id, Entry.fields)
            .where(Entry.stream == stream, Entry.id.in_(list(deliveries)))
            .order_by(Entry.id)
        )
        entries = [
            StreamEntry(stream, str(entry_id), decode_fields(fields), deliveries[entry_id])
            for entry_id, fields in rows
        ]
        # An entry deleted while pending has nothing left to deliver: acknowledge it.
        gone = set(deliveries) - {int(entry.id) for entry in entries}
        if gone:
            await conn.execute(self._delete_pending(stream, group, sorted(gone)))
        return entries

    async def _claim_new(
        self, conn: AsyncConnection, stream: str, group: str, consumer: str, count: int
    ) -> list[StreamEntry]:
        # Locking the group row keeps two readers of the group from handing out the same entries.
        last_id = (await conn.execute(self._last_id(stream, group).with_for_update())).scalar_one_or_none()
        if last_id is None:
            raise StreamError(f"no consumer group {group!r} on stream {stream!r}")
        await self._lock_stream(conn, stream, exclusive=True)
        rows = (
            await conn.execute(
                select(Entry.id, Entry.fields)
                .where(Entry.stream == stream, Entry.id > last_id)
                .order_by(Entry.id)
                .limit(count)
            )
        ).all()
        if not rows:
            return []
        visible_at = utcnow() + self._visibility
        await conn.execute(
            update(Group).where(Group.stream == stream, Group.name == group).values(last_id=rows[-1].id)
        )
        await conn.execute(
            insert(Pending),
            [
                {
                    "stream": stream,
                    "group_name": group,
                    "entry_id": row.id,
                    "consumer": consumer,
                    "deliveries": 1,
                    "visible_at": visible_at,
                }
                for row in rows
            ],
        )
        return [StreamEntry(stream, str(row.id), decode_fields(row.fields)) for row in rows]

    # Writing.

    async def _insert(self, conn: AsyncConnection, stream: str, entries: list[dict[str, str]]) -> list[int]:
        for fields in entries:
            require_fields(fields)
        await self._lock_stream(conn, stream, exclusive=False)
        now = utcnow()
        # One multi-row INSERT. PostgreSQL can return the ids in parameter order; SQLite cannot
        # (SQLAlchemy would fall back to a statement per row), but with its single writer the rows
        # of one INSERT get ascending rowids in VALUES order, so sorting restores that order.
        result = await conn.execute(
            insert(Entry).returning(Entry.id, sort_by_parameter_order=self._postgres),
            [{"stream": stream, "fields": encode_fields(fields), "created_at": now} for fields in entries],
        )
        ids = list(result.scalars())
        return ids if self._postgres else sorted(ids)

    async def _lock_stream(self, conn: AsyncConnection, stream: str, *, exclusive: bool) -> None:
        """Appenders share the stream's advisory lock; a reader of new entries holds it alone."""
        if not self._postgres:
            return
        lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
        await conn.execute(select(lock(_LOCK_CLASS, func.hashtext(stream))))

    async def _dlq_page(self, after: int, limit: int) -> list[tuple[int, str]]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(Entry.id, Entry.fields)
                .where(Entry.stream == self.names.dlq, Entry.id > after)
                .order_by(Entry.id)
                .limit(limit)
            )
            return [(dlq_id, text) for dlq_id, text in rows]

    async def _replay_one(self, dlq_id: int, stream: str, fields: dict[str, str]) -> bool:
        """Delete the DLQ entry and re-append its original in one transaction; False when another
        replayer got there first (its delete found nothing)."""
        async with self._engine.begin() as conn:
            deleted = await conn.execute(
                delete(Entry).where(Entry.stream == self.names.dlq, Entry.id == dlq_id)
            )
            if deleted.rowcount == 0:
                return False
            await self._insert(conn, stream, [fields])
        self._wake(stream)
        return True

    def _insert_group(self, stream: str, group: str) -> Executable:
        values = {"stream": stream, "name": group, "last_id": 0, "created_at": utcnow()}
        if self._postgres:
            return postgresql.insert(Group).values(values).on_conflict_do_nothing()
        return sqlite.insert(Group).values(values).on_conflict_do_nothing()

    # Helpers.

    @staticmethod
    def _last_id(stream: str, group: str) -> Select[int]:
        return select(Group.last_id).where(Group.stream == stream, Group.name == group)

    @staticmethod
    def _delete_pending(stream: str, group: str, entry_ids: Sequence[int]) -> Executable:
        return delete(Pending).where(
            Pending.stream == stream, Pending.group_name == group, Pending.entry_id.in_(entry_ids)
        )

    def _wake(self, stream: str) -> None:
        self._active_at[stream] = time.monotonic()
        event = self._appended.pop(stream, None)
        if event is not None:
            event.set()
