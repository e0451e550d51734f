"""A scheduler that dies mid-step, as a process of its own: it takes one follow-up step in a
transaction (the step moved on, its message inserted), says so on stdout, and waits there, never
committing, until the test kills it with SIGKILL.

Usage: python -m tests.followups.half_step DATABASE_URL DATA_DIR FOLLOW_UP_ID STEP NOW_ISO
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.followups.service import run_step
from messaging_whatsapp.sending.submissions import QueuedMessage


async def _main(database_url: str, data_dir: str, follow_up_id: str, step: int, now: datetime) -> None:
    settings = Settings(_env_file=None, database_url=database_url, data_dir=Path(data_dir))  # type: ignore[call-arg]
    context = await EngineContext.open(settings)
    async with context.sessions() as session, session.begin():
        run = await run_step(session, follow_up_id, step, now)
        taken = run is not None and any(isinstance(r, QueuedMessage) for r in run.results)
        sys.stdout.write("taken\n" if taken else "not taken\n")
        sys.stdout.flush()
        await asyncio.sleep(3600)  # the transaction stays open until the process is killed


if __name__ == "__main__":
    url, data, follow_up, step_text, at = sys.argv[1:6]
    asyncio.run(_main(url, data, follow_up, int(step_text), datetime.fromisoformat(at)))
