"""Campaign templates and WhatsApp's 24-hour window, on both databases: what the official numbers
accept is checked when the campaign is saved, when it starts and as each contact is handed out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from messaging_whatsapp.campaigns import lifecycle, queries, service
from messaging_whatsapp.campaigns.dispatcher import Dispatcher
from messaging_whatsapp.campaigns.lifecycle import Action
from messaging_whatsapp.campaigns.models import Campaign, CampaignContact, CampaignLog
from messaging_whatsapp.campaigns.schemas import CampaignCreate, CampaignDetail, CampaignUpdate
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.inbox.models import Contact, Conversation, Message
from messaging_whatsapp.templates.models import MessageTemplateRow
from tests.campaigns.test_dispatcher import MONDAY_10, Clock
from tests.helpers import approved_template, bind, create_tenant

TEMPLATE = {"template": {"name": "promo_natal", "language": "pt_BR", "parameters": ["{{name}}", "{{cupom}}"]}}
SETTINGS = {"interval_min_s": 0, "interval_max_s": 0, "warmup": False}


async def _meta(context: EngineContext, tenant_id: str, index: int = 0) -> str:
    instance, _ = await bind(
        context,
        tenant_id,
        provider="meta",
        display_number=f"+55114003300{index}",
        phone_number_id=f"20928374650{index}",
        waba_id="104857293847561",
        access_token="EAAG",
        app_secret="x" * 32,
    )
    await approved_template(context, tenant_id, instance, "promo_natal", 2)
    return instance.id


async def _evolution(context: EngineContext, tenant_id: str) -> str:
    instance, _ = await bind(
        context,
        tenant_id,
        provider="evolution",
        display_number="+551140033999",
        instance_name="loja-evo",
        api_url="http://127.0.0.1:9/evolution",
        api_key="evo-key-123456",
    )
    return instance.id


def _body(numbers: list[str], messages: list[dict[str, Any]], contacts: int = 3) -> dict[str, Any]:
    return {
        "name": "Natal",
        "instance_ids": numbers,
        "messages": messages,
        "contacts": [
            {"phone": f"+55119933{index:05d}", "name": f"Cliente {index}", "variables": {"cupom": "NATAL"}}
            for index in range(contacts)
        ],
        "settings": SETTINGS,
    }


async def _create(context: EngineContext, tenant_id: str, body: dict[str, Any]) -> Campaign:
    async with context.sessions() as session, session.begin():
        campaign, _ = await service.create_campaign(
            session, tenant_id, CampaignCreate.model_validate(body), user_id=None, now=MONDAY_10
        )
    return campaign


async def _start(context: EngineContext, tenant_id: str, campaign_id: str) -> None:
    async with context.sessions() as session, session.begin():
        await lifecycle.transition(session, tenant_id, campaign_id, Action.START, user_id=None, now=MONDAY_10)


async def _wrote(context: EngineContext, tenant_id: str, instance_id: str, phones: list[str]) -> None:
    """These people wrote to the number an hour before MONDAY_10 (their window is open)."""
    async with context.sessions() as session, session.begin():
        contacts = await session.execute(
            select(Contact.id).where(Contact.tenant_id == tenant_id, Contact.phone.in_(phones))
        )
        for (contact_id,) in contacts:
            session.add(
                Conversation(
                    tenant_id=tenant_id,
                    contact_id=contact_id,
                    instance_id=instance_id,
                    last_inbound_at=MONDAY_10 - timedelta(hours=1),
                )
            )


def test_a_variation_is_a_text_or_a_template() -> None:
    with pytest.raises(ValueError, match="exactly one of content or template"):
        CampaignCreate.model_validate(_body([], [{"content": "Oi", **TEMPLATE}]))
    with pytest.raises(ValueError, match="exactly one of content or template"):
        CampaignCreate.model_validate(_body([], [{"order": 1}]))
    media = {"type": "image", "url": "https://cdn.exemplo.com.br/a.jpg"}
    with pytest.raises(ValueError, match="takes no media"):
        CampaignCreate.model_validate(_body([], [{**TEMPLATE, "media": media}]))


async def test_templates_on_a_gateway_are_refused_when_saved(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    evolution = await _evolution(context, tenant_id)
    with pytest.raises(InvalidInput) as refused:
        await _create(context, tenant_id, _body([evolution], [TEMPLATE]))
    assert refused.value.code == "template_unsupported"
    assert "loja-evo" in refused.value.message
    # With a text variation too, the gateway sends the text: accepted.
    campaign = await _create(context, tenant_id, _body([evolution], [TEMPLATE, {"content": "Oi {{name}}"}]))
    async with context.sessions() as session, session.begin():
        with pytest.raises(InvalidInput) as edited:
            await service.update_campaign(
                session,
                tenant_id,
                campaign.id,
                CampaignUpdate(messages=[TEMPLATE]),
                user_id=None,
                now=MONDAY_10,
            )
    assert edited.value.code == "template_unsupported"


async def test_a_text_over_a_numbers_limit_is_refused(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    twilio, _ = await bind(
        context,
        tenant_id,
        provider="twilio",
        display_number="+551140033777",
        account_sid="AC" + "1" * 32,
        auth_token="t" * 32,
    )
    with pytest.raises(InvalidInput) as refused:
        await _create(context, tenant_id, _body([twilio.id], [{"content": "palavra " * 250}]))
    assert refused.value.code == "text_too_long"
    assert refused.value.details["limit"] == 1600
    audio = {"type": "audio", "url": "https://cdn.exemplo.com.br/a.ogg"}
    with pytest.raises(InvalidInput) as lost:
        await _create(context, tenant_id, _body([twilio.id], [{"content": "Ouça!", "media": audio}]))
    assert lost.value.code == "caption_unsupported"


async def test_free_form_outside_the_window_cannot_start_on_official_numbers(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    meta = await _meta(context, tenant_id)
    campaign = await _create(context, tenant_id, _body([meta], [{"content": "Oi {{name}}"}]))
    await _wrote(context, tenant_id, meta, ["+5511993300000"])
    with pytest.raises(InvalidInput) as refused:
        await _start(context, tenant_id, campaign.id)
    assert refused.value.code == "template_required"
    assert "+551140033000" in refused.value.message
    assert refused.value.details["instances"] == [{"id": meta, "name": "+551140033000", "contacts": 2}]
    # Everyone wrote in the last 24 hours: free-form text may go.
    await _wrote(context, tenant_id, meta, ["+5511993300001", "+5511993300002"])
    await _start(context, tenant_id, campaign.id)


async def test_each_contact_gets_what_its_window_allows_at_dispatch(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    meta = await _meta(context, tenant_id)
    messages = [{"content": "Oi {{name}}, cupom {{cupom}}"}, TEMPLATE]
    campaign = await _create(context, tenant_id, _body([meta], messages))
    await _wrote(context, tenant_id, meta, ["+5511993300000"])
    await _start(context, tenant_id, campaign.id)
    assert (await Dispatcher(context, clock=Clock(MONDAY_10)).dispatch(campaign.id)).handed == 3
    async with context.sessions() as session:
        rows = (
            await session.execute(
                select(Contact.phone, Message.type, Message.content, Message.extra)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Message.tenant_id == tenant_id)
                .order_by(Contact.phone)
            )
        ).all()
        detail = await queries.campaign_detail(
            session, await queries.get_campaign(session, tenant_id, campaign.id)
        )
    # The one who wrote gets the text; the others the template, its parameters filled.
    assert [(row.type, row.content) for row in rows] == [
        ("text", "Oi Cliente 0, cupom NATAL"),
        ("template", "promo_natal"),
        ("template", "promo_natal"),
    ]
    assert rows[1].extra == {
        "template": {"name": "promo_natal", "language": "pt_BR", "parameters": ["Cliente 1", "NATAL"]}
    }
    # The API shows the variations as given.
    assert isinstance(detail, CampaignDetail)
    shown = sorted((item.content, item.template) for item in detail.messages if item.template)
    assert shown == [(None, TEMPLATE["template"])]


async def test_free_form_outside_the_window_is_skipped_at_dispatch(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    meta = await _meta(context, tenant_id)
    campaign = await _create(context, tenant_id, _body([meta], [{"content": "Oi {{name}}"}], contacts=2))
    await _wrote(context, tenant_id, meta, ["+5511993300000", "+5511993300001"])
    await _start(context, tenant_id, campaign.id)
    # Two days later the windows have closed: nothing goes, each contact says why.
    later = Dispatcher(context, clock=Clock(MONDAY_10 + timedelta(days=2)))
    assert (await later.dispatch(campaign.id)).handed == 0
    async with context.sessions() as session:
        contacts = list(
            await session.scalars(select(CampaignContact).where(CampaignContact.campaign_id == campaign.id))
        )
        failed_logs = list(
            await session.scalars(
                select(CampaignLog).where(
                    CampaignLog.campaign_id == campaign.id, CampaignLog.log_type == "message_failed"
                )
            )
        )
        stored = await session.scalar(select(Campaign).where(Campaign.id == campaign.id))
        sent = list(await session.scalars(select(Message.id).where(Message.tenant_id == tenant_id)))
    assert [(c.status, c.error_code) for c in contacts] == [("skipped", "outside_service_window")] * 2
    assert len(failed_logs) == 2
    assert all(log.details and log.details["skipped"] for log in failed_logs)
    assert stored is not None
    assert (stored.pending_count, stored.skipped_count) == (0, 2)
    assert sent == []


async def test_a_gateway_number_gets_the_text_variations(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    evolution = await _evolution(context, tenant_id)
    campaign = await _create(context, tenant_id, _body([evolution], [TEMPLATE, {"content": "Oi {{name}}"}]))
    await _start(context, tenant_id, campaign.id)
    dispatcher = Dispatcher(context, clock=Clock(MONDAY_10))
    handed = [(await dispatcher.dispatch(campaign.id)).handed for _ in range(3)]
    assert sum(handed) == 3
    async with context.sessions() as session:
        sent = (
            await session.execute(select(Message.type, Message.content).where(Message.tenant_id == tenant_id))
        ).all()
    assert sorted(sent) == [("text", f"Oi Cliente {index}") for index in range(3)]


async def test_a_template_campaign_starts_only_with_its_template_approved_and_filled(
    context: EngineContext,
) -> None:
    tenant_id = await create_tenant(context)
    simulator, _ = await bind(
        context, tenant_id, provider="simulator", display_number="+551140033555", instance_name="sim-campanha"
    )
    variation = {"template": {"name": "aviso_campanha", "language": "pt_BR", "parameters": ["{{name}}"]}}
    # A draft may be saved while the template is still under review, or not there yet.
    campaign = await _create(context, tenant_id, _body([simulator.id], [variation]))
    with pytest.raises(InvalidInput) as missing:
        await _start(context, tenant_id, campaign.id)
    assert missing.value.code == "template_not_found"
    assert "aviso_campanha (pt_BR)" in missing.value.message
    await approved_template(context, tenant_id, simulator, "aviso_campanha", 2, status="PENDING")
    with pytest.raises(InvalidInput) as pending:
        await _start(context, tenant_id, campaign.id)
    assert pending.value.code == "template_not_approved"
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(MessageTemplateRow)
            .where(MessageTemplateRow.tenant_id == tenant_id)
            .values(status="APPROVED")
        )
    with pytest.raises(InvalidInput) as short:
        await _start(context, tenant_id, campaign.id)
    assert short.value.code == "template_parameters"
    assert "needs 2 parameters" in short.value.message
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(MessageTemplateRow)
            .where(MessageTemplateRow.tenant_id == tenant_id)
            .values(parameter_names=["1"], parameter_count=1)
        )
    await _start(context, tenant_id, campaign.id)
