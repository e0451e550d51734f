"""The AI assistant in Chromium, against the engine's fake model (AI_FAKE, answering with the best
chunk it is given): the knowledge base page adds a document, searches it and tries the assistant
(an answer with its sources, a handoff with its reason); a number in suggestions mode gets a
draft live above the composer that "Use reply" puts in the composer (sent as the agent's own
message) and "Discard" takes away. What a tenant wrote (a title, a heading, the draft's text) is
shown as text."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from messaging_whatsapp.assistant.models import AiReply
from messaging_whatsapp.inbox.models import Message
from messaging_whatsapp.instances.models import WhatsAppInstance
from tests.helpers import wait_until
from tests.web.conftest import LIVE, WebEngine, logged_in, served_engine

pytestmark = pytest.mark.asyncio(loop_scope="module")

TITLE = "FAQ <b>Loja</b>"
FAQ = """# Loja Boa Compra

## Entrega <b>rápida</b>
Entregamos em toda a cidade em até 2 dias úteis.
O frete é <b>grátis</b> para compras acima de R$ 200; abaixo disso custa R$ 15.

## Trocas e devoluções
Você pode devolver um produto em até 7 dias após o recebimento, com a nota fiscal.

## Pagamento
Aceitamos Pix, cartão de crédito em até 10 vezes sem juros e boleto bancário.
"""
DELIVERY_SOURCE = "FAQ <b>Loja</b> > Entrega <b>rápida</b>"
DRAFT = "[data-testid=ai-draft]"
MESSAGE = "[data-testid=message]"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web_engine(
    module_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WebEngine]:
    """The engine with its fake model, answering a customer as soon as they stop writing."""
    data_dir = tmp_path_factory.mktemp("data")
    async with served_engine(module_sqlite_url, data_dir, ai_fake=True, ai_debounce_seconds=0) as engine:
        yield engine


async def add_faq(page: Page) -> None:
    """The FAQ through the page's own API client (the session and its CSRF token)."""
    status = await page.evaluate(
        "(body) => MW.api('POST', '/api/v1/knowledge/documents', body).then((r) => r.status)",
        {"title": TITLE, "text": FAQ},
    )
    assert status == 201


async def test_the_knowledge_page_adds_a_document_searches_it_and_tries_the_assistant(
    browser: Browser, web_engine: WebEngine
) -> None:
    await web_engine.tenant("Loja Saber", "ana@saber.com.br")
    context, page = await logged_in(browser, web_engine.base_url, "ana@saber.com.br")
    try:
        # The Assistant tab: answers come from the engine's demo model (AI_FAKE); the admin edits.
        await page.goto("/knowledge")
        await page.click("[data-testid=tab-assistant]")
        settings = page.locator("[data-testid=assistant-settings]")
        await expect(settings).to_have_attribute("data-endpoint", "fake")
        await settings.locator("textarea[name=instructions]").fill("Fale de forma simpática.")
        await settings.locator("summary").click()
        await settings.locator("[data-testid=assistant-api-key]").fill("sk-segredo")
        await settings.locator("[data-testid=assistant-save]").click()
        await expect(page.locator("#toast")).to_have_text("Configurações do assistente salvas.")
        # The key is never shown again, only that there is one.
        await expect(settings).to_have_attribute("data-api-key-set", "true")
        await expect(settings.locator("[data-testid=assistant-api-key]")).to_have_value("")
        await page.reload()
        await expect(settings.locator("textarea[name=instructions]")).to_have_value(
            "Fale de forma simpática."
        )
        assert "sk-segredo" not in await page.content()

        # Nothing in the base yet: the assistant would call a person, and says why.
        question = page.locator("[data-testid=assistant-preview-input]")
        answer = page.locator("[data-testid=assistant-preview-answer]")
        await question.fill("Em quantos dias vocês entregam?")
        await question.press("Enter")
        await expect(answer).to_have_attribute("data-handed-off", "true")
        await expect(answer.locator(".preview-reason")).to_have_text(
            "Motivo: Nada na base de conhecimento responde a isso."
        )

        # A document, pasted; then found by a customer's words.
        await page.click("[data-testid=tab-documents]")
        upload = page.locator("[data-testid=knowledge-upload]")
        await upload.locator("input[name=title]").fill(TITLE)
        await upload.locator("textarea[name=text]").fill(FAQ)
        await upload.locator("button[type=submit]").click()
        document = page.locator("[data-testid=knowledge-document-row]")
        await expect(document).to_have_count(1)
        await expect(document.locator("td").first).to_have_text(TITLE)
        await page.fill("#knowledge-search-form input[name=q]", "qual o prazo de entrega?")
        await page.click("#knowledge-search-form button[type=submit]")
        await expect(page.locator("[data-testid=knowledge-result]").first.locator("strong")).to_have_text(
            DELIVERY_SOURCE
        )

        # Now the assistant answers, from the document, and cites it.
        await page.click("[data-testid=tab-assistant]")
        await question.fill("Em quantos dias vocês entregam?")
        await question.press("Enter")
        await expect(answer).to_have_attribute("data-handed-off", "false")
        await expect(answer.locator(".preview-text")).to_contain_text("Entregamos em toda a cidade")
        await expect(answer.locator(".preview-text")).to_contain_text("<b>grátis</b>")
        await expect(answer.locator("[data-testid=ai-sources] li").first).to_have_text(DELIVERY_SOURCE)
        assert await page.locator("#page b").count() == 0
    finally:
        await context.close()


