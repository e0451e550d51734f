"""Applies status receipts to the messages they name: statuses only ever rise, times only move earlier.

Every receipt of a message in the batch is folded into one change first (batch.Receipt), then
applied as one conditional statement per chunk (`... WHERE status_rank < new rank`), never
read-then-write, so concurrent workers and receipts in any order or repetition end the same. A
receipt that matches no message yet is kept as an orphan: the sender may not have stored the
provider id its send was answered with (receipts can overtake that commit), and applies the
orphans when it does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, String, and_, bindparam, case, delete, func, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from messaging_whatsapp.batch import Outcomes, Receipt, ReceiptsApplied
from messaging_whatsapp.db import UTCDateTime, insert_rows, one_of, rows_table, utcnow
from messaging_whatsapp.inbox.models import SendState, messages_table, orphans_table
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.providers.events import STATUS_RANK, DeliveryStatus, StatusError, StatusUpdate

DELIVERED_RANK = STATUS_RANK[DeliveryStatus.DELIVERED]
READ_RANK = STATUS_RANK[DeliveryStatus.READ]
UNSETTLED_SEND_STATES = (SendState.CLAIMED.value, SendState.UNKNOWN.value)


async def apply_receipts(session: AsyncSession, receipts: list[Receipt]) -> ReceiptsApplied:
    """Raise statuses and backfill stage times with set-based statements per chunk; returns the
    messages moved, one event per stage newly reached, and each number's new stages."""
    applied = ReceiptsApplied()
    effective = sorted(
        (r for r in receipts if r.rank > 0), key=lambda r: (r.instance_id, r.provider_message_id)
    )
    applied.without_effect += len(receipts) - len(effective)
    await _adopt_provider_ids(session, [r for r in effective if r.callback_data])
    by_key = {(r.instance_id, r.provider_message_id): r for r in effective}
    for start in range(0, len(effective), RECEIPT_CHUNK):
        chunk = effective[start : start + RECEIPT_CHUNK]
        receipts_cte = _receipts_cte(session, chunk)
        raised = (await session.execute(_raise_statement(receipts_cte))).all()
        await session.execute(_backfill_statement(receipts_cte))
        applied.applied += len(raised)
        applied.without_effect += len(chunk) - len(raised)
        for row in raised:
            applied.moved.append(row.id)
            receipt = by_key[(row.instance_id, row.provider_message_id)]
            applied.published += _receipt_events(receipt, row)
            _count_stages(applied.health.setdefault(receipt.instance_id, Outcomes()), receipt, row)
        if len(raised) < len(chunk):
            applied.orphans += await _keep_orphans(session, receipts_cte, by_key)
    return applied


def _count_stages(outcomes: Outcomes, receipt: Receipt, row: Any) -> None:
    """Each stage counts once per message, however the receipts were ordered or batched."""
    if receipt.status is DeliveryStatus.FAILED:
        if receipt.error is None or receipt.error.number_level:
            outcomes.failed += 1
        else:
            outcomes.failed_other += 1
        return
    if row.previous_status_rank < DELIVERED_RANK <= receipt.rank:
        outcomes.delivered += 1
    if row.previous_status_rank < READ_RANK <= receipt.rank:
        outcomes.read += 1


async def _adopt_provider_ids(session: AsyncSession, receipts: list[Receipt]) -> None:
    """Give our messages the provider id their receipts name, when the send's answer never came."""
    if not receipts:
        return
    m = messages_table.c
    taken = (
        select(messages_table.c.id)
        .where(m.instance_id == bindparam("b_instance"), m.provider_message_id == bindparam("b_provider_id"))
        .exists()
    )
    await session.execute(
        update(messages_table)
        .where(
            m.id == bindparam("b_id"),
            m.instance_id == bindparam("b_instance"),
            m.provider_message_id.is_(None),
            ~taken,
        )
        .values(provider_message_id=bindparam("b_provider_id"))
        .execution_options(synchronize_session=False),
        [
            {"b_id": r.callback_data, "b_instance": r.instance_id, "b_provider_id": r.provider_message_id}
            for r in receipts
        ],
    )


