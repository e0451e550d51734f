"""An alert raised and resolved, live, in the browser: a number disconnects, the scheduler's pass
(the engine's, every second here) raises its alert and the banner appears on the page already
open (no reload), with the alerts page's list; the number reconnects, the next pass resolves it
and the banner goes away. An admin changes a rule in the page. Agents see no banner and cannot
open the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect
from sqlalchemy import update

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.instances.models import WhatsAppInstance
from tests.helpers import ServerThread, create_user, free_port
from tests.web.conftest import LIVE, PASSWORD, WebEngine, logged_in, web_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web_engine(
    module_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WebEngine]:
    """The embedded engine, its scheduler evaluating the alert rules every second (the pass that
    raises an alert must run in the engine's process: its live events are in its memory)."""
    port = free_port()
    settings = web_settings(module_sqlite_url, None, "web:", tmp_path_factory.mktemp("data"), port)
    settings = settings.model_copy(update={"alert_pass_seconds": 1.0})
    context = await EngineContext.open(settings)
    with ServerThread(create_app(settings, Role.ALL), port, settings, timeout_graceful_shutdown=1) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            yield WebEngine(settings, server.base_url, context, http)
    await context.close()


async def _connection(engine: WebEngine, instance_id: str, state: str) -> None:
    values = {"connection_state": state, "connection_changed_at": utcnow() - timedelta(minutes=2)}
    async with engine.context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance).where(WhatsAppInstance.id == instance_id).values(**values)
        )


async def test_an_alert_is_raised_and_resolved_live(browser: Browser, web_engine: WebEngine) -> None:
    _tenant_id, instance = await web_engine.tenant("Loja Alerta", "ana@alerta.com.br", "supervisor")
    browser_context, page = await logged_in(browser, web_engine.base_url, "ana@alerta.com.br")
    try:
        await page.goto("/alerts")
        await page.locator("[data-testid=live-status][data-state=connected]").wait_for(state="attached")
        banner = page.locator("[data-testid=alert-banner]")
        await expect(banner).to_be_hidden()
        await expect(page.locator("[data-testid=open-alerts]")).to_have_attribute("data-count", "0")
        # Marks this page: a reload would lose it.
        await page.evaluate("window.sameDocument = true")

        await _connection(web_engine, instance.id, "close")
        await expect(banner).to_be_visible(timeout=LIVE)
        await expect(banner).to_have_attribute("data-count", "1")
        await expect(banner).to_have_attribute("data-severity", "critical")
        await expect(banner).to_contain_text("1 alerta aberto")
        await expect(banner).to_contain_text("Número desconectado")
        await expect(banner).to_contain_text(instance.display_number)
        open_rows = page.locator("[data-testid=open-alerts] [data-testid=alert-row]")
        await expect(open_rows).to_have_count(1, timeout=LIVE)
        await expect(open_rows.first).to_have_attribute("data-kind", "number_disconnected")

        await _connection(web_engine, instance.id, "open")
        await expect(banner).to_be_hidden(timeout=LIVE)
        await expect(page.locator("[data-testid=open-alerts]")).to_have_attribute(
            "data-count", "0", timeout=LIVE
        )
        resolved = page.locator("[data-testid=past-alerts] [data-testid=alert-row]")
        await expect(resolved).to_have_count(1)
        await expect(resolved.first).to_contain_text("Número desconectado")
        assert await page.evaluate("window.sameDocument") is True
    finally:
        await browser_context.close()


async def test_an_admin_changes_a_rule_in_the_page(browser: Browser, web_engine: WebEngine) -> None:
    await web_engine.tenant("Loja Regras", "rui@regras.com.br", "admin")
    browser_context, page = await logged_in(browser, web_engine.base_url, "rui@regras.com.br")
    try:
        await page.goto("/alerts")
        row = page.locator("[data-testid=rule-row][data-kind=consecutive_failures]")
        await row.locator("input[name=threshold]").fill("7")
        await row.get_by_role("button", name="Salvar").click()
        await expect(page.locator("#toast")).to_contain_text("Regra salva")
        await expect(row).to_contain_text("7 falhas seguidas em um número")
        refused = page.locator("[data-testid=rule-row][data-kind=send_error_rate]")
        await refused.locator("input[name=threshold]").fill("500")
        await refused.get_by_role("button", name="Salvar").click()
        await expect(page.locator("#toast")).to_contain_text("threshold must be from 0.1 to 100")
    finally:
        await browser_context.close()


async def test_agents_see_no_banner_and_cannot_open_the_page(browser: Browser, web_engine: WebEngine) -> None:
    tenant_id, instance = await web_engine.tenant("Loja Agente", "lia@agente.com.br", "admin")
    await create_user(web_engine.context, tenant_id, "bia@agente.com.br", PASSWORD, "agent")
    await _connection(web_engine, instance.id, "close")
    admin_context, admin_page = await logged_in(browser, web_engine.base_url, "lia@agente.com.br")
    agent_context, agent_page = await logged_in(browser, web_engine.base_url, "bia@agente.com.br")
    try:
        # On the inbox too, for the admin; an agent's inbox has no banner at all.
        await expect(admin_page.locator("[data-testid=alert-banner]")).to_be_visible(timeout=LIVE)
        await expect(admin_page.locator("[data-testid=alert-banner]")).to_contain_text("Número desconectado")
        await expect(agent_page.locator("[data-testid=alert-banner]")).to_have_count(0)
        await admin_page.goto("/alerts")
        await expect(admin_page.locator("[data-testid=alert-banner]")).to_be_visible(timeout=LIVE)
        answer = await agent_page.goto("/alerts")
        assert answer is not None
        assert answer.status == 403
        await expect(agent_page.locator("[data-testid=alert-banner]")).to_be_hidden()
        fragment = await agent_page.request.get("/alerts/fragments/banner")
        assert fragment.status == 403
    finally:
        await admin_context.close()
        await agent_context.close()
