"""What rules do, on both databases: a keyword rule on its numbers only, assign and close, a rule
that fires on every message, and a send the sending rules refuse, recorded on its firing while the
batch goes on."""

from __future__ import annotations

from sqlalchemy import select

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.followups.models import FollowUp
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
from tests.helpers import EVOLUTION_API_KEY, bind, create_user


async def test_a_keyword_rule_answers_on_its_numbers_only(context: EngineContext) -> None:
    tenant_id, instance_id = await tenant_with_number(context)
    other, _ = await bind(
        context, tenant_id, provider="simulator", display_number="+551140028923", instance_name="sim-b"
    )
    await create_rule(
        context,
        tenant_id,
        name="Horário",
        instance_ids=[instance_id],
        when={"type": "keyword", "keywords": ["horario", "que horas"]},
        then={"type": "text", "text": "Abrimos às 8h."},
        once_per_ticket=False,
    )
    await apply(context, tenant_id, instance_id, message("Que HORAS vocês abrem?"))
    await apply(context, tenant_id, instance_id, message("qual o horário de sábado?"))
    await apply(context, tenant_id, instance_id, message("horas extras"))
    await apply(context, tenant_id, other.id, message("Que horas abre?", phone="5511922223333"))

    sent = await automatic_messages(context, tenant_id)
    assert [(m.content, m.instance_id) for m in sent] == [("Abrimos às 8h.", instance_id)] * 2


async def test_assign_and_close_rules_change_the_ticket(context: EngineContext) -> None:
    tenant_id, instance_id = await tenant_with_number(context)
    seller = await create_user(context, tenant_id, "vendas@loja.com.br", role="agent")
    await create_rule(
        context,
        tenant_id,
        name="Cotação para vendas",
        when={"type": "intent", "intent": "create_quote"},
        then={"type": "assign", "user_id": seller},
    )
    await create_rule(
        context,
        tenant_id,
        name="Encerrar",
        when={"type": "keyword", "keywords": ["obrigado"]},
        then={"type": "close"},
    )
    await apply(context, tenant_id, instance_id, message("Quero um orçamento"))
    [ticket] = await tickets(context, tenant_id)
    assert ticket.assignee_id == seller
    await apply(context, tenant_id, instance_id, message("Obrigado!"))
    [ticket] = await tickets(context, tenant_id)
    assert (ticket.status, ticket.close_reason) == ("closed", "manual")
    [closed] = await outbox_payloads(context, tenant_id, "whatsapp_ticket_closed")
    assert closed["ticket_id"] == ticket.id
    assert [f.outcome for f in await firings(context, tenant_id)] == ["assigned", "closed"]


async def test_a_send_the_sending_rules_refuse_is_recorded_on_its_firing(context: EngineContext) -> None:
    tenant_id, _ = await tenant_with_number(context)
    evolution, _ = await bind(
        context,
        tenant_id,
        provider="evolution",
        display_number="+551140028924",
        instance_name="loja-evo",
        api_url="http://127.0.0.1:9/evolution",
        api_key=EVOLUTION_API_KEY,
    )
    await create_rule(
        context,
        tenant_id,
        name="Modelo",
        when={"type": "new_ticket"},
        then={"type": "template", "template": {"name": "boas_vindas", "language": "pt_BR"}},
    )
    await create_rule(
        context,
        tenant_id,
        name="Texto",
        position=1,
        when={"type": "new_ticket"},
        then={"type": "text", "text": "Oi!"},
    )
    result = await apply(context, tenant_id, evolution.id, message("Oi"))

    assert result.messages_created == 1
    refused, queued = await firings(context, tenant_id)
    assert (refused.outcome, queued.outcome) == ("refused", "queued")
    assert refused.detail is not None
    assert refused.detail.startswith("template_unsupported")
    assert [m.content for m in await automatic_messages(context, tenant_id)] == ["Oi!"]


async def test_a_follow_up_rule_starts_a_sequence_the_next_reply_cancels(context: EngineContext) -> None:
    tenant_id, instance_id = await tenant_with_number(context)
    steps = [{"delay_seconds": 3600, "text": "Conseguiu ver a cotação?"}]
    rule = await create_rule(
        context,
        tenant_id,
        name="Cotação: acompanhar",
        when={"type": "intent", "intent": "create_quote"},
        then={"type": "follow_up", "steps": steps, "close_ticket": False},
    )
    await apply(context, tenant_id, instance_id, message("Quero um orçamento"))
    [ticket] = await tickets(context, tenant_id)
    assert ticket.status == "follow_up"
    async with context.sessions() as session:
        [follow_up] = (await session.scalars(select(FollowUp).where(FollowUp.ticket_id == ticket.id))).all()
    assert (follow_up.status, follow_up.started_by_rule_id, follow_up.close_ticket) == (
        "running",
        rule,
        False,
    )
    [started] = await outbox_payloads(context, tenant_id, "whatsapp_follow_up_started")
    assert started["follow_up_id"] == follow_up.id
    # The customer's next message (no quote word: the rule stays quiet) ends it.
    await apply(context, tenant_id, instance_id, message("Ainda não, vejo amanhã"))
    [ticket] = await tickets(context, tenant_id)
    async with context.sessions() as session:
        ended = await session.get(FollowUp, follow_up.id, populate_existing=True)
    assert ended is not None
    assert (ticket.status, ended.status, ended.cancel_reason) == ("open", "cancelled", "customer_replied")
    assert [f.outcome for f in await firings(context, tenant_id)] == ["follow_up"]
