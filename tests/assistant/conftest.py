"""An engine context on each database whose AI_BASE_URL is a fake OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from tests.e2e.conftest import deployment
from tests.fakes.ai import API_KEY, fake_ai_server
from tests.fakes.http import FakeHttpServer

__all__ = ["deployment"]


@pytest.fixture
def ai_server() -> Iterator[FakeHttpServer]:
    """The fake AI server, fresh for each test (its requests are the test's)."""
    with fake_ai_server() as server:
        yield server


@pytest.fixture(params=["fresh_sqlite_url", "fresh_postgres_url"])
async def context(
    request: pytest.FixtureRequest, tmp_path: Path, ai_server: FakeHttpServer
) -> AsyncIterator[EngineContext]:
    """The engine's context on a database of the test's own, answering from the fake server (the
    tests run the scheduler's pass themselves, at the burst's due time)."""
    settings = Settings(
        _env_file=None,
        database_url=request.getfixturevalue(request.param),
        data_dir=tmp_path,
        ai_base_url=f"{ai_server.base_url}/v1",
        ai_api_key=API_KEY,
    )  # type: ignore[call-arg]
    context = await EngineContext.open(settings)
    yield context
    await context.close()
