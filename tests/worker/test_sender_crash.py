"""Senders SIGKILLed mid-batch, again and again: nothing is sent twice and nothing is left stuck."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.inbox.models import Message, SendState
from tests.fakes.http import FakeHttpServer, RecordedRequest, Reply
from tests.fakes.meta import MetaGraphFake
from tests.helpers import META_PHONE_NUMBER_ID, engine_settings, free_port
from tests.worker.test_sender import TOKEN, _meta_instance, _queue

MESSAGES = 300
KILLS = 5


def _start_sender(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "messaging_whatsapp.cli", "worker", "--role", "sender"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
async def test_killed_senders_send_nothing_twice_and_leave_nothing_stuck(
    fresh_postgres_url: str, redis_url: str, stream_prefix: str, tmp_path: Path, redis_cleanup: None
) -> None:
    meta = MetaGraphFake(token=TOKEN, phone_number_id=META_PHONE_NUMBER_ID)

    def slow_meta(request: RecordedRequest) -> Reply:
        time.sleep(0.02)  # a provider takes a moment, so kills land mid-batch
        return meta(request)

    with FakeHttpServer(slow_meta) as provider:
        settings = engine_settings(
            fresh_postgres_url, redis_url, stream_prefix, tmp_path / "data", free_port()
        )
        context = await EngineContext.open(settings)
        env = {
            **os.environ,
            "DATABASE_URL": fresh_postgres_url,
            "REDIS_URL": redis_url,
            "STREAM_PREFIX": stream_prefix,
            "DATA_DIR": str(tmp_path / "data"),
            "META_GRAPH_URL": f"{provider.base_url}/v23.0",
            "RATE_LIMITS_ENABLED": "false",
            "SEND_OUTCOME_GRACE_SECONDS": "2",
            "STREAM_VISIBILITY_TIMEOUT_MS": "1000",
            "SENDER_BATCH_SIZE": "40",
            "WORKER_BLOCK_MS": "100",
        }
        try:
            tenant_id, instance_id = await _meta_instance(context)
            ids = await _queue(context, instance_id, tenant_id, MESSAGES)
            rng = random.Random(7)
            for _ in range(KILLS):
                sender = _start_sender(env)
                # Kill on evidence that this sender is sending, not after a fixed time: a loaded
                # machine can take seconds to start one, and a kill before its first claim
                # proves nothing (CI saw all five kills land before any send).
                sending = await _sending(provider, since=len(provider.accepted), timeout=30)
                await asyncio.sleep(rng.uniform(0.0, 0.1))
                sender.send_signal(signal.SIGKILL)
                sender.wait(timeout=10)
                if not sending:
                    break
            sender = _start_sender(env)
            try:
                rows = await _settled(context, ids, timeout=90)
            finally:
                sender.terminate()
                sender.wait(timeout=20)
        finally:
            await context.close()

    accepted = Counter(request.json()["biz_opaque_callback_data"] for request in provider.accepted)
    assert accepted, "the provider saw no message at all"
    assert max(accepted.values()) == 1
    for row in rows:
        assert row.status in ("sent", "failed")
        if row.status == "sent":
            assert accepted[row.id] == 1
        else:
            assert row.error_code == "unknown_outcome"
    assert Counter(row.send_state for row in rows) == {SendState.DONE.value: MESSAGES}
    # The kills did land mid-batch: some messages were claimed when their sender died.
    assert any(row.status == "failed" for row in rows)


async def _sending(provider: FakeHttpServer, since: int, timeout: float) -> bool:
    """Wait until the provider accepts a message beyond the first `since`; False on timeout."""
    deadline = time.monotonic() + timeout
    while len(provider.accepted) <= since:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _settled(context: EngineContext, ids: list[str], timeout: float) -> list[Message]:
    deadline = time.monotonic() + timeout
    while True:
        async with context.sessions() as session:
            rows = list((await session.scalars(select(Message).where(Message.id.in_(ids)))).all())
        if all(row.send_state == SendState.DONE.value for row in rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"stuck: {Counter(row.send_state for row in rows)}")
        await asyncio.sleep(0.2)
