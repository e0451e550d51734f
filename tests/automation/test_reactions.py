"""Intents and auto-reply rules on the ingest batch, on both databases: what a customer's message
publishes and fires, once however often it is delivered, and never where a guard forbids it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from messaging_whatsapp.automation import service
from messaging_whatsapp.automation.schemas import BusinessHoursIn, IntentIn, IntentsIn
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Conversation, TicketCloseReason
from messaging_whatsapp.inbox.tickets import assign_ticket, close_ticket
from messaging_whatsapp.streams.base import StreamEntry
from messaging_whatsapp.worker.inbound import prepare
from messaging_whatsapp.worker.ingest import apply_entries
from tests.automation.helpers import (
    apply,
    automatic_messages,
    create_rule,
    firings,
    message,
    outbox_payloads,
    tenant_with_number,
    tickets,
)
from tests.helpers import create_user, example_bytes

GREETING = {"name": "Saudação", "when": {"type": "new_ticket"}, "then": {"type": "buttons"}}


async def test_a_keyword_intent_is_published_once_though_the_webhook_comes_twice(
    context: EngineContext,
) -> None:
    tenant_id, instance_id = await tenant_with_number(context)
    asked = message("Qual o PREÇO disso?")
    first = await apply(context, tenant_id, instance_id, asked, key="inbound:1-0")
    # The same stream entry again (redelivered), and the same message in a new webhook request.
    again = await apply(context, tenant_id, instance_id, asked, key="inbound:1-0")
    await apply(context, tenant_id, instance_id, asked, key="inbound:2-0")
    await apply(context, tenant_id, instance_id, message("Quanto custa o preçário?"))
    await apply(context, tenant_id, instance_id, message("Bom dia"))

    assert (first.entries_applied, again.entries_already_processed) == (1, 1)
    [event] = await outbox_payloads(context, tenant_id, "whatsapp_action_requested")
    [ticket] = await tickets(context, tenant_id)
    assert event["intent"] == "create_quote"
    assert event["source"] == "keyword"
    assert event["from_phone"] == "+5511987654321"
    assert event["instance_id"] == instance_id
    assert event["context"]["ticket_id"] == ticket.id
    assert event["context"]["conversation_id"] == ticket.conversation_id
    assert event["context"]["message_id"]


async def test_a_button_intent_is_published_once_and_tenants_map_their_own_payloads(
    context: EngineContext,
) -> None:
    tenant_id, instance_id = await tenant_with_number(context)
    tapped = message("Status do pedido", payload="order_status")
    await apply(context, tenant_id, instance_id, tapped)
    await apply(context, tenant_id, instance_id, tapped)
    async with context.sessions() as session, session.begin():
        own = IntentsIn(
            intents=[IntentIn(name="create_quote", keywords=["quanto custa"], button_payloads=["BTN_Q"])]
        )
        await service.replace_intents(session, tenant_id, own, utcnow())
    await apply(context, tenant_id, instance_id, message("Orçamento", payload="BTN_Q"))
    # The tenant's list replaced the seed's: "pedido" is no intent now, "quanto custa" is.
    await apply(context, tenant_id, instance_id, message("meu pedido"))
    await apply(context, tenant_id, instance_id, message("Quanto   CUSTA?"))

    events = await outbox_payloads(context, tenant_id, "whatsapp_action_requested")
    assert [(e["intent"], e["source"]) for e in events] == [
        ("order_status", "button"),
        ("create_quote", "button"),
        ("create_quote", "keyword"),
    ]


async def test_talk_to_human_flags_the_ticket_unassigns_it_and_stops_the_rules(
    context: EngineContext,
) -> None:
    tenant_id, instance_id = await tenant_with_number(context)
    agent_id = await create_user(context, tenant_id, "bia@loja.com.br", role="agent")
    await apply(context, tenant_id, instance_id, message("Oi"))
    [ticket] = await tickets(context, tenant_id)
    async with context.sessions() as session, session.begin():
        await assign_ticket(session, tenant_id, ticket.id, agent_id, utcnow())
    await create_rule(
        context,
        tenant_id,
        name="Pedido",
        when={"type": "keyword", "keywords": ["pedido"]},
        then={"type": "text", "text": "Vou ver"},
    )
    await create_rule(
        context,
        tenant_id,
        name="Já vem",
        when={"type": "intent", "intent": "talk_to_human"},
        then={"type": "text", "text": "Um atendente já vai falar com você."},
    )
    await create_rule(
        context,
        tenant_id,
        name="Para a Bia",
        when={"type": "keyword", "keywords": ["pedido"]},
        then={"type": "assign", "user_id": agent_id},
    )

    await apply(context, tenant_id, instance_id, message("Quero falar com um atendente, por favor"))
    [ticket] = await tickets(context, tenant_id)
    assert ticket.wants_person_at is not None
    assert ticket.assignee_id is None
    async with context.sessions() as session:
        conversation = await session.get(Conversation, ticket.conversation_id)
    assert conversation is not None
    assert conversation.assignee_id is None
    assigned = await outbox_payloads(context, tenant_id, "whatsapp_ticket_assigned")
    assert assigned[-1] == {
        "ticket_id": ticket.id,
        "conversation_id": ticket.conversation_id,
        "status": "open",
        "assignee_id": None,
        "wants_person": True,
    }
    # The acknowledgement of the asking message went; afterwards no send rule fires on the
    # ticket, though an assign rule still routes it to a person.
    await apply(context, tenant_id, instance_id, message("cadê meu pedido?"))
    assert [m.content for m in await automatic_messages(context, tenant_id)] == [
        "Um atendente já vai falar com você."
    ]
    [ticket] = await tickets(context, tenant_id)
    assert ticket.assignee_id == agent_id


async def test_the_greeting_buttons_go_once_per_new_ticket(context: EngineContext) -> None:
    tenant_id, instance_id = await tenant_with_number(context)
    await create_rule(context, tenant_id, **GREETING)

    first = await apply(context, tenant_id, instance_id, message("Oi"))
    await apply(context, tenant_id, instance_id, message("Tudo bem?"))
    [greeting] = await automatic_messages(context, tenant_id)
    assert greeting.type == "interactive"
    assert greeting.direction == "outbound"
    assert greeting.extra == {
        "buttons": [
            {"id": "create_quote", "title": "Fazer cotação"},
            {"id": "order_status", "title": "Status do pedido"},
            {"id": "talk_to_human", "title": "Falar com atendente"},
        ]
    }
    assert first.offers == [(greeting.id, tenant_id)]
    [ticket] = await tickets(context, tenant_id)
    assert greeting.ticket_id == ticket.id
    queued = await outbox_payloads(context, tenant_id, "whatsapp_message_queued")
    assert [(q["message_id"], q["sender_type"]) for q in queued] == [(greeting.id, "system")]

    async with context.sessions() as session, session.begin():
        await close_ticket(session, tenant_id, ticket.id, TicketCloseReason.MANUAL, utcnow())
    await apply(context, tenant_id, instance_id, message("Oi de novo"))
    assert len(await automatic_messages(context, tenant_id)) == 2
    assert [f.outcome for f in await firings(context, tenant_id)] == ["queued", "queued"]


async def test_no_rule_answers_an_echo_a_group_or_an_opted_out_person(context: EngineContext) -> None:
    tenant_id, instance_id = await tenant_with_number(context)
    await create_rule(context, tenant_id, **GREETING)
    await create_rule(
        context,
        tenant_id,
        name="Tudo",
        when={"type": "keyword", "keywords": ["loja"]},
        then={"type": "text", "text": "Olá"},
    )

    # The business's own message echoed back (typed on the phone, or a campaign's).
    await apply(context, tenant_id, instance_id, message("Oi, a loja abriu", from_me=True))
    # A group's message, as Evolution posts it, through the worker's own parsing.
    fields = {
        "provider": "evolution",
        "body": example_bytes("evolution_messages_upsert_group.json").decode(),
        "content_type": "application/json",
        "url": "",
        "received_at": utcnow().isoformat(),
        "tenant_id": tenant_id,
        "instance_id": instance_id,
    }
    group = prepare(StreamEntry("inbound", "7-0", fields, deliveries=1))
    async with context.sessions() as session, session.begin():
        result = await apply_entries(session, [group.ingest], "events")
    assert result.ignored["group"] == 1
    # A person who opts out: neither the opt-out nor what they write next is answered.
    await apply(context, tenant_id, instance_id, message("SAIR", phone="5511955554444"))
    await apply(context, tenant_id, instance_id, message("a loja abre hoje?", phone="5511955554444"))

    assert await automatic_messages(context, tenant_id) == []
    assert await firings(context, tenant_id) == []
    assert await outbox_payloads(context, tenant_id, "whatsapp_action_requested") == []


async def test_out_of_hours_replies_with_the_away_message_in_the_tenant_time_zone(
    context: EngineContext,
) -> None:
    # Tokyo is UTC+9: open 09:00-18:00 there is 00:00-09:00 UTC.
    tenant_id, instance_id = await tenant_with_number(context, timezone="Asia/Tokyo")
    async with context.sessions() as session, session.begin():
        hours = BusinessHoursIn(schedule={"mon": [["09:00", "18:00"]]}, away_message="Voltamos às 9h.")
        await service.change_business_hours(session, tenant_id, hours, utcnow())
    await create_rule(
        context, tenant_id, name="Fora do horário", when={"type": "outside_hours"}, then={"type": "text"}
    )

    monday_10_tokyo = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    monday_21_tokyo = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    await apply(context, tenant_id, instance_id, message("Oi", phone="5511911110001", at=monday_10_tokyo))
    await apply(context, tenant_id, instance_id, message("Oi", phone="5511911110002", at=monday_21_tokyo))
    await apply(context, tenant_id, instance_id, message("Alô?", phone="5511911110002", at=monday_21_tokyo))

    [away] = await automatic_messages(context, tenant_id)
    assert away.content == "Voltamos às 9h."
    async with context.sessions() as session:
        contact_phone = await session.scalar(
            select(Conversation.contact_id).where(Conversation.id == away.conversation_id)
        )
    assert contact_phone is not None


async def test_asking_for_a_person_out_of_hours_still_gets_the_away_message(context: EngineContext) -> None:
    tenant_id, instance_id = await tenant_with_number(context, timezone="Asia/Tokyo")
    async with context.sessions() as session, session.begin():
        hours = BusinessHoursIn(schedule={"mon": [["09:00", "18:00"]]}, away_message="Voltamos às 9h.")
        await service.change_business_hours(session, tenant_id, hours, utcnow())
    await create_rule(
        context, tenant_id, name="Fora do horário", when={"type": "outside_hours"}, then={"type": "text"}
    )
    await create_rule(
        context,
        tenant_id,
        name="Saudação",
        when={"type": "new_ticket"},
        then={"type": "text", "text": "Olá! Em que posso ajudar?"},
    )
    monday_21_tokyo = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    await apply(context, tenant_id, instance_id, message("Quero falar com um atendente", at=monday_21_tokyo))

    # The bot's greeting stays quiet; the away message says when a person will be there.
    assert [m.content for m in await automatic_messages(context, tenant_id)] == ["Voltamos às 9h."]
    [ticket] = await tickets(context, tenant_id)
    assert ticket.wants_person_at is not None
