"""A message that asks for it (a campaign's on the unofficial gateways, unless its pacing says
otherwise) shows "typing..." before it goes; others do not."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Contact, SenderType
from messaging_whatsapp.providers.http import provider_client
from messaging_whatsapp.sending import delivery as sender_module
from messaging_whatsapp.sending.queue import BulkMessage, offer_messages, store_queued_messages
from messaging_whatsapp.worker.sender import Sender
from tests.sending.evolution_number import evolution_number

CAMPAIGN_PHONE, USER_PHONE = "+5511987650001", "+5511987650002"


async def test_messages_asking_for_it_type_first_on_evolution(
    fresh_sqlite_url: str, stream_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender_module, "TYPING_SECONDS", (0.05, 0.1))
    async with evolution_number(fresh_sqlite_url, stream_prefix, tmp_path) as number:
        context, tenant_id, instance_id = number.context, number.tenant_id, number.instance_id
        async with context.sessions() as session, session.begin():
            campaign_contact = Contact(tenant_id=tenant_id, phone=CAMPAIGN_PHONE)
            user_contact = Contact(tenant_id=tenant_id, phone=USER_PHONE)
            session.add_all([campaign_contact, user_contact])
            await session.flush()
            ids = await store_queued_messages(
                session,
                tenant_id,
                [BulkMessage(campaign_contact.id, instance_id, "Oferta!", typing=True)],
                sender_type=SenderType.CAMPAIGN,
                now=utcnow(),
            )
            ids += await store_queued_messages(
                session,
                tenant_id,
                [BulkMessage(user_contact.id, instance_id, "Oi")],
                sender_type=SenderType.USER,
                now=utcnow(),
            )
        await offer_messages(context, [(message_id, tenant_id) for message_id in ids])
        sender = Sender(context, http=provider_client(timeout=httpx.Timeout(5)))
        try:
            await sender.ensure_group()
            batch = await sender.run_once(block_ms=100)
        finally:
            await sender.close()

    assert batch.sent == 2
    requests = number.server.requests
    calls = [(request.path.split("/")[2], request.json().get("number")) for request in requests]
    typing = [phone for kind, phone in calls if kind == "sendPresence"]
    assert typing == [CAMPAIGN_PHONE.removeprefix("+")]
    assert calls.index(("sendPresence", typing[0])) < calls.index(("sendText", typing[0]))
