"""The operator's view of the engine, across every tenant on purpose: the streams and what their
groups have not acknowledged, the outbox backlog, the DLQ with each entry's reason, provider and
tenant, replaying it, and the engine's processes by their heartbeats. Platform admins only
(ops/api.py checks it); nothing here is scoped to a tenant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import is_postgresql, one_of, utcnow
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.inbox.models import Message
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.ops.models import WorkerHeartbeat
from messaging_whatsapp.ops.schemas import (
    DeadLetterItem,
    DeadLetterPage,
    GroupItem,
    OutboxBacklog,
    ReplayResult,
    StreamItem,
    StreamsReport,
    WorkerItem,
    WorkersReport,
)
from messaging_whatsapp.outbox.models import OutboxEvent
from messaging_whatsapp.pagination import decode_cursor, encode_cursor
from messaging_whatsapp.streams.base import GroupInfo, StoredEntry, StreamInfo
from messaging_whatsapp.streams.records import decode_fields
from messaging_whatsapp.tenancy.models import Tenant, User

# A process that stopped beating leaves the listing after this, and its row is deleted by the
# next process to start after a day (a restart makes a new row: pids and hosts repeat).
LISTED_FOR = timedelta(hours=1)
FORGOTTEN_AFTER = timedelta(days=1)
# The DLQ listing reads entries appended before a moment: one far enough ahead reads them all.
_EVERYTHING = timedelta(days=1)
# Entry ids as each backend writes them (a cursor names one): a row id, or Redis' ms-seq.
_ROW_ID = re.compile(r"[0-9]{1,18}")
_REDIS_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


# Who may look.


async def is_platform_admin(session: AsyncSession, user_id: str) -> bool:
    """Whether the user is an active platform admin now (read from the database, never a token)."""
    row = (
        await session.execute(select(User.is_platform_admin, User.is_active).where(User.id == user_id))
    ).first()
    return row is not None and bool(row.is_platform_admin) and bool(row.is_active)


# Streams.


def _age(now: datetime, moment: datetime | None) -> float | None:
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def _is_stale(age: float | None, max_age: float) -> bool:
    return max_age > 0 and age is not None and age > max_age


def _stream_item(info: StreamInfo, now: datetime, max_age: float) -> StreamItem:
    groups = [_group_item(group, now) for group in info.groups]
    ages = [
        group.oldest_pending_age_seconds for group in groups if group.oldest_pending_age_seconds is not None
    ]
    oldest = max(ages) if ages else None
    return StreamItem(
        name=info.stream,
        length=info.length,
        pending=sum(group.pending for group in groups),
        oldest_pending_age_seconds=oldest,
        stale=_is_stale(oldest, max_age),
        groups=groups,
    )


def _group_item(group: GroupInfo, now: datetime) -> GroupItem:
    return GroupItem(
        name=group.name,
        pending=group.pending,
        consumers=group.consumers,
        lag=group.lag,
        oldest_pending_age_seconds=_age(now, group.oldest_unacked_at),
    )


async def stream_report(context: EngineContext) -> StreamsReport:
    """Every stream with its groups' pending entries and oldest unacknowledged age, and the outbox."""
    max_age = context.settings.ready_max_pending_age_seconds
    infos = [await context.streams.info(name) for name in context.names.every]
    async with context.sessions() as session:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(OutboxEvent.created_at)).select_from(OutboxEvent)
            )
        ).one()
    now = utcnow()
    return StreamsReport(
        streams=[_stream_item(info, now, max_age) for info in infos],
        outbox=OutboxBacklog(count=count, oldest_age_seconds=_age(now, oldest)),
        max_pending_age_seconds=max_age,
    )


