"""Send benchmark: messages through `POST /api/v1/messages`, the outbound stream and the sender to
the simulator over HTTP; ten simulated instances, PostgreSQL and Redis, rate limits lifted.

Processes: `serve --role api` (the load's target), `worker --role sender`, and `serve --role
webhook`, which serves the simulator's API (with its latency) and counts what it accepts. The
simulator posts no receipts here (SIMULATOR_RECEIPTS=false): this measures sending alone.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import redis

from bench.common import REDIS_URL, LoadResult, free_port, scratch_database, serve, wrk_until
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.instances import service as instances_service
from messaging_whatsapp.instances.schemas import InstanceBind
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.tenancy import users

INSTANCES = 10
CONNECTIONS = 64
EMAIL, PASSWORD = "bench@loja.com.br", "bench-pass-123"

# Each request is a distinct message to a distinct recipient, round robin over the instances;
# each wrk thread stops after its share of responses (wrk_until then ends wrk).
LUA = """
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  limit = tonumber(args[1])
  instances = {}
  for id in string.gmatch(args[2], "[^,]+") do table.insert(instances, id) end
  token = args[3]
  counter, responses = 0, 0
end
request = function()
  counter = counter + 1
  local n = tid * 50000000 + counter
  local body = string.format(
    '{"to":"+55119%08d","instance_id":"%s","text":"Olá! Seu pedido %d saiu para entrega."}',
    n, instances[counter % #instances + 1], n)
  return wrk.format("POST", "/api/v1/messages",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
response = function(status, headers, body)
  responses = responses + 1
  if responses >= limit then wrk.thread:stop() end
end
"""


@dataclass
class SendResult:
    """What the send benchmark measured."""

    accepted: int
    sent: int
    failed: int
    seconds: float
    simulator_accepted: int
    distinct_provider_ids: int
    api: LoadResult

    @property
    def per_second(self) -> float:
        """Messages sent per second, first request to last message recorded sent."""
        return self.sent / self.seconds

    @property
    def duplicates(self) -> int:
        """Messages the simulator took more than once (it took each sent message at least once)."""
        return self.simulator_accepted - self.distinct_provider_ids

    @property
    def lost(self) -> int:
        """Messages the API accepted that did not end sent."""
        return self.accepted - self.sent


async def _prepare(settings: Settings) -> list[str]:
    """A tenant, an admin and ten simulated numbers; returns the instance ids."""
    context = await EngineContext.open(settings)
    try:
        async with context.sessions() as session, session.begin():
            tenant = await tenancy_service.create_tenant(session, "Bench")
            await users.create_user(session, tenant.id, EMAIL, PASSWORD, "admin")
            ids = []
            for index in range(INSTANCES):
                instance, _ = await instances_service.bind_instance(
                    session,
                    context.cipher,
                    settings,
                    tenant.id,
                    InstanceBind(
                        provider="simulator",
                        display_number=f"+5511400{index:05d}",
                        instance_name=f"bench-{index}",
                        daily_limit=1_000_000,
                    ),
                )
                ids.append(instance.id)
        return ids
    finally:
        await context.close()


async def _counts(database_url: str) -> tuple[int, int, int, int]:
    """Outbound messages: total, sent, failed, distinct provider ids."""
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        row = await connection.fetchrow(
            "SELECT count(*) AS total,"
            " count(*) FILTER (WHERE status IN ('sent', 'delivered', 'read')) AS sent,"
            " count(*) FILTER (WHERE status = 'failed') AS failed,"
            " count(DISTINCT provider_message_id) AS distinct_ids"
            " FROM messages WHERE direction = 'outbound'"
        )
        assert row is not None
        return int(row["total"]), int(row["sent"]), int(row["failed"]), int(row["distinct_ids"])
    finally:
        await connection.close()


class _Progress:
    """The outbound messages as the database has them, polled."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._last_total = -1
        self._changed_at = time.monotonic()

    def counts(self) -> tuple[int, int, int, int]:
        """Total, sent, failed, distinct provider ids."""
        return asyncio.run(_counts(self._url))

    def accepted_all(self, expected: int) -> bool:
        """Whether the API stored `expected` messages, or stopped storing any (errors)."""
        time.sleep(0.3)
        total = self.counts()[0]
        if total != self._last_total:
            self._last_total, self._changed_at = total, time.monotonic()
        return total >= expected or (total > 0 and time.monotonic() - self._changed_at > 10)

    def wait_settled(self, timeout: float) -> float:
        """Wait until every stored message is sent or failed; returns when that happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            total, sent, failed, _ = self.counts()
            if sent + failed >= total:
                return time.monotonic()
            time.sleep(0.2)
        raise RuntimeError(f"messages still unsent after {timeout:.0f} s: {self.counts()}")


def _simulator_accepted(port: int) -> int:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    match = re.search(r"^whatsapp_simulator_accepted_total ([\d.e+]+)$", text, re.MULTILINE)
    return int(float(match.group(1))) if match else 0


def run(messages: int) -> SendResult:
    """Send `messages` messages and measure them end to end."""
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as tmp:
        api_port, simulator_port = free_port(), free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "STREAM_PREFIX": prefix,
            "DATA_DIR": tmp,
            "PUBLIC_URL": f"http://127.0.0.1:{simulator_port}",
            "LOG_LEVEL": "WARNING",
            "RATE_LIMITS_ENABLED": "false",
            "SIMULATOR_RECEIPTS": "false",
        }
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            redis_url=REDIS_URL,  # type: ignore[call-arg]
            stream_prefix=prefix,
            data_dir=Path(tmp),
            public_url=env["PUBLIC_URL"],
        )
        instance_ids = asyncio.run(_prepare(settings))
        script = Path(tmp) / "send.lua"
        script.write_text(LUA)
        cli = [sys.executable, "-m", "messaging_whatsapp.cli"]
        processes = [
            serve(
                [*cli, "serve", "--role", "webhook", "--port", str(simulator_port)],
                env,
                simulator_port,
                "/healthz",
            ),
            serve([*cli, "serve", "--role", "api", "--port", str(api_port)], env, api_port, "/healthz"),
            subprocess.Popen([*cli, "worker", "--role", "sender"], env=env, stderr=subprocess.DEVNULL),
        ]
        try:
            token = httpx.post(
                f"http://127.0.0.1:{api_port}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
            ).json()["access_token"]
            progress = _Progress(database_url)
            started = time.monotonic()
            api = wrk_until(
                f"http://127.0.0.1:{api_port}",
                script,
                CONNECTIONS,
                [str(messages // 2), ",".join(instance_ids), token],
                lambda: progress.accepted_all(messages),
            )
            finished_at = progress.wait_settled(timeout=600)
            total, sent, failed, distinct = progress.counts()
            return SendResult(
                accepted=total,
                sent=sent,
                failed=failed,
                seconds=finished_at - started,
                simulator_accepted=_simulator_accepted(simulator_port),
                distinct_provider_ids=distinct,
                api=api,
            )
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=20)
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
