"""Keeps the hourly rollup (analytics_hours) equal to the messages it sums.

The worker's scheduler runs `fold_changes` every few seconds: it finds the messages changed since
its last pass (messages.updated_at, indexed; every writer of a message stamps it: the sender's
claims and outcomes, receipts, the ingest batch) and recomputes each (number, hour) they belong to
from the messages themselves, replacing that hour's rows. A recomputation is idempotent by
construction: a receipt applied twice, a stage time a late receipt moves earlier, a failure a
later receipt proves wrong all end in the figures the messages hold. A message belongs to the hour
it was created in (queued or received), in UTC.

Each pass looks back FOLD_LAG before its cursor, so a writer whose transaction committed after the
pass read its changes (its updated_at was stamped earlier) is folded in by the next pass. Messages
deleted by retention or erasure are not looked for: the rollup keeps their figures (as campaigns
keep their counters) until something else in their hour changes.

The p90 is read from a histogram of fixed buckets (models.DURATION_EDGES), interpolated within its
bucket: exact to within that bucket, whose upper edge is at most 1.7 times its lower one from 2 s
to 6 h, twice it from 0.25 s to 2 s and from 6 h to 2 days.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.analytics.models import (
    DELIVERY_HISTOGRAM,
    DURATION_EDGES,
    HISTOGRAM_BUCKETS,
    NO_CAMPAIGN,
    READ_HISTOGRAM,
    cursor_table,
    hours_table,
)
from messaging_whatsapp.campaigns.models import campaign_contacts_table
from messaging_whatsapp.db import insert_rows, is_postgresql, one_of, take_sqlite_writer
from messaging_whatsapp.inbox.models import Direction, SenderType, messages_table
from messaging_whatsapp.providers.events import DeliveryStatus

HOUR = timedelta(hours=1)
# How far before the cursor each pass looks again (see the module's docstring).
FOLD_LAG = timedelta(seconds=60)
# Hours of one number read by one query when recomputing many (a rebuild).
CHUNK_HOURS = 24
CURSOR_NAME = "messages"
# Advisory lock ("AN", 1): one fold or rebuild at a time on PostgreSQL.
_LOCK = (0x414E, 1)
_REACHED_SENT = frozenset(
    {DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value, DeliveryStatus.READ.value}
)
_REACHED_DELIVERED = frozenset({DeliveryStatus.DELIVERED.value, DeliveryStatus.READ.value})

# One (number, UTC hour start).
Key = tuple[str, datetime]


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour `moment` falls in."""
    return moment.replace(minute=0, second=0, microsecond=0)


def empty_histogram() -> list[int]:
    """A duration histogram with every bucket at zero (one more than the edges: longer)."""
    return [0] * HISTOGRAM_BUCKETS


def bucket_of(seconds: float) -> int:
    """The histogram bucket a duration falls in: (edge before, edge], the last one open-ended."""
    return bisect_left(DURATION_EDGES, seconds)


def percentile(histogram: list[int], fraction: float) -> float | None:
    """The value below which `fraction` of the durations lie, interpolated within its bucket
    (None for no durations); the open-ended last bucket answers its lower edge."""
    total = sum(histogram)
    if not total:
        return None
    wanted = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= wanted:
            lower = DURATION_EDGES[index - 1] if index else 0.0
            if index == len(DURATION_EDGES):
                return float(lower)
            upper = DURATION_EDGES[index]
            return lower + (upper - lower) * (wanted - seen) / count
        seen += count
    return float(DURATION_EDGES[-1])