async def test_a_draft_shows_live_above_the_composer_is_used_and_sent_or_discarded(
    browser: Browser, web_engine: WebEngine
) -> None:
    tenant_id, instance = await web_engine.tenant("Loja Rascunho", "ana@rascunho.com.br")
    context, page = await logged_in(browser, web_engine.base_url, "ana@rascunho.com.br")
    try:
        await add_faq(page)
        # The admin turns suggestions on for the number, on the numbers page.
        await page.goto("/numbers")
        await page.select_option("[data-testid=ai-mode-select]", "drafts")
        await expect(page.locator("[data-testid=instance-ai-mode]")).to_have_attribute(
            "data-ai-mode", "drafts"
        )
        async with web_engine.context.sessions() as session:
            ai_mode = await session.scalar(
                select(WhatsAppInstance.ai_mode).where(WhatsAppInstance.id == instance.id)
            )
        assert ai_mode == "drafts"

        await page.goto("/inbox")
        first = await web_engine.inbound(
            instance, "+5511987651001", "Oi! Em quantos dias vocês entregam?", "Carla"
        )
        conversation_id = await conversation_of(web_engine, first)
        await page.locator(
            f'[data-testid=conversation-item][data-conversation-id="{conversation_id}"]'
        ).click()
        # The draft arrives live (or is there on opening, had it come first).
        draft = page.locator(DRAFT)
        await expect(draft.locator(".ai-draft-text")).to_contain_text(
            "Entregamos em toda a cidade", timeout=LIVE
        )
        await expect(draft.locator(".ai-draft-text")).to_contain_text("<b>grátis</b>")
        await expect(draft.locator("[data-testid=ai-sources] li").first).to_have_text(DELIVERY_SOURCE)
        assert await page.locator(".ai-draft b").count() == 0
        # Nothing went to the customer.
        assert await _outbound(web_engine, tenant_id) == []

        # "Use reply" fills the composer; the agent edits and sends it as their own.
        await page.click("[data-testid=ai-draft-use]")
        await expect(draft).to_have_count(0)
        textarea = page.locator("[data-testid=composer] textarea")
        await expect(textarea).to_have_value(re.compile(r"Entregamos em toda a cidade"))
        await textarea.press("End")
        await textarea.type(" Abraço!")
        await textarea.press("Enter")
        sent = page.locator(f"{MESSAGE}[data-direction=outbound]")
        await expect(sent).to_have_attribute("data-message-id", re.compile(r".+"))
        await expect(sent.locator(".text")).to_contain_text("Abraço!")
        await expect(sent.locator("[data-testid=ai-badge]")).to_have_count(0)
        assert await _outbound(web_engine, tenant_id) == ["user"]

        # Another question, another draft; "Discard" takes it away, for good.
        await web_engine.inbound(instance, "+5511987651001", "E vocês aceitam Pix?", "Carla")
        await expect(draft.locator(".ai-draft-text")).to_contain_text("Pix", timeout=LIVE)
        await page.click("[data-testid=ai-draft-discard]")
        await expect(draft).to_have_count(0)
        await wait_until(lambda: _statuses(web_engine, conversation_id), what="the draft discarded")
        await page.reload()
        await expect(page.locator("[data-testid=composer]")).to_be_visible()
        await expect(draft).to_have_count(0)
        assert await _outbound(web_engine, tenant_id) == ["user"]
    finally:
        await context.close()


