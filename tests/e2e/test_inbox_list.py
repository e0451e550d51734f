"""The inbox screen's data over HTTP, on both deployments: the conversation list's tabs and search,
the lead panel's contact (read and renamed, the name then kept; another tenant's 404, bad names
422), and opening a
conversation telling the customer their message was read (the Meta fake gets the receipt)."""

from __future__ import annotations

import pytest

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.providers.events import InboundMessage, MessageType
from messaging_whatsapp.worker.ingest import apply_entries
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.fakes.meta import MetaGraphFake
from tests.helpers import META_PHONE_NUMBER_ID, bind, create_tenant, wait_until

TOKEN = "EAAG-inbox-list"
WAMID = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjA"


@pytest.fixture
def meta() -> MetaGraphFake:
    return MetaGraphFake(token=TOKEN, phone_number_id=META_PHONE_NUMBER_ID)


@pytest.fixture
def engine(meta_engine: RunningEngine) -> RunningEngine:
    """The whole engine, its Meta numbers talking to the Graph API fake (tests/e2e/conftest.py)."""
    return meta_engine


async def test_the_inbox_lists_renames_and_reads_back_to_the_customer(
    engine: RunningEngine, meta: MetaGraphFake
) -> None:
    tenant_id = await create_tenant(engine.context)
    instance, _ = await bind(
        engine.context,
        tenant_id,
        provider="meta",
        display_number="+551140028922",
        phone_number_id=META_PHONE_NUMBER_ID,
        access_token=TOKEN,
        app_secret="a" * 32,
    )
    message = InboundMessage(WAMID, "5511987654321", MessageType.TEXT, utcnow(), text="Tem o tênis 42?")
    async with engine.context.sessions() as session, session.begin():
        entry = IngestEntry(new_id(), tenant_id, instance.id, utcnow(), [message])
        await apply_entries(session, [entry], engine.context.names.events)
    agent = await auth_headers(engine, tenant_id, "bia@loja.com.br", role="agent")
    stranger = await auth_headers(engine, await create_tenant(engine.context, "Outra"), "rui@outra.com.br")

    listed = await engine.http.get("/api/v1/conversations?tab=unassigned&status=open&q=tênis", headers=agent)
    [item] = listed.json()["items"]
    assert (item["last_message"]["preview"], item["ticket"]["status"]) == ("Tem o tênis 42?", "open")
    assert (await engine.http.get("/api/v1/conversations?tab=mine", headers=agent)).json()["items"] == []
    assert (await engine.http.get("/api/v1/conversations?tab=everything", headers=agent)).status_code == 422
    assert (await engine.http.get("/api/v1/conversations?q=" + "x" * 101, headers=agent)).status_code == 422

    contact = f"/api/v1/contacts/{item['contact']['id']}"
    renamed = await engine.http.patch(contact, json={"name": "  Ana   Souza "}, headers=agent)
    assert (renamed.status_code, renamed.json()["name"]) == (200, "Ana Souza")
    # The customer's WhatsApp profile name no longer replaces the team's.
    again = InboundMessage(
        f"{WAMID}2", "5511987654321", MessageType.TEXT, utcnow(), contact_name="Aninha", text="?"
    )
    async with engine.context.sessions() as session, session.begin():
        entry = IngestEntry(new_id(), tenant_id, instance.id, utcnow(), [again])
        await apply_entries(session, [entry], engine.context.names.events)
    shown = (await engine.http.get(contact, headers=agent)).json()
    assert (shown["name"], shown["phone"], shown["opted_out"]) == ("Ana Souza", "+5511987654321", False)
    assert (await engine.http.patch(contact, json={"name": "Rui"}, headers=stranger)).status_code == 404
    assert (await engine.http.get(contact, headers=stranger)).status_code == 404
    for bad in ({"name": "x" * 201}, {"nome": "Ana"}, {}):
        assert (await engine.http.patch(contact, json=bad, headers=agent)).status_code == 422

    read = await engine.http.post(f"/api/v1/conversations/{item['id']}/read", headers=agent)
    assert (read.status_code, read.json()["unread_count"]) == (200, 0)
    await wait_until(lambda: _read(meta), what="the read receipt at the Meta fake")
    assert meta.read == [f"{WAMID}2"]


async def _read(meta: MetaGraphFake) -> list[str]:
    return meta.read
