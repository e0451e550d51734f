"""The scheduler's follow-up pass: stop what was stopped, then take each due step in a transaction
of its own, publish after commit and offer its message to the senders."""

from __future__ import annotations

import logging
from datetime import datetime

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.followups.service import StepRun, cancel_stopped, due_follow_ups, run_step
from messaging_whatsapp.outbox.service import relay_outbox, write_outbox
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.sending.submissions import queued_events
from messaging_whatsapp.streams.base import StreamError

logger = logging.getLogger(__name__)

# Steps taken per pass at most; the rest are due at the next pass (every few seconds).
MAX_STEPS_PER_PASS = 200


async def run_follow_ups(context: EngineContext, now: datetime) -> int:
    """One pass: cancel the follow-ups something stopped, then do every due step (each in its own
    transaction, so one that fails or dies leaves the others); how many turns it did."""
    async with context.sessions() as session, session.begin():
        events = await cancel_stopped(session, now)
        records = await write_outbox(session, events, context.names.events)
    await relay_outbox(context, records)
    async with context.sessions() as session:
        due = await due_follow_ups(session, now, MAX_STEPS_PER_PASS)
    done = 0
    for follow_up_id, step in due:
        try:
            done += await run_turn(context, follow_up_id, step, now) is not None
        except Exception:
            logger.exception("follow-up %s step %d failed; the next pass tries again", follow_up_id, step)
    return done


async def run_turn(context: EngineContext, follow_up_id: str, step: int, now: datetime) -> StepRun | None:
    """Do one follow-up's turn in a transaction; after commit, publish and offer (None: not its
    turn any more)."""
    async with context.sessions() as session, session.begin():
        run = await run_step(session, follow_up_id, step, now)
        if run is None:
            return None
        published = [*queued_events(run.results), *run.events]
        records = await write_outbox(session, published, context.names.events)
    await relay_outbox(context, records)
    try:
        await offer_messages(context, run.queued)
    except StreamError:
        # Stored as queued: the senders' re-offer sweep picks them up.
        logger.warning("outbound stream unavailable; follow-up messages wait for the re-offer")
    return run
