"""Events in on both deployments (SQLite with the stream table; PostgreSQL with Redis Streams): the
events:materials consumer turns each event into a template notification through the tenant's
mapping, once however often the event is delivered, and says what became of every other one.
The notification goes through the sender to a Meta fake over real HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from messaging_whatsapp.consent.models import OptOut
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Message, SenderType, SendState
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.notifications import service
from messaging_whatsapp.notifications.models import EventType, InboundEvent
from messaging_whatsapp.notifications.schemas import MappingChange
from messaging_whatsapp.worker.notifications import EVENTS_KEPT, NOTIFICATIONS_GROUP, NotificationsWorker
from messaging_whatsapp.worker.sender import Sender
from tests.fakes.http import FakeHttpServer
from tests.fakes.meta import MetaGraphFake
from tests.helpers import (
    META_PHONE_NUMBER_ID,
    approved_template,
    bind,
    create_tenant,
    deployment_context,
    published_events,
)

TOKEN = "EAAG-test"
CUSTOMER = "+5511988887777"


@pytest.fixture
def meta() -> MetaGraphFake:
    return MetaGraphFake(token=TOKEN, phone_number_id=META_PHONE_NUMBER_ID)


@pytest.fixture
def provider(meta: MetaGraphFake) -> AsyncIterator[FakeHttpServer]:
    with FakeHttpServer(meta, hold_seconds=2) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(params=["embedded", "scaled"])
async def context(
    request: pytest.FixtureRequest, tmp_path: Path, stream_prefix: str, provider: FakeHttpServer
) -> AsyncIterator[EngineContext]:
    updates = {"meta_graph_url": f"{provider.base_url}/v23.0", "rate_limits_enabled": False}
    async with deployment_context(request, tmp_path, stream_prefix, **updates) as engine_context:
        yield engine_context


async def _meta_tenant(context: EngineContext, name: str = "Loja") -> tuple[str, str]:
    tenant_id = await create_tenant(context, name)
    instance, _ = await bind(
        context,
        tenant_id,
        provider="meta",
        display_number="+551140028922",
        phone_number_id=META_PHONE_NUMBER_ID,
        access_token=TOKEN,
        app_secret="x" * 32,
    )
    return tenant_id, instance.id


async def _map(context: EngineContext, tenant_id: str, event_type: EventType, *keys: str) -> None:
    """Map the event type to its template, approved on each of the tenant's Meta numbers with one
    body parameter per payload key (the sending check refuses a template it does not know)."""
    template = f"{event_type.value}_template"
    change = MappingChange(template=template, language="pt_BR", parameters=list(keys))
    async with context.sessions() as session, session.begin():
        await service.put_mapping(session, tenant_id, event_type, change)
        numbers = await session.scalars(
            select(WhatsAppInstance).where(
                WhatsAppInstance.tenant_id == tenant_id, WhatsAppInstance.provider == "meta"
            )
        )
        instances = list(numbers)
    for instance in instances:
        await approved_template(context, tenant_id, instance, template, len(keys))


def _entry(tenant_id: str, event_id: str, event_type: str, **payload: Any) -> dict[str, str]:
    """An events:materials entry as an external producer writes it (no occurred_at: optional)."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "tenant_id": tenant_id,
        "payload": orjson.dumps(payload).decode(),
    }


async def _consume(context: EngineContext) -> NotificationsWorker:
    worker = NotificationsWorker(context, consumer="test-notifications")
    while (await worker.run_once(block_ms=50)).read:
        pass
    return worker


async def _recorded(context: EngineContext, tenant_id: str) -> dict[str, InboundEvent]:
    async with context.sessions() as session:
        rows = await session.scalars(select(InboundEvent).where(InboundEvent.tenant_id == tenant_id))
        return {row.event_id: row for row in rows}


async def _dead_letters(context: EngineContext) -> dict[str, str]:
    """event id -> error of the DLQ entries that came from events:materials."""
    entries = await context.streams.entries_before(context.names.dlq, utcnow() + timedelta(minutes=1))
    found = {}
    for entry in entries:
        if entry.fields["stream"] == context.names.materials:
            original = orjson.loads(entry.fields["fields"])
            found[original.get("event_id", "")] = entry.fields["error"]
    return found


