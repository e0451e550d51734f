"""Embedded: the engine restarts and its in-memory event buffer starts empty, so the page's last
event id is no longer known; the stream says `resync` and the page reloads the list once, showing
what happened while it was away."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.providers.events import InboundMessage, MessageType
from messaging_whatsapp.worker.ingest import apply_entries
from tests.helpers import ServerThread, free_port
from tests.web.conftest import LIVE, WebEngine, logged_in, web_settings
from tests.web.test_inbox_browser import conversation_of, item

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_page_whose_events_are_no_longer_kept_reloads_the_list_once(
    browser: Browser, fresh_sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = web_settings(fresh_sqlite_url, None, "resync:", tmp_path, port)
    context = await EngineContext.open(settings)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            engine = WebEngine(settings, f"http://127.0.0.1:{port}", context, http)
            with ServerThread(create_app(settings, Role.ALL), port, settings, timeout_graceful_shutdown=1):
                tenant_id, instance = await engine.tenant("Loja Volta", "ana@volta.com.br")
                first = await engine.inbound(instance, "+5511987650020", "Antes da queda", "Rita")
                rita = await conversation_of(engine, first)
                browser_context, page = await logged_in(browser, engine.base_url, "ana@volta.com.br")
                await expect(item(page, rita)).to_be_visible()
            try:
                status = page.locator("[data-testid=live-status]")
                await expect(status).to_have_attribute("data-state", "disconnected", timeout=LIVE)
                # Stored while no engine ran: no event was ever published for it.
                message = InboundMessage("SIM-RESYNC", "5511987650021", MessageType.TEXT, utcnow(),
                                         text="Enquanto estava fora", contact_name="Sérgio")  # fmt: skip
                async with context.sessions() as session, session.begin():
                    entry = IngestEntry("e-resync", tenant_id, instance.id, utcnow(), [message])
                    await apply_entries(session, [entry], "resync")
                requests: list[str] = []
                page.on("request", lambda request: requests.append(request.url))
                with ServerThread(
                    create_app(settings, Role.ALL), port, settings, timeout_graceful_shutdown=1
                ):
                    await expect(status).to_have_attribute("data-state", "connected", timeout=LIVE)
                    items = page.locator("[data-testid=conversation-item]")
                    await expect(items.first).to_contain_text("Enquanto estava fora", timeout=LIVE)
                    await expect(items).to_have_count(2)
                    assert any("/inbox/fragments/conversations" in url for url in requests), (
                        "the list reloaded"
                    )
            finally:
                await browser_context.close()
    finally:
        await context.close()
