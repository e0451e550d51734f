"""Message hygiene against the provider fakes, over real HTTP, on both deployments: long texts go in
ordered parts within the provider's limit, what a provider cannot send is refused before it is
queued, templates pass the window free-form text cannot, and an error does not outlive the send."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.inbox.models import Contact, Conversation, Message, SenderType, SendState
from messaging_whatsapp.providers.outbound import ErrorClass
from messaging_whatsapp.providers.twilio import classify_error
from messaging_whatsapp.sending import service as sending_service
from messaging_whatsapp.sending.parts import split_text
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.worker.sender import Sender
from tests.fakes.http import FakeHttpServer
from tests.fakes.meta import MetaGraphFake
from tests.fakes.twilio import FakeTwilio
from tests.helpers import (
    META_PHONE_NUMBER_ID,
    approved_template,
    bind,
    create_tenant,
    engine_settings,
    free_port,
)

TOKEN = "EAAG-test"
ACCOUNT_SID = "AC3f9e1c7a5b2d4e6f8a0c1b3d5e7f9a2c"
AUTH_TOKEN = "9c2e7a4f1b8d3e6a0c5f2b9e4d7a1c83"
MARIA = "+5511987654321"
# About 3,500 characters of sentences: three parts on Twilio.
LONG_TEXT = " ".join(f"Frase número {index} do nosso aviso, com detalhes do pedido." for index in range(60))


@pytest.fixture
def twilio() -> FakeTwilio:
    # Only Maria wrote in the last 24 h: free-form to anyone else is refused with 63016.
    return FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, window={f"whatsapp:{MARIA}"})


@pytest.fixture
def meta() -> MetaGraphFake:
    return MetaGraphFake(token=TOKEN, phone_number_id=META_PHONE_NUMBER_ID)


@pytest.fixture
def servers(twilio: FakeTwilio, meta: MetaGraphFake) -> Iterator[tuple[FakeHttpServer, FakeHttpServer]]:
    with (
        FakeHttpServer(twilio, hold_seconds=2) as twilio_server,
        FakeHttpServer(meta, hold_seconds=2) as meta_server,
    ):
        yield twilio_server, meta_server


@pytest.fixture(params=["embedded", "scaled"])
async def context(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    stream_prefix: str,
    servers: tuple[FakeHttpServer, FakeHttpServer],
) -> AsyncIterator[EngineContext]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "scaled" else None
    database = "fresh_postgres_url" if request.param == "scaled" else "fresh_sqlite_url"
    settings = engine_settings(
        request.getfixturevalue(database), redis_url, stream_prefix, tmp_path, free_port()
    )
    settings = settings.model_copy(
        update={
            "twilio_api_url": servers[0].base_url,
            "meta_graph_url": f"{servers[1].base_url}/v23.0",
            "send_backoff_base_seconds": 0.05,
            "send_backoff_max_seconds": 0.1,
            "rate_limits_enabled": False,
        }
    )
    engine_context = await EngineContext.open(settings)
    yield engine_context
    await engine_context.close()
    if redis_url:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{stream_prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


async def _number(context: EngineContext, provider: str) -> tuple[str, str]:
    """A tenant with one number of the provider: (tenant id, instance id)."""
    tenant_id = await create_tenant(context)
    options: dict[str, object] = {
        "twilio": {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
        "meta": {"phone_number_id": META_PHONE_NUMBER_ID, "access_token": TOKEN, "app_secret": "s" * 32},
        "evolution": {
            "instance_name": "loja",
            "api_url": "http://127.0.0.1:9/evo",
            "api_key": "evo-key-1234",
        },
        "wuzapi": {"instance_name": "loja", "api_url": "http://127.0.0.1:9/wuz", "api_key": "wuz-token-1234"},
    }[provider]
    instance, _ = await bind(context, tenant_id, provider=provider, display_number="+551140028922", **options)
    return tenant_id, instance.id


async def _wrote(context: EngineContext, tenant_id: str, instance_id: str, phone: str) -> None:
    """The person wrote to the number a minute ago: their window is open."""
    async with context.sessions() as session, session.begin():
        contact = Contact(tenant_id=tenant_id, phone=phone)
        session.add(contact)
        await session.flush()
        session.add(
            Conversation(
                tenant_id=tenant_id,
                contact_id=contact.id,
                instance_id=instance_id,
                last_inbound_at=utcnow() - timedelta(minutes=1),
            )
        )


async def _queue(context: EngineContext, tenant_id: str, request: SendMessageRequest) -> str:
    async with context.sessions() as session, session.begin():
        queued = await sending_service.queue_message(
            session, tenant_id, request, idempotency_key=None, sender_type=SenderType.USER, now=utcnow()
        )
    await offer_messages(context, [(queued.message.id, tenant_id)])
    return queued.message.id


async def _drain(context: EngineContext, tenant_id: str, timeout: float = 20.0) -> list[Message]:
    """Run a sender until every message of the tenant is settled; the messages in id (creation) order."""
    sender = Sender(context)
    await sender.ensure_group()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            await sender.run_once(block_ms=50)
            await sender.sweep()
            async with context.sessions() as session:
                query = select(Message).where(Message.tenant_id == tenant_id).order_by(Message.id)
                rows = list(await session.scalars(query))
            if rows and all(row.send_state == SendState.DONE.value for row in rows):
                return rows
    finally:
        await sender.close()
    raise AssertionError("messages not settled")


def test_split_text_cuts_at_sentences_then_words() -> None:
    parts = split_text(LONG_TEXT, 1600)
    assert all(len(part) <= 1600 for part in parts)
    assert all(part.endswith(".") for part in parts)
    assert " ".join(parts) == LONG_TEXT
    words = split_text("palavra " * 500, 1600)
    assert all(len(part) <= 1600 and part.endswith("palavra") for part in words)
    assert split_text("x" * 3300, 1600) == ["x" * 1600, "x" * 1600, "x" * 100]


def test_twilio_21617_is_the_senders_own_mistake() -> None:
    assert classify_error("21617") is ErrorClass.FIX_REQUEST


async def test_a_long_text_goes_in_ordered_parts_within_twilios_limit(
    context: EngineContext, twilio: FakeTwilio
) -> None:
    tenant_id, instance_id = await _number(context, "twilio")
    await _wrote(context, tenant_id, instance_id, MARIA)
    first_id = await _queue(context, tenant_id, SendMessageRequest(to=MARIA, text=LONG_TEXT))
    messages = await _drain(context, tenant_id)
    assert next(m.id for m in messages) == first_id
    assert [m.extra for m in messages] == [{"part": n, "parts": 3} for n in (1, 2, 3)]
    assert all(m.status == "sent" for m in messages)
    bodies = [created.form["Body"] for created in twilio.created]
    assert len(bodies) == 3
    assert all(len(body) <= 1600 for body in bodies)
    assert " ".join(bodies) == LONG_TEXT
    # Sent in order: each part only after the one before it.
    assert [m.provider_message_id for m in messages] == [created.sid for created in twilio.created]


async def test_templates_pass_the_window_free_form_text_cannot(
    context: EngineContext, twilio: FakeTwilio
) -> None:
    tenant_id, _ = await _number(context, "twilio")
    stranger = "+5521976543210"
    with pytest.raises(InvalidInput) as refused:
        await _queue(context, tenant_id, SendMessageRequest(to=stranger, text="Oi!"))
    assert refused.value.code == "outside_service_window"
    template = {"name": "HX9e3b7d1f5a2c8e4b0d6f9a3c1e7b5d28", "parameters": ["Ana", "88123"]}
    await _queue(context, tenant_id, SendMessageRequest(to=stranger, template=template))
    [message] = await _drain(context, tenant_id)
    assert message.status == "sent"
    [created] = twilio.created
    assert created.form["ContentSid"] == template["name"]
    assert created.form["ContentVariables"] == '{"1":"Ana","2":"88123"}'


@pytest.mark.parametrize("provider", ["evolution", "wuzapi"])
async def test_templates_on_a_gateway_are_refused_before_queueing(
    context: EngineContext, provider: str
) -> None:
    tenant_id, _ = await _number(context, provider)
    with pytest.raises(InvalidInput) as refused:
        await _queue(context, tenant_id, SendMessageRequest(to=MARIA, template={"name": "boas_vindas"}))
    assert refused.value.code == "template_unsupported"
    async with context.sessions() as session:
        assert (await session.scalars(select(Message).where(Message.tenant_id == tenant_id))).all() == []


async def test_the_error_of_a_retried_message_is_cleared_when_it_goes(
    context: EngineContext, meta: MetaGraphFake
) -> None:
    tenant_id, instance_id = await _number(context, "meta")
    await approved_template(context, tenant_id, instance_id, "pedido_confirmado")
    meta.fail_next(400, 130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached.")
    await _queue(context, tenant_id, SendMessageRequest(to=MARIA, template={"name": "pedido_confirmado"}))
    [message] = await _drain(context, tenant_id)
    assert (message.status, message.send_attempts) == ("sent", 2)
    assert (message.error_code, message.error_title) == (None, None)


async def test_the_chosen_number_is_one_that_can_send_the_content(context: EngineContext) -> None:
    tenant_id, twilio_id = await _number(context, "twilio")
    gateway, _ = await bind(
        context,
        tenant_id,
        provider="evolution",
        display_number="+551140028933",
        instance_name="loja",
        api_url="http://127.0.0.1:9/evo",
        api_key="evo-key-1234",
    )
    stranger = "+5521976543210"
    async with context.sessions() as session, session.begin():
        template = await sending_service.queue_message(
            session,
            tenant_id,
            SendMessageRequest(to=stranger, template={"name": "HX1"}),
            idempotency_key=None,
            sender_type=SenderType.USER,
            now=utcnow(),
        )
        text = await sending_service.queue_message(
            session,
            tenant_id,
            SendMessageRequest(to=stranger, text="Oi!"),
            idempotency_key=None,
            sender_type=SenderType.USER,
            now=utcnow(),
        )
    # The template through the number that has templates; free-form through the one with no window.
    assert (template.message.instance_id, text.message.instance_id) == (twilio_id, gateway.id)


async def test_a_caption_on_audio_is_refused_before_queueing(context: EngineContext) -> None:
    tenant_id, instance_id = await _number(context, "meta")
    media = {"type": "audio", "url": "https://cdn.exemplo.com.br/a.ogg", "caption": "ouça"}
    await _wrote(context, tenant_id, instance_id, MARIA)
    with pytest.raises(InvalidInput) as refused:
        await _queue(context, tenant_id, SendMessageRequest(to=MARIA, media=media))
    assert refused.value.code == "caption_unsupported"
