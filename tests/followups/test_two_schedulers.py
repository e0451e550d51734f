"""Two schedulers run the follow-up pass at once while a third, in a process of its own, dies in the
middle of a step (SIGKILL with its transaction open): every step is sent exactly once, on both
databases."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import func, select

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.followups.models import FollowUpStepLog
from messaging_whatsapp.inbox.models import Message
from messaging_whatsapp.worker.scheduler import Scheduler
from tests.followups.test_follow_ups import (
    THREE_STEPS,
    Clock,
    follow_up_state,
    new_ticket,
    start_follow_up,
    system_messages,
)

ROOT = Path(__file__).resolve().parents[2]


async def _killed_mid_step(
    context: EngineContext, follow_up_id: str, clock: Clock, tmp: Path
) -> asyncio.subprocess.Process:
    """A scheduler process that took step 0 and holds its transaction open."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.followups.half_step",
        context.settings.database_url,
        str(tmp),
        follow_up_id,
        "0",
        clock().isoformat(),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    assert line.decode().strip() == "taken"
    return process


async def test_two_schedulers_and_one_killed_mid_step_send_each_step_once(
    context: EngineContext, tmp_path: Path
) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    follow_up_id = await start_follow_up(context, ticketed, clock, **THREE_STEPS)
    other = await EngineContext.open(context.settings)
    try:
        first, second = Scheduler(context, clock=clock), Scheduler(other, clock=clock)
        dying = await _killed_mid_step(context, follow_up_id, clock, tmp_path)
        # Both passes start while the dying one holds step 0 (they wait on its lock) ...
        passes = asyncio.gather(first.run_follow_ups(), second.run_follow_ups())
        await asyncio.sleep(0.5)
        assert not passes.done()  # held back by the dying scheduler's open transaction
        # ... and it dies without committing: its step is theirs to take, once.
        dying.send_signal(signal.SIGKILL)
        assert await dying.wait() == -signal.SIGKILL
        await asyncio.wait_for(passes, timeout=60)
        for _ in range(10):
            if (await follow_up_state(context, follow_up_id))[0] != "running":
                break
            clock.advance(121)
            await asyncio.gather(first.run_follow_ups(), second.run_follow_ups())
    finally:
        await other.close()

    assert (await follow_up_state(context, follow_up_id))[:2] == ("exhausted", None)
    assert await system_messages(context, ticketed.conversation_id) == [
        step["text"] for step in THREE_STEPS["steps"]
    ]
    async with context.sessions() as session:
        keys = await session.scalar(
            select(func.count(func.distinct(Message.idempotency_key))).where(
                Message.conversation_id == ticketed.conversation_id, Message.idempotency_key.is_not(None)
            )
        )
        logs = list(
            await session.scalars(
                select(FollowUpStepLog.step)
                .where(FollowUpStepLog.follow_up_id == follow_up_id)
                .order_by(FollowUpStepLog.step)
            )
        )
    assert keys == 3
    assert logs == [0, 1, 2]
