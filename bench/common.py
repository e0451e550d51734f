"""Shared set-up for benchmarks: a scratch PostgreSQL database and the machine's description."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import platform
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import asyncpg

from messaging_whatsapp import migrate

ADMIN_DSN = os.environ.get("BENCH_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _admin_async(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _in_thread(function: Callable[..., object], *args: object) -> None:
    """Run set-up that starts its own event loop, also from inside a running one."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(function, *args).result()


def _admin(sql: str) -> None:
    _in_thread(asyncio.run, _admin_async(sql))


@contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated PostgreSQL database that is dropped afterwards."""
    name = f"mw_bench_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    url = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    try:
        _in_thread(migrate.upgrade, url)
        yield url
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine() -> str:
    """One line describing this machine."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = subprocess.run(["free", "-g"], capture_output=True, text=True, check=False).stdout.split("\n")[
        1:2
    ]
    total = memory[0].split()[1] + " GiB" if memory and memory[0] else "?"
    python = platform.python_version()
    return f"{os.cpu_count()} cores ({model}), {total} RAM, Python {python}, {platform.system()}"


def today() -> str:
    """The date in ISO form."""
    return datetime.now(UTC).date().isoformat()
