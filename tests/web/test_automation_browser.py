"""The automation page and the inbox's "wants a person" flag in the browser: an admin creates a
rule (the API's 422 shows beside its field), turns it off, deletes it, adds a keyword chip and sets
business hours; a customer who asks for a person is flagged live in an open inbox, and an
agent's answer clears it. Supervisors read the page, agents cannot open it."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Dialog, expect
from sqlalchemy import select

from messaging_whatsapp.automation.models import AutoReplyRule
from messaging_whatsapp.tenancy.models import Tenant
from tests.helpers import create_user
from tests.web.conftest import LIVE, WebEngine, logged_in

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_an_admin_edits_rules_intents_and_hours(browser: Browser, web_engine: WebEngine) -> None:
    tenant_id, _instance = await web_engine.tenant("Loja Auto", "ana@auto.com.br")
    browser_context, page = await logged_in(browser, web_engine.base_url, "ana@auto.com.br")
    try:
        await page.goto("/automation")
        await expect(page.locator("[data-testid=no-rules]")).to_be_visible()
        await page.click("[data-testid=new-rule]")
        form = page.locator("[data-testid=rule-form]")
        await form.locator("[data-testid=rule-name]").fill("Preço")
        await form.locator("[data-testid=when-type]").select_option("keyword")
        await form.locator("[data-testid=when-keywords]").fill("?!")
        await form.locator("[data-testid=then-type]").select_option("text")
        await form.locator("[data-testid=then-text]").fill("Nossa tabela de preços: loja.com.br/precos")
        await form.locator("[data-testid=save-rule]").click()
        error = form.locator("[data-error-for='when.keywords']")
        await expect(error).to_contain_text("holds no word")
        await form.locator("[data-testid=when-keywords]").fill("preço, valor")
        await form.locator("[data-testid=save-rule]").click()
        row = page.locator("[data-testid=rule-row]")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("preço, valor")
        await expect(page.locator("[data-testid=rule-editor]")).to_be_hidden()

        await row.locator("[data-testid=rule-enabled]").uncheck()
        await expect(page.locator("[data-testid=rule-row][data-enabled=false]")).to_have_count(1)
        async with web_engine.context.sessions() as session:
            enabled = await session.scalar(
                select(AutoReplyRule.enabled).where(AutoReplyRule.tenant_id == tenant_id)
            )
        assert enabled is False

        async def accept(dialog: Dialog) -> None:
            await dialog.accept()

        page.once("dialog", accept)
        await page.locator("[data-testid=rule-row] [data-testid=delete-rule]").click()
        await expect(page.locator("[data-testid=rule-row]")).to_have_count(0)

        intents = page.locator("[data-testid=intents-form]")
        chip_input = intents.locator("[data-testid=intent-row]").first.locator(".chip-input")
        await chip_input.fill("quanto custa")
        await chip_input.press("Enter")
        await intents.locator("[data-testid=save-intents]").click()
        await expect(page.locator("#toast")).to_contain_text("Intenções salvas")
        hours = page.locator("[data-testid=business-hours-form]")
        await hours.locator("input[name=mon_0_start]").fill("08:00")
        await hours.locator("input[name=mon_0_end]").fill("18:00")
        await hours.locator("[data-testid=away-message]").fill("Voltamos às 8h.")
        await hours.locator("[data-testid=save-hours]").click()
        await expect(page.locator("#toast")).to_contain_text("Horário salvo")
    finally:
        await browser_context.close()

    api = await web_engine.http.post(
        "/api/v1/auth/login", json={"email": "ana@auto.com.br", "password": "s3cret-pass"}
    )
    headers = {"authorization": f"Bearer {api.json()['access_token']}"}
    found = (await web_engine.http.get("/api/v1/automation/intents", headers=headers)).json()
    assert found["intents"][0]["keywords"] == ["cotacao", "orcamento", "preco", "valor", "quanto custa"]
    async with web_engine.context.sessions() as session:
        tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    assert tenant.away_message == "Voltamos às 8h."
    assert tenant.business_hours is not None
    assert '"mon":[["08:00","18:00"]]' in tenant.business_hours


async def test_a_customer_who_asks_for_a_person_is_flagged_live(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, instance = await web_engine.tenant("Loja Pessoa", "ana@pessoa.com.br")
    await web_engine.inbound(instance, "+5511987650001", "Oi", "Maria")
    browser_context, page = await logged_in(browser, web_engine.base_url, "ana@pessoa.com.br")
    try:
        item = page.locator("[data-testid=conversation-item]")
        await expect(item).to_have_count(1)
        await item.click()
        await expect(page.locator("[data-testid=chat]")).to_be_visible()
        await expect(page.locator("[data-testid=wants-person]")).to_have_count(0)
        await web_engine.inbound(instance, "+5511987650001", "Quero falar com um atendente", "Maria")
        await expect(item.locator("[data-testid=wants-person]")).to_have_text(
            "Quer um atendente", timeout=LIVE
        )
        await expect(page.locator(".chat-title [data-testid=wants-person]")).to_be_visible(timeout=LIVE)
        await page.locator("[data-testid=composer] textarea").fill("Olá Maria, sou a Ana!")
        await page.locator("[data-testid=send]").click()
        await expect(page.locator("[data-testid=wants-person]")).to_have_count(0, timeout=LIVE)
    finally:
        await browser_context.close()
    assert tenant_id


async def test_supervisors_read_the_page_and_agents_cannot_open_it(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, _instance = await web_engine.tenant("Loja Leitura", "lia@leitura.com.br", "supervisor")
    await create_user(web_engine.context, tenant_id, "bia@leitura.com.br", "s3cret-pass", "agent")
    browser_context, page = await logged_in(browser, web_engine.base_url, "lia@leitura.com.br")
    try:
        await page.goto("/automation")
        await expect(page.locator("[data-testid=automation-rules]")).to_be_visible()
        await expect(page.locator("[data-testid=intents-form]")).to_be_visible()
        await expect(page.locator("[data-testid=new-rule]")).to_have_count(0)
        await expect(page.locator("[data-testid=save-hours]")).to_have_count(0)
    finally:
        await browser_context.close()
    browser_context, page = await logged_in(browser, web_engine.base_url, "bia@leitura.com.br")
    try:
        response = await page.goto("/automation")
        assert response is not None
        assert response.status == 403
    finally:
        await browser_context.close()
