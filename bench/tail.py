"""The webhook's tail: a cold `serve --role webhook` measured from its first second, and the
webhook of the default single-process engine while a login flood runs beside it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
from tests.helpers import example, meta_signature

from bench.common import REDIS_URL, LoadResult, free_port, scratch_database, serve, wrk
from bench.ingest import _bind
from messaging_whatsapp import migrate
from messaging_whatsapp.config import Settings

CONNECTIONS = 64
# Webhooks arriving beside a login flood: a steady few, not a load that saturates the process.
FLOOD_CONNECTIONS = 4
COLD_S = 30
FLOOD_S = 10
FLOOD_ATTEMPTS = 120
FLOOD_IN_FLIGHT = 8


@dataclass(frozen=True, slots=True)
class FloodResult:
    """The webhook alone, then beside a flood of wrong logins."""

    idle: LoadResult
    flooded: LoadResult
    # Login answers by status during the flood.
    logins: dict[int, int]


def _meta_script(directory: str) -> Path:
    """A wrk script POSTing one signed Meta message to /webhook."""
    body = json.dumps(example("meta_text.json"), separators=(",", ":"))
    script = Path(directory) / "meta.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{body}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Hub-Signature-256"] = "{meta_signature(body.encode())}"\n'
    )
    return script


def _env(database_url: str, data_dir: str, port: int, redis_url: str | None, prefix: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "STREAM_PREFIX": prefix,
        "DATA_DIR": data_dir,
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def _settings(env: dict[str, str]) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=env["DATABASE_URL"],
        redis_url=env.get("REDIS_URL"),
        stream_prefix=env["STREAM_PREFIX"],
        data_dir=Path(env["DATA_DIR"]),
        public_url=env["PUBLIC_URL"],
    )


def run_cold(duration: int = COLD_S) -> LoadResult:
    """A webhook server started just now (Redis, PostgreSQL), loaded by `wrk -t1 -c64` at once."""
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = _env(database_url, tmp, port, REDIS_URL, prefix)
        asyncio.run(_bind(_settings(env)))
        command = [sys.executable, "-m", "messaging_whatsapp.cli", "serve", "--role", "webhook"]
        server = serve([*command, "--port", str(port)], env, port, "/healthz")
        try:
            return wrk(
                f"http://127.0.0.1:{port}/webhook", _meta_script(tmp), duration, CONNECTIONS, threads=1
            )
        finally:
            server.terminate()
            server.wait(timeout=20)
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)


def run_flood(duration: int = FLOOD_S) -> FloodResult:
    """`serve` as `make run` runs it (SQLite, one process): the webhook under `wrk -t1 -c4`, alone
    and then with FLOOD_ATTEMPTS wrong logins, FLOOD_IN_FLIGHT at a time, beside it."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        database_url = f"sqlite+aiosqlite:///{tmp}/engine.db"
        env = _env(database_url, tmp, port, None, "bc:")
        migrate.upgrade(database_url)
        asyncio.run(_bind(_settings(env)))
        server = serve(
            [sys.executable, "-m", "messaging_whatsapp.cli", "serve", "--port", str(port)],
            env,
            port,
            "/healthz",
        )
        url = f"http://127.0.0.1:{port}"
        script = _meta_script(tmp)
        try:
            wrk(f"{url}/webhook", script, 3, FLOOD_CONNECTIONS, threads=1)  # past the start, as `make run` is
            idle = wrk(f"{url}/webhook", script, duration, FLOOD_CONNECTIONS, threads=1)
            logins: dict[int, int] = {}
            flood = threading.Thread(target=lambda: logins.update(asyncio.run(_flood(url))))
            flood.start()
            flooded = wrk(f"{url}/webhook", script, duration, FLOOD_CONNECTIONS, threads=1)
            flood.join()
        finally:
            server.terminate()
            server.wait(timeout=20)
    return FloodResult(idle, flooded, logins)


async def _flood(url: str) -> dict[int, int]:
    """Wrong logins for several accounts, FLOOD_IN_FLIGHT at a time; how many got each status."""
    gate = asyncio.Semaphore(FLOOD_IN_FLIGHT)
    statuses: dict[int, int] = {}

    async def attempt(client: httpx.AsyncClient, index: int) -> None:
        async with gate:
            body = {"email": f"user{index % 10}@loja.com.br", "password": f"guess-{index}"}
            status = (await client.post("/api/v1/auth/login", json=body)).status_code
            statuses[status] = statuses.get(status, 0) + 1

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(*(attempt(client, index) for index in range(FLOOD_ATTEMPTS)))
    return statuses
