"""Read receipts to the customer when the team reads a conversation: they reach Meta, Evolution and
WuzAPI (fakes over real HTTP) as each takes them, the others are left alone, and a provider's error
stays in the log."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.inbox.models import Conversation
from messaging_whatsapp.providers.events import InboundMessage, MessageType
from messaging_whatsapp.sending.readmarks import ProviderReadMarks
from messaging_whatsapp.worker.ingest import apply_entries
from tests.fakes.evolution import FakeEvolution
from tests.fakes.http import FakeHttpServer
from tests.fakes.meta import MetaGraphFake
from tests.fakes.wuzapi import FakeWuzapi
from tests.helpers import META_PHONE_NUMBER_ID, WUZAPI_HMAC_KEY, bind, create_tenant

PHONE = "5511987654321"
TOKEN = "EAAG-read-marks"


async def _customer_writes(context: EngineContext, tenant_id: str, instance_id: str, ids: list[str]) -> str:
    """The customer's messages; returns their conversation."""
    messages = [InboundMessage(key, PHONE, MessageType.TEXT, utcnow(), text="Oi") for key in ids]
    async with context.sessions() as session, session.begin():
        await apply_entries(
            session, [IngestEntry(new_id(), tenant_id, instance_id, utcnow(), messages)], "events"
        )
        return str(
            await session.scalar(select(Conversation.id).where(Conversation.instance_id == instance_id))
        )


async def test_read_receipts_reach_each_provider_that_has_them(context: EngineContext) -> None:
    meta = MetaGraphFake(token=TOKEN, phone_number_id=META_PHONE_NUMBER_ID)
    evolution = FakeEvolution()
    gateway = evolution.add_instance("loja", state="open", owner="551140028922")
    wuzapi = FakeWuzapi()
    wuzapi.add_user("loja", "wuz-token", session=True, connected=True, logged_in=True)
    with FakeHttpServer(meta) as graph, FakeHttpServer(evolution) as evo, FakeHttpServer(wuzapi) as wuz:
        update = {"meta_graph_url": f"{graph.base_url}/v23.0", "outbound_allow_private": True}
        engine = dataclasses.replace(context, settings=context.settings.model_copy(update=update))
        tenant_id = await create_tenant(engine)
        number = {"display_number": "+551140028922"}
        numbers = {
            "meta": await bind(
                engine,
                tenant_id,
                provider="meta",
                phone_number_id=META_PHONE_NUMBER_ID,
                access_token=TOKEN,
                app_secret="a" * 32,
                **number,
            ),
            "evolution": await bind(
                engine,
                tenant_id,
                provider="evolution",
                instance_name="loja",
                api_url=evo.base_url,
                api_key=gateway.token,
                **number,
            ),
            "wuzapi": await bind(
                engine,
                tenant_id,
                provider="wuzapi",
                instance_name="loja",
                api_url=wuz.base_url,
                api_key="wuz-token",
                hmac_key=WUZAPI_HMAC_KEY,
                **number,
            ),
            "simulator": await bind(engine, tenant_id, provider="simulator", instance_name="sim", **number),
        }
        conversations = {
            name: await _customer_writes(engine, tenant_id, instance.id, [f"{name}-1", f"{name}-2"])
            for name, (instance, _) in numbers.items()
        }
        marks = ProviderReadMarks(engine)
        for conversation_id in conversations.values():
            marks.conversation_read(tenant_id, conversation_id)
        marks.conversation_read(tenant_id, new_id())  # not one of the tenant's: nothing
        await marks.close()

        # Meta marks the newest and every earlier message with it.
        assert meta.read == ["meta-2"]
        jid = f"{PHONE}@s.whatsapp.net"
        assert evolution.read == [
            {"remoteJid": jid, "fromMe": False, "id": "evolution-1"},
            {"remoteJid": jid, "fromMe": False, "id": "evolution-2"},
        ]
        assert wuzapi.marked_read == [{"Id": ["wuzapi-1", "wuzapi-2"], "Chat": jid}]
        paths = [request.path for request in graph.requests + evo.requests + wuz.requests]
        assert len(paths) == 3  # and nothing for the simulator

        # A provider that refuses: logged, never raised.
        meta.fail_next(400, 131009, "(#131009) Parameter value is not valid")
        marks = ProviderReadMarks(engine)
        marks.conversation_read(tenant_id, conversations["meta"])
        await marks.close()
        assert meta.read == ["meta-2"]
