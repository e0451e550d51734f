"""Every engine process says it is alive: its row in worker_heartbeats, rewritten every
WORKER_HEARTBEAT_SECONDS (one UPSERT), marked stopped when it stops cleanly. The same table on both
deployments: the database is the one store every process shares."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.ops.service import EngineProcess, forget_workers, record_heartbeat

logger = logging.getLogger(__name__)
STOP_ATTEMPTS = 5


class Heartbeat:
    """This process's heartbeat, written until told to stop."""

    def __init__(self, context: EngineContext, role: str, parts: Sequence[str]) -> None:
        self._context = context
        self.process = EngineProcess(
            id=new_id(),
            role=role,
            parts=tuple(parts),
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=utcnow(),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Beat every WORKER_HEARTBEAT_SECONDS until `stop`, then say the process stopped."""
        await self._write(forget=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._context.settings.worker_heartbeat_seconds)
            if not stop.is_set():
                await self._write()
        # A clean stop says so: retried, as the other passes stopping at the same moment may hold
        # SQLite's one writer longer than its busy timeout.
        for attempt in range(STOP_ATTEMPTS):
            if await self._write(stopped=True):
                return
            await asyncio.sleep(0.2 * (attempt + 1))

    async def _write(self, *, stopped: bool = False, forget: bool = False) -> bool:
        """One heartbeat, True once written; a database that does not answer costs a log line,
        never the process."""
        try:
            async with self._context.sessions() as session, session.begin():
                if forget:
                    await forget_workers(session, utcnow())
                await record_heartbeat(session, self.process, utcnow(), stopped=stopped)
        except Exception:
            logger.warning(
                "heartbeat of %s (pid %d) not written", self.process.role, self.process.pid, exc_info=True
            )
            return False
        return True
