"""What the workers keep for the alert rules, cheaply: the sender adds each batch's provider calls
to its numbers' minute (one statement per batch), the inbound worker marks the minute of a
number's last webhook (one statement per number and minute at most)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.alerts.models import SendMinute, WebhookMark
from messaging_whatsapp.db import insert_rows
from messaging_whatsapp.sending.delivery import SendOutcome
from messaging_whatsapp.sending.outcomes import OPTED_OUT


@dataclass
class MinuteCalls:
    """A number's provider calls of one batch."""

    tenant_id: str
    sent: int = 0
    failed: int = 0
    latency_ms_total: int = 0
    latency_calls: int = 0


def minute_of(moment: datetime) -> datetime:
    """The minute a moment falls in."""
    return moment.replace(second=0, microsecond=0)


def calls_of(outcomes: Iterable[SendOutcome]) -> dict[str, MinuteCalls]:
    """Each number's provider calls among the outcomes: a message that went is a call that worked;
    one that failed, waits for a retry or lost its answer is one that did not. A deferral (a rate
    limit, an open breaker) or an opt-out made no call."""
    calls: dict[str, MinuteCalls] = {}
    for outcome in outcomes:
        if outcome.deferred or outcome.error is OPTED_OUT:
            continue
        instance = outcome.claim.instance
        counts = calls.setdefault(instance.id, MinuteCalls(instance.tenant_id))
        if outcome.result is not None:
            counts.sent += 1
        else:
            counts.failed += 1
        if outcome.trace is not None and outcome.trace.duration_ms is not None:
            counts.latency_ms_total += outcome.trace.duration_ms
            counts.latency_calls += 1
    return calls


async def record_calls(session: AsyncSession, calls: Mapping[str, MinuteCalls], now: datetime) -> None:
    """Add the batch's calls to each number's current minute (in the sender's transaction; rows
    in instance order, as the health update takes them, so two senders never deadlock)."""
    if not calls:
        return
    minute = minute_of(now)
    rows = [
        {
            "instance_id": instance_id,
            "minute": minute,
            "tenant_id": counts.tenant_id,
            "sent": counts.sent,
            "failed": counts.failed,
            "latency_ms_total": counts.latency_ms_total,
            "latency_calls": counts.latency_calls,
        }
        for instance_id, counts in sorted(calls.items())
    ]
    table = SendMinute.__table__
    insert, params = insert_rows(session, table, rows)  # type: ignore[arg-type]
    added = {name: table.c[name] + insert.excluded[name] for name in _COUNTS}
    statement = insert.on_conflict_do_update(index_elements=["instance_id", "minute"], set_=added)
    await session.execute(statement, params)


_COUNTS = ("sent", "failed", "latency_ms_total", "latency_calls")


async def mark_webhooks(session: AsyncSession, received: Mapping[str, datetime]) -> None:
    """Store the minute of each number's latest webhook, unless a later one is stored (in the
    worker's transaction); `received` holds only numbers whose minute moved."""
    if not received:
        return
    rows = [
        {"instance_id": instance_id, "received_at": minute_of(at)}
        for instance_id, at in sorted(received.items())
    ]
    table = WebhookMark.__table__
    insert, params = insert_rows(session, table, rows)  # type: ignore[arg-type]
    statement = insert.on_conflict_do_update(
        index_elements=["instance_id"],
        set_={"received_at": insert.excluded.received_at},
        where=table.c.received_at < insert.excluded.received_at,
    )
    await session.execute(statement, params)
