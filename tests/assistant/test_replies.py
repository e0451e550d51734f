"""AI replies on both databases, against a fake OpenAI-compatible server over real HTTP: customers
write through the worker's batch applier, the scheduler's pass answers; automatic numbers answer
from the knowledge base and cite it, drafts numbers never send, and nothing goes to a customer a
person took over, who asked for one, who opted out or whose 24-hour window closed."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlalchemy import delete, select, update

from messaging_whatsapp.assistant.models import AiReply, AssistantSettings
from messaging_whatsapp.assistant.runner import run_ai_replies
from messaging_whatsapp.assistant.service import DEFAULT_HANDOFF_MESSAGE, current_draft
from messaging_whatsapp.config import AI_DEBOUNCE_SECONDS
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Conversation, Message, SenderType, Ticket
from messaging_whatsapp.inbox.service import message_item
from messaging_whatsapp.instances.models import AiMode, WhatsAppInstance
from messaging_whatsapp.knowledge import service as knowledge
from messaging_whatsapp.knowledge.chunking import chunk_prose
from messaging_whatsapp.knowledge.embeddings import local_embedder
from messaging_whatsapp.knowledge.models import DocumentKind, KnowledgeChunk
from messaging_whatsapp.privacy.erasure import erase_phone
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.sending.service import queue_messages
from messaging_whatsapp.sending.submissions import Submission
from tests.automation.helpers import MARIA, apply, message, tenant_with_number
from tests.fakes.ai import chat_requests
from tests.fakes.http import FakeHttpServer, Reply
from tests.knowledge.helpers import FAQ

RETURNS = "Qual o prazo para devolução de um produto?"


async def _setup(context: EngineContext, mode: AiMode) -> tuple[str, str]:
    """A tenant with the FAQ in its knowledge base and a simulator number in `mode`."""
    tenant_id, instance_id = await tenant_with_number(context)
    async with context.sessions() as session, session.begin():
        await knowledge.create_document(
            session, local_embedder(), tenant_id, "FAQ", DocumentKind.MARKDOWN, chunk_prose("FAQ", FAQ)
        )
        await session.execute(
            update(WhatsAppInstance).where(WhatsAppInstance.id == instance_id).values(ai_mode=mode.value)
        )
    return tenant_id, instance_id


async def _writes(context: EngineContext, tenant_id: str, instance_id: str, text: str) -> None:
    await apply(context, tenant_id, instance_id, message(text))


async def _answer(context: EngineContext) -> int:
    """The scheduler's pass once the burst's quiet time is over."""
    return await run_ai_replies(context, utcnow() + timedelta(seconds=AI_DEBOUNCE_SECONDS))


async def _ai_messages(context: EngineContext, tenant_id: str) -> list[Message]:
    async with context.sessions() as session:
        query = (
            select(Message)
            .where(Message.tenant_id == tenant_id, Message.sender_type == SenderType.AI.value)
            .order_by(Message.created_at, Message.id)
        )
        return list((await session.scalars(query)).all())


async def _replies(context: EngineContext, tenant_id: str) -> list[AiReply]:
    async with context.sessions() as session:
        query = select(AiReply).where(AiReply.tenant_id == tenant_id).order_by(AiReply.created_at, AiReply.id)
        return list((await session.scalars(query)).all())


async def _chunk_id(context: EngineContext, tenant_id: str, source: str) -> str:
    async with context.sessions() as session:
        found = await session.scalar(
            select(KnowledgeChunk.id).where(
                KnowledgeChunk.tenant_id == tenant_id, KnowledgeChunk.source == source
            )
        )
    assert found is not None
    return found


async def _ticket(context: EngineContext, tenant_id: str) -> Ticket:
    async with context.sessions() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.tenant_id == tenant_id))
    assert ticket is not None
    return ticket


async def _agent_writes(context: EngineContext, tenant_id: str, instance_id: str, text: str) -> None:
    request = SendMessageRequest(to=f"+{MARIA}", instance_id=instance_id, text=text)
    async with context.sessions() as session, session.begin():
        await queue_messages(session, [Submission(tenant_id, request, sender_type=SenderType.USER)], utcnow())


async def test_an_automatic_number_answers_from_the_knowledge_base_and_cites_it(
    context: EngineContext, ai_server: FakeHttpServer
) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    await _writes(context, tenant_id, instance_id, RETURNS)
    assert await _answer(context) == 1

    [answer] = await _ai_messages(context, tenant_id)
    returns = await _chunk_id(context, tenant_id, "FAQ > Trocas e devoluções")
    assert "7 dias" in (answer.content or "")
    assert "[1]" not in (answer.content or "")  # the citation is for the agents, not the customer
    item = message_item(answer)
    assert item.sender_type == "ai"
    assert item.sources == [returns]
    assert (answer.extra or {})["source_names"] == ["FAQ > Trocas e devoluções"]
    [reply] = await _replies(context, tenant_id)
    assert (reply.status, reply.mode) == ("sent", "auto")
    assert reply.sources == [{"id": returns, "source": "FAQ > Trocas e devoluções"}]
    # The model got the tenant's rules, the numbered sources and the customer's question.
    [request] = chat_requests(ai_server)
    system, *history = request["messages"]  # type: ignore[misc]
    assert "Trocas e devoluções" in system["content"]
    assert "[1]" in system["content"]
    assert history == [{"role": "user", "content": RETURNS}]


async def test_personal_data_is_masked_before_it_leaves_and_put_back_after(
    context: EngineContext, ai_server: FakeHttpServer
) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    text = f"{RETURNS} Meu email é maria.souza@exemplo.com, CPF 123.456.789-09, fone (11) 98765-4321."
    await _writes(context, tenant_id, instance_id, text)
    await _answer(context)

    sent = json.dumps(chat_requests(ai_server), ensure_ascii=False)
    for personal in ("maria.souza@exemplo.com", "123.456.789-09", "98765-4321", MARIA):
        assert personal not in sent
    assert "[email 1]" in sent
    assert "[cpf 1]" in sent
    assert "[telefone 1]" in sent
    assert len(await _ai_messages(context, tenant_id)) == 1


async def test_a_drafts_number_never_sends_and_shows_the_agent_a_draft(context: EngineContext) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.DRAFTS)
    await _writes(context, tenant_id, instance_id, RETURNS)
    await _answer(context)

    assert await _ai_messages(context, tenant_id) == []
    [reply] = await _replies(context, tenant_id)
    async with context.sessions() as session:
        draft = await current_draft(session, tenant_id, reply.conversation_id)
    assert draft is not None
    assert draft.status == "drafted"
    assert "7 dias" in (draft.text or "")
    assert [source["source"] for source in draft.sources or []] == ["FAQ > Trocas e devoluções"]
    # Drafts go on while agents answer; the agent's own message puts the draft away.
    await _agent_writes(context, tenant_id, instance_id, "Oi Maria! O prazo é de 7 dias.")
    async with context.sessions() as session:
        assert await current_draft(session, tenant_id, reply.conversation_id) is None
    await _writes(context, tenant_id, instance_id, "E vocês aceitam pix?")
    await _answer(context)
    assert [r.status for r in await _replies(context, tenant_id)] == ["drafted", "drafted"]
    assert await _ai_messages(context, tenant_id) == []


async def test_a_burst_of_messages_gets_one_answer(context: EngineContext, ai_server: FakeHttpServer) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    for text in ("Oi", "tudo bem?", RETURNS):
        await _writes(context, tenant_id, instance_id, text)
    assert [r.status for r in await _replies(context, tenant_id)] == ["pending"]
    await _answer(context)

    assert len(await _ai_messages(context, tenant_id)) == 1
    [request] = chat_requests(ai_server)
    assert [m["content"] for m in request["messages"][1:]] == ["Oi", "tudo bem?", RETURNS]  # type: ignore[index]


async def test_the_burst_waits_for_the_customer_to_pause(context: EngineContext) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    await _writes(context, tenant_id, instance_id, RETURNS)
    [waiting] = await _replies(context, tenant_id)
    assert await run_ai_replies(context, waiting.due_at - timedelta(seconds=1)) == 0
    assert await run_ai_replies(context, waiting.due_at) == 1


async def test_automatic_replies_stop_once_an_agent_writes(context: EngineContext) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    await _writes(context, tenant_id, instance_id, RETURNS)
    await _answer(context)
    await _agent_writes(context, tenant_id, instance_id, "Oi Maria, aqui é a Júlia. Posso ajudar?")
    await _writes(context, tenant_id, instance_id, "Vocês aceitam pix?")
    await _answer(context)

    assert len(await _ai_messages(context, tenant_id)) == 1
    assert [(r.status, r.reason) for r in await _replies(context, tenant_id)] == [
        ("sent", None),
        ("skipped", "agent_replied"),
    ]


async def test_automatic_replies_stop_when_the_customer_asks_for_a_person(context: EngineContext) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    await _writes(context, tenant_id, instance_id, "Quero falar com um atendente")
    await _answer(context)
    await _writes(context, tenant_id, instance_id, RETURNS)
    await _answer(context)

    assert await _ai_messages(context, tenant_id) == []
    assert [(r.status, r.reason) for r in await _replies(context, tenant_id)] == [
        ("skipped", "wants_person"),
        ("skipped", "wants_person"),
    ]


async def test_an_opted_out_customer_gets_nothing(context: EngineContext, ai_server: FakeHttpServer) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    await _writes(context, tenant_id, instance_id, "SAIR")
    assert await _replies(context, tenant_id) == []  # the opt-out message asks for no reply
    await _writes(context, tenant_id, instance_id, RETURNS)
    await _answer(context)

    assert await _ai_messages(context, tenant_id) == []
    assert [(r.status, r.reason) for r in await _replies(context, tenant_id)] == [("skipped", "opted_out")]
    assert chat_requests(ai_server) == []


async def test_nothing_goes_out_after_the_24_hour_window(
    context: EngineContext, ai_server: FakeHttpServer
) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    await _writes(context, tenant_id, instance_id, RETURNS)
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(Conversation)
            .where(Conversation.tenant_id == tenant_id)
            .values(last_inbound_at=utcnow() - timedelta(hours=25))
        )
    await _answer(context)

    assert await _ai_messages(context, tenant_id) == []
    assert [(r.status, r.reason) for r in await _replies(context, tenant_id)] == [
        ("skipped", "outside_window")
    ]
    assert chat_requests(ai_server) == []


async def test_a_question_the_base_cannot_answer_goes_to_a_person(
    context: EngineContext, ai_server: FakeHttpServer
) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    await _writes(context, tenant_id, instance_id, "Vocês fazem conserto de motor de caminhão a diesel?")
    await _answer(context)

    [handoff] = await _ai_messages(context, tenant_id)
    assert handoff.content == DEFAULT_HANDOFF_MESSAGE
    assert chat_requests(ai_server) == []  # handed off on retrieval alone
    ticket = await _ticket(context, tenant_id)
    assert ticket.wants_person_at is not None
    assert ticket.assignee_id is None
    assert [(r.status, r.reason) for r in await _replies(context, tenant_id)] == [
        ("handed_off", "no_knowledge")
    ]
    # The person takes it from here: the assistant says nothing more in this ticket.
    await _writes(context, tenant_id, instance_id, RETURNS)
    await _answer(context)
    assert len(await _ai_messages(context, tenant_id)) == 1


async def test_the_tenants_handoff_message_and_a_failing_model(
    context: EngineContext, ai_server: FakeHttpServer
) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    async with context.sessions() as session, session.begin():
        session.add(AssistantSettings(tenant_id=tenant_id, handoff_message="Já chamo alguém da loja!"))
    ai_server.script(
        Reply(500, {"error": {"message": "overloaded"}}), Reply(500, {"error": {"message": "again"}})
    )
    await _writes(context, tenant_id, instance_id, RETURNS)
    await _answer(context)

    [handoff] = await _ai_messages(context, tenant_id)
    assert handoff.content == "Já chamo alguém da loja!"
    assert [(r.status, r.reason) for r in await _replies(context, tenant_id)] == [("handed_off", "ai_failed")]


async def test_a_greeting_alone_gets_no_answer_and_no_handoff(
    context: EngineContext, ai_server: FakeHttpServer
) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    await _writes(context, tenant_id, instance_id, "Oi, bom dia!")
    await _answer(context)

    assert await _ai_messages(context, tenant_id) == []
    assert (await _ticket(context, tenant_id)).wants_person_at is None
    assert [(r.status, r.reason) for r in await _replies(context, tenant_id)] == [
        ("skipped", "nothing_asked")
    ]


async def test_two_schedulers_answer_once(context: EngineContext, ai_server: FakeHttpServer) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    await _writes(context, tenant_id, instance_id, RETURNS)
    now = utcnow() + timedelta(seconds=AI_DEBOUNCE_SECONDS)
    taken = await asyncio.gather(run_ai_replies(context, now), run_ai_replies(context, now))

    assert sorted(taken) == [0, 1]
    assert len(await _ai_messages(context, tenant_id)) == 1
    assert len(chat_requests(ai_server)) == 1


async def test_a_number_with_ai_off_asks_for_nothing(context: EngineContext) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.OFF)
    await _writes(context, tenant_id, instance_id, RETURNS)
    assert await _replies(context, tenant_id) == []


async def test_erasing_the_person_erases_what_the_assistant_wrote_them(context: EngineContext) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.DRAFTS)
    await _writes(context, tenant_id, instance_id, RETURNS)
    await _answer(context)
    assert len(await _replies(context, tenant_id)) == 1
    async with context.sessions() as session, session.begin():
        await erase_phone(session, tenant_id, f"+{MARIA}", utcnow())
    assert await _replies(context, tenant_id) == []


async def test_a_reply_whose_runner_died_is_taken_again_and_given_up_after_three(
    context: EngineContext,
) -> None:
    tenant_id, instance_id = await _setup(context, AiMode.AUTO)
    await _writes(context, tenant_id, instance_id, RETURNS)
    died = {"status": "working", "lease_until": utcnow() - timedelta(seconds=1)}
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(AiReply).where(AiReply.tenant_id == tenant_id).values(**died, attempts=1)
        )
    assert await _answer(context) == 1
    assert len(await _ai_messages(context, tenant_id)) == 1

    await _writes(context, tenant_id, instance_id, "E vocês aceitam pix?")
    async with context.sessions() as session, session.begin():
        await session.execute(update(AiReply).where(AiReply.status == "pending").values(**died, attempts=3))
    assert await _answer(context) == 0
    assert [(r.status, r.reason) for r in await _replies(context, tenant_id)][-1] == ("failed", "gave_up")
    assert len(await _ai_messages(context, tenant_id)) == 1


async def test_a_reply_goes_with_the_message_it_answers(context: EngineContext) -> None:
    """Data retention deletes old messages: the assistant's replies to them go too."""
    tenant_id, instance_id = await _setup(context, AiMode.DRAFTS)
    await _writes(context, tenant_id, instance_id, RETURNS)
    await _answer(context)
    async with context.sessions() as session, session.begin():
        await session.execute(delete(Message).where(Message.tenant_id == tenant_id))
    assert await _replies(context, tenant_id) == []
