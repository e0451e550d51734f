"""Campaign benchmarks: the CSV import of 100,000 rows, and a campaign of N contacts dispatched and
sent through ten simulated numbers (PostgreSQL, Redis, pacing and limits off), with the peak memory
of each process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis

from bench.common import REDIS_URL, free_port, scratch_database, serve
from messaging_whatsapp.campaigns import contacts, lifecycle, queries, service
from messaging_whatsapp.campaigns.importing import decode, read_csv
from messaging_whatsapp.campaigns.lifecycle import Action
from messaging_whatsapp.campaigns.schemas import CampaignCreate
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.instances import service as instances_service
from messaging_whatsapp.instances.schemas import InstanceBind
from messaging_whatsapp.tenancy import service as tenancy_service

INSTANCES = 10


@dataclass
class ImportResult:
    """How long a CSV import took."""

    rows: int
    added: int
    seconds: float


@dataclass
class DispatchResult:
    """A campaign run end to end."""

    contacts: int
    dispatch_seconds: float
    sent_seconds: float
    sent: int
    duplicates: int
    peak_memory_mib: dict[str, float] = field(default_factory=dict)

    @property
    def dispatched_per_second(self) -> float:
        """Contacts handed to the senders per second."""
        return self.contacts / self.dispatch_seconds

    @property
    def sent_per_second(self) -> float:
        """Contacts whose message the provider took, per second, start to last."""
        return self.sent / self.sent_seconds


def csv_bytes(rows: int) -> bytes:
    """A Brazilian spreadsheet export: `;`, Latin-1, national numbers, a name and a coupon."""
    lines = ["telefone;nome;cidade;cupom"]
    lines += [f"(11) 9{index:08d};Cliente {index};São Paulo;BF{index % 100}" for index in range(rows)]
    return "\n".join(lines).encode("latin-1")


async def _prepare(settings: Settings, data: bytes) -> tuple[str, list[str], ImportResult]:
    context = await EngineContext.open(settings)
    try:
        async with context.sessions() as session, session.begin():
            tenant = await tenancy_service.create_tenant(session, "Bench")
            numbers = []
            for index in range(INSTANCES):
                instance, _ = await instances_service.bind_instance(
                    session,
                    context.cipher,
                    settings,
                    tenant.id,
                    InstanceBind(
                        provider="simulator",
                        display_number=f"+5511400{index:05d}",
                        instance_name=f"bench-{uuid.uuid4().hex[:6]}-{index}",
                        daily_limit=1_000_000,
                    ),
                )
                numbers.append(instance.id)
            body = {
                "name": "Bench",
                "rotation_mode": "round_robin",
                "instance_ids": numbers,
                "messages": [{"content": "Oi {{nome}}, seu cupom {{cupom}}"}],
                "settings": {"interval_min_s": 0, "interval_max_s": 0, "warmup": False},
            }
            campaign, _ = await service.create_campaign(
                session, tenant.id, CampaignCreate.model_validate(body), user_id=None, now=utcnow()
            )
        started = time.perf_counter()
        async with context.sessions() as session, session.begin():
            locked = await queries.get_campaign(session, tenant.id, campaign.id, lock=True)
            report = await contacts.add_contacts(session, locked, read_csv(decode(data)), now=utcnow())
        imported = ImportResult(data.count(b"\n"), report.added, time.perf_counter() - started)
        return tenant.id, [campaign.id], imported
    finally:
        await context.close()


async def _start(settings: Settings, tenant_id: str, campaign_id: str) -> None:
    context = await EngineContext.open(settings)
    try:
        async with context.sessions() as session, session.begin():
            await lifecycle.transition(
                session, tenant_id, campaign_id, Action.START, user_id=None, now=utcnow()
            )
    finally:
        await context.close()


async def _counts(database_url: str, campaign_id: str) -> tuple[int, int, str]:
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "SELECT pending_count, sent_count, status FROM campaigns WHERE id = $1", campaign_id
        )
        assert row is not None
        return int(row["pending_count"]), int(row["sent_count"]), str(row["status"])
    finally:
        await connection.close()


async def _duplicates(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        value = await connection.fetchval(
            "SELECT count(*) - count(DISTINCT contact_id) FROM messages WHERE sender_type = 'campaign'"
        )
        return int(value)
    finally:
        await connection.close()


def _peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_import(rows: int) -> ImportResult:
    """Import a CSV of `rows` contacts into a campaign."""
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, database_url=database_url, data_dir=Path(tmp))  # type: ignore[call-arg]
        _, _, result = asyncio.run(_prepare(settings, csv_bytes(rows)))
        return result


def run_dispatch(contacts: int) -> DispatchResult:
    """A campaign of `contacts` contacts, dispatched and sent by separate processes."""
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "STREAM_PREFIX": prefix,
            "DATA_DIR": tmp,
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "LOG_LEVEL": "WARNING",
            "RATE_LIMITS_ENABLED": "false",
            "SIMULATOR_RECEIPTS": "false",
        }
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=database_url,
            redis_url=REDIS_URL,
            stream_prefix=prefix,
            data_dir=Path(tmp),
        )
        tenant_id, [campaign_id], _ = asyncio.run(_prepare(settings, csv_bytes(contacts)))
        cli = [sys.executable, "-m", "messaging_whatsapp.cli"]
        processes = {
            "simulator (serve --role webhook)": serve(
                [*cli, "serve", "--role", "webhook", "--port", str(port)], env, port, "/healthz"
            ),
            "sender": subprocess.Popen(
                [*cli, "worker", "--role", "sender"], env=env, stderr=subprocess.DEVNULL
            ),
            "dispatcher": subprocess.Popen(
                [*cli, "worker", "--role", "dispatcher"], env=env, stderr=subprocess.DEVNULL
            ),
        }
        try:
            time.sleep(2)  # the workers start
            started = time.monotonic()
            asyncio.run(_start(settings, tenant_id, campaign_id))
            dispatched_at = None
            while True:
                pending, sent, status = asyncio.run(_counts(database_url, campaign_id))
                if dispatched_at is None and pending == 0:
                    dispatched_at = time.monotonic()
                if status == "completed" or time.monotonic() - started > 3600:
                    break
                time.sleep(0.5)
            finished_at = time.monotonic()
            memory = {name: _peak_mib(process.pid) for name, process in processes.items()}
            return DispatchResult(
                contacts=contacts,
                dispatch_seconds=(dispatched_at or finished_at) - started,
                sent_seconds=finished_at - started,
                sent=sent,
                duplicates=asyncio.run(_duplicates(database_url)),
                peak_memory_mib=memory,
            )
        finally:
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                process.wait(timeout=20)
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