async def _keep_orphans(
    session: AsyncSession, receipts_cte: Any, by_key: dict[tuple[str, str], Receipt]
) -> int:
    m, r = messages_table.c, receipts_cte.c
    known = select(m.id).where(m.instance_id == r.instance_id, m.provider_message_id == r.provider_message_id)
    missing = (
        await session.execute(select(r.instance_id, r.provider_message_id).where(r.rank > 0, ~known.exists()))
    ).all()
    now = utcnow()
    rows = []
    for instance_id, provider_message_id in missing:
        receipt = by_key[(instance_id, provider_message_id)]
        for stage, at in receipt.stage_times.items():
            failed = stage == DeliveryStatus.FAILED.value and receipt.error is not None
            rows.append(
                {
                    "tenant_id": receipt.tenant_id,
                    "instance_id": instance_id,
                    "provider_message_id": provider_message_id,
                    "status": stage,
                    "occurred_at": at,
                    "error_code": receipt.error.code if failed and receipt.error else None,
                    "error_title": receipt.error.title if failed and receipt.error else None,
                    "created_at": now,
                }
            )
    if rows:
        insert, params = insert_rows(session, orphans_table, rows)
        await session.execute(insert, params)
    return len(missing)


async def apply_orphan_receipts(session: AsyncSession, keys: list[tuple[str, str]]) -> ReceiptsApplied:
    """Apply the receipts that arrived before these (instance, provider id) were stored; forget them."""
    if not keys:
        return ReceiptsApplied()
    o = orphans_table.c
    instance_ids = sorted({instance_id for instance_id, _ in keys})
    provider_ids = sorted({provider_id for _, provider_id in keys})
    rows = (
        await session.execute(
            select(orphans_table).where(
                one_of(session, o.instance_id, instance_ids),
                one_of(session, o.provider_message_id, provider_ids),
            )
        )
    ).all()
    wanted = set(keys)
    rows = [row for row in rows if (row.instance_id, row.provider_message_id) in wanted]
    if not rows:
        return ReceiptsApplied()
    receipts: dict[tuple[str, str], Receipt] = {}
    for row in rows:
        key = (row.instance_id, row.provider_message_id)
        receipt = receipts.setdefault(key, Receipt(row.tenant_id, row.instance_id, row.provider_message_id))
        error = StatusError(row.error_code, row.error_title or "") if row.error_code else None
        receipt.fold(
            StatusUpdate(row.provider_message_id, DeliveryStatus(row.status), row.occurred_at, error=error)
        )
    applied = await apply_receipts(session, list(receipts.values()))
    await session.execute(delete(orphans_table).where(one_of(session, o.id, [row.id for row in rows])))
    return applied


# SQLite caps a statement's variables (32766 by default): 400 receipts x 10 columns stays well under.
RECEIPT_CHUNK = 400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# First row of every receipts table: matches no message (rank 0 raises nothing, no instance has
# an empty id), but gives every column a type, so PostgreSQL never reads an all-NULL column as text.
_TYPE_ANCHOR = ("", "", 0, DeliveryStatus.QUEUED.value, _EPOCH, _EPOCH, _EPOCH, _EPOCH, "", "")


RECEIPT_COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("instance_id", String()),
    ("provider_message_id", String()),
    ("rank", Integer()),
    ("status", String()),
    ("sent_at", UTCDateTime()),
    ("delivered_at", UTCDateTime()),
    ("read_at", UTCDateTime()),
    ("failed_at", UTCDateTime()),
    ("error_code", String()),
    ("error_title", String()),
]


def _receipts_cte(session: AsyncSession, receipts: list[Receipt]) -> Any:
    """The receipts as a table: one row per message with its folded status and stage times."""
    rows: list[tuple[Any, ...]] = [_TYPE_ANCHOR]
    for receipt in receipts:
        times = _implied_stage_times(receipt)
        error = receipt.error
        rows.append(
            (
                receipt.instance_id,
                receipt.provider_message_id,
                receipt.rank,
                receipt.status.value,
                times.get(DeliveryStatus.SENT.value),
                times.get(DeliveryStatus.DELIVERED.value),
                times.get(DeliveryStatus.READ.value),
                times.get(DeliveryStatus.FAILED.value),
                error.code if error and receipt.status is DeliveryStatus.FAILED else None,
                error.title if error and receipt.status is DeliveryStatus.FAILED else None,
            )
        )
    return rows_table(session, "receipts", RECEIPT_COLUMNS, rows)


