"""An engine context on each database for the campaign tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from messaging_whatsapp.context import EngineContext
from tests.helpers import engine_settings, free_port


@pytest.fixture(params=["embedded", "scaled"])
async def context(
    request: pytest.FixtureRequest, tmp_path: Path, stream_prefix: str
) -> AsyncIterator[EngineContext]:
    if request.param == "embedded":
        settings = engine_settings(
            request.getfixturevalue("fresh_sqlite_url"), None, stream_prefix, tmp_path, free_port()
        )
    else:
        settings = engine_settings(
            request.getfixturevalue("fresh_postgres_url"), None, stream_prefix, tmp_path, free_port()
        )
    engine_context = await EngineContext.open(settings)
    yield engine_context
    await engine_context.close()
