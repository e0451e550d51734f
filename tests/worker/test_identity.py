"""Every real sender lands in the inbox (issue 13, point 4), through the inbound worker and the
streams, on both deployments (SQLite with the queue table; PostgreSQL with Redis):

- a Meta sender known only by a business-scoped user id (no phone) is a contact, and a reply
  goes out to that id; a Twilio number cannot reach them, and says so before queueing;
- an Evolution sender known only by an @lid address is a contact; a later payload pairing the
  phone with the LID merges the two contacts into the phone's (with the opt-out and the ledger);
- seed 000's `messages.update` shape (`data.key.id` + `data.update.status`) is a receipt;
- one unusable item of a Meta batch goes to the DLQ alone, with the raw request, the item and why;
  the rest of the batch is applied, the entry acknowledged, and a redelivery changes nothing.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from messaging_whatsapp.consent.models import Consent, OptOut
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.inbox import service as inbox_service
from messaging_whatsapp.inbox.models import Contact, Conversation, Message, SenderType, SendState, Ticket
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.http import provider_client
from messaging_whatsapp.sending import service as sending_service
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.streams.records import decode_fields
from messaging_whatsapp.worker.inbound import INBOUND_GROUP, InboundWorker, prepare
from messaging_whatsapp.worker.sender import Sender
from tests.fakes.http import FakeHttpServer
from tests.fakes.meta import MetaGraphFake
from tests.helpers import (
    META_PHONE_NUMBER_ID,
    BoundNumbers,
    bind_example_numbers,
    create_outbound_message,
    create_tenant,
    deployment_context,
    example,
)

BSUID = "BR.1502576394655843"
MARIA = "5511987654321"
MARIA_LID = "97318254610077@lid"


@pytest.fixture
def meta() -> MetaGraphFake:
    return MetaGraphFake(token="EAAG-test", phone_number_id=META_PHONE_NUMBER_ID)


@pytest.fixture
def provider(meta: MetaGraphFake) -> AsyncIterator[FakeHttpServer]:
    with FakeHttpServer(meta) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(params=["embedded", "scaled"])
async def context(
    request: pytest.FixtureRequest, tmp_path: Path, stream_prefix: str, provider: FakeHttpServer
) -> AsyncIterator[EngineContext]:
    updates = {
        "meta_graph_url": f"{provider.base_url}/v23.0",
        "rate_limits_enabled": False,
        "stream_visibility_timeout_ms": 200,
    }
    async with deployment_context(request, tmp_path, stream_prefix, **updates) as engine_context:
        yield engine_context


@pytest.fixture
async def numbers(context: EngineContext) -> BoundNumbers:
    return await bind_example_numbers(context, await create_tenant(context))


async def _receive(context: EngineContext, instance: WhatsAppInstance, payload: dict[str, Any]) -> str:
    """Append the payload to the inbound stream as the webhook does; its entry id."""
    return await context.streams.append(
        context.names.inbound,
        {
            "provider": instance.provider,
            "instance_id": instance.id,
            "tenant_id": instance.tenant_id,
            "content_type": "application/json",
            "body": json.dumps(payload),
            "url": "http://127.0.0.1/webhook",
            "received_at": utcnow().isoformat(),
        },
    )


async def _work(context: EngineContext) -> None:
    worker = InboundWorker(context, consumer="test-worker")
    await context.streams.ensure_group(context.names.inbound, INBOUND_GROUP)
    await worker.run_once(block_ms=0)


async def _contacts(context: EngineContext, tenant_id: str) -> list[Contact]:
    async with context.sessions() as session:
        query = select(Contact).where(Contact.tenant_id == tenant_id).order_by(Contact.created_at)
        return list((await session.scalars(query)).all())


async def _count(context: EngineContext, model: Any, *conditions: Any) -> int:
    async with context.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)


async def _dlq(context: EngineContext) -> list[dict[str, str]]:
    await context.streams.ensure_group(context.names.dlq, "test-reader")
    return [e.fields for e in await context.streams.read(context.names.dlq, "test-reader", "t", 100, 0)]


def _meta_bsuid_only(message_id: str = "wamid.BSUID-1", text: str = "Oi, sou a maria.s") -> dict[str, Any]:
    payload = copy.deepcopy(example("meta_text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": "maria.s"}, "user_id": BSUID}]
    [message] = value["messages"]
    del message["from"]
    # Written just now: the reply is inside the 24-hour window.
    message.update(id=message_id, from_user_id=BSUID, text={"body": text}, timestamp=str(int(time.time())))
    return payload


def _evolution(message_id: str, remote: str, alt: str | None, text: str) -> dict[str, Any]:
    payload = copy.deepcopy(example("evolution_messages_upsert_text.json"))
    key = payload["data"]["key"]
    key.update(id=message_id, remoteJid=remote)
    key.pop("remoteJidAlt")
    if alt is not None:
        key["remoteJidAlt"] = alt
    payload["data"]["message"] = {"conversation": text}
    return payload


async def test_a_bsuid_only_meta_sender_lands_and_gets_a_reply(
    context: EngineContext, numbers: BoundNumbers, meta: MetaGraphFake
) -> None:
    await _receive(context, numbers.meta, _meta_bsuid_only())
    await _work(context)

    [contact] = await _contacts(context, numbers.tenant_id)
    assert (contact.phone, contact.bsuid, contact.lid, contact.name) == (None, BSUID, None, "maria.s")
    assert await _count(context, Message, Message.contact_id == contact.id) == 1
    assert await _count(context, Ticket, Ticket.tenant_id == numbers.tenant_id) == 1
    async with context.sessions() as session:
        [listed] = (
            await inbox_service.list_contacts(session, numbers.tenant_id, phone=BSUID, cursor=None, limit=5)
        ).items
        [conversation] = (await inbox_service.list_conversations(session, numbers.tenant_id, limit=5)).items
    assert (listed.id, listed.phone, listed.bsuid) == (contact.id, None, BSUID)
    assert (conversation.contact.phone, conversation.contact.bsuid) == (None, BSUID)

    async with context.sessions() as session, session.begin():
        # A Twilio number cannot reach a person known only by a BSUID: refused before queueing.
        with pytest.raises(InvalidInput) as refused:
            await sending_service.queue_message(
                session,
                numbers.tenant_id,
                SendMessageRequest(to=BSUID, instance_id=numbers.twilio.id, text="Oi"),
                idempotency_key=None,
                sender_type=SenderType.USER,
                now=utcnow(),
            )
        assert refused.value.code == "recipient_unreachable"
        queued = await sending_service.queue_message(
            session,
            numbers.tenant_id,
            SendMessageRequest(to=BSUID, text="Entregamos sim!"),
            idempotency_key=None,
            sender_type=SenderType.USER,
            now=utcnow(),
        )
    assert (queued.message.contact_id, queued.message.instance_id) == (contact.id, numbers.meta.id)
    await offer_messages(context, [(queued.message.id, numbers.tenant_id)])
    sender = Sender(context, http=provider_client(timeout=httpx.Timeout(5)))
    try:
        await sender.ensure_group()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            await sender.run_once(block_ms=50)
            async with context.sessions() as session:
                sent = await session.get(Message, queued.message.id)
            if sent is not None and sent.send_state == SendState.DONE.value:
                break
    finally:
        await sender.close()
    assert sent is not None
    assert (sent.status, sent.error_code) == ("sent", None)
    [(_wamid, body)] = meta.sent
    assert body["recipient"] == BSUID
    assert "to" not in body
    assert body["text"]["body"] == "Entregamos sim!"


async def test_a_lid_only_sender_lands_and_merges_when_the_phone_comes(
    context: EngineContext, numbers: BoundNumbers
) -> None:
    evolution = numbers.evolution
    # The phone's contact exists (a message went to it), then the person writes by LID alone.
    await create_outbound_message(context, evolution, f"+{MARIA}", "OUT-1")
    await _receive(context, evolution, _evolution("LID-1", MARIA_LID, None, "SAIR"))
    await _work(context)

    phone_contact, lid_contact = await _contacts(context, numbers.tenant_id)
    assert (phone_contact.phone, phone_contact.lid) == (f"+{MARIA}", None)
    assert (lid_contact.phone, lid_contact.lid, lid_contact.opted_out) == (None, MARIA_LID, True)
    assert await _count(context, Consent, Consent.contact_id == lid_contact.id) == 1

    # Later the same person writes with both: one contact, the phone's, with everything.
    both = _evolution("BOTH-1", f"{MARIA}@s.whatsapp.net", MARIA_LID, "oi de novo")
    await _receive(context, evolution, both)
    await _work(context)

    [merged] = await _contacts(context, numbers.tenant_id)
    assert merged.id == phone_contact.id
    assert (merged.phone, merged.lid, merged.opted_out, merged.messages_received) == (
        f"+{MARIA}",
        MARIA_LID,
        True,
        2,
    )
    assert await _count(context, Message, Message.contact_id == merged.id) == 3
    assert await _count(context, Conversation, Conversation.tenant_id == numbers.tenant_id) == 1
    assert await _count(context, Ticket, Ticket.tenant_id == numbers.tenant_id, Ticket.status == "open") == 1
    assert await _count(context, Consent, Consent.contact_id == merged.id) == 1
    assert await _count(context, OptOut, OptOut.phone == f"+{MARIA}") == 1

    # The same payload again (a redelivery, or Evolution's retry) changes nothing.
    await _receive(context, evolution, both)
    await _work(context)
    [again] = await _contacts(context, numbers.tenant_id)
    assert (again.id, again.messages_received) == (merged.id, 2)
    assert await _count(context, Message, Message.tenant_id == numbers.tenant_id) == 3


async def test_seed_000_messages_update_moves_the_message(
    context: EngineContext, numbers: BoundNumbers
) -> None:
    await create_outbound_message(context, numbers.evolution, f"+{MARIA}", "3EB0B431E4B3")
    seed = {
        "event": "messages.update",
        "instance": "tenant_1_inst_1",
        "data": {
            "key": {"remoteJid": f"{MARIA}@s.whatsapp.net", "id": "3EB0B431E4B3"},
            "update": {"status": 3},
        },
    }
    await _receive(context, numbers.evolution, seed)
    await _work(context)
    async with context.sessions() as session:
        message = await session.scalar(select(Message).where(Message.provider_message_id == "3EB0B431E4B3"))
    assert message is not None
    assert message.status == "delivered"
    assert message.delivered_at is not None
    assert await _dlq(context) == []


async def test_one_bad_item_goes_to_the_dlq_alone_and_the_rest_applies(
    context: EngineContext, numbers: BoundNumbers
) -> None:
    await create_outbound_message(context, numbers.meta, f"+{MARIA}", "wamid.OURS")
    payload = copy.deepcopy(example("meta_text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    good = value["messages"][0]
    bad = {**good, "id": "wamid.BAD"}
    del bad["timestamp"]
    value["messages"] = [good, bad, {**good, "id": "wamid.GOOD-2"}]
    value["statuses"] = [
        {"id": "wamid.OURS", "status": "read", "timestamp": "1763035300", "recipient_id": MARIA}
    ]
    entry_id = await _receive(context, numbers.meta, payload)

    # The worker commits the good part, then dies before the DLQ and the acknowledgement.
    await context.streams.ensure_group(context.names.inbound, INBOUND_GROUP)
    [entry] = await context.streams.read(context.names.inbound, INBOUND_GROUP, "dies", 10, 0)
    prepared = prepare(entry)
    assert prepared.unusable == [("entry[0].changes[0].value.messages[1]", prepared.unusable[0][1])]
    await InboundWorker(context, consumer="dies")._commit([prepared.ingest])
    assert await _dlq(context) == []

    # Another worker reclaims it after the visibility timeout: the DLQ gets the bad item, once.
    time.sleep(0.3)
    await _work(context)
    ids = {"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBN0YyQzlFMUI0RDhBNkYwRTUzAA==", "wamid.GOOD-2"}
    assert await _count(context, Message, Message.provider_message_id.in_(ids)) == 2
    assert await _count(context, Message, Message.provider_message_id == "wamid.BAD") == 0
    async with context.sessions() as session:
        ours = await session.scalar(select(Message).where(Message.provider_message_id == "wamid.OURS"))
    assert ours is not None
    assert ours.status == "read"
    [dead] = await _dlq(context)
    assert dead["item"] == "entry[0].changes[0].value.messages[1]"
    assert "timestamp" in dead["error"]
    assert dead["entry_id"] == entry_id
    assert json.loads(decode_fields(dead["fields"])["body"]) == payload
    info = await context.streams.info(context.names.inbound)
    assert sum(group.pending for group in info.groups) == 0

    # Nothing is left to deliver again; another pass adds nothing.
    await _work(context)
    assert len(await _dlq(context)) == 0
    assert await _count(context, Message, Message.tenant_id == numbers.tenant_id) == 3


async def test_a_later_payload_with_phone_and_bsuid_gives_the_bsuid_contact_its_phone(
    context: EngineContext, numbers: BoundNumbers
) -> None:
    await _receive(context, numbers.meta, _meta_bsuid_only())
    await _work(context)
    [first] = await _contacts(context, numbers.tenant_id)
    both = _meta_bsuid_only("wamid.BOTH-1", "meu número é este")
    value = both["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = MARIA
    value["messages"][0]["from"] = MARIA
    await _receive(context, numbers.meta, both)
    await _work(context)
    [contact] = await _contacts(context, numbers.tenant_id)
    assert (contact.id, contact.phone, contact.bsuid, contact.messages_received) == (
        first.id,
        f"+{MARIA}",
        BSUID,
        2,
    )
    assert await _count(context, Conversation, Conversation.tenant_id == numbers.tenant_id) == 1
