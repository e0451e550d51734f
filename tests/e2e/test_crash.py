"""Crash safety: while webhooks flow, worker processes are SIGKILLed again and again and Redis is
restarted once; afterwards every accepted webhook is applied exactly once and nothing is pending."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.inbox.models import Contact, Conversation, Message
from tests.conftest import REQUIRE_SERVICES
from tests.helpers import (
    ServerThread,
    bind_example_numbers,
    create_tenant,
    engine_settings,
    example,
    free_port,
    meta_signature,
    wait_until,
)

MESSAGES = 400
WORKERS = 2
KILLS = 6


class RedisServer:
    """A test-owned redis-server with AOF fsync on every write, so a restart keeps what it acknowledged."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            ).stdout
            != b"PONG\n"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("test redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server only this test uses; stopped even when the test fails."""
    if shutil.which("redis-server") is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is not installed and REQUIRE_SERVICES=1")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "messaging_whatsapp.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _message_body(index: int) -> bytes:
    payload = copy.deepcopy(example("meta_text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    phone = f"55119{index:08d}"
    value["contacts"][0]["wa_id"] = phone
    value["messages"][0].update(
        {"from": phone, "id": f"wamid.CRASH-{index}", "timestamp": str(1763035200 + index)}
    )
    return json.dumps(payload).encode()


@pytest.mark.slow
async def test_killed_workers_and_restarted_redis_lose_and_repeat_nothing(
    own_redis: RedisServer, fresh_postgres_url: str, tmp_path: Path, stream_prefix: str
) -> None:
    port = free_port()
    settings = engine_settings(fresh_postgres_url, own_redis.url, stream_prefix, tmp_path / "data", port)
    settings.stream_visibility_timeout_ms = 1000
    context = await EngineContext.open(settings)
    tenant_id = await create_tenant(context)
    numbers = await bind_example_numbers(context, tenant_id)
    env = {
        **os.environ,
        "DATABASE_URL": fresh_postgres_url,
        "REDIS_URL": own_redis.url,
        "STREAM_PREFIX": stream_prefix,
        "DATA_DIR": str(tmp_path / "data"),
        "STREAM_VISIBILITY_TIMEOUT_MS": "1000",
        "WORKER_BLOCK_MS": "100",
        "WORKER_BATCH_SIZE": "50",
        "STREAM_MAX_DELIVERIES": "1000",
    }
    workers = [_start_worker(env) for _ in range(WORKERS)]
    accepted: set[int] = set()

    async def post_all(http: httpx.AsyncClient) -> None:
        for index in range(MESSAGES):
            body = _message_body(index)
            headers = {"content-type": "application/json", "x-hub-signature-256": meta_signature(body)}
            # Every third message is delivered twice, as providers do on a lost answer.
            for _ in range(2 if index % 3 == 0 else 1):
                while True:  # a provider retries until it gets a 2xx
                    response = await http.post("/webhook", content=body, headers=headers)
                    if response.status_code == 200:
                        accepted.add(index)
                        break
                    assert response.status_code == 503, response.text
                    await asyncio.sleep(0.05)

    async def chaos() -> None:
        for round_ in range(KILLS):
            await asyncio.sleep(0.4)
            victim = workers[round_ % WORKERS]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            workers[round_ % WORKERS] = _start_worker(env)
            if round_ == KILLS // 2:
                own_redis.kill()
                await asyncio.sleep(0.3)
                own_redis.start()

    try:
        with ServerThread(create_app(settings, Role.WEBHOOK), port, settings) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
                await asyncio.gather(post_all(http), chaos())

        async def all_applied() -> bool:
            async with context.sessions() as session:
                count = await session.scalar(
                    select(func.count()).select_from(Message).where(Message.tenant_id == tenant_id)
                )
            info = await context.streams.info(context.names.inbound)
            settled = bool(info.groups) and all(g.pending == 0 and not g.lag for g in info.groups)
            return count == len(accepted) and settled

        await wait_until(all_applied, timeout=90, what="every accepted webhook applied")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)

    assert len(accepted) == MESSAGES
    async with context.sessions() as session:
        messages = await session.scalar(
            select(func.count(func.distinct(Message.provider_message_id))).where(
                Message.instance_id == numbers.meta.id
            )
        )
        received = await session.scalar(
            select(func.sum(Contact.messages_received)).where(Contact.tenant_id == tenant_id)
        )
        unread = await session.scalar(
            select(func.sum(Conversation.unread_count)).where(Conversation.tenant_id == tenant_id)
        )
        contacts = await session.scalar(
            select(func.count()).select_from(Contact).where(Contact.tenant_id == tenant_id)
        )
    assert messages == MESSAGES
    assert received == MESSAGES
    assert unread == MESSAGES
    assert contacts == MESSAGES
    assert (await context.streams.info(context.names.dlq)).length == 0
    await context.close()