async def test_an_automatic_answer_is_the_assistants_with_its_sources_in_chat_and_list(
    browser: Browser, web_engine: WebEngine
) -> None:
    _tenant, instance = await web_engine.tenant("Loja Auto", "ana@auto.com.br")
    context, page = await logged_in(browser, web_engine.base_url, "ana@auto.com.br", locale="en-US")
    try:
        await add_faq(page)
        status = await page.evaluate(
            "(id) => MW.api('PATCH', '/api/v1/instances/' + id, {ai_mode: 'auto'}).then((r) => r.status)",
            instance.id,
        )
        assert status == 200
        first = await web_engine.inbound(
            instance, "+5511987651002", "Em quantos dias vocês entregam?", "Davi"
        )
        conversation_id = await conversation_of(web_engine, first)
        item = page.locator(f'[data-testid=conversation-item][data-conversation-id="{conversation_id}"]')
        # The list says the assistant answered (not "You:").
        await expect(item.locator("[data-testid=preview-ai]")).to_have_text("AI:", timeout=LIVE)
        await item.click()
        answer = page.locator(f"{MESSAGE}[data-direction=outbound]").first
        await expect(answer).to_have_class(re.compile(r"\bsender-ai\b"), timeout=LIVE)
        await expect(answer.locator("[data-testid=ai-badge]")).to_have_text("AI")
        await expect(answer.locator(".text")).to_contain_text("<b>grátis</b>")
        await expect(answer.locator("[data-testid=ai-sources] li")).to_have_text([DELIVERY_SOURCE])
        assert await page.locator("#chat-column b").count() == 0
    finally:
        await context.close()


async def conversation_of(engine: WebEngine, provider_id: str) -> str:
    """The conversation a stored inbound message (by provider id) belongs to."""

    async def find() -> str | None:
        async with engine.context.sessions() as session:
            return await session.scalar(
                select(Message.conversation_id).where(Message.provider_message_id == provider_id)
            )

    return await wait_until(find, what=f"message {provider_id} stored")


async def _outbound(engine: WebEngine, tenant_id: str) -> list[str]:
    """Who sent the tenant's outbound messages, oldest first."""
    async with engine.context.sessions() as session:
        rows = await session.scalars(
            select(Message.sender_type)
            .where(Message.tenant_id == tenant_id, Message.direction == "outbound")
            .order_by(Message.created_at)
        )
        return list(rows)


async def _statuses(engine: WebEngine, conversation_id: str) -> bool:
    """Whether the conversation's newest AI reply was discarded."""
    async with engine.context.sessions() as session:
        status = await session.scalar(
            select(AiReply.status)
            .where(AiReply.conversation_id == conversation_id)
            .order_by(AiReply.created_at.desc())
            .limit(1)
        )
    return status == "discarded"
