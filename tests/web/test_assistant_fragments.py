"""The piece above the composer in drafts mode, as the server renders it: "writing" while the
assistant works, its draft (a tenant's text and a source's name as text, never markup), the
handoff note until someone writes, nothing in automatic mode or after a discard."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from messaging_whatsapp.assistant.models import AiReply
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Message
from tests.helpers import wait_until
from tests.web.conftest import WebEngine
from tests.web.test_session import _log_in

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_suggestion_follows_the_reply_and_shows_its_text_as_text(web_engine: WebEngine) -> None:
    tenant_id, instance = await web_engine.tenant("Loja Sugestao", "ana@sugestao.com.br")
    provider_id = await web_engine.inbound(instance, "+5511987652001", "Qual o prazo?", "Rita")

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
    reply = AiReply(
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        instance_id=instance.id,
        mode="drafts",
        message_id=message_id,
        # Far in the future: the engine's runner leaves it alone.
        due_at=utcnow().replace(year=2100),
    )
    async with web_engine.context.sessions() as session:
        session.add(reply)
        await session.commit()
        reply_id = reply.id

    async def change(**values: object) -> None:
        async with web_engine.context.sessions() as session:
            await session.execute(update(AiReply).where(AiReply.id == reply_id).values(**values))
            await session.commit()

    client = await _log_in(web_engine, "ana@sugestao.com.br")
    path = f"/inbox/fragments/ai-draft/{conversation_id}"
    try:
        assert 'data-testid="ai-working"' in (await client.get(path)).text

        await change(
            status="drafted",
            text="O prazo é <b>2 dias</b>.",
            sources=[{"id": "c1", "source": "FAQ <b>Loja</b> > Entrega"}],
        )
        drafted = (await client.get(path)).text
        assert 'data-testid="ai-draft"' in drafted
        assert "O prazo é &lt;b&gt;2 dias&lt;/b&gt;." in drafted
        assert "FAQ &lt;b&gt;Loja&lt;/b&gt; &gt; Entrega" in drafted
        assert "<b>" not in drafted
        # The chat, opened, carries it too.
        assert 'data-testid="ai-draft"' in (await client.get(f"/inbox/fragments/chat/{conversation_id}")).text

        discarded = await client.post(
            f"/api/v1/ai-replies/{reply_id}/discard", headers={"X-CSRF-Token": client.cookies["csrf"]}
        )
        assert discarded.status_code == 200, discarded.text
        assert "data-testid" not in (await client.get(path)).text

        # Handed off in drafts mode: a note for the agent, while the customer waits.
        await change(status="handed_off", reason="no_knowledge", text=None)
        assert 'data-testid="ai-handoff"' in (await client.get(path)).text
        # In automatic mode the customer got the handoff message: nothing to say to the agent.
        await change(mode="auto")
        assert "data-testid" not in (await client.get(path)).text
    finally:
        await client.aclose()
