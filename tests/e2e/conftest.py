"""A running engine per test, on both deployments: embedded (SQLite + table queue) and scaled
(PostgreSQL + Redis Streams), served by a real uvicorn on a loopback port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from tests.fakes.http import FakeHttpServer
from tests.fakes.meta import MetaGraphFake
from tests.helpers import ServerThread, create_user, engine_settings, free_port


@dataclass
class RunningEngine:
    """A served engine and a context of the test's own on the same database and streams."""

    settings: Settings
    base_url: str
    context: EngineContext
    http: httpx.AsyncClient


async def auth_headers(
    engine: RunningEngine, tenant_id: str, email: str = "ana@loja.com.br", role: str = "admin"
) -> dict[str, str]:
    """A new user of the tenant (an admin by default), logged in through the API: their bearer header."""
    await create_user(engine.context, tenant_id, email, role=role)
    response = await engine.http.post("/api/v1/auth/login", json={"email": email, "password": "s3cret-pass"})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(params=["embedded", "scaled"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path, stream_prefix: str) -> Iterator[Settings]:
    """Settings for one deployment kind, on a database of this test's own."""
    port = free_port()
    if request.param == "embedded":
        yield engine_settings(
            request.getfixturevalue("fresh_sqlite_url"), None, stream_prefix, tmp_path, port
        )
        return
    redis_url = request.getfixturevalue("redis_url")
    yield engine_settings(
        request.getfixturevalue("fresh_postgres_url"), redis_url, stream_prefix, tmp_path, port
    )
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{stream_prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@contextlib.asynccontextmanager
async def serve(settings: Settings, http_timeout: float = 10) -> AsyncIterator[RunningEngine]:
    """The engine serving API, webhook and worker in one process with `settings`, as `serve` runs it."""
    port = int(settings.public_url.rsplit(":", 1)[1])
    context = await EngineContext.open(settings)
    with ServerThread(create_app(settings, Role.ALL), port, settings) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=http_timeout) as http:
            yield RunningEngine(settings, server.base_url, context, http)
    await context.close()


@pytest.fixture
async def engine(deployment: Settings) -> AsyncIterator[RunningEngine]:
    """The engine serving API, webhook and worker in one process, as `serve` runs it."""
    async with serve(deployment) as running:
        yield running


@pytest.fixture
def meta_server(meta: MetaGraphFake) -> Iterator[FakeHttpServer]:
    """The Graph API fake serving the test module's `meta` (its numbers, templates and window)."""
    with FakeHttpServer(meta, hold_seconds=2) as server:
        yield server


@pytest.fixture
async def meta_engine(deployment: Settings, meta_server: FakeHttpServer) -> AsyncIterator[RunningEngine]:
    """The whole engine in one process, its Meta numbers talking to the Graph API fake."""
    settings = deployment.model_copy(update={"meta_graph_url": f"{meta_server.base_url}/v23.0"})
    # A sync of a few hundred templates takes seconds on a loaded machine.
    async with serve(settings, http_timeout=20) as running:
        yield running
