"""The operator's page in a real browser: an agent and a tenant's admin get the 403 page (and the
API 403), and a platform admin replays a DLQ entry from the page and sees it leave the DLQ, applied."""

from __future__ import annotations

import time

import pytest
from playwright.async_api import Browser, expect

from messaging_whatsapp.providers.simulator import build_inbound_message_body
from tests.helpers import create_platform_admin, dead_letter_inbound, get_message, wait_until
from tests.web.conftest import LIVE, PASSWORD, WebEngine, logged_in

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize("role", ["agent", "admin"])
async def test_tenant_roles_get_the_403_page_and_the_api_403(
    web_engine: WebEngine, browser: Browser, role: str
) -> None:
    email = f"{role}@loja-ops.com.br"
    await web_engine.tenant(f"Loja {role}", email, role)
    context, page = await logged_in(browser, web_engine.base_url, email)
    try:
        await expect(page.get_by_test_id("nav-ops")).to_have_count(0)
        answer = await page.goto("/ops")
        assert answer is not None
        assert answer.status == 403
        await expect(page.get_by_test_id("forbidden")).to_be_visible()
        await expect(page.get_by_test_id("ops-dlq")).to_have_count(0)
        fragment = await page.request.get("/ops/fragments/dlq")
        assert fragment.status == 403

        listed = await page.request.get("/api/v1/ops/dlq")
        assert listed.status == 403
        assert (await listed.json())["error"]["code"] == "forbidden"
        csrf = next(c["value"] for c in await context.cookies() if c["name"] == "csrf")
        replayed = await page.request.post("/api/v1/ops/dlq/replay", data={}, headers={"X-CSRF-Token": csrf})
        assert replayed.status == 403
    finally:
        await context.close()


async def test_a_platform_admin_replays_a_dlq_entry_from_the_page(
    web_engine: WebEngine, browser: Browser
) -> None:
    tenant_id, instance = await web_engine.tenant("Loja Replay", "dona@loja-replay.com.br")
    await create_platform_admin(web_engine.context, tenant_id, "operador@plataforma.com.br", PASSWORD)
    body = build_inbound_message_body(
        instance.routing_key, "SIM-IN-OPS-1", "+5511987650001", "Oi, chegou?", "Rita", int(time.time())
    )
    dead_id = await dead_letter_inbound(web_engine.context, instance, body.decode(), "apply failed: boom")
    context, page = await logged_in(browser, web_engine.base_url, "operador@plataforma.com.br")
    try:
        await page.get_by_test_id("nav-ops").click()
        await page.wait_for_url("**/ops")
        row = page.locator(f"[data-testid=ops-dlq-row][data-dlq-id='{dead_id}']")
        await expect(row).to_contain_text("apply failed: boom")
        await expect(row).to_contain_text("Loja Replay")
        await expect(row).to_contain_text("simulator")
        await expect(page.locator("[data-testid=ops-worker-row][data-alive=true]").first).to_be_visible()

        await row.get_by_test_id("ops-replay").click()

        await expect(row).to_have_count(0, timeout=LIVE)
        await wait_until(
            lambda: get_message(web_engine.context, instance.id, "SIM-IN-OPS-1"), what="the replayed message"
        )
        await expect(page.locator("#toast")).to_contain_text("Uma entrada reprocessada")

        # Replay all, once confirmed: the DLQ empties.
        for n in (2, 3):
            await dead_letter_inbound(web_engine.context, instance, body.decode(), f"apply failed: {n}")
        await expect(page.get_by_test_id("ops-dlq-row")).to_have_count(2, timeout=LIVE)
        page.once("dialog", lambda dialog: dialog.accept())
        await page.get_by_test_id("ops-replay-all").click()
        await expect(page.get_by_test_id("ops-dlq")).to_have_attribute("data-total", "0", timeout=LIVE)
        await expect(page.locator("#toast")).to_contain_text("2 entradas reprocessadas")
    finally:
        await context.close()
