"""The integrations page in the browser: an admin subscribes a URL from the form, sees its secret
once (never in the server's HTML), sends a test event that the receiver verifies and that shows
delivered with its attempt, and deletes the subscription after confirming. Agents get the 403
page."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Dialog, expect
from standardwebhooks import Webhook

from tests.fakes.http import FakeHttpServer, RecordedRequest, Reply
from tests.helpers import SECRETS_USED, create_user
from tests.web.conftest import LIVE, PASSWORD, WebEngine, logged_in

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _ok(_request: RecordedRequest) -> Reply:
    return Reply(204)


async def test_subscribe_see_the_secret_once_test_and_delete(browser: Browser, web_engine: WebEngine) -> None:
    tenant_id, _ = await web_engine.tenant("Loja Integrada", "ana@integrada.com.br")
    await create_user(web_engine.context, tenant_id, "bia@integrada.com.br", PASSWORD, "agent")
    browser_context, page = await logged_in(browser, web_engine.base_url, "ana@integrada.com.br")
    with FakeHttpServer(_ok) as receiver:
        try:
            await page.goto("/integrations")
            subscriptions = page.locator("[data-testid=webhook-subscriptions]")
            await expect(subscriptions).to_have_attribute("data-count", "0")
            await expect(page.locator("[data-testid=integrations-tabs] a")).to_have_count(2)
            await page.fill("input[name=url]", f"{receiver.base_url}/crm")
            await page.check("input[value=whatsapp_ticket_closed]")
            await page.check("input[value=whatsapp_action_requested]")
            await page.click("#subscription-form button[type=submit]")

            secret_box = page.locator("[data-testid=webhook-secret]")
            await expect(secret_box).to_be_visible()
            secret = await page.locator("#webhook-secret-value").text_content() or ""
            SECRETS_USED.add(secret)
            assert secret.startswith("whsec_")
            row = page.locator("[data-testid=webhook-subscription-row]")
            await expect(row).to_have_count(1)
            # In the catalogue's order.
            await expect(row.locator(".hook-chip")).to_have_text(
                ["whatsapp_ticket_closed", "whatsapp_action_requested"]
            )
            served = await (await page.context.request.get("/integrations")).text()
            assert secret not in served
            assert secret[6:] not in served
            await page.click("#hide-secret")
            await expect(secret_box).to_be_hidden()

            await row.locator("[data-action=test]").click()
            delivered = page.locator("[data-testid=webhook-delivery-row][data-status=delivered]")
            await expect(delivered).to_have_count(1, timeout=3 * LIVE)
            await delivered.locator("summary").click()
            await expect(delivered.locator("[data-testid=webhook-attempt-row]")).to_have_count(1)
            [request] = receiver.accepted
            assert Webhook(secret).verify(request.body, request.headers)["type"] == "whatsapp_webhook_test"

            async def accept(dialog: Dialog) -> None:
                await dialog.accept()

            page.once("dialog", accept)
            await row.locator("[data-action=delete]").click()
            await expect(row).to_have_count(0)
            await expect(subscriptions).to_have_attribute("data-count", "0")
        finally:
            await browser_context.close()

    agent_context, agent_page = await logged_in(browser, web_engine.base_url, "bia@integrada.com.br")
    try:
        answer = await agent_page.goto("/integrations")
        assert answer is not None
        assert answer.status == 403
    finally:
        await agent_context.close()