@dataclass
class HourFigures:
    """The figures of one (number, hour, campaign) being recomputed."""

    tenant_id: str
    inbound: int = 0
    outbound: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    delivery_timed: int = 0
    delivery_seconds: float = 0.0
    read_timed: int = 0
    read_seconds: float = 0.0
    delivery_histogram: list[int] = field(default_factory=empty_histogram)
    read_histogram: list[int] = field(default_factory=empty_histogram)
    responses: int = 0
    response_seconds: float = 0.0

    def count(self, message: Any) -> None:
        """Count one message (a row of _MESSAGE_COLUMNS) by its direction, status and times."""
        if message.direction == Direction.INBOUND.value:
            self.inbound += 1
            return
        self.outbound += 1
        status = message.status
        failed = status == DeliveryStatus.FAILED.value
        # As campaigns count: a message reached "sent" if it is sent or beyond, or failed after it.
        if status in _REACHED_SENT or (failed and message.sent_at is not None):
            self.sent += 1
        if status in _REACHED_DELIVERED:
            self.delivered += 1
            waited = _waited(message.sent_at, message.delivered_at)
            if waited is not None:
                self.delivery_timed += 1
                self.delivery_seconds += waited
                self.delivery_histogram[bucket_of(waited)] += 1
        if status == DeliveryStatus.READ.value:
            self.read += 1
            waited = _waited(message.sent_at, message.read_at)
            if waited is not None:
                self.read_timed += 1
                self.read_seconds += waited
                self.read_histogram[bucket_of(waited)] += 1
        if failed:
            self.failed += 1

    def row(self, instance_id: str, hour: datetime, campaign_id: str) -> dict[str, Any]:
        """The rollup row of these figures (the histograms one column per bucket)."""
        figures = {name: value for name, value in self.__dict__.items() if not name.endswith("_histogram")}
        return {
            "instance_id": instance_id,
            "hour": hour,
            "campaign_id": campaign_id,
            **figures,
            **dict(zip(DELIVERY_HISTOGRAM, self.delivery_histogram, strict=True)),
            **dict(zip(READ_HISTOGRAM, self.read_histogram, strict=True)),
        }


