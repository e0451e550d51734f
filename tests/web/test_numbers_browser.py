"""The numbers page in Chromium: making an Evolution API number in the page and linking its phone
by the QR code shown there (against the fake Evolution API, which reports the phone connected), the
cards' data-testids and health kept live, and pause / resume from the page with a refusal's reason."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import update

from messaging_whatsapp.instances.models import WhatsAppInstance
from tests.fakes.evolution import GLOBAL_KEY, FakeEvolution
from tests.fakes.http import FakeHttpServer
from tests.helpers import create_user
from tests.web.conftest import LIVE, PASSWORD, WebEngine, logged_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROW = "[data-testid=instance-row]"


@pytest.fixture(scope="module")
def evolution() -> Iterator[tuple[FakeEvolution, FakeHttpServer]]:
    fake = FakeEvolution()
    with FakeHttpServer(fake, hold_seconds=2) as server:
        yield fake, server


def row(page: Page, instance_id: str) -> object:
    """The card of one number."""
    return page.locator(f'{ROW}[data-instance-id="{instance_id}"]')


async def open_numbers(browser: Browser, engine: WebEngine, email: str) -> tuple[object, Page]:
    """A browser logged in as `email`, on the numbers page, live."""
    context, page = await logged_in(browser, engine.base_url, email)
    await page.goto("/numbers")
    await page.locator("[data-testid=live-status][data-state=connected]").wait_for(state="attached")
    return context, page


async def test_making_an_evolution_number_and_linking_its_phone_by_qr_code(
    browser: Browser, web_engine: WebEngine, evolution: tuple[FakeEvolution, FakeHttpServer]
) -> None:
    fake, server = evolution
    await web_engine.tenant("Loja QR", "ana@qr.com.br")
    context, page = await open_numbers(browser, web_engine, "ana@qr.com.br")
    try:
        await page.click("[data-testid=bind-number]")
        dialog = page.locator("[data-testid=bind-dialog]")
        await expect(dialog).to_be_visible()
        await dialog.locator("[data-testid=provider-evolution] + span").click()
        fields = dialog.locator("fieldset[data-provider=evolution]")
        # What is missing is said at its field, in Portuguese.
        await page.click("[data-testid=bind-submit]")
        missing = fields.locator(".field.has-error .field-error")
        await expect(missing).to_have_count(3)
        await expect(missing.first).to_have_text("Obrigatório.")
        await expect(dialog.locator("[data-testid=bind-error]")).to_have_text(
            "Confira os campos marcados em vermelho."
        )
        # Made on the gateway with its global key, and bound.
        await fields.locator("[data-testid=create-on-gateway-evolution]").check()
        await fields.locator("input[name=instance_name]").fill("loja-qr-browser")
        await fields.locator("input[name=name]").fill("Loja QR")
        await fields.locator("input[name=api_url]").fill(server.base_url)
        await fields.locator("input[name=api_key]").fill(GLOBAL_KEY)
        await page.click("[data-testid=bind-submit]")

        # Bound: the QR dialog opens with the gateway's code, and the card says "connecting".
        qr = page.locator("[data-testid=qr-dialog]")
        await expect(qr.locator("[data-testid=qr-code] svg")).to_be_visible()
        card = page.locator(ROW, has_text="Loja QR")
        await expect(card).to_have_attribute("data-connection", "connecting")
        await expect(card.locator("[data-testid=instance-connection]")).to_have_text("Conectando")
        await expect(card.locator("[data-testid=instance-provider]")).to_have_text("Evolution API")
        gateway = fake.instances["loja-qr-browser"]
        assert gateway.qrcode["code"]
        assert GLOBAL_KEY not in await page.content()
        assert gateway.token not in await page.content()

        # The phone scans the code: Evolution reports it connected through our webhook.
        url, headers, body = fake.link_phone("loja-qr-browser", "5511940028977")
        posted = await web_engine.http.post(urlsplit(url).path, json=body, headers=headers)
        assert posted.status_code == 200, posted.text
        await expect(qr.locator("[data-testid=qr-connected]")).to_be_visible(timeout=LIVE)
        await expect(qr.locator("[data-testid=qr-connected] h3")).to_have_text("Conectado")
        await expect(card).to_have_attribute("data-connection", "open", timeout=LIVE)
        await expect(card.locator("[data-testid=instance-connection]")).to_have_text("Conectado")
        # Bound without its phone number: the card shows the linked phone's.
        await expect(card.locator("[data-testid=instance-phone]")).to_have_text("+55 11 94002-8977")
        await qr.locator(".modal-foot [data-close]").click()
        await expect(qr).to_be_hidden()
        await expect(card.locator("[data-testid=instance-connect]")).to_have_text("QR code")
    finally:
        await context.close()


async def test_the_cards_show_health_today_and_warmup_and_follow_health_live(
    browser: Browser, web_engine: WebEngine
) -> None:
    _tenant_id, instance = await web_engine.tenant("Loja Saúde", "ana@saude.com.br")
    async with web_engine.context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id == instance.id)
            .values(health_score=79.0, last_error="131026: Message undeliverable <b>x</b>")
        )
    context, page = await open_numbers(browser, web_engine, "ana@saude.com.br")
    try:
        await expect(page.locator(ROW)).to_have_count(1)
        card = row(page, instance.id)
        await expect(card).to_have_attribute("data-health", "good")
        await expect(card.locator("[data-testid=instance-health]")).to_have_text("Boa")
        await expect(card.locator("[data-testid=instance-score]")).to_have_text("79")
        await expect(card.locator("[data-testid=instance-status]")).to_have_text("Ativo")
        await expect(card.locator("[data-testid=instance-provider]")).to_have_text("Simulador")
        await expect(card.locator("[data-testid=instance-today]")).to_have_attribute("data-cap", "1000")
        await expect(card.locator("[data-testid=instance-warmup]")).to_have_attribute("data-day", "1")
        await expect(card.locator("[data-testid=instance-warmup]")).to_contain_text("Aquecimento, dia 1")
        # The provider's error is text, never markup.
        await expect(card.locator("[data-testid=instance-last-error]")).to_contain_text("<b>x</b>")

        # A message delivered and read lifts the score past 80: the worker announces the new health
        # status and the card is fetched again, with today's counters.
        csrf = next(c["value"] for c in await context.cookies() if c["name"] == "csrf")
        body = {"to": "+5511987654321", "instance_id": instance.id, "text": "Olá!"}
        sent = await page.request.post("/api/v1/messages", data=body, headers={"X-CSRF-Token": csrf})
        assert sent.status == 202, await sent.text()
        await expect(card).to_have_attribute("data-health", "excellent", timeout=LIVE)
        await expect(card.locator("[data-testid=instance-health]")).to_have_text("Excelente")
        today = card.locator("[data-testid=instance-today]")
        await expect(today).to_have_attribute("data-sent", "1")
        await expect(today).to_have_attribute("data-delivered", "1")
        await expect(page.locator("[data-summary=sent]")).to_have_text("1")
    finally:
        await context.close()


async def test_pause_and_resume_from_the_page_and_a_refusal_says_why(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, instance = await web_engine.tenant("Loja Pausa", "ana@pausa.com.br")
    await create_user(web_engine.context, tenant_id, "lia@pausa.com.br", PASSWORD, "supervisor")
    context, page = await open_numbers(browser, web_engine, "ana@pausa.com.br")
    watcher, watching = await open_numbers(browser, web_engine, "lia@pausa.com.br")
    try:
        card = row(page, instance.id)
        watched = row(watching, instance.id)
        # Supervisors see the numbers, not the actions.
        await expect(watched).to_be_visible()
        await expect(watching.locator("[data-testid=instance-pause]")).to_have_count(0)
        await expect(watching.locator("[data-testid=bind-number]")).to_have_count(0)

        await card.locator("[data-testid=instance-pause]").click()
        await expect(card).to_have_attribute("data-status", "paused")
        await expect(card.locator("[data-testid=instance-status]")).to_have_text("Pausado")
        await expect(page.locator("#toast")).to_have_text("Pausado.")
        # The other screen follows through the event stream.
        await expect(watched).to_have_attribute("data-status", "paused", timeout=LIVE)

        await card.locator("[data-testid=instance-resume]").click()
        await expect(card).to_have_attribute("data-status", "active")
        await expect(watched).to_have_attribute("data-status", "active", timeout=LIVE)

        # Unbound elsewhere meanwhile: the refusal's reason is shown and the card goes away.
        api = await page.request.post(
            f"/api/v1/instances/{instance.id}/unbind",
            headers={
                "X-CSRF-Token": next(c["value"] for c in await context.cookies() if c["name"] == "csrf")
            },
        )
        assert api.status == 200, await api.text()
        await card.locator("[data-testid=instance-pause]").click()
        await expect(page.locator("#toast")).to_have_text(re.compile(r"is unbound; bind the number again"))
        await expect(card).to_have_count(0)
        await expect(page.locator("#numbers-empty")).to_be_visible()
    finally:
        await watcher.close()
        await context.close()
