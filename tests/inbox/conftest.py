"""An engine context on each database for the inbox tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext


@pytest.fixture(params=["fresh_sqlite_url", "fresh_postgres_url"])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineContext]:
    """An engine context on a database of this test's own."""
    settings = Settings(
        _env_file=None, database_url=request.getfixturevalue(request.param), data_dir=tmp_path
    )  # type: ignore[call-arg]
    context = await EngineContext.open(settings)
    yield context
    await context.close()
