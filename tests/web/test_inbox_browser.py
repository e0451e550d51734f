"""The team inbox in Chromium: log in, live messages, sending with ticks, tenants apart, the
24-hour window, both languages, and a customer's HTML shown as text."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from playwright.async_api import Browser, Page, Request, Route, expect
from sqlalchemy import func, select, update

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Conversation, Message
from tests.helpers import approved_template, bind, create_user, wait_until
from tests.web.conftest import LIVE, PASSWORD, WebEngine, logged_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

ITEM = "[data-testid=conversation-item]"
MESSAGE = "[data-testid=message]"


def item(page: Page, conversation_id: str) -> object:
    """The list item of one conversation."""
    return page.locator(f'{ITEM}[data-conversation-id="{conversation_id}"]')


async def conversation_of(engine: WebEngine, provider_id: str) -> str:
    """The conversation a stored inbound message (by provider id) belongs to."""

    async def find() -> str | None:
        async with engine.context.sessions() as session:
            return await session.scalar(
                select(Message.conversation_id).where(Message.provider_message_id == provider_id)
            )

    return await wait_until(find, what=f"message {provider_id} stored")


async def test_login_shows_errors_in_place_and_speaks_portuguese_or_english(
    browser: Browser, web_engine: WebEngine
) -> None:
    await web_engine.tenant("Loja Login", "ana@login.com.br")
    context = await browser.new_context(base_url=web_engine.base_url, locale="pt-BR")
    page = await context.new_page()
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await expect(page.locator("html")).to_have_attribute("lang", "pt-BR")
    await expect(page.locator("button[type=submit]")).to_have_text("Entrar")
    await page.fill("input[name=email]", "ana@login.com.br")
    await page.fill("input[name=password]", "not-the-password")
    await page.click("button[type=submit]")
    await expect(page.locator("[data-testid=login-error]")).to_have_text("E-mail ou senha incorretos.")
    # The switcher: English from now on, whatever the browser says.
    await page.click(".lang-option[data-lang=en]")
    await expect(page.locator("button[type=submit]")).to_have_text("Log in")
    await page.fill("input[name=email]", "ana@login.com.br")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/inbox$"))
    await expect(page.locator(".tab").first).to_have_text("Mine")
    await expect(page.locator(".chat-empty h2")).to_have_text("Select a conversation")
    session = next(c for c in await context.cookies() if c["name"] == "mw_session")
    assert session["httpOnly"]
    assert session["sameSite"] == "Lax"
    assert not session["secure"]
    await page.click(".logout-form button")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.goto("/inbox")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await context.close()

    # A browser asking for English gets English; Portuguese is the default otherwise.
    english = await browser.new_context(base_url=web_engine.base_url, locale="en-US")
    page = await english.new_page()
    await page.goto("/login")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("label").first).to_contain_text("Email")
    await english.close()


async def test_an_inbound_message_appears_live_in_list_and_chat_and_opening_marks_it_read(
    browser: Browser, web_engine: WebEngine
) -> None:
    _tenant, instance = await web_engine.tenant("Loja Live", "ana@live.com.br")
    first = await web_engine.inbound(instance, "+5511987650001", "Oi, tudo bem?", "Maria Souza")
    maria = await conversation_of(web_engine, first)
    context, page = await logged_in(browser, web_engine.base_url, "ana@live.com.br")
    try:
        await expect(item(page, maria).locator("[data-testid=unread]")).to_have_text("1")
        await item(page, maria).click()
        chat = page.locator(f'[data-testid=chat][data-conversation-id="{maria}"]')
        await expect(chat.locator(MESSAGE)).to_have_count(1)
        # Opening it marked it read: the badge is gone.
        await expect(item(page, maria).locator("[data-testid=unread]")).to_have_count(0)
        await expect(page.locator("[data-testid=lead-panel] .contact-name")).to_have_text("Maria Souza")

        # Maria writes again: it shows in the open chat, without a reload.
        await web_engine.inbound(instance, "+5511987650001", "Quanto custa o plano anual?", "Maria Souza")
        await expect(chat.locator(MESSAGE).last).to_contain_text("Quanto custa o plano anual?", timeout=LIVE)
        await expect(chat.locator(MESSAGE).last).to_have_attribute("data-direction", "inbound")

        # Someone new writes: a new item at the top of the list, with its unread badge.
        other = await web_engine.inbound(instance, "+5511987650002", "Vocês entregam em Campinas?", "João")
        joao = await conversation_of(web_engine, other)
        await expect(page.locator(ITEM).first).to_have_attribute("data-conversation-id", joao, timeout=LIVE)
        await expect(item(page, joao).locator("[data-testid=unread]")).to_have_text("1")
        await expect(item(page, joao)).to_contain_text("Vocês entregam em Campinas?")
        await expect(page).to_have_title(re.compile(r"^\(1\) Caixa de entrada"))
        # Maria's next message moves hers back to the top.
        await web_engine.inbound(instance, "+5511987650001", "Alô?", "Maria Souza")
        await expect(page.locator(ITEM).first).to_have_attribute("data-conversation-id", maria, timeout=LIVE)
    finally:
        await context.close()


async def test_a_sent_message_shows_at_once_is_sent_once_despite_a_retry_and_its_ticks_turn_read(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, instance = await web_engine.tenant("Loja Envio", "ana@envio.com.br")
    first = await web_engine.inbound(instance, "+5511987650003", "Quero comprar", "Bia")
    conversation_id = await conversation_of(web_engine, first)
    context, page = await logged_in(browser, web_engine.base_url, "ana@envio.com.br")
    try:
        await item(page, conversation_id).click()
        await expect(page.locator("[data-testid=chat]")).to_be_visible()

        # The first attempt is lost on the network; the second is held until the page was checked.
        keys: list[str] = []
        release = asyncio.Event()

        async def network(route: Route, request: Request) -> None:
            keys.append(request.headers["idempotency-key"])
            if len(keys) == 1:
                await route.abort("internetdisconnected")
                return
            await release.wait()
            await route.continue_()

        await page.route("**/api/v1/messages", network)
        textarea = page.locator("[data-testid=composer] textarea")
        await textarea.fill("Linha um")
        await textarea.press("Shift+Enter")
        await textarea.type("linha dois")
        await textarea.press("Enter")
        sent = page.locator(f"{MESSAGE}[data-direction=outbound]")
        await expect(sent).to_have_count(1)
        await expect(sent).to_have_attribute("data-status", "queued")
        await expect(sent.locator(".text")).to_have_text("Linha um\nlinha dois")
        await expect(textarea).to_have_value("")
        await wait_until(_async(lambda: len(keys) >= 2), what="the retry")
        release.set()

        await expect(sent).to_have_attribute("data-message-id", re.compile(r".+"))
        await expect(sent).to_have_attribute("data-status", "read", timeout=LIVE)
        await expect(sent.locator(".ticks-read")).to_have_count(1)
        assert len(set(keys)) == 1, "a retry reuses the message's Idempotency-Key"
        async with web_engine.context.sessions() as session:
            stored = await session.scalar(
                select(func.count()).where(Message.tenant_id == tenant_id, Message.direction == "outbound")
            )
        assert stored == 1
    finally:
        await context.close()


async def test_another_tenants_browser_never_sees_its_events_and_gets_404_for_its_conversation(
    browser: Browser, web_engine: WebEngine
) -> None:
    _a, instance_a = await web_engine.tenant("Loja A", "ana@a-loja.com.br")
    await web_engine.tenant("Loja B", "bia@b-loja.com.br")
    context_a, page_a = await logged_in(browser, web_engine.base_url, "ana@a-loja.com.br")
    context_b, page_b = await logged_in(browser, web_engine.base_url, "bia@b-loja.com.br")
    try:
        provider_id = await web_engine.inbound(instance_a, "+5511987650004", "Só para a loja A", "Cliente A")
        conversation_id = await conversation_of(web_engine, provider_id)
        await expect(item(page_a, conversation_id)).to_be_visible(timeout=LIVE)
        # B's page has its live connection and nothing of A's, even after A's item arrived.
        await expect(page_b.locator("[data-testid=live-status]")).to_have_attribute("data-state", "connected")
        await expect(page_b.locator(ITEM)).to_have_count(0)
        assert "Só para a loja A" not in await page_b.content()
        for path in (
            f"/inbox/fragments/conversation/{conversation_id}",
            f"/inbox/fragments/chat/{conversation_id}",
            f"/inbox/fragments/lead/{conversation_id}",
            f"/api/v1/events/stream?conversation_id={conversation_id}",
        ):
            answer = await context_b.request.get(path)
            assert answer.status == 404, path
        page = await page_b.goto(f"/inbox/{conversation_id}")
        assert page is not None
        assert page.status == 404
    finally:
        await context_a.close()
        await context_b.close()


async def test_outside_the_24_hour_window_the_composer_offers_a_template(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, simulator = await web_engine.tenant("Loja Janela", "ana@janela.com.br")
    meta, _url = await bind(
        web_engine.context,
        tenant_id,
        provider="meta",
        display_number="+551140028933",
        phone_number_id="109283746509999",
        waba_id="104857293840000",
        access_token="EAAG-janela",
        verify_token="tok-janela-7d2f",
        app_secret="3f1c9a7e5b2d4f60a8c1e3b5d7f9aaaa",
    )
    await approved_template(web_engine.context, tenant_id, meta, "boas_vindas", 1)
    provider_id = await web_engine.inbound(simulator, "+5511987650005", "Oi", "Carla")
    on_simulator = await conversation_of(web_engine, provider_id)
    # The same customer on the Meta number, who last wrote two days ago.
    async with web_engine.context.sessions() as session, session.begin():
        original = await session.get(Conversation, on_simulator)
        assert original is not None
        old = Conversation(
            tenant_id=tenant_id,
            contact_id=original.contact_id,
            instance_id=meta.id,
            last_inbound_at=utcnow() - timedelta(days=2),
            last_message_at=utcnow() - timedelta(days=2),
        )
        session.add(old)
        await session.flush()
        on_meta = old.id
    context, page = await logged_in(browser, web_engine.base_url, "ana@janela.com.br")
    try:
        await page.goto(f"/inbox/{on_meta}")
        closed = page.locator("[data-testid=window-closed]")
        await expect(closed).to_contain_text("A janela de 24 horas está fechada")
        await expect(page.locator("[data-testid=composer]")).to_have_count(0)
        form = page.locator("[data-testid=template-form]")
        await form.locator("input[name=name]").fill("boas_vindas")
        await form.locator("textarea[name=parameters]").fill("Carla")
        await form.locator("[data-testid=send-template]").click()
        sent = page.locator(f"{MESSAGE}[data-direction=outbound]")
        await expect(sent).to_have_attribute("data-message-id", re.compile(r".+"))
        await expect(sent).to_contain_text("boas_vindas")
        # A simulator number has no window: the composer is there.
        await page.goto(f"/inbox/{on_simulator}")
        await expect(page.locator("[data-testid=composer] textarea")).to_be_visible()
        await expect(page.locator("[data-testid=window-closed]")).to_have_count(0)
        # Once the customer writes again, the window is open.
        async with web_engine.context.sessions() as session, session.begin():
            await session.execute(
                update(Conversation).where(Conversation.id == on_meta).values(last_inbound_at=utcnow())
            )
        await page.goto(f"/inbox/{on_meta}")
        await expect(page.locator("[data-testid=composer] textarea")).to_be_visible()
    finally:
        await context.close()


async def test_a_customers_html_is_shown_as_text_and_never_runs(
    browser: Browser, web_engine: WebEngine
) -> None:
    _tenant, instance = await web_engine.tenant("Loja XSS", "ana@xss.com.br")
    name = '<img src=x onerror="window.__xss_name=1">'
    text = '<img src=x onerror="window.__xss_text=1"> <script>window.__xss_script=1</script>'
    context, page = await logged_in(browser, web_engine.base_url, "ana@xss.com.br")
    try:
        provider_id = await web_engine.inbound(instance, "+5511987650006", text, name)
        conversation_id = await conversation_of(web_engine, provider_id)
        # Arrived live (the list item's fragment), then opened (chat and lead panel).
        await expect(item(page, conversation_id).locator(".conv-name")).to_have_text(name, timeout=LIVE)
        await item(page, conversation_id).click()
        await expect(page.locator(MESSAGE).locator(".text")).to_have_text(text)
        await expect(page.locator("[data-testid=lead-panel] .contact-name")).to_have_text(name)
        # And once more from a reload: the server-rendered page.
        await page.reload()
        await expect(page.locator(MESSAGE).locator(".text")).to_have_text(text)
        assert await page.locator("img[src=x]").count() == 0
        ran = await page.evaluate("[window.__xss_name, window.__xss_text, window.__xss_script]")
        assert ran == [None, None, None]
    finally:
        await context.close()


def _async(check: object) -> object:
    async def run() -> object:
        return check()  # type: ignore[operator]

    return run


async def test_two_agents_see_each_other_type_assign_rename_and_close_live(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, instance = await web_engine.tenant("Loja Equipe", "ana@equipe.com.br")
    await create_user(web_engine.context, tenant_id, "lia@equipe.com.br", PASSWORD, "supervisor")
    conversation_id = await conversation_of(
        web_engine, await web_engine.inbound(instance, "+5511987650007", "Preciso de ajuda", "Davi")
    )
    context_ana, ana = await logged_in(browser, web_engine.base_url, "ana@equipe.com.br")
    context_lia, lia = await logged_in(browser, web_engine.base_url, "lia@equipe.com.br")
    try:
        for page in (ana, lia):
            await item(page, conversation_id).click()
            await expect(page.locator("[data-testid=lead-panel]")).to_be_visible()
        # Ana types: Lia sees it, so two people do not answer Davi unknowingly.
        await ana.locator("[data-testid=composer] textarea").type("Oi Davi")
        await expect(lia.locator("[data-testid=typing]")).to_have_text(
            "ana@equipe.com.br está digitando...", timeout=LIVE
        )
        await expect(ana.locator("[data-testid=typing]")).to_be_hidden()

        # Lia gives the ticket to Ana: both panels and lists say so.
        await lia.locator("[data-testid=lead-panel] select[data-action=assign]").select_option(
            label="ana@equipe.com.br"
        )
        await expect(
            ana.locator("[data-testid=lead-panel] select[data-action=assign] option:checked")
        ).to_have_text("ana@equipe.com.br", timeout=LIVE)
        await expect(item(ana, conversation_id).locator(".assignee")).to_have_text("Você", timeout=LIVE)

        # Ana names the contact.
        await ana.locator("[data-testid=lead-panel] .name-view button").click()
        await ana.locator("[data-testid=lead-panel] input[name=name]").fill("Davi Lima")
        await ana.locator("[data-testid=lead-panel] input[name=name]").press("Enter")
        await expect(ana.locator("[data-testid=lead-panel] .contact-name")).to_have_text("Davi Lima")
        await expect(item(ana, conversation_id).locator(".conv-name")).to_have_text("Davi Lima")

        # Ana closes it as a sale: it leaves the open list on both screens; the ticket says how.
        await ana.locator("[data-testid=lead-panel] [data-action=close][data-reason=sale]").click()
        await expect(item(lia, conversation_id)).to_have_count(0, timeout=LIVE)
        await expect(lia.locator("[data-testid=lead-panel] [data-testid=ticket]").first).to_contain_text(
            "venda", timeout=LIVE
        )
        await expect(item(ana, conversation_id)).to_have_count(0)
    finally:
        await context_ana.close()
        await context_lia.close()
