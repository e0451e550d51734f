"""The batch applier, directly: the same receipts in any order, repetition or batching give the
same message state and the same published events, on both databases."""

from __future__ import annotations

import itertools
import json
import uuid

import pytest
from sqlalchemy import select

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Message
from messaging_whatsapp.outbox.models import OutboxEvent
from messaging_whatsapp.providers.events import DeliveryStatus, StatusError, StatusUpdate
from messaging_whatsapp.worker.ingest import apply_entries
from tests.helpers import BoundNumbers, bind_example_numbers, create_outbound_message, create_tenant, ts

SENT, DELIVERED, READ = (
    (DeliveryStatus.SENT, 100),
    (DeliveryStatus.DELIVERED, 200),
    (DeliveryStatus.READ, 300),
)


async def _apply(
    context: EngineContext, numbers: BoundNumbers, batches: list[list[tuple[str, DeliveryStatus, int]]]
) -> None:
    for batch in batches:
        entries = [
            IngestEntry(
                f"{uuid.uuid4()}",
                numbers.tenant_id,
                numbers.meta.id,
                utcnow(),
                [StatusUpdate(pid, status, ts(at))],
            )
            for i, (pid, status, at) in enumerate(batch)
        ]
        async with context.sessions() as session, session.begin():
            await apply_entries(session, entries, "events")


async def _state(context: EngineContext, pid: str) -> tuple[object, ...]:
    async with context.sessions() as session:
        message = await session.scalar(select(Message).where(Message.provider_message_id == pid))
        rows = (await session.scalars(select(OutboxEvent.payload).order_by(OutboxEvent.id))).all()
    assert message is not None
    payloads = [json.loads(entry["payload"]) for row in rows for entry in json.loads(row)]
    statuses = sorted(payload["status"] for payload in payloads if payload["provider_message_id"] == pid)
    return (
        message.status,
        message.sent_at,
        message.delivered_at,
        message.read_at,
        message.error_code,
        statuses,
    )


@pytest.mark.parametrize("order", list(itertools.permutations([SENT, DELIVERED, READ])))
async def test_any_order_and_batching_gives_the_in_order_state(
    context: EngineContext, order: tuple[tuple[DeliveryStatus, int], ...]
) -> None:
    numbers = await bind_example_numbers(context, await create_tenant(context))
    await create_outbound_message(context, numbers.meta, "+5511987654321", "W-REF", status="queued")
    await create_outbound_message(context, numbers.meta, "+5511987654321", "W-ONE", status="queued")
    await create_outbound_message(context, numbers.meta, "+5511987654321", "W-SPLIT", status="queued")
    await _apply(context, numbers, [[("W-REF", s, t)] for s, t in (SENT, DELIVERED, READ)])
    await _apply(context, numbers, [[("W-ONE", s, t) for s, t in order * 2]])
    await _apply(context, numbers, [[("W-SPLIT", s, t)] for s, t in order] + [[("W-SPLIT", *order[0])]])

    reference = await _state(context, "W-REF")
    assert reference == ("read", ts(100), ts(200), ts(300), None, ["delivered", "read"])
    assert await _state(context, "W-ONE") == reference
    assert await _state(context, "W-SPLIT") == reference


async def test_failure_is_terminal_unless_delivery_is_proven(context: EngineContext) -> None:
    numbers = await bind_example_numbers(context, await create_tenant(context))
    await create_outbound_message(context, numbers.meta, "+5511987654321", "W-FAIL")
    failed = StatusUpdate(
        "W-FAIL", DeliveryStatus.FAILED, ts(150), error=StatusError("131026", "undeliverable")
    )
    async with context.sessions() as session, session.begin():
        await apply_entries(
            session, [IngestEntry("f1", numbers.tenant_id, numbers.meta.id, utcnow(), [failed])], "events"
        )
    status, *_rest, error, _events = await _state(context, "W-FAIL")
    assert (status, error) == ("failed", "131026")
    await _apply(context, numbers, [[("W-FAIL", DeliveryStatus.SENT, 100)]])
    assert (await _state(context, "W-FAIL"))[0] == "failed"
    await _apply(context, numbers, [[("W-FAIL", DeliveryStatus.DELIVERED, 200)]])
    status, _sent, delivered, _read, error, _events = await _state(context, "W-FAIL")
    assert (status, delivered, error) == ("delivered", ts(200), None)
