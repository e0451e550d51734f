"""The events-in page in the browser, in Portuguese: an admin maps an event type in place (the
API's 422 shows as a toast), and the events in are listed with their outcome; the tab bar links
the integrations pages; an agent cannot open the page."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from messaging_whatsapp.notifications.service import materials_entry
from tests.helpers import approved_template, create_user
from tests.web.conftest import PASSWORD, WebEngine, logged_in

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_an_admin_maps_an_event_and_sees_the_events_in(browser: Browser, web_engine: WebEngine) -> None:
    tenant_id, number = await web_engine.tenant("Loja Eventos", "ana@eventos.com.br")
    await approved_template(web_engine.context, tenant_id, number, "quote_created_template", 2)
    await create_user(web_engine.context, tenant_id, "bia@eventos.com.br", PASSWORD, "agent")
    browser_context, page = await logged_in(browser, web_engine.base_url, "ana@eventos.com.br")
    try:
        await page.goto("/integrations/events")
        tabs = page.locator("[data-testid=integrations-tabs] a")
        assert [await tab.get_attribute("href") for tab in await tabs.all()] == [
            "/integrations",
            "/integrations/events",
        ]
        mappings = page.locator("[data-testid=event-mappings]")
        await expect(mappings).to_contain_text("Mapeamento de eventos")
        assert await page.locator("[data-testid=event-mapping-row]").count() == 4
        row = page.locator("[data-testid=event-mapping-row][data-event-type=quote_created]")
        await expect(row).to_have_attribute("data-mapped", "false")

        await row.locator("input[name=template]").fill("quote_created_template")
        await row.locator("input[name=parameters]").fill("customer name")
        await row.locator("button[type=submit]").click()
        await expect(page.locator("#toast")).to_contain_text("customer name")
        await row.locator("input[name=parameters]").fill("customer_name, quote_id")
        await row.locator("button[type=submit]").click()
        await expect(row).to_have_attribute("data-mapped", "true")
        await expect(row.locator("input[name=parameters]")).to_have_value("customer_name, quote_id")

        payload = {"customer_phone": "+5511988887777", "customer_name": "Ana", "quote_id": "Q-9"}
        events = [
            materials_entry(tenant_id, "q-9", "quote_created", payload),
            materials_entry(tenant_id, "q-10", "quote_created", {**payload, "notify_whatsapp": False}),
            materials_entry(tenant_id, "x-1", "invoice_paid", payload),
        ]
        await web_engine.context.streams.append_many(web_engine.context.names.materials, events)
        listed = page.locator("[data-testid=events-in-list]")
        for _ in range(50):
            await page.click("[data-refresh-events]")
            if await listed.get_attribute("data-count") == "3":
                break
            await page.wait_for_timeout(200)
        await expect(listed).to_have_attribute("data-count", "3")
        outcomes = {
            await row.get_attribute("data-event-id"): await row.get_attribute("data-outcome")
            for row in await listed.locator("[data-testid=event-in-row]").all()
        }
        assert outcomes == {"q-9": "notified", "q-10": "skipped", "x-1": "ignored"}
        await expect(listed).to_contain_text("Não solicitado (notify_whatsapp false)")
        await expect(listed).to_contain_text("Notificado")
    finally:
        await browser_context.close()

    agent_context, agent_page = await logged_in(browser, web_engine.base_url, "bia@eventos.com.br")
    try:
        response = await agent_page.goto("/integrations/events")
        assert response is not None
        assert response.status == 403
    finally:
        await agent_context.close()