async def stale_streams(context: EngineContext) -> list[StreamItem]:
    """The streams this engine's own workers consume (inbound, outbound, and the events in of
    events:materials) whose oldest unacknowledged entry is older than
    READY_MAX_PENDING_AGE_SECONDS: what /readyz fails on. The events stream is read by other
    systems too; their lag is not this engine's readiness."""
    max_age = context.settings.ready_max_pending_age_seconds
    if max_age <= 0:
        return []
    now = utcnow()
    watched = (context.names.inbound, context.names.outbound, context.names.materials)
    items = [_stream_item(await context.streams.info(name), now, max_age) for name in watched]
    return [item for item in items if item.stale]


# The DLQ.


@dataclass(frozen=True, slots=True)
class _Record:
    """A DLQ entry's fields, read: the failure and the original entry's own fields."""

    entry: StoredEntry
    original: dict[str, str]
    stream: str | None

    def get(self, name: str) -> str | None:
        """A field of the original entry (None when absent or empty)."""
        return self.original.get(name) or None


def _read_record(entry: StoredEntry) -> _Record:
    try:
        original = decode_fields(entry.fields["fields"])
    except (KeyError, ValueError):
        return _Record(entry, {}, None)
    return _Record(entry, original, entry.fields.get("stream") or None)


def _failed_at(entry: StoredEntry) -> datetime:
    try:
        return datetime.fromisoformat(entry.fields["failed_at"])
    except (KeyError, ValueError):
        return entry.appended_at


def _attempts(entry: StoredEntry) -> int | None:
    deliveries = entry.fields.get("deliveries", "")
    return int(deliveries) if deliveries.isascii() and deliveries.isdigit() else None


def _dlq_after(context: EngineContext, cursor: str | None) -> str | None:
    """The DLQ id a cursor resumes after, checked to be one of this backend's ids."""
    if cursor is None:
        return None
    _, after = decode_cursor(cursor)
    shape = _REDIS_ID if context.settings.redis_url else _ROW_ID
    if not shape.fullmatch(after):
        raise InvalidInput("cursor is not valid", code="invalid_cursor")
    return after


async def dead_letters(context: EngineContext, cursor: str | None, limit: int) -> DeadLetterPage:
    """A page of the DLQ, oldest first, each entry with its reason, provider and tenant."""
    after = _dlq_after(context, cursor)
    dlq = context.names.dlq
    stored = await context.streams.entries_before(dlq, utcnow() + _EVERYTHING, after=after, count=limit + 1)
    records = [_read_record(entry) for entry in stored[:limit]]
    async with context.sessions() as session:
        tenants = await _tenant_names(session, {r.get("tenant_id") for r in records})
        messages = await _message_numbers(session, {r.get("message_id") for r in records})
        providers = await _instance_providers(
            session, {r.get("instance_id") for r in records} | {i for i, _ in messages.values()}
        )
    items = [_dead_letter_item(record, tenants, messages, providers) for record in records]
    next_cursor = encode_cursor(None, records[-1].entry.id) if len(stored) > limit else None
    total = (await context.streams.info(dlq)).length
    return DeadLetterPage(items=items, next_cursor=next_cursor, total=total)


def _dead_letter_item(
    record: _Record,
    tenants: dict[str, str],
    messages: dict[str, tuple[str, str]],
    providers: dict[str, str],
) -> DeadLetterItem:
    entry, tenant_id, message_id = record.entry, record.get("tenant_id"), record.get("message_id")
    instance_id = record.get("instance_id") or (messages[message_id][0] if message_id in messages else None)
    provider = record.get("provider") or (providers.get(instance_id) if instance_id else None)
    return DeadLetterItem(
        id=entry.id,
        reason=entry.fields.get("error") or "unknown",
        stream=record.stream,
        group=entry.fields.get("group") or None,
        entry_id=entry.fields.get("entry_id") or None,
        provider=provider,
        tenant_id=tenant_id,
        tenant_name=tenants.get(tenant_id) if tenant_id else None,
        instance_id=instance_id,
        message_id=message_id,
        item=entry.fields.get("item") or None,
        attempts=_attempts(entry),
        failed_at=_failed_at(entry),
        replayable=record.stream is not None,
    )


