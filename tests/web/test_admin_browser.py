"""The admin page in Chromium: an agent gets the 403 page (and the API's 403); an admin creates a
user who then logs in, and deactivating them ends their open page and their API calls at once; an
API key is shown once, works, and stops working when revoked; the last admin cannot step down."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.helpers import create_user
from tests.web.conftest import LIVE, PASSWORD, WebEngine, logged_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

NEW_PASSWORD = "lanche de quinta no parque"


def user_row(page: Page, email: str) -> object:
    """The users table's row of one email."""
    return page.locator(f'[data-testid=user-row][data-email="{email}"]')


async def log_in_as(
    browser: Browser, base_url: str, email: str, password: str
) -> tuple[BrowserContext, Page]:
    """A fresh profile logged in with these credentials, on the inbox with its stream connected."""
    context = await browser.new_context(
        base_url=base_url, locale="pt-BR", viewport={"width": 1360, "height": 860}
    )
    context.set_default_timeout(LIVE)
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"/inbox"))
    await page.locator("[data-testid=live-status][data-state=connected]").wait_for(state="attached")
    return context, page


async def test_an_agent_and_a_supervisor_get_the_403_page_and_the_apis_403(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, _ = await web_engine.tenant("Loja Proibida", "bia@proibida.com.br", role="agent")
    await create_user(web_engine.context, tenant_id, "lia@proibida.com.br", PASSWORD, "supervisor")
    for email in ("bia@proibida.com.br", "lia@proibida.com.br"):
        context, page = await logged_in(browser, web_engine.base_url, email)
        # No way in from the navigation either.
        await expect(page.locator("[data-testid=nav-admin]")).to_have_count(0)
        response = await page.goto("/admin")
        assert response is not None
        assert response.status == 403
        await expect(page.locator("[data-testid=forbidden]")).to_be_visible()
        await expect(page.locator("[data-testid=admin-page]")).to_have_count(0)
        for path in ("/api/v1/users", "/api/v1/api-keys", "/admin/fragments/users"):
            refused = await page.request.get(path)
            assert refused.status == 403, path
            assert (await refused.json())["error"]["code"] == "forbidden"
        changed = await page.request.patch(
            "/api/v1/tenant",
            data={"name": "Tomada"},
            headers={
                "X-CSRF-Token": next(c["value"] for c in await context.cookies() if c["name"] == "csrf")
            },
        )
        assert changed.status == 403
        await context.close()


async def test_an_admin_creates_a_user_who_logs_in_and_deactivating_them_ends_their_page_at_once(
    browser: Browser, web_engine: WebEngine
) -> None:
    await web_engine.tenant("Loja Equipe", "ana@equipe.com.br")
    admin_context, admin = await logged_in(browser, web_engine.base_url, "ana@equipe.com.br")
    await admin.click("[data-testid=nav-admin]")
    await expect(admin.locator("[data-testid=admin-page]")).to_be_visible()
    await expect(user_row(admin, "ana@equipe.com.br").locator(".badge.you")).to_have_text("Você")

    # The page's script has run (a click before it would open nothing on a busy machine).
    await admin.wait_for_load_state("load")
    await admin.click("[data-testid=new-user]")
    await admin.fill("#user-form input[name=email]", "rui@equipe.com.br")
    await admin.fill("#user-form input[name=password]", "senha123")
    await admin.select_option("#user-form select[name=role]", "agent")
    await admin.click("[data-testid=create-user]")
    # The API's password rule, its reason shown next to the field, in Portuguese.
    await expect(admin.locator("[data-testid=password-error]")).to_contain_text("fácil de adivinhar")
    await expect(user_row(admin, "rui@equipe.com.br")).to_have_count(0)
    await admin.fill("#user-form input[name=password]", NEW_PASSWORD)
    await admin.click("[data-testid=create-user]")
    row = user_row(admin, "rui@equipe.com.br")
    await expect(row).to_have_attribute("data-active", "true")
    await expect(row).to_have_attribute("data-role", "agent")
    await expect(admin.locator("#user-form")).to_be_hidden()

    rui_context, rui = await log_in_as(browser, web_engine.base_url, "rui@equipe.com.br", NEW_PASSWORD)
    assert (await rui.request.get("/api/v1/tenant")).status == 200

    await row.locator("[data-testid=deactivate]").click()
    await expect(admin.locator("[data-testid=confirm-dialog]")).to_contain_text("rui@equipe.com.br")
    await admin.click("[data-testid=confirm-ok]")
    await expect(row).to_have_attribute("data-active", "false")
    await expect(row.locator("[data-testid=reactivate]")).to_be_visible()

    # Their API calls are refused at once, and their open page goes to the login when its live
    # stream ends (it reconnects and is refused).
    assert (await rui.request.get("/api/v1/tenant")).status == 401
    await rui.wait_for_url(re.compile(r"/login"), timeout=LIVE)
    await rui.fill("input[name=email]", "rui@equipe.com.br")
    await rui.fill("input[name=password]", NEW_PASSWORD)
    await rui.click("button[type=submit]")
    await expect(rui.locator("[data-testid=login-error]")).to_be_visible()

    # Reactivated: they may log in again.
    await row.locator("[data-testid=reactivate]").click()
    await admin.click("[data-testid=confirm-ok]")
    await expect(row).to_have_attribute("data-active", "true")
    await rui_context.close()
    rui_context, rui = await log_in_as(browser, web_engine.base_url, "rui@equipe.com.br", NEW_PASSWORD)
    await rui_context.close()
    await admin_context.close()


async def test_the_last_admin_cannot_step_down_and_the_page_says_why(
    browser: Browser, web_engine: WebEngine
) -> None:
    await web_engine.tenant("Loja Sozinha", "ana@sozinha.com.br")
    context, page = await logged_in(browser, web_engine.base_url, "ana@sozinha.com.br")
    await page.goto("/admin")
    row = user_row(page, "ana@sozinha.com.br")
    await row.locator("[data-testid=role-select]").select_option("agent")
    await page.click("[data-testid=confirm-ok]")
    await expect(page.locator("#toast")).to_contain_text("último administrador ativo")
    await expect(row.locator("[data-testid=role-select]")).to_have_value("admin")
    await expect(row).to_have_attribute("data-role", "admin")
    await context.close()


async def test_an_api_key_is_shown_once_works_and_stops_when_revoked(
    browser: Browser, web_engine: WebEngine
) -> None:
    await web_engine.tenant("Loja Chaves", "ana@chaves.com.br")
    context, page = await logged_in(browser, web_engine.base_url, "ana@chaves.com.br")
    await page.goto("/admin#api-keys")
    await page.click("[data-testid=new-api-key]")
    await page.fill("#key-form input[name=name]", "Integração <b>CRM</b>")
    await page.select_option("#key-form select[name=role]", "supervisor")
    await page.check("#key-form input[name=limit][value=scopes]")
    await page.check("#key-form input[name=scope][value='campaigns:read']")
    await page.click("[data-testid=create-api-key]")

    reveal = page.locator("[data-testid=key-reveal]")
    await expect(reveal).to_be_visible()
    raw = await page.locator("[data-testid=key-value]").text_content()
    assert raw is not None
    assert raw.startswith("mwk_")
    row = page.locator("[data-testid=key-row]")
    await expect(row).to_have_count(1)
    # The name is text, never markup; the table shows the prefix only.
    await expect(row.locator(".key-name")).to_have_text("Integração <b>CRM</b>")
    await expect(row).not_to_contain_text(raw)
    await expect(row.locator(".key-prefix")).to_contain_text(raw[:12])

    async with httpx.AsyncClient(base_url=web_engine.base_url, timeout=10) as http:
        bearer = {"authorization": f"Bearer {raw}"}
        assert (await http.get("/api/v1/campaigns", headers=bearer)).status_code == 200
        # Limited to its scope and role.
        assert (await http.get("/api/v1/users", headers=bearer)).status_code == 403

        await page.click("[data-testid=key-done]")
        await expect(reveal).to_be_hidden()
        await page.reload()
        # Never again: not in the page after a reload.
        assert raw not in await page.content()

        await row.locator("[data-testid=revoke]").click()
        await expect(page.locator("[data-testid=confirm-dialog]")).to_contain_text("Integração <b>CRM</b>")
        await page.click("[data-testid=confirm-ok]")
        await expect(row).to_have_attribute("data-revoked", "true")
        await expect(row.locator("[data-testid=revoke]")).to_have_count(0)
        assert (await http.get("/api/v1/campaigns", headers=bearer)).status_code == 401
    await context.close()


async def test_settings_are_saved_and_refusals_shown_in_place(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, _ = await web_engine.tenant("Loja Ajustes", "ana@ajustes.com.br")
    context, page = await logged_in(browser, web_engine.base_url, "ana@ajustes.com.br")
    await page.goto("/admin#settings")
    form = page.locator("[data-testid=settings-form]")
    await form.locator("input[name=timezone]").fill("Marte/Olimpo")
    await page.click("[data-testid=save-settings]")
    await expect(form.locator("[data-error-for=timezone]")).to_contain_text("Fuso horário desconhecido")

    await form.locator("input[name=timezone]").fill("America/Manaus")
    await form.locator("input[name=retention_messages_days]").fill("99999")
    await page.click("[data-testid=save-settings]")
    await expect(form.locator("[data-error-for=retention_messages_days]")).to_contain_text("1 a 3650")

    await form.locator("input[name=retention_messages_days]").fill("180")
    await form.locator("input[name=name]").fill("Loja Ajustada")
    await form.locator("select[name=default_country]").select_option("PT")
    await form.locator("input[name=ticket_inactivity_minutes]").fill("60")
    await page.click("[data-testid=save-settings]")
    await expect(page.locator("#toast")).to_contain_text("Configurações salvas")
    await expect(page.locator(".admin-tenant")).to_have_text("Loja Ajustada")

    saved = await (await page.request.get("/api/v1/tenant")).json()
    assert saved["id"] == tenant_id
    assert (saved["name"], saved["timezone"], saved["default_country"]) == (
        "Loja Ajustada",
        "America/Manaus",
        "PT",
    )
    assert (saved["ticket_inactivity_minutes"], saved["retention_messages_days"]) == (60, 180)
    assert saved["retention_closed_tickets_days"] is None
    await context.close()
