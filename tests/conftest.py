"""Shared fixtures: real PostgreSQL, Redis and SQLite, created per test session and cleaned up.

A missing server skips the tests that need it, with the reason in the summary; with
REQUIRE_SERVICES=1 (as .ci/run sets it) a missing server fails them instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from messaging_whatsapp import migrate
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from tests.helpers import SECRETS_USED

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = FIXTURES / "examples"


def _reachable(url: str, default_port: int) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _need(service: str, url: str, default_port: int) -> None:
    if _reachable(url, default_port):
        return
    message = f"{service} is not reachable at {url}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(f'{message} (start it: see "Test services" in README.md)')


async def _admin(sql: str) -> None:
    import asyncpg

    parsed = make_url(POSTGRES_ADMIN_URL)
    connection = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _in_thread(function: Callable[..., object], *args: object) -> None:
    """Run blocking set-up that starts its own event loop, even when a test's loop is running."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(function, *args).result()


def _admin_sync(sql: str) -> None:
    _in_thread(asyncio.run, _admin(sql))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped afterwards."""
    _need("PostgreSQL", POSTGRES_ADMIN_URL, 5432)
    name = f"mw_test_{uuid.uuid4().hex[:12]}"
    _admin_sync(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        _in_thread(migrate.upgrade, url)
        yield url
    finally:
        _admin_sync(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database nobody connects to, cloned by `fresh_postgres_url`."""
    _need("PostgreSQL", POSTGRES_ADMIN_URL, 5432)
    name = f"mw_tpl_{uuid.uuid4().hex[:12]}"
    _admin_sync(f'CREATE DATABASE "{name}"')
    try:
        _in_thread(
            migrate.upgrade,
            make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False),
        )
        yield name
    finally:
        _admin_sync(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_postgres_url(postgres_template: str) -> Iterator[str]:
    """A database of this test's own, cloned from the migrated template (fast), then dropped."""
    name = f"mw_case_{uuid.uuid4().hex[:12]}"
    _admin_sync(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin_sync(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_sqlite_url(sqlite_url: str, tmp_path: Path) -> str:
    """A SQLite file of this test's own, copied from the session's migrated one."""
    source = Path(make_url(sqlite_url).database or "")
    target = tmp_path / "engine.db"
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file for this test session."""
    path = tmp_path_factory.mktemp("sqlite") / "engine.db"
    url = f"sqlite:///{path}"
    _in_thread(migrate.upgrade, url)
    return url


@pytest.fixture
def redis_url() -> str:
    """The test Redis server's URL (skips or fails when it is down)."""
    _need("Redis", REDIS_TEST_URL, 6379)
    return REDIS_TEST_URL


@pytest.fixture
def stream_prefix() -> str:
    """A key prefix unique to this test, so tests never see each other's streams."""
    return f"test:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def redis_cleanup(redis_url: str, stream_prefix: str) -> AsyncIterator[None]:
    """Delete every Redis key under this test's prefix afterwards."""
    yield
    import redis.asyncio as redis

    client = redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{stream_prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["fresh_sqlite_url", "fresh_postgres_url"])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineContext]:
    """An engine context on a database of this test's own, once on each database (test packages
    that need another set-up define their own)."""
    settings = Settings(
        _env_file=None, database_url=request.getfixturevalue(request.param), data_dir=tmp_path
    )  # type: ignore[call-arg]
    context = await EngineContext.open(settings)
    yield context
    await context.close()


class _LogRecorder(logging.Handler):
    """Every log line of the run (the engine's, in this process), to look for secrets at the end."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # httpx logs the test clients' own request URLs; the engine's are silenced in production.
        if not record.name.startswith("httpx"):
            self.lines.append(self.format(record))


_LOG_RECORDER = _LogRecorder()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Record the run's logs from INFO up."""
    root = logging.getLogger()
    root.addHandler(_LOG_RECORDER)
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any log line names a secret a test gave the engine."""
    leaks = [(secret, line) for line in _LOG_RECORDER.lines for secret in SECRETS_USED if secret in line]
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for secret, line in leaks[:20]:
            reporter.write_line(f"SECRET IN THE LOGS ({secret[:4]}...): {line[:300]}", red=True)
