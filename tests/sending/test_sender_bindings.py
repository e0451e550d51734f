"""The sender uses a number's changed credentials at its next message, and sends nothing through a
number once it is unbound, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Contact, Message, SenderType
from messaging_whatsapp.instances import bindings
from messaging_whatsapp.instances.schemas import InstanceUpdate
from messaging_whatsapp.sending.queue import BulkMessage, offer_messages, store_queued_messages
from messaging_whatsapp.worker.sender import Sender
from tests.fakes.evolution import GLOBAL_KEY
from tests.sending.evolution_number import evolution_number


async def _send_one(context: EngineContext, tenant_id: str, instance_id: str, phone: str) -> Message:
    async with context.sessions() as session, session.begin():
        contact = Contact(tenant_id=tenant_id, phone=phone)
        session.add(contact)
        await session.flush()
        ids = await store_queued_messages(
            session,
            tenant_id,
            [BulkMessage(contact.id, instance_id, "Oi")],
            sender_type=SenderType.USER,
            now=utcnow(),
        )
    await offer_messages(context, [(message_id, tenant_id) for message_id in ids])
    sender = Sender(context)
    try:
        await sender.ensure_group()
        await sender.run_once(block_ms=100)
    finally:
        await sender.close()
    async with context.sessions() as session:
        return (await session.execute(select(Message).where(Message.id == ids[0]))).scalar_one()


@pytest.mark.parametrize("database", ["fresh_sqlite_url", "fresh_postgres_url"])
async def test_a_changed_key_is_used_and_an_unbound_number_sends_nothing(
    database: str, request: pytest.FixtureRequest, stream_prefix: str, tmp_path: Path
) -> None:
    async with evolution_number(request.getfixturevalue(database), stream_prefix, tmp_path) as number:
        context, tenant_id = number.context, number.tenant_id
        async with context.sessions() as session, session.begin():
            await bindings.update_instance(
                session,
                context.cipher,
                context.settings,
                tenant_id,
                number.instance_id,
                InstanceUpdate(api_key=GLOBAL_KEY),
            )
        sent = await _send_one(context, tenant_id, number.instance_id, "+5511987650001")
        assert sent.status == "sent", sent.error_code
        assert [r.headers.get("apikey") for r in number.server.requests if "sendText" in r.path] == [
            GLOBAL_KEY
        ]

        async with context.sessions() as session, session.begin():
            await bindings.unbind_instance(session, context.cipher, tenant_id, number.instance_id)
        calls = len(number.server.requests)
        refused = await _send_one(context, tenant_id, number.instance_id, "+5511987650002")
        assert (refused.status, refused.error_code) == ("failed", "instance_unbound")
        assert len(number.server.requests) == calls
