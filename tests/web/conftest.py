"""The web UI in a real browser: Debian's Chromium driven by Playwright, against a real engine.

One browser and one embedded engine per test module (each test makes its own tenant). Without
/usr/bin/chromium the browser tests are skipped, with the reason; with REQUIRE_SERVICES=1 (as
.ci/run sets it) they fail instead. Playwright never downloads a browser here.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from sqlalchemy.engine import make_url

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.instances.resolver import InstanceResolver
from messaging_whatsapp.simulator.service import Simulator
from tests.conftest import REQUIRE_SERVICES
from tests.helpers import ServerThread, bind, create_tenant, create_user, engine_settings, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "s3cret-pass"
# Long enough for a live update to arrive on a loaded machine; a missing one fails, never hangs.
LIVE = 10_000


def need_chromium() -> None:
    """Skip (or fail with REQUIRE_SERVICES=1) when Debian's Chromium is not installed."""
    if CHROMIUM.exists():
        return
    message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def web_settings(
    database_url: str, redis_url: str | None, prefix: str, data_dir: Path, port: int
) -> Settings:
    """Settings whose simulator delivers and reads every message, quickly."""
    return engine_settings(database_url, redis_url, prefix, data_dir, port).model_copy(
        update={
            "simulator_read_rate": 1.0,
            "simulator_failure_rate": 0.0,
            "simulator_receipt_delay_ms": 50,
            "simulator_latency_ms": 5,
        }
    )


@dataclass
class WebEngine:
    """A served engine, a context of the test's own on its database, and its settings."""

    settings: Settings
    base_url: str
    context: EngineContext
    http: httpx.AsyncClient

    async def tenant(self, name: str, email: str, role: str = "admin") -> tuple[str, WhatsAppInstance]:
        """A new tenant with one user and one simulator number."""
        tenant_id = await create_tenant(self.context, name)
        await create_user(self.context, tenant_id, email, PASSWORD, role)
        slug = re.sub(r"[^a-z0-9]+", "-", email.lower())
        instance, _url = await bind(
            self.context,
            tenant_id,
            provider="simulator",
            display_number="+551140028922",
            instance_name=f"sim-{slug}",
        )
        return tenant_id, instance

    async def inbound(
        self, instance: WhatsAppInstance, phone: str, text: str, name: str | None = None
    ) -> str:
        """A customer's message through the public webhook, as the simulator posts it."""
        resolver = InstanceResolver.for_context(self.context)
        resolved = await resolver.by_id(instance.id)
        assert resolved is not None
        simulator = Simulator(self.settings, resolver)
        try:
            return await simulator.post_inbound(resolved, phone, text, name, raise_on_failure=True)
        finally:
            await simulator.close()


@pytest.fixture(scope="module")
def module_sqlite_url(sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file of this module's own, copied from the session's migrated one."""
    target = tmp_path_factory.mktemp("web") / "engine.db"
    shutil.copyfile(Path(make_url(sqlite_url).database or ""), target)
    return f"sqlite:///{target}"


@asynccontextmanager
async def served_engine(database_url: str, data_dir: Path, **changes: Any) -> AsyncIterator[WebEngine]:
    """The embedded engine (API, webhook and workers in one process) on a port of its own, with
    web_settings changed by `changes`."""
    port = free_port()
    settings = web_settings(database_url, None, "web:", data_dir, port).model_copy(update=changes)
    context = await EngineContext.open(settings)
    with ServerThread(create_app(settings, Role.ALL), port, settings, timeout_graceful_shutdown=1) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            yield WebEngine(settings, server.base_url, context, http)
    await context.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web_engine(
    module_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WebEngine]:
    """The embedded engine the module's browser uses."""
    async with served_engine(module_sqlite_url, tmp_path_factory.mktemp("data")) as engine:
        yield engine


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the module."""
    need_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def logged_in(
    browser: Browser, base_url: str, email: str, locale: str = "pt-BR"
) -> tuple[BrowserContext, Page]:
    """A fresh browser profile logged in through the login form, on the inbox."""
    context = await browser.new_context(
        base_url=base_url, locale=locale, viewport={"width": 1360, "height": 860}
    )
    context.set_default_timeout(LIVE)
    page = await context.new_page()
    await page.goto("/")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"/inbox"))
    await page.locator("[data-testid=live-status][data-state=connected]").wait_for(state="attached")
    return context, page
