"""A gateway's address is the tenant's to give: the sender does not call one that is not on the
public internet (DESIGN section 6), it fails the message and pauses the number instead."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Contact, Message, SenderType
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.sending.queue import BulkMessage, offer_messages, store_queued_messages
from messaging_whatsapp.worker.sender import Sender
from tests.sending.evolution_number import evolution_number


async def test_a_gateway_on_a_private_address_is_refused_without_a_request(
    fresh_sqlite_url: str, stream_prefix: str, tmp_path: Path
) -> None:
    async with evolution_number(
        fresh_sqlite_url, stream_prefix, tmp_path, outbound_allow_private=False
    ) as number:
        context, tenant_id = number.context, number.tenant_id
        async with context.sessions() as session, session.begin():
            contact = Contact(tenant_id=tenant_id, phone="+5511987650001")
            session.add(contact)
            await session.flush()
            ids = await store_queued_messages(
                session,
                tenant_id,
                [BulkMessage(contact.id, number.instance_id, "Oi")],
                sender_type=SenderType.USER,
                now=utcnow(),
            )
        await offer_messages(context, [(message_id, tenant_id) for message_id in ids])
        # No shared client: the sender builds each number's own pool, as in production.
        sender = Sender(context)
        try:
            await sender.ensure_group()
            await sender.run_once(block_ms=100)
        finally:
            await sender.close()
        async with context.sessions() as session:
            message = (await session.execute(select(Message).where(Message.id == ids[0]))).scalar_one()
            paused = await session.get(WhatsAppInstance, number.instance_id)

    assert number.server.requests == []
    assert (message.status, message.error_code) == ("failed", "destination_refused")
    assert paused is not None
    assert paused.status == InstanceStatus.PAUSED.value
    assert "127.0.0.1" in (paused.last_error or "")
