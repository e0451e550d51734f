"""Apply benchmark: 100,000 mixed events (inbound messages and receipts) already in the inbound
stream, one worker, PostgreSQL. The baseline applies the same kind of events the seed's way:
fetch the row, change it, save it, one event per transaction."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from tests.helpers import META_APP_SECRET, example

from bench.common import REDIS_URL, scratch_database
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext, settle_garbage_collector
from messaging_whatsapp.db import insert_for, new_id, utcnow
from messaging_whatsapp.inbox.models import Contact, Conversation, Message, Ticket
from messaging_whatsapp.instances import service as instances_service
from messaging_whatsapp.instances.schemas import InstanceBind
from messaging_whatsapp.providers.events import STATUS_RANK, InboundMessage, StatusUpdate
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.worker.inbound import INBOUND_GROUP, prepare, run_inbound_workers

CONTACTS = 10_000


@dataclass
class ApplyResult:
    """Events applied per second by one worker."""

    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Throughput."""
        return self.events / self.seconds


def _meta_entry(instance_id: str, tenant_id: str, body: dict[str, Any]) -> dict[str, str]:
    return {
        "provider": "meta",
        "instance_id": instance_id,
        "tenant_id": tenant_id,
        "content_type": "application/json",
        "body": json.dumps(body, separators=(",", ":")),
        "url": "http://127.0.0.1/webhook",
        "received_at": utcnow().isoformat(),
    }


def _inbound(index: int) -> dict[str, Any]:
    payload = example("meta_text.json")
    value = payload["entry"][0]["changes"][0]["value"]
    phone = f"55119{index % CONTACTS:08d}"
    value["contacts"][0]["wa_id"] = phone
    value["messages"][0].update(
        {"from": phone, "id": f"wamid.IN-{index}", "timestamp": str(1763035200 + index)}
    )
    return payload


def _receipt(index: int, status: str) -> dict[str, Any]:
    payload = example("meta_status_read.json")
    entry = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    entry.update(id=f"wamid.OUT-{index}", status=status, timestamp=str(1763035300 + index))
    return payload


async def _setup(settings: Settings) -> tuple[EngineContext, str, str]:
    context = await EngineContext.open(settings)
    async with context.sessions() as session, session.begin():
        tenant = await tenancy_service.create_tenant(session, f"Bench {uuid.uuid4().hex[:4]}")
        instance, _ = await instances_service.bind_instance(
            session,
            context.cipher,
            settings,
            tenant.id,
            InstanceBind(
                provider="meta",
                display_number="+551140028922",
                phone_number_id=f"pn-{uuid.uuid4().hex[:8]}",
                access_token="x",
                app_secret=META_APP_SECRET,
            ),
        )
    return context, tenant.id, instance.id


async def _create_outbound(context: EngineContext, tenant_id: str, instance_id: str, count: int) -> None:
    """`count` sent messages (one per contact) for the receipts to move."""
    now = utcnow()
    async with context.sessions() as session, session.begin():
        for start in range(0, count, 1000):
            chunk = range(start, min(start + 1000, count))
            contacts = [
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "phone": f"+55219{i:08d}",
                    "created_at": now,
                    "updated_at": now,
                    "opted_out": False,
                    "messages_received": 0,
                }
                for i in chunk
            ]
            await session.execute(insert_for(session, Contact.__table__).values(contacts))
            conversations = [
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "contact_id": c["id"],
                    "instance_id": instance_id,
                    "status": "open",
                    "unread_count": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for c in contacts
            ]
            await session.execute(insert_for(session, Conversation.__table__).values(conversations))
            # A live system's conversations have had attendance sessions before (closed tickets),
            # so the planner sees a populated tickets table, as it would in production.
            tickets = [
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "conversation_id": conv["id"],
                    "status": "closed",
                    "opened_at": now,
                    "closed_at": now,
                    "close_reason": "resolved",
                    "created_at": now,
                    "updated_at": now,
                }
                for conv in conversations
            ]
            await session.execute(insert_for(session, Ticket.__table__).values(tickets))
            messages = [
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "instance_id": instance_id,
                    "conversation_id": conv["id"],
                    "contact_id": conv["contact_id"],
                    "direction": "outbound",
                    "sender_type": "campaign",
                    "type": "text",
                    "content": "Oferta",
                    "status": "sent",
                    "status_rank": 1,
                    "sent_at": now,
                    "provider_message_id": f"wamid.OUT-{i}",
                    "created_at": now,
                    "updated_at": now,
                }
                for i, conv in zip(chunk, conversations, strict=True)
            ]
            await session.execute(insert_for(session, Message.__table__).values(messages))