def _earliest(current: Any, new: Any) -> Any:
    """The earlier of a stored stage time and a receipt's (a time never moves later)."""
    return case((and_(new.is_not(None), or_(current.is_(None), current > new)), new), else_=current)


def _raise_statement(receipts: Any) -> Any:
    """One conditional UPDATE: only rows whose rank the receipt raises change (never downgrade)."""
    m, r = messages_table.c, receipts.c
    proven = r.rank >= DELIVERED_RANK  # delivery proven: an earlier failure report was wrong
    return (
        update(messages_table)
        .where(
            m.instance_id == r.instance_id,
            m.provider_message_id == r.provider_message_id,
            m.status_rank < r.rank,
        )
        .values(
            status=r.status,
            status_rank=r.rank,
            # SET expressions see the old row: this records the rank we raised from.
            previous_status_rank=m.status_rank,
            sent_at=_earliest(m.sent_at, r.sent_at),
            delivered_at=_earliest(m.delivered_at, r.delivered_at),
            read_at=_earliest(m.read_at, r.read_at),
            failed_at=case((proven, null()), else_=_earliest(m.failed_at, r.failed_at)),
            error_code=case((proven, null()), else_=func.coalesce(r.error_code, m.error_code)),
            error_title=case((proven, null()), else_=func.coalesce(r.error_title, m.error_title)),
            # A receipt settles a send whose outcome the sender could not know.
            send_state=case(
                (m.send_state.in_(UNSETTLED_SEND_STATES), SendState.DONE.value), else_=m.send_state
            ),
            updated_at=utcnow(),
        )
        # SQLite's RETURNING may only name the updated table's columns.
        .returning(
            m.id,
            m.instance_id,
            m.provider_message_id,
            m.conversation_id,
            m.status,
            m.previous_status_rank,
            m.error_code,
            m.error_title,
        )
    )


def _backfill_statement(receipts: Any) -> Any:
    """Move stage times earlier when a late receipt proves an earlier time (order-independence)."""
    m, r = messages_table.c, receipts.c
    stages = (
        (m.sent_at, r.sent_at, STATUS_RANK[DeliveryStatus.SENT]),
        (m.delivered_at, r.delivered_at, STATUS_RANK[DeliveryStatus.DELIVERED]),
        (m.read_at, r.read_at, STATUS_RANK[DeliveryStatus.READ]),
    )
    conditions = {
        current.name: and_(new.is_not(None), m.status_rank >= rank, or_(current.is_(None), current > new))
        for current, new, rank in stages
    }
    return (
        update(messages_table)
        .where(
            m.instance_id == r.instance_id,
            m.provider_message_id == r.provider_message_id,
            or_(*conditions.values()),
        )
        .values(
            {current.name: case((conditions[current.name], new), else_=current) for current, new, _ in stages}
        )
    )


def _implied_stage_times(receipt: Receipt) -> dict[str, datetime]:
    """A read message was delivered and a delivered one was sent: fill earlier stages in."""
    times = dict(receipt.stage_times)
    order = [DeliveryStatus.READ.value, DeliveryStatus.DELIVERED.value, DeliveryStatus.SENT.value]
    earliest: datetime | None = None
    for stage in order:
        if stage in times:
            earliest = min(times[stage], earliest) if earliest else times[stage]
        elif earliest is not None:
            times[stage] = earliest
    return times


CONFIRMED_STAGES = (DeliveryStatus.DELIVERED, DeliveryStatus.READ)


def _receipt_events(receipt: Receipt, row: Any) -> list[PublishedEvent]:
    """One event per stage the message newly reached, however the receipts were batched."""
    payload = {
        "message_id": row.id,
        "provider_message_id": receipt.provider_message_id,
        "instance_id": receipt.instance_id,
        "conversation_id": row.conversation_id,
    }
    if receipt.status is DeliveryStatus.FAILED:
        error = {"code": row.error_code, "title": row.error_title}
        return [
            PublishedEvent(
                "whatsapp_delivery_failed", receipt.tenant_id, {**payload, "status": "failed", "error": error}
            )
        ]
    return [
        PublishedEvent("whatsapp_delivery_confirmed", receipt.tenant_id, {**payload, "status": stage.value})
        for stage in CONFIRMED_STAGES
        if row.previous_status_rank < STATUS_RANK[stage] <= receipt.rank
    ]
