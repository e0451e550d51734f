"""The fragments the page fetches: the list pages on its cursor and follows its filters, and a
fragment is only ever the caller's (another tenant's or another agent's is a 404)."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import func, select

from messaging_whatsapp.inbox.models import Conversation, Message
from messaging_whatsapp.instances.resolver import InstanceResolver
from messaging_whatsapp.simulator.service import Simulator
from messaging_whatsapp.tenancy.models import User
from tests.helpers import create_user, wait_until
from tests.web.conftest import PASSWORD, WebEngine
from tests.web.test_session import _log_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

ITEM_ID = re.compile(r'data-testid="conversation-item" data-conversation-id="([^"]+)"')
NEXT_PAGE = re.compile(r'hx-get="(/inbox/fragments/conversations\?[^"]+)" hx-trigger="revealed"')
CUSTOMERS = 33


async def _customers(engine: WebEngine, tenant_id: str, instance_id: str) -> None:
    """CUSTOMERS people write in, through the webhook; wait until each has a conversation."""
    resolver = InstanceResolver.for_context(engine.context)
    resolved = await resolver.by_id(instance_id)
    assert resolved is not None
    simulator = Simulator(engine.settings, resolver)
    try:
        await asyncio.gather(
            *(
                simulator.post_inbound(
                    resolved, f"+55119876{n:05d}", f"pedido {n}", f"Cliente {n}", raise_on_failure=True
                )
                for n in range(CUSTOMERS)
            )
        )
    finally:
        await simulator.close()

    async def counted() -> bool:
        async with engine.context.sessions() as session:
            found = await session.scalar(select(func.count()).where(Conversation.tenant_id == tenant_id))
        return found == CUSTOMERS

    await wait_until(counted, what="every conversation stored")


async def test_the_list_pages_on_its_cursor_and_follows_its_filters(web_engine: WebEngine) -> None:
    tenant_id, instance = await web_engine.tenant("Loja Lista", "ana@lista.com.br")
    await _customers(web_engine, tenant_id, instance.id)
    client = await _log_in(web_engine, "ana@lista.com.br")
    try:
        first = await client.get("/inbox/fragments/conversations", params={"tab": "all", "status": "open"})
        assert first.status_code == 200
        shown = ITEM_ID.findall(first.text)
        more = NEXT_PAGE.search(first.text)
        assert more is not None
        second = await client.get(more.group(1).replace("&amp;", "&"))
        shown += ITEM_ID.findall(second.text)
        assert NEXT_PAGE.search(second.text) is None
        assert len(shown) == len(set(shown)) == CUSTOMERS

        # Search by phone digits and by a message's text; the number filter; the tabs.
        found = await client.get("/inbox/fragments/conversations", params={"q": "11987600007"})
        assert "Cliente 7" in found.text
        assert len(ITEM_ID.findall(found.text)) == 1
        found = await client.get("/inbox/fragments/conversations", params={"q": "pedido 12"})
        assert "Cliente 12" in found.text
        other = await client.get("/inbox/fragments/conversations", params={"instance_id": "not-this-number"})
        assert ITEM_ID.findall(other.text) == []
        mine = await client.get("/inbox/fragments/conversations", params={"tab": "mine"})
        assert ITEM_ID.findall(mine.text) == []
        resolved = await client.get("/inbox/fragments/conversations", params={"status": "resolved"})
        assert ITEM_ID.findall(resolved.text) == []
        # One item, as the live client asks for it: 204 when it no longer fits the list.
        one = shown[0]
        assert (
            await client.get(f"/inbox/fragments/conversation/{one}", params={"tab": "all"})
        ).status_code == 200
        assert (
            await client.get(f"/inbox/fragments/conversation/{one}", params={"tab": "mine"})
        ).status_code == 204
    finally:
        await client.aclose()


async def test_fragments_are_only_the_callers_own(web_engine: WebEngine) -> None:
    tenant_a, instance_a = await web_engine.tenant("Loja Dona", "ana@dona.com.br")
    await web_engine.tenant("Loja Outra", "bia@outra.com.br")
    await create_user(web_engine.context, tenant_a, "caio@dona.com.br", PASSWORD, "agent")
    provider_id = await web_engine.inbound(instance_a, "+5511987651111", "Só da loja A", "Rui")

    async def stored() -> tuple[str, str] | None:
        async with web_engine.context.sessions() as session:
            row = (
                await session.execute(
                    select(Message.id, Message.conversation_id).where(
                        Message.provider_message_id == provider_id
                    )
                )
            ).first()
        return (row[0], row[1]) if row else None

    message_id, conversation_id = await wait_until(stored, what="the message stored")
    owner = await _log_in(web_engine, "ana@dona.com.br")
    stranger = await _log_in(web_engine, "bia@outra.com.br")
    agent = await _log_in(web_engine, "caio@dona.com.br")
    paths = (
        f"/inbox/fragments/conversation/{conversation_id}",
        f"/inbox/fragments/chat/{conversation_id}",
        f"/inbox/fragments/lead/{conversation_id}",
        f"/inbox/fragments/ai-draft/{conversation_id}",
        f"/inbox/fragments/message/{message_id}",
        f"/inbox/{conversation_id}",
    )
    try:
        for path in paths:
            assert (await owner.get(path)).status_code == 200, path
            assert (await stranger.get(path)).status_code == 404, path
        # An agent works the unassigned queue: Rui's open ticket is theirs to take...
        assert (await agent.get(paths[1])).status_code == 200
        ticket = (await owner.get(f"/api/v1/conversations/{conversation_id}/tickets")).json()["items"][0]
        # ...until someone else has it.
        taken = await owner.post(
            f"/api/v1/tickets/{ticket['id']}/assign",
            json={"user_id": await _user_id(web_engine, "ana@dona.com.br")},
            headers={"X-CSRF-Token": owner.cookies["csrf"]},
        )
        assert taken.status_code == 200, taken.text
        for path in paths:
            assert (await agent.get(path)).status_code == 404, path
    finally:
        for client in (owner, stranger, agent):
            await client.aclose()


async def _user_id(engine: WebEngine, email: str) -> str:
    async with engine.context.sessions() as session:
        found = await session.scalar(select(User.id).where(User.email == email))
    assert found is not None
    return found
