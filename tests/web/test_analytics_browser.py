"""The Analytics page in Chromium: its figures equal what the simulator sent, delivered and read,
they follow new sends live, the filters narrow them, and an agent gets the 403 page."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import func, select

from messaging_whatsapp.inbox.models import Message
from tests.helpers import create_user, wait_until
from tests.web.conftest import LIVE, PASSWORD, WebEngine, logged_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOTALS = "[data-testid=analytics-totals]"


async def send(engine: WebEngine, email: str, instance_id: str, count: int, first: int = 0) -> None:
    """`count` one-to-one messages through the API, as the person logged in as `email`."""
    login = await engine.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    headers = {"authorization": f"Bearer {login.json()['access_token']}"}
    for index in range(first, first + count):
        body = {"instance_id": instance_id, "to": f"+55119877{index:05d}", "text": f"Pedido {index} enviado"}
        response = await engine.http.post("/api/v1/messages", json=body, headers=headers)
        assert response.status_code == 202, response.text


async def all_read(engine: WebEngine, tenant_id: str, count: int) -> None:
    """Wait until the simulator's receipts marked `count` messages of the tenant read."""

    async def read() -> bool:
        async with engine.context.sessions() as session:
            done = await session.scalar(
                select(func.count()).where(Message.tenant_id == tenant_id, Message.status == "read")
            )
        return done == count

    await wait_until(read, timeout=30, what=f"{count} messages read")


async def test_the_figures_are_what_the_simulator_sent_delivered_and_read(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, number = await web_engine.tenant("Loja Números", "gerente@numeros.com.br", role="supervisor")
    await send(web_engine, "gerente@numeros.com.br", number.id, 5)
    await all_read(web_engine, tenant_id, 5)
    context, page = await logged_in(browser, web_engine.base_url, "gerente@numeros.com.br")
    await page.goto("/analytics?range=today")
    totals = page.locator(TOTALS)
    # The rollup folds the receipts within two seconds; the page catches up live.
    await expect(totals).to_have_attribute("data-read", "5", timeout=LIVE)
    await expect(totals).to_have_attribute("data-sent", "5")
    await expect(totals).to_have_attribute("data-delivered", "5")
    await expect(totals).to_have_attribute("data-failed", "0")
    await expect(page.locator("[data-testid=stat-sent]")).to_have_text("5")
    await expect(page.locator("[data-testid=stat-delivery-rate]")).to_have_text("100,0 %")
    await expect(page.locator("[data-testid=stat-read-rate]")).to_have_text("100,0 %")
    row = page.locator(f'[data-testid=analytics-number-row][data-instance-id="{number.id}"]')
    await expect(row).to_have_attribute("data-sent", "5")
    await expect(page.locator("[data-testid=delivery-chart] canvas")).to_have_count(1)
    await expect(page.locator("[data-testid=volume-chart] canvas")).to_have_count(1)
    await expect(page.locator("[data-testid=range-today]")).to_have_class("range-option is-active")

    # Three more sends: the page follows them through the event stream, without a reload.
    await send(web_engine, "gerente@numeros.com.br", number.id, 3, first=5)
    await all_read(web_engine, tenant_id, 8)
    await expect(totals).to_have_attribute("data-read", "8", timeout=LIVE)
    await expect(page.locator("[data-testid=stat-sent]")).to_have_text("8")

    # The CSV export says the same.
    href = await page.locator("[data-testid=export-delivery]").get_attribute("href")
    assert href is not None
    exported = await context.request.get(href)
    assert exported.ok
    assert sum(int(line.split(",")[1]) for line in (await exported.text()).splitlines()[1:]) == 8
    await context.close()


async def test_filters_and_a_reversed_range_say_so_in_place(browser: Browser, web_engine: WebEngine) -> None:
    tenant_id, number = await web_engine.tenant("Loja Filtros", "gerente@filtros.com.br", role="supervisor")
    await send(web_engine, "gerente@filtros.com.br", number.id, 2)
    await all_read(web_engine, tenant_id, 2)
    context, page = await logged_in(browser, web_engine.base_url, "gerente@filtros.com.br")
    await page.goto("/analytics")
    await page.locator("[data-testid=filter-number]").select_option(number.id)
    await page.wait_for_url(f"**instance_id={number.id}**")
    await expect(page.locator(TOTALS)).to_have_attribute("data-read", "2", timeout=LIVE)
    await page.locator("[data-testid=range-custom]").click()
    await page.fill("input[name=from]", "2026-11-10")
    await page.fill("input[name=to]", "2026-11-01")
    await page.click("form[data-testid=analytics-filters] button[type=submit]")
    await expect(page.locator("[data-testid=analytics-error]")).to_have_text(
        "O início deve ser anterior ao fim."
    )
    await context.close()


async def test_an_agent_gets_the_forbidden_page(browser: Browser, web_engine: WebEngine) -> None:
    tenant_id, _number = await web_engine.tenant("Loja Agente", "chefe@agente.com.br")
    await create_user(web_engine.context, tenant_id, "agente@agente.com.br", PASSWORD, "agent")
    context, page = await logged_in(browser, web_engine.base_url, "agente@agente.com.br")
    response = await page.goto("/analytics")
    assert response is not None
    assert response.status == 403
    await expect(page.locator("[data-testid=forbidden]")).to_be_visible()
    assert (await context.request.get("/api/v1/analytics/delivery")).status == 403
    await context.close()
