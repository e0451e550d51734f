"""The campaign pages and their fragments without a browser: who may open them, what the list and
the detail carry for the live script, and the tables' fragments following their filters, the
caller's tenant only."""

from __future__ import annotations

import re

import pytest

from messaging_whatsapp.campaigns import lifecycle, service
from messaging_whatsapp.campaigns.lifecycle import Action
from messaging_whatsapp.campaigns.models import Campaign
from messaging_whatsapp.campaigns.schemas import CampaignCreate
from messaging_whatsapp.db import utcnow
from tests.helpers import create_user
from tests.web.conftest import PASSWORD, WebEngine
from tests.web.test_session import _log_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONTACT_ROW = re.compile(r'data-testid="contact-row" data-status="([a-z_]+)"')


async def _campaign(engine: WebEngine, tenant_id: str, instance_id: str, name: str, people: int) -> Campaign:
    contacts = [{"phone": f"+55119876550{n:02d}", "name": f"Pessoa {n}"} for n in range(people)]
    async with engine.context.sessions() as session, session.begin():
        campaign, _ = await service.create_campaign(
            session,
            tenant_id,
            CampaignCreate.model_validate(
                {
                    "name": name,
                    "instance_ids": [instance_id],
                    "messages": [{"content": "Oi {{name}}"}],
                    "contacts": contacts,
                }
            ),
            user_id=None,
            now=utcnow(),
        )
        return campaign


async def test_an_agent_gets_the_403_page_and_a_supervisor_the_campaigns(web_engine: WebEngine) -> None:
    tenant_id, number = await web_engine.tenant("Loja Papéis", "gil@papeis.com.br", role="supervisor")
    await create_user(web_engine.context, tenant_id, "ivo@papeis.com.br", PASSWORD, "agent")
    campaign = await _campaign(web_engine, tenant_id, number.id, "Dia dos <b>Pais</b>", 2)
    agent = await _log_in(web_engine, "ivo@papeis.com.br")
    supervisor = await _log_in(web_engine, "gil@papeis.com.br")
    try:
        for path in (
            "/campaigns",
            "/campaigns/new",
            f"/campaigns/{campaign.id}",
            f"/campaigns/{campaign.id}/edit",
        ):
            refused = await agent.get(path)
            assert refused.status_code == 403, path
            assert 'data-testid="forbidden"' in refused.text
        assert (await agent.get(f"/campaigns/{campaign.id}/fragments/contacts")).status_code == 403

        listing = await supervisor.get("/campaigns")
        assert listing.status_code == 200
        assert 'data-testid="campaign-list"' in listing.text
        assert (
            f'data-testid="campaign-row" data-campaign-id="{campaign.id}" data-status="draft"' in listing.text
        )
        # A name is text, never markup.
        assert "Dia dos &lt;b&gt;Pais&lt;/b&gt;" in listing.text
        assert "Nova campanha" in listing.text
        assert '<span class="number-chip">+55 11 4002-8922</span>' in listing.text

        detail = await supervisor.get(f"/campaigns/{campaign.id}")
        assert detail.status_code == 200
        assert 'data-testid="campaign-chart"' in detail.text
        counters = re.search(r'data-testid="campaign-counters"[^>]*', detail.text, re.S)
        assert counters is not None
        assert all(f'data-{key}="0"' in counters.group(0) for key in ("sent", "delivered", "read", "failed"))
        # A draft offers start, edit, cancel and delete; not pause or resume.
        assert re.search(r'data-testid="action-start"\s*>', detail.text)
        assert re.search(r'data-testid="action-resume"\s*hidden', detail.text)

        form = await supervisor.get(f"/campaigns/{campaign.id}/edit")
        assert form.status_code == 200
        assert 'data-testid="not-editable"' not in form.text
        assert f'data-number="{number.id}"' in form.text
        assert (await supervisor.get("/campaigns/not-a-campaign")).status_code == 404
    finally:
        await agent.aclose()
        await supervisor.aclose()


async def test_the_fragments_follow_their_filters_and_stay_in_the_tenant(web_engine: WebEngine) -> None:
    tenant_id, number = await web_engine.tenant("Loja Fragmentos", "lia@fragmentos.com.br", role="supervisor")
    other_tenant, other_number = await web_engine.tenant("Loja Vizinha", "rui@vizinha.com.br")
    campaign = await _campaign(web_engine, tenant_id, number.id, "Inverno", 30)
    theirs = await _campaign(web_engine, other_tenant, other_number.id, "Deles", 1)
    async with web_engine.context.sessions() as session, session.begin():
        await lifecycle.transition(session, tenant_id, campaign.id, Action.CANCEL, user_id=None, now=utcnow())
    client = await _log_in(web_engine, "lia@fragmentos.com.br")
    try:
        base = f"/campaigns/{campaign.id}/fragments"
        first = await client.get(f"{base}/contacts", params={"status": ""})
        assert first.status_code == 200
        assert CONTACT_ROW.findall(first.text) == ["skipped"] * 25
        more = re.search(r'hx-get="([^"]+cursor=[^"]+)"', first.text)
        assert more is not None
        second = await client.get(more.group(1).replace("&amp;", "&"))
        assert CONTACT_ROW.findall(second.text) == ["skipped"] * 5
        assert (
            CONTACT_ROW.findall((await client.get(f"{base}/contacts", params={"status": "sent"})).text) == []
        )
        assert (await client.get(f"{base}/contacts", params={"status": "lost"})).status_code == 422

        cancelled = await client.get(f"{base}/logs", params={"log_type": "cancelled", "severity": ""})
        assert cancelled.text.count('data-testid="log-row"') == 1
        # The type in the page's language; the log's own message as it was written.
        assert "<td>Campanha cancelada</td>" in cancelled.text
        assert '<td class="log-message">Campaign cancelled' in cancelled.text
        assert (await client.get(f"{base}/logs", params={"severity": "loud"})).status_code == 422

        row = await client.get(f"/campaigns/fragments/row/{campaign.id}")
        assert 'data-status="cancelled"' in row.text
        assert (await client.get(f"/campaigns/fragments/row/{theirs.id}")).status_code == 404
        assert (await client.get(f"/campaigns/{theirs.id}/fragments/contacts")).status_code == 404
        assert (await client.get(f"/campaigns/{theirs.id}")).status_code == 404
        # A cancelled campaign's form says why it cannot be changed.
        assert 'data-testid="not-editable"' in (await client.get(f"/campaigns/{campaign.id}/edit")).text
    finally:
        await client.aclose()
