"""The inbox list and the chat on both databases: tabs, open and resolved, search by name, phone
(any fragment, either Brazilian form) and message text; what each item carries, kept right by
inbound, outbound and ticket changes; agents' visibility; the cursor; quoted replies, reactions
and the newest-first order of the chat."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.inbox import service, tickets
from messaging_whatsapp.inbox.models import Conversation, Message, SenderType, Ticket, TicketCloseReason
from messaging_whatsapp.inbox.search import COMMON_MATCHES
from messaging_whatsapp.inbox.service import ConversationFilter, ConversationState, InboxTab, MessageOrder
from messaging_whatsapp.inbox.visibility import EVERYONE, Viewer
from messaging_whatsapp.providers.events import InboundMessage, MessageType
from messaging_whatsapp.sending import service as sending_service
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.worker.ingest import apply_entries
from tests.helpers import bind, create_tenant, create_user

ANA, BRUNO, CAIO = "5511987654321", "5521998765432", "5531991112222"
START = utcnow() - timedelta(hours=1)


async def _writes(context: EngineContext, tenant_id: str, instance_id: str, message: InboundMessage) -> None:
    async with context.sessions() as session, session.begin():
        entry = IngestEntry(new_id(), tenant_id, instance_id, message.timestamp, [message])
        await apply_entries(session, [entry], context.names.events)


def _text(phone: str, minute: int, text: str, **options: Any) -> InboundMessage:
    at = START + timedelta(minutes=minute)
    return InboundMessage(
        options.pop("id", f"SIM-{new_id()}"), phone, MessageType.TEXT, at, text=text, **options
    )


async def _listed(
    context: EngineContext, tenant_id: str, viewer: Viewer = EVERYONE, **options: Any
) -> list[Any]:
    async with context.sessions() as session:
        page = await service.list_conversations(
            session, tenant_id, viewer=viewer, narrowed=ConversationFilter(**options)
        )
    return page.items


async def _ticket(context: EngineContext, conversation_id: str) -> str:
    async with context.sessions() as session:
        return str(await session.scalar(select(Ticket.id).where(Ticket.conversation_id == conversation_id)))


async def _inbox(context: EngineContext) -> tuple[str, str, str, str, dict[str, str]]:
    """Ana asks (unassigned), Bruno is answered and his ticket is the agent's, Caio's is closed."""
    tenant_id = await create_tenant(context)
    instance, _ = await bind(
        context,
        tenant_id,
        provider="simulator",
        display_number="+551140028922",
        instance_name=f"s-{new_id()[-8:]}",
    )
    agent = await create_user(context, tenant_id, "agente@loja.com.br", role="agent")
    other = await create_user(context, tenant_id, "outra@loja.com.br", role="agent")
    await _writes(
        context,
        tenant_id,
        instance.id,
        _text(ANA, 1, "Quero saber o preço do sofá", contact_name="Ana Souza"),
    )
    await _writes(context, tenant_id, instance.id, _text(BRUNO, 2, "Olá", contact_name="Bruno Lima"))
    await _writes(context, tenant_id, instance.id, _text(CAIO, 3, "Obrigado!", contact_name="Caio Rocha"))
    ids = {item.contact.name: item.id for item in await _listed(context, tenant_id)}
    reply = SendMessageRequest(to=f"+{BRUNO}", instance_id=instance.id, text="Bom dia, Bruno! " + "x" * 200)
    async with context.sessions() as session, session.begin():
        await sending_service.queue_message(
            session, tenant_id, reply, idempotency_key=None, sender_type=SenderType.USER, now=utcnow()
        )
        await tickets.assign_ticket(
            session, tenant_id, await _ticket(context, ids["Bruno Lima"]), agent, utcnow()
        )
        closing = await _ticket(context, ids["Caio Rocha"])
        await tickets.close_ticket(session, tenant_id, closing, TicketCloseReason.SALE, utcnow())
    return tenant_id, instance.id, agent, other, ids


async def test_the_list_shows_the_last_message_and_ticket_and_filters_by_tab_and_state(
    context: EngineContext,
) -> None:
    tenant_id, instance_id, agent, other, ids = await _inbox(context)

    items = await _listed(context, tenant_id)
    assert [item.contact.name for item in items] == ["Bruno Lima", "Caio Rocha", "Ana Souza"]
    bruno, caio, ana = items
    assert (bruno.last_message.direction, bruno.last_message.preview) == (
        "outbound",
        ("Bom dia, Bruno! " + "x" * 200)[:120],
    )
    assert (bruno.ticket.status, bruno.ticket.assignee_id, bruno.ticket.assignee_name) == (
        "open",
        agent,
        "agente@loja.com.br",
    )
    assert (ana.last_message.type, ana.last_message.direction, ana.unread_count) == ("text", "inbound", 1)
    assert ana.last_message.preview == "Quero saber o preço do sofá"
    assert (ana.ticket.status, ana.ticket.assignee_id) == ("open", None)
    assert (caio.ticket.status, caio.ticket.id) == ("closed", await _ticket(context, ids["Caio Rocha"]))

    names = lambda found: [item.contact.name for item in found]  # noqa: E731
    assert names(await _listed(context, tenant_id, status=ConversationState.OPEN)) == [
        "Bruno Lima",
        "Ana Souza",
    ]
    assert names(await _listed(context, tenant_id, status=ConversationState.RESOLVED)) == ["Caio Rocha"]
    assert names(await _listed(context, tenant_id, tab=InboxTab.MINE, user_id=agent)) == ["Bruno Lima"]
    assert names(await _listed(context, tenant_id, tab=InboxTab.UNASSIGNED)) == ["Ana Souza"]
    assert await _listed(context, tenant_id, instance_id=new_id()) == []
    assert len(await _listed(context, tenant_id, instance_id=instance_id)) == 3

    # Agents: their own tickets and the unassigned queue, whatever the tab.
    mine, others = Viewer(restricted=True, agent_id=agent), Viewer(restricted=True, agent_id=other)
    assert names(await _listed(context, tenant_id, mine)) == ["Bruno Lima", "Ana Souza"]
    assert names(await _listed(context, tenant_id, others)) == ["Ana Souza"]
    assert names(await _listed(context, tenant_id, others, tab=InboxTab.MINE, user_id=other)) == []
    assert names(await _listed(context, tenant_id, others, tab=InboxTab.UNASSIGNED)) == ["Ana Souza"]

    # Taking Ana's ticket moves her from the queue to the agent's tab; closing it resolves her.
    async with context.sessions() as session, session.begin():
        ticket = await _ticket(context, ids["Ana Souza"])
        await tickets.assign_ticket(session, tenant_id, ticket, other, utcnow(), others)
    assert await _listed(context, tenant_id, tab=InboxTab.UNASSIGNED) == []
    assert names(await _listed(context, tenant_id, others, tab=InboxTab.MINE, user_id=other)) == ["Ana Souza"]
    async with context.sessions() as session, session.begin():
        await tickets.close_ticket(session, tenant_id, ticket, TicketCloseReason.MANUAL, utcnow(), others)
    assert names(await _listed(context, tenant_id, status=ConversationState.RESOLVED)) == [
        "Caio Rocha",
        "Ana Souza",
    ]
    # Her next message opens a new, unassigned ticket.
    await _writes(context, tenant_id, instance_id, _text(ANA, 30, "Mais uma dúvida"))
    [ana] = await _listed(context, tenant_id, tab=InboxTab.UNASSIGNED)
    assert (ana.last_message.preview, ana.ticket.status, ana.ticket.assignee_id) == (
        "Mais uma dúvida",
        "open",
        None,
    )
    assert ana.ticket.id != ticket


async def test_search_by_name_phone_fragment_either_brazilian_form_and_text(context: EngineContext) -> None:
    tenant_id, *_ = await _inbox(context)
    elsewhere = await create_tenant(context, "Outra")
    sim, _ = await bind(
        context, elsewhere, provider="simulator", display_number="+551140028922", instance_name="o"
    )
    await _writes(context, elsewhere, sim.id, _text(ANA, 5, "sofá também", contact_name="Ana Souza"))

    async def found(typed: str) -> list[str | None]:
        return [item.contact.name for item in await _listed(context, tenant_id, search=typed)]

    assert await found("souza") == ["Ana Souza"]
    assert await found("7654-321") == ["Ana Souza"]  # any fragment of digits
    assert await found("(21) 99876-5432") == ["Bruno Lima"]
    assert await found("21 9876-5432") == ["Bruno Lima"]  # the form without the ninth digit
    assert await found("SOFÁ") == ["Ana Souza"]  # message text, either case
    assert await found("brigad") == ["Caio Rocha"]
    assert await found("bom dia") == ["Bruno Lima"]  # the team's own messages too
    assert await found("%") == []  # LIKE's wildcards are taken literally
    assert await found("zz") == []  # under three characters: names and phones only


async def test_a_text_common_in_the_messages_finds_the_same_conversations_page_by_page(
    context: EngineContext,
) -> None:
    tenant_id, instance_id, *_, ids = await _inbox(context)
    # So many messages hold the word that PostgreSQL walks the activity order instead of joining.
    async with context.sessions() as session, session.begin():
        conversation = await session.get(Conversation, ids["Ana Souza"])
        assert conversation is not None
        await session.execute(
            insert(Message),
            [
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "instance_id": instance_id,
                    "conversation_id": conversation.id,
                    "contact_id": conversation.contact_id,
                    "direction": "inbound",
                    "sender_type": "lead",
                    "type": "text",
                    "content": f"A geladeira {n} chegou",
                    "status": "received",
                }
                for n in range(COMMON_MATCHES)
            ],
        )
    await _writes(context, tenant_id, instance_id, _text(CAIO, 9, "E a GELADEIRA?"))
    pages, cursor = [], None
    while True:
        async with context.sessions() as session:
            page = await service.list_conversations(
                session, tenant_id, cursor=cursor, limit=1, narrowed=ConversationFilter(search="geladeira")
            )
        pages += [item.contact.name for item in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == ["Caio Rocha", "Ana Souza"]
    assert [item.contact.name for item in await _listed(context, tenant_id, search="Souza")] == ["Ana Souza"]


async def test_the_cursor_pages_through_in_activity_order(context: EngineContext) -> None:
    tenant_id, *_ = await _inbox(context)
    seen, cursor = [], None
    while True:
        async with context.sessions() as session:
            page = await service.list_conversations(session, tenant_id, cursor=cursor, limit=1)
        seen += [item.contact.name for item in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["Bruno Lima", "Caio Rocha", "Ana Souza"]


async def test_the_chat_folds_reactions_and_shows_quotes_newest_first_on_request(
    context: EngineContext,
) -> None:
    tenant_id = await create_tenant(context)
    instance, _ = await bind(
        context, tenant_id, provider="simulator", display_number="+551140028922", instance_name="c"
    )
    messages = [
        _text(ANA, 1, "Tem azul?", id="SIM-1"),
        _text(ANA, 2, "e verde?", id="SIM-2", quoted_message_id="SIM-1"),
        InboundMessage(
            "SIM-3",
            ANA,
            MessageType.REACTION,
            START + timedelta(minutes=3),
            text="👍",
            extra={"message_id": "SIM-1"},
        ),
        InboundMessage(
            "SIM-4",
            ANA,
            MessageType.REACTION,
            START + timedelta(minutes=4),
            text="❤️",
            extra={"message_id": "SIM-1"},
        ),
        InboundMessage(
            "SIM-5",
            ANA,
            MessageType.REACTION,
            START + timedelta(minutes=5),
            text=None,
            extra={"message_id": "SIM-2"},
        ),
        InboundMessage(
            "SIM-6",
            ANA,
            MessageType.LOCATION,
            START + timedelta(minutes=6),
            extra={"latitude": -23.55, "longitude": -46.63, "name": "Loja Centro"},
        ),
        _text(ANA, 7, "Responde?", id="SIM-7", quoted_message_id="SIM-404"),
    ]
    for message in messages:
        await _writes(context, tenant_id, instance.id, message)
    async with context.sessions() as session:
        conversation_id = str(
            await session.scalar(select(Conversation.id).where(Conversation.tenant_id == tenant_id))
        )

    async def page(**options: Any) -> Any:
        async with context.sessions() as session:
            return await service.list_messages(session, tenant_id, conversation_id, **options)

    chat = (await page(cursor=None, limit=50)).items
    assert [m.provider_message_id for m in chat] == ["SIM-1", "SIM-2", "SIM-6", "SIM-7"]
    first, second, place, unknown = chat
    assert [(r.emoji, r.direction) for r in first.reactions] == [("❤️", "inbound")]
    assert second.reactions == []  # taken back
    assert second.quoted is not None
    assert (second.quoted.id, second.quoted.preview) == (first.id, "Tem azul?")
    assert place.location is not None
    assert (place.location.latitude, place.location.name) == (-23.55, "Loja Centro")
    assert unknown.quoted is not None
    assert (unknown.quoted.id, unknown.quoted.provider_message_id) == (
        None,
        "SIM-404",
    )

    newest = await page(cursor=None, limit=3, order=MessageOrder.DESC)
    assert [m.provider_message_id for m in newest.items] == ["SIM-7", "SIM-6", "SIM-2"]
    older = await page(cursor=newest.next_cursor, limit=3, order=MessageOrder.DESC)
    assert ([m.provider_message_id for m in older.items], older.next_cursor) == (["SIM-1"], None)
