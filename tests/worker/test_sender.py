"""The sender against a provider that misbehaves, over real HTTP, on both deployments.

Whatever the provider does (429 with Retry-After, 500, 503, timeouts, resets, an answer lost after
it accepted), every message ends `sent` or `failed` with a reason, and the provider accepted each
message at most once.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.consent.models import OptOut
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import Conflict, EngineError
from messaging_whatsapp.inbox.models import Message, SenderType, SendState
from messaging_whatsapp.instances import service as instances_service
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.providers.events import DeliveryStatus, InboundMessage, MessageType, StatusUpdate
from messaging_whatsapp.providers.http import provider_client
from messaging_whatsapp.sending import service as sending_service
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.worker.ingest import apply_entries
from messaging_whatsapp.worker.sender import Sender
from tests.fakes.http import FakeHttpServer, Fault, Reply
from tests.fakes.meta import MetaGraphFake, graph_error
from tests.helpers import (
    META_PHONE_NUMBER_ID,
    approved_template,
    bind,
    create_tenant,
    deployment_context,
    published_events,
)

TOKEN = "EAAG-test"


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
    updates = {
        "meta_graph_url": f"{provider.base_url}/v23.0",
        "send_backoff_base_seconds": 0.05,
        "send_backoff_max_seconds": 0.2,
        "send_outcome_grace_seconds": 1.0,
        "rate_limits_enabled": False,
    }
    async with deployment_context(request, tmp_path, stream_prefix, **updates) as engine_context:
        yield engine_context


async def _queue(context: EngineContext, instance_id: str, tenant_id: str, count: int) -> list[str]:
    ids = []
    await approved_template(context, tenant_id, instance_id, "pedido", 1)
    async with context.sessions() as session, session.begin():
        for index in range(count):
            request = SendMessageRequest(
                to=f"+5511987{index:06d}",
                instance_id=instance_id,
                template={"name": "pedido", "parameters": [str(index)]},
            )
            queued = await sending_service.queue_message(
                session, tenant_id, request, idempotency_key=None, sender_type=SenderType.SYSTEM, now=utcnow()
            )
            ids.append(queued.message.id)
    await offer_messages(context, [(message_id, tenant_id) for message_id in ids])
    return ids


async def _messages(context: EngineContext, ids: list[str]) -> list[Message]:
    async with context.sessions() as session:
        return list((await session.scalars(select(Message).where(Message.id.in_(ids)))).all())


async def _drain(
    sender: Sender, context: EngineContext, ids: list[str], timeout: float = 20.0
) -> list[Message]:
    """Run the sender until every message is settled."""
    await sender.ensure_group()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await sender.run_once(block_ms=50)
        await sender.sweep()
        rows = await _messages(context, ids)
        if all(row.send_state == SendState.DONE.value for row in rows):
            return rows
    raise AssertionError(f"not settled: {Counter(r.send_state for r in await _messages(context, ids))}")


async def _meta_instance(context: EngineContext) -> tuple[str, str]:
    tenant_id = await create_tenant(context)
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


def _accepted_per_message(provider: FakeHttpServer) -> Counter[str]:
    return Counter(request.json()["biz_opaque_callback_data"] for request in provider.accepted)


async def test_every_message_ends_sent_or_failed_and_is_accepted_at_most_once(
    context: EngineContext, provider: FakeHttpServer
) -> None:
    tenant_id, instance_id = await _meta_instance(context)
    provider.script(
        graph_error(429, 130429, "(#130429) Rate limit hit"),
        Reply(500, graph_error(500, 131000, "Something went wrong").body),
        Reply(503),
        Fault.TIMEOUT,
        Fault.RESET,
        Fault.LOST_ANSWER,
        Reply(429, None, {"Retry-After": "1"}),
    )
    ids = await _queue(context, instance_id, tenant_id, 10)
    sender = Sender(context, http=provider_client(timeout=httpx.Timeout(0.5)))
    try:
        rows = await _drain(sender, context, ids)
    finally:
        await sender.close()

    accepted = _accepted_per_message(provider)
    assert max(accepted.values()) == 1
    statuses = Counter(row.status for row in rows)
    assert set(statuses) <= {DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value}
    for row in rows:
        if row.status == DeliveryStatus.SENT.value:
            assert row.provider_message_id is not None
            assert row.sent_at is not None
            assert accepted[row.id] == 1
        else:
            # The three whose fate the sender could not know: never retried, reported.
            assert row.error_code == "unknown_outcome"
    assert statuses[DeliveryStatus.FAILED.value] == 3
    assert statuses[DeliveryStatus.SENT.value] == 7


async def test_permanent_errors_fail_with_the_providers_reason(
    context: EngineContext, provider: FakeHttpServer, meta: MetaGraphFake
) -> None:
    tenant_id, instance_id = await _meta_instance(context)
    meta.fail_next(400, 132001, "(#132001) Template name does not exist in the translation")
    [message_id] = await _queue(context, instance_id, tenant_id, 1)
    sender = Sender(context, http=provider_client(timeout=httpx.Timeout(2)))
    try:
        [row] = await _drain(sender, context, [message_id])
    finally:
        await sender.close()
    assert (row.status, row.error_code) == ("failed", "132001")
    assert "Template name does not exist" in (row.error_title or "")
    assert row.send_attempts == 1


async def test_retries_run_out_into_the_dlq(context: EngineContext, provider: FakeHttpServer) -> None:
    tenant_id, instance_id = await _meta_instance(context)
    provider.script(*[Reply(503)] * context.settings.send_max_attempts)
    [message_id] = await _queue(context, instance_id, tenant_id, 1)
    sender = Sender(context, http=provider_client(timeout=httpx.Timeout(2)))
    try:
        [row] = await _drain(sender, context, [message_id])
    finally:
        await sender.close()
    assert row.status == "failed"
    assert row.send_attempts == context.settings.send_max_attempts
    assert provider.accepted == []
    dlq = await context.streams.info(context.names.dlq)
    assert dlq.length == 1


async def test_a_receipt_settles_a_send_whose_answer_was_lost(
    context: EngineContext, provider: FakeHttpServer, meta: MetaGraphFake
) -> None:
    tenant_id, instance_id = await _meta_instance(context)
    provider.script(Fault.LOST_ANSWER)
    [message_id] = await _queue(context, instance_id, tenant_id, 1)
    sender = Sender(context, http=provider_client(timeout=httpx.Timeout(2)))
    try:
        await sender.ensure_group()
        await sender.run_once(block_ms=50)
    finally:
        await sender.close()
    [(wamid, body)] = meta.sent
    assert body["biz_opaque_callback_data"] == message_id
    # Meta's status webhook carries our id back as biz_opaque_callback_data.
    receipt = StatusUpdate(
        wamid, DeliveryStatus.DELIVERED, utcnow() - timedelta(seconds=1), callback_data=message_id
    )
    async with context.sessions() as session, session.begin():
        await apply_entries(
            session,
            [IngestEntry("receipt-1", tenant_id, instance_id, utcnow(), [receipt])],
            context.names.events,
        )
    [row] = await _messages(context, [message_id])
    assert (row.status, row.provider_message_id, row.send_state) == ("delivered", wamid, "done")
    assert row.sent_at is not None


async def test_a_receipt_that_overtakes_the_senders_commit_is_kept_and_applied(
    context: EngineContext, provider: FakeHttpServer, meta: MetaGraphFake
) -> None:
    tenant_id, instance_id = await _meta_instance(context)
    wamid = "wamid.early"
    early = StatusUpdate(wamid, DeliveryStatus.READ, utcnow() - timedelta(seconds=1))
    async with context.sessions() as session, session.begin():
        await apply_entries(
            session,
            [IngestEntry("receipt-early", tenant_id, instance_id, utcnow(), [early])],
            context.names.events,
        )
    meta.wamids.append(wamid)
    [message_id] = await _queue(context, instance_id, tenant_id, 1)
    sender = Sender(context, http=provider_client(timeout=httpx.Timeout(2)))
    try:
        [row] = await _drain(sender, context, [message_id])
    finally:
        await sender.close()
    assert (row.provider_message_id, row.status) == (wamid, "read")
    assert row.read_at is not None
    assert row.delivered_at is not None


async def test_an_echo_of_the_send_stored_before_its_answer_becomes_the_sent_message(
    context: EngineContext, meta: MetaGraphFake
) -> None:
    tenant_id, instance_id = await _meta_instance(context)
    wamid = "wamid.echo-first"
    # The gateway's echo of our own send arrived (and was stored as typed on the phone) first.
    echo = InboundMessage(wamid, "5511987000000", MessageType.TEXT, utcnow(), text="Oferta", from_me=True)
    async with context.sessions() as session, session.begin():
        await apply_entries(
            session,
            [IngestEntry("echo-first", tenant_id, instance_id, utcnow(), [echo])],
            context.names.events,
        )
    meta.wamids.append(wamid)
    [message_id] = await _queue(context, instance_id, tenant_id, 1)
    sender = Sender(context, http=provider_client(timeout=httpx.Timeout(2)))
    try:
        [row] = await _drain(sender, context, [message_id])
    finally:
        await sender.close()
    async with context.sessions() as session:
        holders = (
            await session.scalars(select(Message.id).where(Message.provider_message_id == wamid))
        ).all()
    assert holders == [message_id]
    assert (row.status, row.sender_type) == ("sent", "system")


async def _inbound(context: EngineContext, tenant_id: str, instance_id: str, wamid: str, phone: str) -> str:
    """A customer's message applied as the worker would; our id of it."""
    message = InboundMessage(wamid, phone, MessageType.TEXT, utcnow(), text="Chegou?")
    async with context.sessions() as session, session.begin():
        await apply_entries(
            session, [IngestEntry(wamid, tenant_id, instance_id, utcnow(), [message])], context.names.events
        )
    async with context.sessions() as session:
        return str(await session.scalar(select(Message.id).where(Message.provider_message_id == wamid)))