def _counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("whatsapp_events_in_total", {"outcome": outcome}) or 0.0


async def _send_all(context: EngineContext, tenant_id: str) -> list[Message]:
    sender = Sender(context)
    await sender.ensure_group()
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            await sender.run_once(block_ms=50)
            async with context.sessions() as session:
                rows = list(
                    (await session.scalars(select(Message).where(Message.tenant_id == tenant_id))).all()
                )
            if rows and all(row.send_state == SendState.DONE.value for row in rows):
                return rows
    finally:
        await sender.close()
    raise AssertionError("the notification was not sent")


async def test_an_event_delivered_three_times_notifies_once_through_the_provider(
    context: EngineContext, meta: MetaGraphFake
) -> None:
    tenant_id, _ = await _meta_tenant(context)
    await _map(context, tenant_id, EventType.QUOTE_CREATED, "customer_name", "quote_id")
    entry = _entry(
        tenant_id,
        "quote-123",
        "quote_created",
        quote_id="Q-123",
        customer_phone=CUSTOMER,
        notify_whatsapp=True,
        customer_name="João Silva",
    )
    for _ in range(3):
        await context.streams.append(context.names.materials, entry)
    await _consume(context)

    [message] = await _send_all(context, tenant_id)
    assert (message.type, message.sender_type, message.status) == (
        "template",
        SenderType.SYSTEM.value,
        "sent",
    )
    [(_, body)] = meta.sent
    assert body["to"] == CUSTOMER.removeprefix("+")
    assert body["template"]["name"] == "quote_created_template"
    assert body["template"]["language"] == {"code": "pt_BR"}
    [component] = body["template"]["components"]
    assert [p["text"] for p in component["parameters"]] == ["João Silva", "Q-123"]

    recorded = await _recorded(context, tenant_id)
    assert (recorded["quote-123"].outcome, recorded["quote-123"].message_id) == ("notified", message.id)
    [sent] = await published_events(context, "whatsapp_notification_sent")
    assert orjson.loads(sent["payload"]) == {
        "event_id": "quote-123",
        "event_type": "quote_created",
        "customer_phone": CUSTOMER,
        "message_id": message.id,
    }
    info = await context.streams.info(context.names.materials)
    assert [group.pending for group in info.groups if group.name == NOTIFICATIONS_GROUP] == [0]


