"""`create-user --platform-admin` makes the operator; `worker` and `scheduler` processes write
their heartbeats and say when they stopped (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import create_engine
from messaging_whatsapp.ops.models import WorkerHeartbeat
from messaging_whatsapp.tenancy.models import User
from tests.cli.test_cli import Cli
from tests.helpers import wait_until


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    """The CLI on a fresh embedded or PostgreSQL database."""
    if request.param == "sqlite":
        return Cli(request.getfixturevalue("fresh_sqlite_url"), tmp_path)
    return Cli(request.getfixturevalue("fresh_postgres_url"), tmp_path)


async def _rows(url: str, model: Any, *where: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        async with AsyncSession(engine) as session:
            return list(await session.scalars(select(model).where(*where)))
    finally:
        await engine.dispose()


async def test_create_user_makes_a_platform_admin_only_when_asked(cli: Cli) -> None:
    tenant = cli.json("create-tenant", "--name", "Plataforma")
    base = (
        "create-user",
        "--tenant-id",
        tenant["id"],
        "--password",
        "Operacao-Segura-2026",
        "--role",
        "agent",
    )
    operator = cli.json(*base, "--email", "ops@plataforma.com.br", "--platform-admin")
    plain = cli.json(*base, "--email", "bia@plataforma.com.br")

    assert (operator["is_platform_admin"], plain["is_platform_admin"]) == (True, False)
    stored = dict(
        (row.email, row.is_platform_admin)
        for row in await _rows(cli.env["DATABASE_URL"], User, User.tenant_id == tenant["id"])
    )
    assert stored == {"ops@plataforma.com.br": True, "bia@plataforma.com.br": False}


async def test_a_scheduler_process_beats_and_says_when_it_stopped(cli: Cli) -> None:
    url = cli.env["DATABASE_URL"]
    assert cli.run("migrate").returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "messaging_whatsapp.cli", "scheduler"],
        env=cli.process_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        async def beating() -> list[Any]:
            return await _rows(url, WorkerHeartbeat, WorkerHeartbeat.pid == process.pid)

        [row] = await wait_until(beating, timeout=60, what="the scheduler's heartbeat")
        assert (row.role, row.parts, row.stopped_at) == ("scheduler", "dispatcher scheduler", None)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)

    [row] = await _rows(url, WorkerHeartbeat, WorkerHeartbeat.pid == process.pid)
    assert row.stopped_at is not None