def _waited(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from `start` to `end` when both are known; provider clocks may put a receipt a
    little before our own "sent", so never below zero."""
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


_MESSAGE_COLUMNS = (
    messages_table.c.id,
    messages_table.c.tenant_id,
    messages_table.c.created_at,
    messages_table.c.direction,
    messages_table.c.sender_type,
    messages_table.c.ticket_id,
    messages_table.c.status,
    messages_table.c.sent_at,
    messages_table.c.delivered_at,
    messages_table.c.read_at,
)


async def fold_changes(session: AsyncSession, now: datetime) -> int | None:
    """Recompute the hours of the messages changed since the last pass (all of them on the first);
    how many (number, hour) were recomputed, or None when another process holds the pass."""
    if is_postgresql(session) and not await session.scalar(select(func.pg_try_advisory_xact_lock(*_LOCK))):
        return None
    folded_until = await session.scalar(
        select(cursor_table.c.folded_until).where(cursor_table.c.name == CURSOR_NAME)
    )
    if folded_until is None:
        keys = await _every_key(session)
    else:
        keys = await _changed_keys(session, folded_until - FOLD_LAG)
        if not keys:
            # Nothing changed: no write (SQLite's one writer stays free); the cursor may stay.
            return 0
    # The messages are read again under the writer lock, so a change after the keys is not lost:
    # it is either read now or found by the next pass.
    await take_sqlite_writer(session)
    await recompute(session, keys)
    await _advance(session, now, first=folded_until is None)
    return len(keys)


async def rebuild(session: AsyncSession, now: datetime, tenant_id: str | None = None) -> int:
    """Recompute every hour of every number (or of one tenant's) from the messages; how many
    (number, hour) it recomputed. Waits for a fold under way to end."""
    if is_postgresql(session):
        await session.execute(select(func.pg_advisory_xact_lock(*_LOCK)))
    await take_sqlite_writer(session)
    keys = await _every_key(session, tenant_id)
    await recompute(session, keys)
    if tenant_id is None:
        stored = await session.scalar(
            select(cursor_table.c.folded_until).where(cursor_table.c.name == CURSOR_NAME)
        )
        await _advance(session, now, first=stored is None)
    return len(keys)


async def _advance(session: AsyncSession, now: datetime, *, first: bool) -> None:
    c = cursor_table.c
    if first:
        await session.execute(cursor_table.insert().values(name=CURSOR_NAME, folded_until=now))
        return
    await session.execute(cursor_table.update().where(c.name == CURSOR_NAME).values(folded_until=now))


async def _changed_keys(session: AsyncSession, since: datetime) -> list[Key]:
    """The (number, hour) of every message changed since `since`."""
    m = messages_table.c
    rows = await session.execute(select(m.instance_id, m.created_at).where(m.updated_at >= since))
    return sorted({(instance_id, hour_of(created_at)) for instance_id, created_at in rows})


async def _every_key(session: AsyncSession, tenant_id: str | None = None) -> list[Key]:
    """Every hour from each number's first message to its last (and the hours already rolled up)."""
    m, h = messages_table.c, hours_table.c
    spans = select(m.instance_id, func.min(m.created_at), func.max(m.created_at)).group_by(m.instance_id)
    stored = select(h.instance_id, h.hour)
    if tenant_id is not None:
        spans = spans.where(m.tenant_id == tenant_id)
        stored = stored.where(h.tenant_id == tenant_id)
    keys: set[Key] = {(instance_id, hour) for instance_id, hour in await session.execute(stored)}
    for instance_id, first, last in await session.execute(spans):
        hour, end = hour_of(first), hour_of(last)
        while hour <= end:
            keys.add((instance_id, hour))
            hour += HOUR
    return sorted(keys)


async def recompute(session: AsyncSession, keys: Iterable[Key]) -> None:
    """Replace the rollup rows of these (number, hour) by the figures of their messages now."""
    for instance_id, hours in _by_instance(keys).items():
        for chunk in _chunks(hours):
            await _recompute_chunk(session, instance_id, chunk)


def _by_instance(keys: Iterable[Key]) -> dict[str, list[datetime]]:
    grouped: dict[str, list[datetime]] = defaultdict(list)
    for instance_id, hour in keys:
        grouped[instance_id].append(hour)
    return {instance_id: sorted(set(hours)) for instance_id, hours in grouped.items()}


def _chunks(hours: list[datetime]) -> Iterable[list[datetime]]:
    """Runs of hours spanning at most CHUNK_HOURS, each read with one range query."""
    chunk: list[datetime] = []
    for hour in hours:
        if chunk and hour - chunk[0] >= CHUNK_HOURS * HOUR:
            yield chunk
            chunk = []
        chunk.append(hour)
    if chunk:
        yield chunk


async def _recompute_chunk(session: AsyncSession, instance_id: str, hours: list[datetime]) -> None:
    wanted = set(hours)
    m, cc = messages_table.c, campaign_contacts_table.c
    query = (
        select(*_MESSAGE_COLUMNS, cc.campaign_id)
        .outerjoin(campaign_contacts_table, cc.message_id == m.id)
        .where(m.instance_id == instance_id, m.created_at >= hours[0], m.created_at < hours[-1] + HOUR)
    )
    figures: dict[tuple[datetime, str], HourFigures] = {}
    replies: list[Any] = []
    for message in await session.execute(query):
        hour = hour_of(message.created_at)
        if hour not in wanted:
            continue
        key = (hour, message.campaign_id or NO_CAMPAIGN)
        if key not in figures:
            figures[key] = HourFigures(message.tenant_id)
        figures[key].count(message)
        if message.sender_type == SenderType.USER.value and message.ticket_id is not None:
            replies.append(message)
    await _count_first_replies(session, replies, figures)
    h = hours_table.c
    await session.execute(
        delete(hours_table).where(h.instance_id == instance_id, one_of(session, h.hour, sorted(wanted)))
    )
    rows = [
        found.row(instance_id, hour, campaign_id) for (hour, campaign_id), found in sorted(figures.items())
    ]
    if rows:
        insert, params = insert_rows(session, hours_table, rows)
        await session.execute(insert, params)


async def _count_first_replies(
    session: AsyncSession, replies: list[Any], figures: dict[tuple[datetime, str], HourFigures]
) -> None:
    """For each ticket whose first agent reply is among `replies`: its wait since the ticket's first
    customer message, counted in the reply's hour (the agents' first response time)."""
    if not replies:
        return
    m = messages_table.c
    tickets = sorted({reply.ticket_id for reply in replies})
    rows = await session.execute(
        select(m.id, m.ticket_id, m.created_at, m.direction, m.sender_type).where(
            one_of(session, m.ticket_id, tickets),
            (m.direction == Direction.INBOUND.value) | (m.sender_type == SenderType.USER.value),
        )
    )
    first_inbound: dict[str, datetime] = {}
    agent_messages: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for row in rows:
        if row.direction == Direction.INBOUND.value:
            known = first_inbound.get(row.ticket_id)
            first_inbound[row.ticket_id] = row.created_at if known is None else min(known, row.created_at)
        else:
            agent_messages[row.ticket_id].append((row.created_at, row.id))
    ours = {reply.id: reply for reply in replies}
    for ticket_id, asked_at in first_inbound.items():
        after = sorted(found for found in agent_messages[ticket_id] if found[0] >= asked_at)
        if not after or after[0][1] not in ours:
            continue
        reply = ours[after[0][1]]
        found = figures[(hour_of(reply.created_at), reply.campaign_id or NO_CAMPAIGN)]
        found.responses += 1
        found.response_seconds += (reply.created_at - asked_at).total_seconds()
