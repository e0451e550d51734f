"""Scaled (PostgreSQL, Redis): the browser's API process restarts while a worker process keeps
taking messages; on reconnect the page gets what it missed, replayed from Last-Event-ID."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.context import EngineContext
from tests.helpers import ServerThread, free_port
from tests.web.conftest import LIVE, WebEngine, logged_in, web_settings
from tests.web.test_inbox_browser import MESSAGE, conversation_of, item

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_after_the_api_process_restarts_the_page_replays_what_happened_meanwhile(
    browser: Browser, fresh_postgres_url: str, redis_url: str, stream_prefix: str, tmp_path: Path
) -> None:
    api_port, worker_port = free_port(), free_port()
    # Webhooks and the simulator go to the worker process; the browser talks to the API process.
    settings = web_settings(fresh_postgres_url, redis_url, stream_prefix, tmp_path, worker_port)
    context = await EngineContext.open(settings)
    try:
        with ServerThread(create_app(settings, Role.ALL), worker_port, settings, timeout_graceful_shutdown=1):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:
                engine = WebEngine(settings, f"http://127.0.0.1:{api_port}", context, http)
                await _restart_and_replay(browser, engine, api_port)
    finally:
        await context.close()


async def _restart_and_replay(browser: Browser, engine: WebEngine, api_port: int) -> None:
    settings = engine.settings
    _tenant, instance = await engine.tenant("Loja Escala", "ana@escala.com.br")
    first = await engine.inbound(instance, "+5511987650010", "Primeira", "Rita")
    conversation_id = await conversation_of(engine, first)
    api = ServerThread(create_app(settings, Role.API), api_port, settings, timeout_graceful_shutdown=1)
    with api:
        browser_context, page = await logged_in(browser, engine.base_url, "ana@escala.com.br")
    requests: list[tuple[str, str | None]] = []
    page.on("request", lambda request: requests.append((request.url, request.headers.get("last-event-id"))))
    try:
        # The API process is gone: the page says so, and a message arrives meanwhile.
        status = page.locator("[data-testid=live-status]")
        await expect(status).to_have_attribute("data-state", "disconnected", timeout=LIVE)
        await expect(status).to_be_visible()
        missed = await engine.inbound(instance, "+5511987650011", "Chegou enquanto caía", "Sérgio")
        sergio = await conversation_of(engine, missed)
        with ServerThread(create_app(settings, Role.API), api_port, settings, timeout_graceful_shutdown=1):
            await expect(status).to_have_attribute("data-state", "connected", timeout=LIVE)
            await expect(item(page, sergio)).to_contain_text("Chegou enquanto caía", timeout=LIVE)
            await expect(page.locator("[data-testid=conversation-item]").first).to_have_attribute(
                "data-conversation-id", sergio
            )
            # Replayed from the id the page had, not reloaded: the page asked for that one item.
            streams = [last for url, last in requests if url.endswith("/api/v1/events/stream")]
            assert streams, "the page reconnected"
            assert all(streams), "every reconnect sends Last-Event-ID"
            assert any(
                url.split("?")[0].endswith(f"/inbox/fragments/conversation/{sergio}") for url, _ in requests
            )
            assert not any("/inbox/fragments/conversations" in url for url, _ in requests)
            await item(page, conversation_id).click()
            await expect(page.locator(MESSAGE)).to_have_count(1)
    finally:
        await browser_context.close()