async def _tenant_names(session: AsyncSession, ids: set[str | None]) -> dict[str, str]:
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    rows = await session.execute(select(Tenant.id, Tenant.name).where(one_of(session, Tenant.id, wanted)))
    return {tenant_id: name for tenant_id, name in rows}


async def _message_numbers(session: AsyncSession, ids: set[str | None]) -> dict[str, tuple[str, str]]:
    """Message id -> (instance id, its tenant), for the sender's DLQ entries that name a message."""
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    rows = await session.execute(
        select(Message.id, Message.instance_id, Message.tenant_id).where(one_of(session, Message.id, wanted))
    )
    return {message_id: (instance_id, tenant_id) for message_id, instance_id, tenant_id in rows}


async def _instance_providers(session: AsyncSession, ids: set[str | None]) -> dict[str, str]:
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    rows = await session.execute(
        select(WhatsAppInstance.id, WhatsAppInstance.provider).where(
            one_of(session, WhatsAppInstance.id, wanted)
        )
    )
    return {instance_id: provider for instance_id, provider in rows}


async def replay(context: EngineContext, ids: list[str] | None) -> ReplayResult:
    """Put DLQ entries back on the streams they came from, as `replay-dlq` does: every one, or
    those named (the ones not in the DLQ come back as unknown)."""
    if ids is None:
        return ReplayResult(replayed=await context.streams.replay_dlq(), unknown_ids=[])
    moved = set(await context.streams.replay_dlq_entries(ids))
    unknown = [dlq_id for dlq_id in dict.fromkeys(ids) if dlq_id not in moved]
    return ReplayResult(replayed=len(moved), unknown_ids=unknown)


# Workers.


@dataclass(frozen=True, slots=True)
class EngineProcess:
    """An engine process as its heartbeat names it."""

    id: str
    role: str
    parts: tuple[str, ...]
    host: str
    pid: int
    started_at: datetime


async def record_heartbeat(
    session: AsyncSession, process: EngineProcess, now: datetime, *, stopped: bool = False
) -> None:
    """Write the process's heartbeat: one UPSERT of its row."""
    values = {
        "id": process.id,
        "role": process.role,
        "parts": " ".join(process.parts),
        "host": process.host,
        "pid": process.pid,
        "started_at": process.started_at,
        "beat_at": now,
        "stopped_at": now if stopped else None,
    }
    dialect = postgresql if is_postgresql(session) else sqlite
    statement = dialect.insert(WorkerHeartbeat).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[WorkerHeartbeat.id],
            set_={"beat_at": statement.excluded.beat_at, "stopped_at": statement.excluded.stopped_at},
        )
    )


async def forget_workers(session: AsyncSession, now: datetime) -> None:
    """Delete the rows of processes silent for FORGOTTEN_AFTER."""
    await session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGOTTEN_AFTER))


async def worker_report(session: AsyncSession, now: datetime, alive_seconds: float) -> WorkersReport:
    """The processes heard from within LISTED_FOR, by role, host and pid, alive or not."""
    rows = await session.scalars(
        select(WorkerHeartbeat)
        .where(WorkerHeartbeat.beat_at >= now - LISTED_FOR)
        .order_by(WorkerHeartbeat.role, WorkerHeartbeat.host, WorkerHeartbeat.pid, WorkerHeartbeat.started_at)
    )
    return WorkersReport(
        items=[_worker_item(row, now, alive_seconds) for row in rows], alive_seconds=alive_seconds
    )


def _worker_item(row: WorkerHeartbeat, now: datetime, alive_seconds: float) -> WorkerItem:
    silence = max(0.0, (now - row.beat_at).total_seconds())
    return WorkerItem(
        id=row.id,
        role=row.role,
        parts=row.parts.split(),
        host=row.host,
        pid=row.pid,
        started_at=row.started_at,
        last_heartbeat_at=row.beat_at,
        stopped_at=row.stopped_at,
        seconds_since_heartbeat=silence,
        alive=row.stopped_at is None and silence <= alive_seconds,
    )
