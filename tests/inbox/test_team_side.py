"""Tickets with the team's side (seed 003), on both databases: every message joins its
conversation's open ticket (an agent's, an API key's, a campaign's), an outbound that starts a
session opens one, messages record who sent them, first touches of the people a campaign or an
import brings, closing a lost ticket with its outcome, and UTM attribution from an ad's URL or
the first message's link."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.campaigns import contacts, lifecycle, service
from messaging_whatsapp.campaigns.dispatcher import Dispatcher
from messaging_whatsapp.campaigns.importing import read_csv
from messaging_whatsapp.campaigns.lifecycle import Action
from messaging_whatsapp.campaigns.queries import get_campaign
from messaging_whatsapp.campaigns.schemas import CampaignCreate
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.inbox import tickets
from messaging_whatsapp.inbox.attribution import utm_from_text, utm_from_url
from messaging_whatsapp.inbox.models import Contact, Message, SenderType, Ticket, TicketCloseReason
from messaging_whatsapp.inbox.service import message_item
from messaging_whatsapp.providers.events import InboundMessage, MessageType, Referral
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.sending.service import QueuedMessage, Submission, queue_messages
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.tenancy import users
from messaging_whatsapp.worker.ingest import apply_entries
from tests.helpers import bind, create_tenant, create_user, published_events

PHONE = "5511987654321"
# Monday 2026-11-23 10:00 in São Paulo (inside a campaign's default send window).
MONDAY_10 = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


async def _number(context: EngineContext, tenant_id: str) -> str:
    instance, _ = await bind(
        context,
        tenant_id,
        provider="simulator",
        display_number="+551140028922",
        instance_name=f"sim-{new_id()[-12:]}",
    )
    return instance.id


async def _customer_writes(
    context: EngineContext,
    tenant_id: str,
    instance_id: str,
    text: str = "Oi",
    phone: str = PHONE,
    referral: Referral | None = None,
) -> None:
    message = InboundMessage(
        f"SIM-{new_id()}", phone, MessageType.TEXT, utcnow(), text=text, referral=referral
    )
    async with context.sessions() as session, session.begin():
        await apply_entries(
            session, [IngestEntry(new_id(), tenant_id, instance_id, utcnow(), [message])], "events"
        )


async def _send(context: EngineContext, submission: Submission) -> Message:
    async with context.sessions() as session, session.begin():
        [result] = await queue_messages(session, [submission], utcnow())
    assert isinstance(result, QueuedMessage), result
    return result.message


async def _tickets(context: EngineContext, tenant_id: str) -> list[Ticket]:
    async with context.sessions() as session:
        query = select(Ticket).where(Ticket.tenant_id == tenant_id).order_by(Ticket.created_at, Ticket.id)
        return list((await session.scalars(query)).all())


async def _messages(context: EngineContext, tenant_id: str) -> list[Message]:
    async with context.sessions() as session:
        query = select(Message).where(Message.tenant_id == tenant_id).order_by(Message.created_at, Message.id)
        return list((await session.scalars(query)).all())


async def _contact(context: EngineContext, tenant_id: str, phone: str) -> Contact:
    async with context.sessions() as session:
        found = await session.scalar(
            select(Contact).where(Contact.tenant_id == tenant_id, Contact.phone == phone)
        )
        assert found is not None
        return found


async def test_an_agents_send_joins_the_open_ticket_and_records_the_agent(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    instance_id = await _number(context, tenant_id)
    agent_id = await create_user(context, tenant_id, "ana@loja.com.br", role="agent")
    await _customer_writes(context, tenant_id, instance_id)
    reply = SendMessageRequest(to=f"+{PHONE}", instance_id=instance_id, text="Já vamos ver")

    sent = await _send(context, Submission(tenant_id, reply, sender_user_id=agent_id))

    [ticket] = await _tickets(context, tenant_id)
    item = message_item(sent)
    assert (item.ticket_id, item.sender_user_id, item.sender_name) == (ticket.id, agent_id, "ana@loja.com.br")
    async with context.sessions() as session, session.begin():
        await users.delete_user(session, tenant_id, agent_id)
    stored = [m for m in await _messages(context, tenant_id) if m.id == sent.id]
    assert [(m.ticket_id, m.sender_user_id, m.sender_name) for m in stored] == [
        (ticket.id, None, "ana@loja.com.br")
    ]


async def test_an_outbound_to_a_new_person_opens_a_ticket_the_reply_joins(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    instance_id = await _number(context, tenant_id)
    async with context.sessions() as session, session.begin():
        key, _ = await tenancy_service.create_api_key(session, tenant_id, "crm")
    first = SendMessageRequest(to=f"+{PHONE}", instance_id=instance_id, text="Seu pedido saiu")

    sent = await _send(context, Submission(tenant_id, first, sender_api_key_id=key.id))
    await _customer_writes(
        context, tenant_id, instance_id, "Obrigada! https://loja.example/?utm_source=email"
    )
    again = await _send(context, Submission(tenant_id, first.model_copy(update={"text": "De nada"})))
    await _customer_writes(context, tenant_id, instance_id, "https://loja.example/?utm_source=later")

    [ticket] = await _tickets(context, tenant_id)
    # The customer's first message brings its UTM link; the ticket keeps its origin.
    assert (ticket.status, ticket.source, ticket.medium, ticket.utm_source) == (
        "open",
        "outbound",
        "agent",
        "email",
    )
    assert [(m.direction, m.ticket_id) for m in await _messages(context, tenant_id)] == [
        ("outbound", ticket.id),
        ("inbound", ticket.id),
        ("outbound", ticket.id),
        ("inbound", ticket.id),
    ]
    assert (sent.sender_user_id, sent.sender_name, again.sender_name) == (None, "API key crm", None)
    contact = await _contact(context, tenant_id, f"+{PHONE}")
    assert (contact.first_source, contact.first_medium) == ("outbound", "agent")


async def _campaign(context: EngineContext, tenant_id: str, instance_id: str, phones: list[str]) -> str:
    body = {
        "name": "Black Friday",
        "instance_ids": [instance_id],
        "messages": [{"content": "Oi {{name}}, 20% hoje"}],
        "contacts": [{"phone": phone} for phone in phones],
        "settings": {"interval_min_s": 0, "interval_max_s": 0, "warmup": False},
    }
    async with context.sessions() as session, session.begin():
        campaign, _ = await service.create_campaign(
            session, tenant_id, CampaignCreate.model_validate(body), user_id=None, now=MONDAY_10
        )
        await lifecycle.transition(session, tenant_id, campaign.id, Action.START, user_id=None, now=MONDAY_10)
    return campaign.id


async def test_campaign_messages_join_or_open_tickets_and_first_touch(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    instance_id = await _number(context, tenant_id)
    await _customer_writes(context, tenant_id, instance_id)  # already talking, with an open ticket
    [talking] = await _tickets(context, tenant_id)
    newcomers = ["+5511991100001", "+5511991100002"]
    campaign_id = await _campaign(context, tenant_id, instance_id, [f"+{PHONE}", *newcomers])

    dispatcher = Dispatcher(context, clock=lambda: MONDAY_10, rng=random.Random(1))
    while (await dispatcher.dispatch(campaign_id)).handed:
        pass

    sent = [m for m in await _messages(context, tenant_id) if m.sender_type == SenderType.CAMPAIGN.value]
    found = {t.id: t for t in await _tickets(context, tenant_id)}
    assert len(sent) == 3
    assert all(m.ticket_id in found for m in sent)
    old = await _contact(context, tenant_id, f"+{PHONE}")
    assert [found[m.ticket_id].id for m in sent if m.contact_id == old.id] == [talking.id]
    opened = [t for t in found.values() if t.id != talking.id]
    assert [(t.status, t.source, t.campaign) for t in opened] == [("open", "campaign", "Black Friday")] * 2
    new = await _contact(context, tenant_id, newcomers[0])
    assert (old.first_source, new.first_source, new.first_campaign) == (
        "whatsapp",
        "campaign",
        "Black Friday",
    )

    async with context.sessions() as session, session.begin():
        campaign = await get_campaign(session, tenant_id, campaign_id, lock=True)
        await contacts.add_contacts(
            session, campaign, read_csv("phone\n+5511991100009\n"), now=MONDAY_10, imported=True
        )
    imported = await _contact(context, tenant_id, "+5511991100009")
    assert (imported.first_source, imported.first_campaign) == ("import", "Black Friday")


async def test_a_lost_ticket_needs_and_keeps_its_outcome(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    await _customer_writes(context, tenant_id, await _number(context, tenant_id))
    [ticket] = await _tickets(context, tenant_id)
    lost = TicketCloseReason.LOST

    async with context.sessions() as session, session.begin():
        with pytest.raises(InvalidInput) as refused:
            await tickets.close_ticket(session, tenant_id, ticket.id, lost, utcnow(), outcome="  ")
        assert refused.value.code == "outcome_required"
        closed, event = await tickets.close_ticket(
            session, tenant_id, ticket.id, lost, utcnow(), outcome=" lost_price: achou caro "
        )
    assert (closed.status, closed.close_reason, closed.outcome) == (
        "closed",
        "lost",
        "lost_price: achou caro",
    )
    assert event.event().payload["outcome"] == "lost_price: achou caro"
    assert [(t.close_reason, t.outcome) for t in await _tickets(context, tenant_id)] == [
        ("lost", "lost_price: achou caro")
    ]
    assert await published_events(context, "whatsapp_ticket_closed") == []  # the API writes the event


async def test_utm_from_an_ads_url_and_from_the_first_messages_link(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    instance_id = await _number(context, tenant_id)
    ad = Referral(
        source_url="https://fb.me/4Kq8?utm_source=facebook&utm_medium=paid&utm_campaign=frete&utm_content=video",
        source_id="120210987654321098",
        source_type="ad",
        headline="Promoção de Novembro",
        click_id="ARAk",
    )
    await _customer_writes(context, tenant_id, instance_id, "Quero o frete grátis", referral=ad)
    link = "Vi isso: https://loja.example/tenis?utm_source=google&utm_medium=cpc&utm_campaign=natal&utm_term=tenis+42."
    other = "5521976543210"
    await _customer_writes(context, tenant_id, instance_id, link, phone=other)
    await _customer_writes(context, tenant_id, instance_id, "https://x.example/?utm_source=late", phone=other)

    by_ad, by_link = await _tickets(context, tenant_id)
    assert (by_ad.source, by_ad.medium, by_ad.campaign, by_ad.ad_id, by_ad.click_id) == (
        "ctwa",
        "ad",
        "Promoção de Novembro",
        "120210987654321098",
        "ARAk",
    )
    utm = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
    assert [getattr(by_ad, key) for key in utm] == ["facebook", "paid", "frete", "video", None]
    assert (by_link.source, by_link.medium, by_link.campaign) == ("google", "cpc", "natal")
    assert [getattr(by_link, key) for key in utm] == ["google", "cpc", "natal", None, "tenis 42"]
    contact = await _contact(context, tenant_id, f"+{other}")
    assert (contact.first_source, contact.first_medium, contact.first_campaign) == ("google", "cpc", "natal")


def test_utm_parsing() -> None:
    assert utm_from_url("wa.me/551140028922?text=oi&utm_source=site&utm_campaign=") == {"utm_source": "site"}
    assert utm_from_url("https://loja.example/") == {}
    assert utm_from_url(None) == {}
    assert utm_from_text("sem link, só utm_source no texto") == {}
    text = "veja https://a.example/x e (www.loja.example/p?utm_medium=email&utm_source=news)"
    assert utm_from_text(text) == {"utm_medium": "email", "utm_source": "news"}
    assert len(utm_from_url("https://a.example/?utm_source=" + "x" * 300)["utm_source"]) == 200