def _mixed_entries(tenant_id: str, instance_id: str, total: int) -> list[dict[str, str]]:
    """Half inbound messages, half receipts (delivered then read for each outbound message)."""
    entries = []
    for index in range(total // 2):
        entries.append(_meta_entry(instance_id, tenant_id, _inbound(index)))
        status = "delivered" if index % 2 == 0 else "read"
        entries.append(_meta_entry(instance_id, tenant_id, _receipt(index // 2, status)))
    return entries


async def _fill(context: EngineContext, stream: str, entries: list[dict[str, str]]) -> None:
    for start in range(0, len(entries), 2000):
        await context.streams.append_many(stream, entries[start : start + 2000])


async def run_engine(total: int) -> ApplyResult:
    """The engine's worker draining `total` events."""
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            redis_url=REDIS_URL,  # type: ignore[call-arg]
            stream_prefix=f"bench:{uuid.uuid4().hex[:8]}:",
            data_dir=Path(tmp),
        )
        context, tenant_id, instance_id = await _setup(settings)
        try:
            await _create_outbound(context, tenant_id, instance_id, total // 4)
            await _analyze(context)
            await context.streams.ensure_group(context.names.inbound, INBOUND_GROUP)
            await _fill(context, context.names.inbound, _mixed_entries(tenant_id, instance_id, total))
            settle_garbage_collector()  # as the `worker` command does
            started = time.perf_counter()
            await _drain(context)
            elapsed = time.perf_counter() - started
            applied = total
            await _check(context, tenant_id, total)
            await _drop_keys(context)
            return ApplyResult(applied, elapsed)
        finally:
            await context.close()


async def _drain(context: EngineContext) -> None:
    """Run the worker as the `worker` command does until the stream has nothing left for it."""
    stop = asyncio.Event()
    workers = asyncio.create_task(run_inbound_workers(context, stop))
    while True:
        await asyncio.sleep(0.02)
        info = await context.streams.info(context.names.inbound)
        group = next(g for g in info.groups if g.name == INBOUND_GROUP)
        if group.pending == 0 and group.lag == 0:
            break
    stop.set()
    await workers


async def _analyze(context: EngineContext) -> None:
    """Give the planner statistics, as a production database has (autovacuum lags a fresh one)."""
    async with context.engine.connect() as connection:
        await connection.execute(text("ANALYZE"))
        await connection.commit()


async def _check(context: EngineContext, tenant_id: str, total: int) -> None:
    async with context.sessions() as session:
        inbound = await session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.tenant_id == tenant_id, Message.direction == "inbound")
        )
        read = await session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.tenant_id == tenant_id, Message.status == "read")
        )
    assert inbound == total // 2, inbound
    assert read == total // 4, read


async def _drop_keys(context: EngineContext) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{context.settings.stream_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def run_seed_way(total: int) -> ApplyResult:
    """The baseline: read each entry, fetch rows, change them, save, commit, one event at a time."""
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            redis_url=REDIS_URL,  # type: ignore[call-arg]
            stream_prefix=f"bench:{uuid.uuid4().hex[:8]}:",
            data_dir=Path(tmp),
        )
        context, tenant_id, instance_id = await _setup(settings)
        try:
            await _create_outbound(context, tenant_id, instance_id, total // 4)
            stream = context.names.inbound
            await context.streams.ensure_group(stream, INBOUND_GROUP)
            await _fill(context, stream, _mixed_entries(tenant_id, instance_id, total))
            started = time.perf_counter()
            applied = 0
            while entries := await context.streams.read(stream, INBOUND_GROUP, "seed", 100, 0):
                for entry in entries:
                    for event in prepare(entry).ingest.events:
                        await _seed_apply(context, tenant_id, instance_id, event)
                        applied += 1
                    await context.streams.ack(stream, INBOUND_GROUP, [entry.id])
            elapsed = time.perf_counter() - started
            await _drop_keys(context)
            return ApplyResult(applied, elapsed)
        finally:
            await context.close()


async def _seed_apply(context: EngineContext, tenant_id: str, instance_id: str, event: Any) -> None:
    async with context.sessions() as session, session.begin():
        if isinstance(event, InboundMessage):
            await _seed_inbound(session, tenant_id, instance_id, event)
        elif isinstance(event, StatusUpdate):
            message = await session.scalar(
                select(Message).where(
                    Message.instance_id == instance_id,
                    Message.provider_message_id == event.provider_message_id,
                )
            )
            if message is not None and message.status_rank < STATUS_RANK[event.status]:
                message.status, message.status_rank = event.status.value, STATUS_RANK[event.status]
                if event.status.value == "delivered" and message.delivered_at is None:
                    message.delivered_at = event.timestamp
                if event.status.value == "read" and message.read_at is None:
                    message.read_at = event.timestamp


async def _seed_inbound(session: Any, tenant_id: str, instance_id: str, event: InboundMessage) -> None:
    phone = "+" + event.phone
    contact = await session.scalar(
        select(Contact).where(Contact.tenant_id == tenant_id, Contact.phone == phone)
    )
    if contact is None:
        contact = Contact(tenant_id=tenant_id, phone=phone, name=event.contact_name)
        session.add(contact)
        await session.flush()
    conversation = await session.scalar(
        select(Conversation).where(
            Conversation.contact_id == contact.id, Conversation.instance_id == instance_id
        )
    )
    if conversation is None:
        conversation = Conversation(tenant_id=tenant_id, contact_id=contact.id, instance_id=instance_id)
        session.add(conversation)
        await session.flush()
    existing = await session.scalar(
        select(Message).where(
            Message.instance_id == instance_id, Message.provider_message_id == event.provider_message_id
        )
    )
    if existing is not None:
        return
    ticket = await session.scalar(
        select(Ticket).where(Ticket.conversation_id == conversation.id, Ticket.status == "open")
    )
    if ticket is None:
        ticket = Ticket(tenant_id=tenant_id, conversation_id=conversation.id, opened_at=event.timestamp)
        session.add(ticket)
        await session.flush()
    session.add(
        Message(
            tenant_id=tenant_id,
            instance_id=instance_id,
            conversation_id=conversation.id,
            contact_id=contact.id,
            ticket_id=ticket.id,
            direction="inbound",
            sender_type="lead",
            type=event.type.value,
            content=event.text,
            provider_message_id=event.provider_message_id,
            status="received",
            status_rank=0,
        )
    )
    conversation.unread_count += 1
    conversation.last_message_at = event.timestamp
    contact.messages_received += 1
    contact.last_interaction_at = event.timestamp