async def test_a_reply_quotes_the_customers_message_through_its_number(
    context: EngineContext, meta: MetaGraphFake
) -> None:
    tenant_id, instance_id = await _meta_instance(context)
    question = await _inbound(context, tenant_id, instance_id, "wamid.question", "5511987654321")
    # No instance named: the reply goes through the number the question came to.
    request = SendMessageRequest(to="+5511987654321", text="Chegou sim!", reply_to=question)
    async with context.sessions() as session, session.begin():
        queued = await sending_service.queue_message(
            session, tenant_id, request, idempotency_key=None, sender_type=SenderType.USER, now=utcnow()
        )
    assert (queued.message.instance_id, queued.message.quoted_provider_message_id) == (
        instance_id,
        "wamid.question",
    )
    await offer_messages(context, [(queued.message.id, tenant_id)])
    sender = Sender(context, http=provider_client(timeout=httpx.Timeout(2)))
    try:
        [row] = await _drain(sender, context, [queued.message.id])
    finally:
        await sender.close()
    [(_, body)] = meta.sent
    assert body["context"] == {"message_id": "wamid.question"}
    assert (row.status, body["text"]["body"]) == ("sent", "Chegou sim!")


async def test_a_reply_to_a_message_it_cannot_quote_is_refused(context: EngineContext) -> None:
    tenant_id, instance_id = await _meta_instance(context)
    other_number, _ = await bind(
        context, tenant_id, provider="simulator", display_number="+551140028923", instance_name="sim-2"
    )
    question = await _inbound(context, tenant_id, instance_id, "wamid.q2", "5511987654321")
    [ours] = await _queue(context, instance_id, tenant_id, 1)  # not sent yet: no provider id
    other_tenant = await create_tenant(context)
    their_number, _ = await bind(
        context, other_tenant, provider="simulator", display_number="+551140028924", instance_name="sim-3"
    )
    elsewhere = await _inbound(context, other_tenant, their_number.id, "SIM-ELSEWHERE", "5511987654321")
    refusals = {
        "another person's message": (("+5511912345678", None, question), "invalid_reply_to"),
        "a message of another number": (("+5511987654321", other_number.id, question), "invalid_reply_to"),
        "a message not sent yet": (("+5511987000000", None, ours), "invalid_reply_to"),
        "another tenant's message": (("+5511987654321", None, elsewhere), "not_found"),
        "no such message": (("+5511987654321", None, "01a00000-0000-7000-8000-000000000000"), "not_found"),
    }
    for case, ((to, instance, reply_to), code) in refusals.items():
        request = SendMessageRequest(to=to, instance_id=instance, text="Oi", reply_to=reply_to)
        async with context.sessions() as session, session.begin():
            with pytest.raises(EngineError) as refused:
                await sending_service.queue_message(
                    session,
                    tenant_id,
                    request,
                    idempotency_key=None,
                    sender_type=SenderType.USER,
                    now=utcnow(),
                )
        assert refused.value.code == code, case


