"""The transactional outbox: events written in the transaction of their cause, relayed after commit.

An event is published if and only if its cause committed. A transaction's events for one stream
are one outbox row (a JSON list of stream entries): a batch of hundreds of events costs one row,
not hundreds. The writer keeps what it wrote, so the relay right after the commit appends it
without reading it back; a process that dies before the relay leaves the row for the orphan
sweep. Delivery is at least once: a crash between the append and the delete publishes the events
again, with the same event ids.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp import metrics
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, one_of, utcnow
from messaging_whatsapp.outbox.models import OutboxEvent
from messaging_whatsapp.realtime.events import realtime_events

logger = logging.getLogger(__name__)

# Outbox rows older than this were orphaned by a crash between commit and relay.
ORPHANED_OUTBOX_AGE = timedelta(seconds=60)
# Outbox rows relayed per sweep (each holds one transaction's events).
ORPHANS_PER_SWEEP = 100


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """An event for other systems, written to the outbox in the same transaction as its cause."""

    type: str
    tenant_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """An outbox row as written: the stream its entries go to, in order."""

    id: int
    stream: str
    entries: list[dict[str, str]]


def _stored_entries(payload: str) -> list[dict[str, str]]:
    """The stream entries an outbox row holds (a row written before rows held lists is one event)."""
    stored = orjson.loads(payload)
    if isinstance(stored, dict):
        return [{**stored, "payload": orjson.dumps(stored["payload"]).decode()}]
    return list(stored)


async def write_outbox(
    session: AsyncSession, published: list[PublishedEvent], stream: str
) -> list[OutboxRecord]:
    """Store events for the relay in the caller's transaction; returns what to relay after commit."""
    if not published:
        return []
    now = utcnow()
    occurred_at = now.isoformat()
    entries = [
        {
            "event_id": new_id(),
            "event_type": event.type,
            "tenant_id": event.tenant_id,
            "occurred_at": occurred_at,
            "payload": orjson.dumps(event.payload).decode(),
        }
        for event in published
    ]
    row = {"stream": stream, "payload": orjson.dumps(entries).decode(), "created_at": now}
    outbox_id = (
        await session.execute(insert(OutboxEvent).values(row).returning(OutboxEvent.id))
    ).scalar_one()
    return [OutboxRecord(outbox_id, stream, entries)]


async def relay_outbox(context: EngineContext, records: list[OutboxRecord]) -> int:
    """Append committed outbox records to their streams, then delete them (at least once)."""
    if not records:
        return 0
    by_stream: dict[str, list[dict[str, str]]] = {}
    for record in sorted(records, key=lambda r: r.id):
        by_stream.setdefault(record.stream, []).extend(record.entries)
    # Separate transactions: the stream may live in this same database (embedded), and SQLite
    # refuses a writer whose read snapshot another writer has moved past.
    for stream, entries in by_stream.items():
        await context.streams.append_many(stream, entries)
    async with context.sessions() as session, session.begin():
        deleted = set(
            await session.scalars(
                delete(OutboxEvent)
                .where(one_of(session, OutboxEvent.id, [r.id for r in records]))
                .returning(OutboxEvent.id)
            )
        )
    published = sum(len(entries) for entries in by_stream.values())
    metrics.EVENTS_PUBLISHED.inc(published)
    await _publish_live(context, [r for r in sorted(records, key=lambda r: r.id) if r.id in deleted])
    return published


async def _publish_live(context: EngineContext, records: list[OutboxRecord]) -> None:
    """Live screens hear of the records after the commit, like every other consumer, but only
    from the relay that deleted them: two relays of one row (an orphan sweep racing another) both
    append to the streams (at least once), yet a screen never sees an event twice. Best effort:
    a screen that missed one resynchronises; the relay and the cause stand."""
    try:
        await context.realtime.publish(realtime_events([e for r in records for e in r.entries]))
    except Exception:
        logger.exception("realtime events could not be published")


async def relay_orphaned_outbox(context: EngineContext) -> int:
    """Relay outbox events left behind by a process that died between commit and relay."""
    async with context.sessions() as session:
        rows = (
            await session.execute(
                select(OutboxEvent.id, OutboxEvent.stream, OutboxEvent.payload)
                .where(OutboxEvent.created_at < utcnow() - ORPHANED_OUTBOX_AGE)
                .order_by(OutboxEvent.id)
                .limit(ORPHANS_PER_SWEEP)
            )
        ).all()
    records = [OutboxRecord(row.id, row.stream, _stored_entries(row.payload)) for row in rows]
    return await relay_outbox(context, records)


async def forget_outbox(session: AsyncSession, tenant_id: str, needles: Collection[str]) -> int:
    """Drop the tenant's events not relayed yet that mention any of `needles` (a person erased);
    the other events of their rows stay. How many."""
    mentioned = or_(*(OutboxEvent.payload.contains(needle, autoescape=True) for needle in needles))
    forgotten = 0
    for row in await session.scalars(select(OutboxEvent).where(mentioned)):
        entries = _stored_entries(row.payload)
        kept = [
            entry
            for entry in entries
            if entry["tenant_id"] != tenant_id or not any(needle in entry["payload"] for needle in needles)
        ]
        forgotten += len(entries) - len(kept)
        if not kept:
            await session.delete(row)
        elif len(kept) < len(entries):
            row.payload = orjson.dumps(kept).decode()
    return forgotten
