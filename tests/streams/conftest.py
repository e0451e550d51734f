"""Fixtures for the stream contract: one `streams` backend per parameter (Redis, PostgreSQL, SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from messaging_whatsapp.config import Settings
from messaging_whatsapp.db import create_engine
from messaging_whatsapp.streams.base import StreamNames, Streams
from messaging_whatsapp.streams.factory import open_streams

# Short, so reclaim and dead-letter tests take a fraction of a second.
VISIBILITY_MS = 200
MAX_DELIVERIES = 3


@dataclass(frozen=True)
class Backend:
    """Which backend a test runs on, and the server it uses."""

    name: str
    database_url: str
    redis_url: str | None = None


@pytest.fixture(params=["redis", "postgres", "sqlite"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn; a backend whose server is down is skipped (or fails under CI)."""
    if request.param == "redis":
        request.getfixturevalue("redis_cleanup")
        # The engine is never used with Redis; an in-memory URL creates nothing on disk.
        return Backend("redis", "sqlite:///:memory:", request.getfixturevalue("redis_url"))
    return Backend(request.param, request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def names(stream_prefix: str) -> StreamNames:
    """Stream names under this test's unique prefix."""
    return StreamNames(prefix=stream_prefix)


@pytest.fixture
def stream(names: StreamNames) -> str:
    """A stream name of this test's own."""
    return names.inbound


@pytest.fixture
async def streams(backend: Backend, stream_prefix: str) -> AsyncIterator[Streams]:
    """The backend built by the factory from settings, closed (and its engine disposed) after."""
    settings = Settings(
        database_url=backend.database_url,
        redis_url=backend.redis_url,
        stream_prefix=stream_prefix,
        stream_visibility_timeout_ms=VISIBILITY_MS,
        stream_max_deliveries=MAX_DELIVERIES,
        webhook_durability="default",
    )
    engine = create_engine(settings.database_url)
    streams = open_streams(settings, engine)
    try:
        yield streams
    finally:
        await streams.close()
        await engine.dispose()