async def test_a_recipient_who_blocked_the_business_is_opted_out_everywhere(
    context: EngineContext, provider: FakeHttpServer, meta: MetaGraphFake
) -> None:
    tenant_id, instance_id = await _meta_instance(context)
    meta.fail_next(400, 131050, "Unable to deliver the message. This recipient has chosen to stop")
    [message_id] = await _queue(context, instance_id, tenant_id, 1)
    sender = Sender(context, http=provider_client(timeout=httpx.Timeout(2)))
    try:
        [row] = await _drain(sender, context, [message_id])
    finally:
        await sender.close()

    assert (row.status, row.error_code) == ("failed", "131050")
    async with context.sessions() as session:
        record = await session.scalar(select(OptOut).where(OptOut.tenant_id == tenant_id))
        assert record is not None
        assert (record.phone, record.reason) == ("+5511987000000", "provider:131050")
        with pytest.raises(Conflict, match="opted out"):
            await sending_service.queue_message(
                session,
                tenant_id,
                SendMessageRequest(to="+5511987000000", instance_id=instance_id, text="oi"),
                idempotency_key=None,
                sender_type=SenderType.SYSTEM,
                now=utcnow(),
            )
    opted_out = await published_events(context, "whatsapp_customer_opted_out")
    assert len(opted_out) == 1
    assert json.loads(opted_out[0]["payload"])["reason"] == "provider:131050"


