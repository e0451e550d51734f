"""The scheduler: the engine's work that comes due with time rather than with a message.

Today that is closing the tickets left without interaction for the tenant's time (seed 003);
scheduled campaigns are started by the campaign dispatcher, which the `scheduler` command runs
too. Several schedulers may run: each pass takes a transaction-level lock on PostgreSQL, so one
does the pass and the others skip it; closing is safe to repeat, so the lock saves work only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import is_postgresql, utcnow
from messaging_whatsapp.inbox.tickets import close_inactive_tickets
from messaging_whatsapp.outbox.service import relay_outbox, write_outbox

logger = logging.getLogger(__name__)

PASS_SECONDS = 60.0
# First half of the two-part advisory lock key, apart from the streams' ("ST") and campaigns' ("CA").
_LOCK_CLASS = 0x5343  # "SC"
_TICKETS_LOCK = 1


class Scheduler:
    """Runs the time-driven passes until told to stop."""

    def __init__(self, context: EngineContext, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._context = context
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        """A pass a minute until `stop` is set; a failed pass is logged and tried again."""
        while not stop.is_set():
            try:
                await self.close_inactive_tickets()
            except Exception:
                logger.exception("scheduler pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PASS_SECONDS)

    async def close_inactive_tickets(self) -> int:
        """Close the tickets idle past their tenant's time and announce each; returns how many."""
        async with self._context.sessions() as session, session.begin():
            if is_postgresql(session) and not await session.scalar(
                select(func.pg_try_advisory_xact_lock(_LOCK_CLASS, _TICKETS_LOCK))
            ):
                return 0  # another scheduler is on it
            closed = await close_inactive_tickets(session, self._clock())
            records = await write_outbox(
                session, [ticket.event() for ticket in closed], self._context.names.events
            )
        await relay_outbox(self._context, records)
        if closed:
            logger.info("closed %d inactive tickets", len(closed))
        return len(closed)