async def test_every_other_event_says_what_became_of_it(context: EngineContext) -> None:
    tenant_id, _ = await _meta_tenant(context)
    lonely = await create_tenant(context, "Sem número")
    await _map(context, tenant_id, EventType.ORDER_STATUS_CHANGED, "order_status")
    await _map(context, tenant_id, EventType.DELIVERY_STARTED)
    await _map(context, lonely, EventType.DELIVERY_STARTED)
    async with context.sessions() as session, session.begin():
        session.add(OptOut(tenant_id=tenant_id, phone="+5511977776666", keyword="SAIR", created_at=utcnow()))
    ignored_before = _counted("ignored")
    events = [
        _entry(tenant_id, "e-false", "order_status_changed", customer_phone=CUSTOMER, notify_whatsapp=False),
        _entry(tenant_id, "e-unknown", "invoice_paid", customer_phone=CUSTOMER),
        _entry(tenant_id, "e-nomap", "delivery_completed", customer_phone=CUSTOMER),
        _entry(tenant_id, "e-nophone", "order_status_changed", order_status="enviado"),
        _entry(tenant_id, "e-badphone", "order_status_changed", customer_phone="12", order_status="x"),
        _entry(tenant_id, "e-noparam", "order_status_changed", customer_phone=CUSTOMER),
        _entry(tenant_id, "e-optout", "delivery_started", customer_phone="+5511977776666"),
        _entry(lonely, "e-nonumber", "delivery_started", customer_phone=CUSTOMER),
        _entry("no-such-tenant", "e-notenant", "delivery_started", customer_phone=CUSTOMER),
        {"event_id": "e-notjson", "event_type": "quote_created", "tenant_id": tenant_id, "payload": "{oops"},
    ]
    await context.streams.append_many(context.names.materials, events)
    await _consume(context)

    recorded = await _recorded(context, tenant_id)
    outcomes = {
        event_id: (row.outcome, (row.reason or "").split(":")[0]) for event_id, row in recorded.items()
    }
    assert outcomes == {
        "e-false": ("skipped", "not_requested"),
        "e-unknown": ("ignored", "unknown_event_type"),
        "e-nomap": ("skipped", "no_mapping"),
        "e-nophone": ("unusable", "missing_customer_phone"),
        "e-badphone": ("unusable", "invalid_customer_phone"),
        "e-noparam": ("unusable", "missing_parameter"),
        "e-optout": ("skipped", "opted_out"),
    }
    [failed] = (await _recorded(context, lonely)).values()
    assert (failed.outcome, failed.reason.split(":")[0] if failed.reason else None) == (
        "failed",
        "instance_unavailable",
    )
    assert _counted("ignored") == ignored_before + 1

    dead = await _dead_letters(context)
    assert set(dead) == {"e-nophone", "e-badphone", "e-noparam", "e-notenant", "e-notjson"}
    assert "missing_customer_phone" in dead["e-nophone"]
    assert "order_status" in dead["e-noparam"]
    assert "tenant no-such-tenant not found" in dead["e-notenant"]
    assert "payload is not JSON" in dead["e-notjson"]

    skipped = {
        orjson.loads(e["payload"])["event_id"]: orjson.loads(e["payload"])
        for e in await published_events(context, "whatsapp_notification_skipped")
    }
    assert skipped["e-optout"] == {
        "event_id": "e-optout",
        "event_type": "delivery_started",
        "customer_phone": "+5511977776666",
        "reason": "opted_out",
    }
    assert skipped["e-nonumber"]["reason"] == "instance_unavailable"
    assert "e-false" not in skipped
    async with context.sessions() as session:
        assert (await session.scalars(select(Message))).all() == []
    info = await context.streams.info(context.names.materials)
    assert [group.pending for group in info.groups if group.name == NOTIFICATIONS_GROUP] == [0]


async def test_an_unusable_event_replayed_after_its_mapping_is_fixed_notifies(context: EngineContext) -> None:
    tenant_id, _ = await _meta_tenant(context)
    await _map(context, tenant_id, EventType.DELIVERY_COMPLETED, "tracking_code")
    entry = _entry(tenant_id, "d-1", "delivery_completed", customer_phone=CUSTOMER, customer_name="Ana")
    await context.streams.append(context.names.materials, entry)
    await _consume(context)
    assert (await _recorded(context, tenant_id))["d-1"].outcome == "unusable"

    await _map(context, tenant_id, EventType.DELIVERY_COMPLETED, "customer_name")
    assert await context.streams.replay_dlq() == 1
    await _consume(context)
    assert (await _recorded(context, tenant_id))["d-1"].outcome == "notified"
    # Once notified, a further delivery does nothing.
    await context.streams.append(context.names.materials, entry)
    await _consume(context)
    async with context.sessions() as session:
        assert len((await session.scalars(select(Message))).all()) == 1


async def test_events_consumed_long_ago_are_forgotten(context: EngineContext) -> None:
    tenant_id, _ = await _meta_tenant(context)
    entries = [_entry(tenant_id, f"old-{n}", "quote_created", customer_phone=CUSTOMER) for n in range(2)]
    await context.streams.append_many(context.names.materials, entries)
    await _consume(context)
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(InboundEvent)
            .where(InboundEvent.event_id == "old-0")
            .values(received_at=utcnow() - EVENTS_KEPT - timedelta(minutes=1))
        )
        assert await service.forget_old_events(session, utcnow() - EVENTS_KEPT) == 1
    assert set(await _recorded(context, tenant_id)) == {"old-1"}