async def test_a_number_the_provider_refuses_is_paused_once_and_announced(
    context: EngineContext, provider: FakeHttpServer
) -> None:
    tenant_id = await create_tenant(context)
    instance, _ = await bind(
        context,
        tenant_id,
        provider="meta",
        display_number="+551140028922",
        phone_number_id=META_PHONE_NUMBER_ID,
        access_token="EAAG-revoked",
        app_secret="x" * 32,
    )
    ids = await _queue(context, instance.id, tenant_id, 3)
    sender = Sender(context, http=provider_client(timeout=httpx.Timeout(2)))
    try:
        rows = await _drain(sender, context, ids)
    finally:
        await sender.close()

    assert {(row.status, row.error_code) for row in rows} == {("failed", "190")}
    async with context.sessions() as session:
        paused = await session.get(WhatsAppInstance, instance.id)
        assert paused is not None
        assert paused.status == InstanceStatus.PAUSED.value
        assert "190" in (paused.last_error or "")
        with pytest.raises(Conflict, match="paused"):
            await sending_service.queue_message(
                session,
                tenant_id,
                SendMessageRequest(to="+5511987000009", instance_id=instance.id, text="oi"),
                idempotency_key=None,
                sender_type=SenderType.SYSTEM,
                now=utcnow(),
            )
    announcements = await published_events(context, "whatsapp_instance_paused")
    assert len(announcements) == 1
    assert json.loads(announcements[0]["payload"])["error"]["code"] == "190"

    async with context.sessions() as session, session.begin():
        resumed = await instances_service.set_instance_status(
            session, tenant_id, instance.id, InstanceStatus.ACTIVE
        )
        assert (resumed.status, resumed.consecutive_errors) == ("active", 0)
