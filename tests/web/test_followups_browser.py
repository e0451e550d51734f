"""The inbox's follow-ups and "send later" in a real browser: a follow-up started from the lead
panel sends its first step and shows it, the customer's reply stops it live; a message scheduled
from the composer at a time of the tenant's zone is listed, stored at that moment, and cancelled."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from messaging_whatsapp.sending.models import ScheduledMessage
from tests.web.conftest import LIVE, WebEngine, logged_in
from tests.web.test_inbox_browser import MESSAGE, conversation_of

pytestmark = pytest.mark.asyncio(loop_scope="module")
PHONE = "+5511987650077"


async def test_a_follow_up_started_in_the_inbox_runs_and_a_reply_stops_it(
    browser: Browser, web_engine: WebEngine
) -> None:
    _tenant, instance = await web_engine.tenant("Loja Follow-up", "ana@followup.com.br")
    first = await web_engine.inbound(instance, PHONE, "Quanto custa?", "Maria Souza")
    conversation = await conversation_of(web_engine, first)
    context, page = await logged_in(browser, web_engine.base_url, "ana@followup.com.br")
    try:
        await page.goto(f"/inbox/{conversation}")
        await page.click("[data-testid=follow-up-start]")
        step = page.locator(".fu-step").first
        await step.locator("input[name=amount]").fill("0")
        await step.locator("textarea[name=text]").fill("Oi Maria, ainda tem interesse?")
        await page.click("[data-fu-action=add-step]")
        second = page.locator(".fu-step").nth(1)
        await second.locator("select[name=unit]").select_option("86400")
        await second.locator("textarea[name=text]").fill("Última chamada!")
        await page.click("[data-testid=follow-up-submit]")

        status = page.locator("[data-testid=follow-up-status]")
        await expect(status).to_have_attribute("data-status", "running")
        await expect(page.locator("[data-testid=ticket-status]")).to_have_text("em follow-up")
        # The scheduler sends the first step: it shows in the chat and in the panel, live.
        chat = page.locator(f'[data-testid=chat][data-conversation-id="{conversation}"]')
        await expect(chat.locator(MESSAGE).last).to_contain_text(
            "Oi Maria, ainda tem interesse?", timeout=LIVE
        )
        await expect(status.locator("li").first).to_have_attribute("data-outcome", "sent", timeout=LIVE)

        # Maria answers: the follow-up stops, and the panel says why.
        await web_engine.inbound(instance, PHONE, "Tenho sim!", "Maria Souza")
        await expect(status).to_have_attribute("data-status", "cancelled", timeout=LIVE)
        await expect(status).to_contain_text("o cliente respondeu")
        await expect(page.locator("[data-testid=follow-up-start]")).to_be_visible()
    finally:
        await context.close()


async def test_a_message_scheduled_from_the_composer_is_listed_and_cancelled(
    browser: Browser, web_engine: WebEngine
) -> None:
    _tenant, instance = await web_engine.tenant("Loja Agenda", "ana@agenda.com.br")
    first = await web_engine.inbound(instance, PHONE, "Me lembra amanhã?", "Maria Souza")
    conversation = await conversation_of(web_engine, first)
    context, page = await logged_in(browser, web_engine.base_url, "ana@agenda.com.br")
    try:
        await page.goto(f"/inbox/{conversation}")
        # Tomorrow at this minute, on the tenant's clock (São Paulo).
        local = (datetime.now(ZoneInfo("America/Sao_Paulo")) + timedelta(days=1)).replace(
            second=0, microsecond=0
        )
        await page.fill(".composer textarea", "Lembrete: sua entrega chega hoje")
        await page.click("[data-testid=schedule-send]")
        await page.fill("[data-testid=schedule-at]", local.strftime("%Y-%m-%dT%H:%M"))
        await page.click("[data-testid=schedule-confirm]")
        listed = page.locator("[data-testid=scheduled-list] [data-testid=scheduled-message]")
        await expect(listed).to_have_count(1)
        await expect(listed).to_contain_text("Lembrete: sua entrega chega hoje")
        async with web_engine.context.sessions() as session:
            stored = (
                await session.scalars(
                    select(ScheduledMessage).where(ScheduledMessage.conversation_id == conversation)
                )
            ).one()
        assert stored.send_at == local
        assert stored.status == "scheduled"

        await listed.locator("[data-fu-action=unschedule]").click()
        await expect(listed).to_have_count(0)
        async with web_engine.context.sessions() as session:
            assert (await session.get_one(ScheduledMessage, stored.id)).status == "cancelled"
    finally:
        await context.close()
