"""The templates page in the browser: an admin syncs a Meta number's templates (from the Meta
fake) and sees them with their statuses, creates one for a simulator number; a supervisor sees
them and cannot act; an agent cannot open the page; a template's body is text, never markup."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.context import EngineContext
from tests.fakes.http import FakeHttpServer
from tests.fakes.meta import MetaGraphFake, meta_template
from tests.helpers import ServerThread, bind, create_user, free_port
from tests.web.conftest import PASSWORD, WebEngine, logged_in, web_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOKEN = "EAAG-web-templates"
WABA = "104857293840777"


@pytest.fixture(scope="module")
def meta() -> MetaGraphFake:
    fake = MetaGraphFake(token=TOKEN, phone_number_id="109283746507777", waba_id=WABA)
    fake.templates = [
        meta_template("confirmacao_pedido", "Olá {{1}}, recebemos seu pedido {{2}}."),
        meta_template("promo_natal", "Natal com {{1}} de desconto!", status="PENDING", category="MARKETING"),
        meta_template(
            "oferta_negrito", "Oferta <b>só hoje</b> <script>window.hacked=1</script>", status="REJECTED"
        ),
    ]
    return fake


@pytest.fixture(scope="module")
def meta_server(meta: MetaGraphFake) -> Iterator[FakeHttpServer]:
    with FakeHttpServer(meta) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web_engine(
    module_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory, meta_server: FakeHttpServer
) -> AsyncIterator[WebEngine]:
    """The embedded engine, its Graph API calls going to the Meta fake."""
    port = free_port()
    settings = web_settings(module_sqlite_url, None, "web:", tmp_path_factory.mktemp("data"), port)
    settings = settings.model_copy(update={"meta_graph_url": f"{meta_server.base_url}/v23.0"})
    context = await EngineContext.open(settings)
    with ServerThread(create_app(settings, Role.ALL), port, settings, timeout_graceful_shutdown=1) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            yield WebEngine(settings, server.base_url, context, http)
    await context.close()


async def test_an_admin_syncs_from_meta_and_creates_a_simulator_template(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, simulator = await web_engine.tenant("Loja Modelos", "ana@modelos.com.br")
    await bind(
        web_engine.context,
        tenant_id,
        provider="meta",
        name="Loja Centro",
        display_number="+551140027777",
        phone_number_id="109283746507777",
        waba_id=WABA,
        access_token=TOKEN,
        app_secret="c" * 32,
    )
    context, page = await logged_in(browser, web_engine.base_url, "ana@modelos.com.br")
    try:
        await page.goto("/templates")
        listing = page.locator("[data-testid=templates-list]")
        await expect(listing).to_contain_text("Nenhum modelo ainda: sincronize com a Meta.")
        await page.evaluate("window.sameDocument = true")

        await page.locator("[data-testid=templates-sync]").click()
        await expect(page.locator("#toast")).to_contain_text("Modelos sincronizados: 3 novos")
        rows = page.locator(
            f"[data-testid=template-group][data-scope='waba:{WABA}'] [data-testid=template-row]"
        )
        await expect(rows).to_have_count(3)
        approved = page.locator("[data-testid=template-row][data-template-name=confirmacao_pedido]")
        await expect(approved).to_have_attribute("data-status", "APPROVED")
        await expect(approved.locator(".badge")).to_have_text("Aprovado")
        await expect(approved.locator("[data-testid=param-chip]")).to_have_count(2)
        pending = page.locator("[data-testid=template-row][data-template-name=promo_natal]")
        await expect(pending.locator(".badge")).to_have_text("Em análise")
        await expect(pending).to_contain_text("Marketing")
        rejected = page.locator("[data-testid=template-row][data-template-name=oferta_negrito]")
        await expect(rejected.locator(".badge")).to_have_text("Rejeitado")
        # The body is shown as text: the markup is visible, nothing of it runs.
        await expect(rejected).to_contain_text("<b>só hoje</b>")
        await expect(rejected.locator("b, script")).to_have_count(0)
        assert await page.evaluate("window.hacked") is None

        form = page.locator("#template-create-form")
        await form.locator("select[name=instance_id]").select_option(simulator.id)
        await form.locator("input[name=name]").fill("lembrete_visita")
        await form.locator("textarea[name=body]").fill("Oi {{1}}, sua visita é amanhã às {{2}}.")
        await page.locator("[data-testid=template-create-submit]").click()
        await expect(page.locator("#toast")).to_contain_text("Modelo criado")
        created = page.locator("[data-testid=template-row][data-template-name=lembrete_visita]")
        await expect(created).to_have_attribute("data-status", "APPROVED")
        await expect(created).to_contain_text("2 parâmetros")
        # The same name again (the form was drawn anew, empty): the API's reason in the toast.
        await form.locator("input[name=name]").fill("lembrete_visita")
        await form.locator("textarea[name=body]").fill("Oi {{1}}!")
        await page.locator("[data-testid=template-create-submit]").click()
        await expect(page.locator("#toast")).to_contain_text("already has a template lembrete_visita")
        assert await page.evaluate("window.sameDocument") is True
    finally:
        await context.close()


async def test_a_supervisor_reads_and_an_agent_cannot_open_the_page(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, _ = await web_engine.tenant("Loja Leitura", "caio@leitura.com.br", "supervisor")
    await create_user(web_engine.context, tenant_id, "bia@leitura.com.br", PASSWORD, "agent")
    context, page = await logged_in(browser, web_engine.base_url, "caio@leitura.com.br")
    try:
        await page.goto("/templates")
        await expect(page.locator("[data-testid=templates-list]")).to_be_visible()
        await expect(page.locator("[data-testid=templates-sync]")).to_have_count(0)
        await expect(page.locator("[data-testid=template-create]")).to_have_count(0)
    finally:
        await context.close()
    context, page = await logged_in(browser, web_engine.base_url, "bia@leitura.com.br")
    try:
        response = await page.goto("/templates")
        assert response is not None
        assert response.status == 403
    finally:
        await context.close()
