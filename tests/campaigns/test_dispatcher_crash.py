"""Dispatchers SIGKILLed again and again during a 5,000-contact campaign against the simulator
(PostgreSQL and Redis, every part its own process): at the end every contact got exactly one
message, as the simulator's own log proves, or is in a final unsent state with a reason."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from messaging_whatsapp.campaigns import lifecycle, service
from messaging_whatsapp.campaigns.lifecycle import Action
from messaging_whatsapp.campaigns.models import Campaign, CampaignContact, CampaignStatus
from messaging_whatsapp.campaigns.schemas import CampaignCreate
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Message
from tests.helpers import bind, create_tenant, engine_settings, free_port

CONTACTS = 5_000
KILLS = 4
UNSENT_FINAL = {"failed", "opted_out", "skipped"}


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "messaging_whatsapp.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_http(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@pytest.mark.slow
async def test_killed_dispatchers_send_everyone_exactly_once(
    fresh_postgres_url: str, redis_url: str, stream_prefix: str, tmp_path: Path, redis_cleanup: None
) -> None:
    port = free_port()
    settings = engine_settings(fresh_postgres_url, redis_url, stream_prefix, tmp_path / "data", port)
    context = await EngineContext.open(settings)
    simulator_log = tmp_path / "simulator.jsonl"
    env = {
        **os.environ,
        "DATABASE_URL": fresh_postgres_url,
        "REDIS_URL": redis_url,
        "STREAM_PREFIX": stream_prefix,
        "DATA_DIR": str(tmp_path / "data"),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RATE_LIMITS_ENABLED": "false",
        "SIMULATOR_LOG": str(simulator_log),
        "SIMULATOR_LATENCY_MS": "5",
        "SIMULATOR_RECEIPT_DELAY_MS": "50",
        "WORKER_BLOCK_MS": "100",
        "SEND_OUTCOME_GRACE_SECONDS": "10",
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        tenant_id = await create_tenant(context)
        numbers = []
        for index in range(3):
            instance, _ = await bind(
                context,
                tenant_id,
                provider="simulator",
                display_number=f"+55114003000{index}",
                instance_name=f"crash-{index}",
                daily_limit=100_000,
            )
            numbers.append(instance.id)
        body = {
            "name": "Kill test",
            "rotation_mode": "round_robin",
            "instance_ids": numbers,
            "messages": [{"content": "Oi {{name}}"}],
            "contacts": [{"phone": f"+55119{index:08d}", "name": f"C{index}"} for index in range(CONTACTS)],
            "settings": {"interval_min_s": 0, "interval_max_s": 0, "warmup": False},
        }
        async with context.sessions() as session, session.begin():
            campaign, _ = await service.create_campaign(
                session, tenant_id, CampaignCreate.model_validate(body), user_id=None, now=utcnow()
            )
            await lifecycle.transition(
                session, tenant_id, campaign.id, Action.START, user_id=None, now=utcnow()
            )

        processes.append(_cli(env, "serve", "--role", "webhook", "--port", str(port)))
        _wait_for_http(f"http://127.0.0.1:{port}/healthz")
        processes.append(_cli(env, "worker", "--role", "sender"))
        processes.append(_cli(env, "worker", "--role", "inbound"))
        rng = random.Random(11)
        for _ in range(KILLS):
            dispatcher = _cli(env, "worker", "--role", "dispatcher")
            await asyncio.sleep(rng.uniform(1.5, 3.0))
            dispatcher.send_signal(signal.SIGKILL)
            dispatcher.wait(timeout=10)
        processes.append(_cli(env, "worker", "--role", "dispatcher"))
        processes.append(_cli(env, "worker", "--role", "dispatcher"))  # and two at once
        await _completed(context, campaign.id, timeout=240)
        async with context.sessions() as session:
            contacts = list(
                await session.scalars(
                    select(CampaignContact).where(CampaignContact.campaign_id == campaign.id)
                )
            )
            messages = {
                m.id: m
                for m in await session.scalars(select(Message).where(Message.sender_type == "campaign"))
            }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        await context.close()

    taken = Counter(json.loads(line)["message_id"] for line in simulator_log.read_text().splitlines())
    per_contact: Counter[str] = Counter()
    for message_id, times in taken.items():
        per_contact[messages[message_id].contact_id] += times
    assert len(contacts) == CONTACTS
    for contact in contacts:
        if contact.status in UNSENT_FINAL:
            assert contact.error_code, f"{contact.status} without a reason"
            assert per_contact[contact.contact_id] <= 1
        else:
            assert per_contact[contact.contact_id] == 1, contact.status
    # One message per contact was ever made, whatever the kills interrupted.
    assert Counter(m.contact_id for m in messages.values()).most_common(1)[0][1] == 1


async def _completed(context: EngineContext, campaign_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        async with context.sessions() as session:
            campaign = await session.get(Campaign, campaign_id)
            assert campaign is not None
            if campaign.status == CampaignStatus.COMPLETED.value:
                return
            states = Counter(
                await session.scalars(select(Message.send_state).where(Message.sender_type == "campaign"))
            )
            state = (campaign.status, campaign.pending_count, campaign.sent_count, dict(states))
        if time.monotonic() > deadline:
            raise AssertionError(f"campaign did not complete: {state}")
        await asyncio.sleep(0.5)
