"""The campaign pages in Chromium: a campaign made in the page with a CSV uploaded there, started,
and watched to completion live against the simulator; a refused transition says why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Route, expect

from messaging_whatsapp.campaigns import lifecycle, service
from messaging_whatsapp.campaigns.lifecycle import Action
from messaging_whatsapp.campaigns.schemas import CampaignCreate
from messaging_whatsapp.db import utcnow
from tests.web.conftest import LIVE, WebEngine, logged_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Three people, one of them twice, and a phone that cannot be one: 3 accepted, 1 refused.
CSV = (
    "telefone;nome;cupom\n"
    "+5511987651001;Maria Silva;BF10\n"
    "+5511987651002;João Souza;BF20\n"
    "(11) 98765-1003;Ana Lima;BF30\n"
    "12345;Zé;BF40\n"
    "+5511987651001;Maria de novo;BF10\n"
)


async def test_a_campaign_made_in_the_page_runs_to_completion_live(
    browser: Browser, web_engine: WebEngine, tmp_path: Path
) -> None:
    _, number = await web_engine.tenant("Loja Campanha", "bia@campanha.com.br", role="supervisor")
    csv_file = tmp_path / "lista.csv"
    csv_file.write_text(CSV, encoding="utf-8")
    context, page = await logged_in(browser, web_engine.base_url, "bia@campanha.com.br")
    try:
        # The list, open beside the form, starts empty and follows what the form makes.
        listing = await context.new_page()
        await listing.goto("/campaigns")
        await expect(listing.locator("[data-testid=campaign-list-empty]")).to_be_visible()
        await listing.locator("[data-testid=live-status][data-state=connected]").wait_for(state="attached")
        await listing.evaluate("window.sameDocument = true")
        await page.goto("/campaigns/new")
        form = page.locator("[data-testid=campaign-form]")
        await page.fill("[data-testid=campaign-name-input]", "Black Friday")
        option = page.locator(f'[data-testid=number-option][data-number="{number.id}"]')
        await expect(option.locator("[data-testid=number-health]")).to_contain_text("100")
        await expect(option.locator("[data-testid=number-capacity]")).to_contain_text("restantes hoje")
        await option.locator("[data-pick]").check()
        await page.fill("[data-testid=variation-content]", "Oi {{name}}, seu cupom é {{cupom}}!")
        await page.set_input_files("[data-testid=csv-input]", str(csv_file))
        # The preview fills the variation with the CSV's first row.
        await expect(page.locator("[data-testid=variation-preview]")).to_have_text(
            "Oi Maria Silva, seu cupom é BF10!"
        )

        # A 422 is shown next to its field, and nothing is saved.
        await form.locator('[data-pacing="settings"] [data-key=interval_min_s]').fill("10")
        await form.locator('[data-pacing="settings"] [data-key=interval_max_s]').fill("2")
        await page.click("[data-testid=save-campaign]")
        await expect(form.locator('[data-field="settings.interval_max_s"] [data-error]')).to_have_text(
            "O intervalo máximo não pode ser menor que o mínimo."
        )
        await expect(page.locator("[data-testid=import-report]")).to_be_hidden()

        await form.locator('[data-pacing="settings"] [data-key=interval_min_s]').fill("0")
        await form.locator('[data-pacing="settings"] [data-key=interval_max_s]').fill("0")
        await page.uncheck("input[name=warmup]")
        await page.click("[data-testid=save-campaign]")
        await expect(page.locator("[data-testid=import-accepted]")).to_have_attribute("data-added", "3")
        refused = page.locator("[data-testid=import-rejected] li")
        await expect(refused).to_have_count(1)
        await expect(refused).to_contain_text("12345")
        await expect(page.locator("[data-testid=import-report]")).to_contain_text("1 repetidos unidos")
        await page.click("[data-testid=open-campaign]")
        await page.wait_for_url(re.compile(r"/campaigns/[0-9a-f-]{36}$"))
        campaign_id = page.url.rsplit("/", 1)[1]

        # The list, open beside it, follows the same campaign.
        row = listing.locator(
            f'[data-testid=campaign-list] [data-testid=campaign-row][data-campaign-id="{campaign_id}"]'
        )
        await expect(row).to_have_attribute("data-status", "draft")
        await expect(listing.locator("[data-testid=campaign-list-empty]")).to_be_hidden()

        await page.locator("[data-testid=live-status][data-state=connected]").wait_for(state="attached")
        await page.evaluate("window.sameDocument = true")
        await expect(page.locator("[data-testid=action-resume]")).to_be_hidden()
        await page.click("[data-testid=action-start]")

        counters = page.locator("[data-testid=campaign-counters]")
        await expect(counters).to_have_attribute("data-sent", "3", timeout=LIVE * 3)
        await expect(counters).to_have_attribute("data-delivered", "3", timeout=LIVE * 3)
        await expect(counters).to_have_attribute("data-failed", "0")
        await expect(page.locator("[data-testid=campaign-status]")).to_have_text(
            "Concluída", timeout=LIVE * 3
        )
        await expect(row).to_have_attribute("data-status", "completed", timeout=LIVE * 3)
        await expect(row.locator('[data-field="sent"]')).to_have_text("3")
        # The chart caught up from the timeline endpoint; the buttons match a completed campaign.
        await expect(page.locator("[data-testid=campaign-chart]")).to_have_attribute(
            "data-sent", "3", timeout=LIVE
        )
        for action in ("start", "pause", "resume", "cancel", "delete", "edit"):
            await expect(page.locator(f"[data-testid=action-{action}]")).to_be_hidden()
        await expect(page.locator("[data-testid=contact-row]")).to_have_count(3)
        assert await page.evaluate("window.sameDocument") is True
        assert await listing.evaluate("window.sameDocument") is True
    finally:
        await context.close()


async def test_a_refused_transition_shows_the_apis_reason(browser: Browser, web_engine: WebEngine) -> None:
    tenant_id, number = await web_engine.tenant("Loja Recusa", "caio@recusa.com.br", role="supervisor")
    async with web_engine.context.sessions() as session, session.begin():
        campaign, _ = await service.create_campaign(
            session,
            tenant_id,
            CampaignCreate.model_validate(
                {
                    "name": "Dia das Mães",
                    "instance_ids": [number.id],
                    "messages": [{"content": "Oi {{name}}"}],
                    "contacts": [{"phone": "+5511987652001", "name": "Rita"}],
                }
            ),
            user_id=None,
            now=utcnow(),
        )
    context, page = await logged_in(browser, web_engine.base_url, "caio@recusa.com.br")
    try:
        # A page that hears nothing: someone else cancels the campaign meanwhile.
        async def offline(route: Route) -> None:
            await route.abort()

        await context.route("**/api/v1/events/stream", offline)
        await page.goto(f"/campaigns/{campaign.id}")
        await expect(page.locator("[data-testid=action-start]")).to_be_visible()
        async with web_engine.context.sessions() as session, session.begin():
            await lifecycle.transition(
                session, tenant_id, campaign.id, Action.CANCEL, user_id=None, now=utcnow()
            )

        await page.click("[data-testid=action-start]")
        error = page.locator("[data-testid=action-error]")
        await expect(error).to_have_text("cannot start a campaign that is cancelled")
        # The page then shows the campaign as it is: cancelled, nothing left to offer.
        await expect(page.locator("[data-testid=campaign-status]")).to_have_text("Cancelada")
        await expect(page.locator("[data-testid=action-start]")).to_be_hidden()
        await expect(page.locator("[data-testid=action-cancel]")).to_be_hidden()
    finally:
        await context.close()
