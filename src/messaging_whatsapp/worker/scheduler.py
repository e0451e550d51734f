"""The scheduler: the engine's work that comes due with time rather than with a message.

Today that is closing the tickets left without interaction for the tenant's time (seed 003), a
pass a minute; the numbers' health (daily counters from local midnight, a point back per hour
without failures), a pass a minute; and applying each tenant's data retention (LGPD), a pass an
hour; the tenants' alert rules, a pass every ALERT_PASS_SECONDS (30 s); folding changed messages
into the analytics rollup, a pass every few seconds; the
automation rules that answer a customer nobody of the team answered (no_agent_answer), a pass every
30 s, made exactly-once by the firings' unique key; the follow-ups' steps and the scheduled
messages that are due, a pass every 2 s (each sent once by conditional UPDATEs, whoever runs it,
so no lock); the AI replies whose customer's burst ended, a pass a second (each taken by a
conditional UPDATE, so no lock either); scheduled
campaigns are started by the campaign dispatcher, which the `scheduler` command runs too. Several
schedulers may run: each pass takes an advisory lock on PostgreSQL, so one does the pass and the
others skip it; both passes are safe to repeat, so the lock saves work only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from messaging_whatsapp import metrics
from messaging_whatsapp.alerts.evaluation import Evaluation, evaluate_alerts
from messaging_whatsapp.analytics.rollup import fold_changes
from messaging_whatsapp.assistant.runner import run_ai_replies
from messaging_whatsapp.automation.waiting import answer_waiting_customers
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import is_postgresql, take_sqlite_writer, utcnow
from messaging_whatsapp.followups.runner import run_follow_ups
from messaging_whatsapp.inbox.tickets import close_inactive_tickets
from messaging_whatsapp.instances.recovery import HealthMaintenance, maintain_health
from messaging_whatsapp.outbox.service import relay_outbox, write_outbox
from messaging_whatsapp.retention.service import RetentionReport, apply_retention_everywhere
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.sending.scheduled import send_scheduled_messages

logger = logging.getLogger(__name__)

PASS_SECONDS = 60.0
# Retention periods are whole days: an hour late deletes nothing that matters, and an hourly pass
# keeps its cost (a few indexed queries per tenant with retention, one scan of the DLQ) negligible.
RETENTION_PASS_SECONDS = 3600.0
# The analytics figures lag the messages by at most this (plus the pass's own time).
ANALYTICS_PASS_SECONDS = 2.0
# A follow-up step or a scheduled message goes at most this late (plus the pass's own time).
FOLLOW_UP_PASS_SECONDS = 2.0
# An AI reply starts at most this long after its burst ended.
AI_REPLY_PASS_SECONDS = 1.0
# First half of the two-part advisory lock key, apart from the streams' ("ST") and campaigns' ("CA").
_LOCK_CLASS = 0x5343  # "SC"
_TICKETS_LOCK = 1
_RETENTION_LOCK = 2
_HEALTH_LOCK = 3
_ALERTS_LOCK = 4
# Automation's no_agent_answer rules (the firings' unique key is what makes them fire once).
_NO_ANSWER_LOCK = 25
NO_ANSWER_PASS_SECONDS = 30.0


class Scheduler:
    """Runs the time-driven passes until told to stop."""

    def __init__(self, context: EngineContext, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._context = context
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        """Closing idle tickets and the numbers' health every minute, the alert rules every
        ALERT_PASS_SECONDS, the analytics rollup every few seconds and retention every hour, side
        by side (retention's first run over a
        large backlog takes a while and must not hold the others back)."""
        await asyncio.gather(
            _repeat(stop, PASS_SECONDS, self.close_inactive_tickets, "ticket closing"),
            _repeat(stop, PASS_SECONDS, self.maintain_health, "numbers' health"),
            _repeat(stop, self._context.settings.alert_pass_seconds, self.evaluate_alerts, "alerts"),
            _repeat(stop, RETENTION_PASS_SECONDS, self.apply_retention, "retention"),
            _repeat(stop, ANALYTICS_PASS_SECONDS, self.fold_analytics, "analytics"),
            _repeat(stop, NO_ANSWER_PASS_SECONDS, self.answer_waiting_customers, "no agent answer"),
            _repeat(stop, FOLLOW_UP_PASS_SECONDS, self.run_follow_ups, "follow-ups"),
            _repeat(stop, FOLLOW_UP_PASS_SECONDS, self.send_scheduled_messages, "scheduled messages"),
            _repeat(stop, AI_REPLY_PASS_SECONDS, self.run_ai_replies, "AI replies"),
        )

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

    async def run_follow_ups(self) -> int:
        """Cancel the follow-ups something stopped and take every due step; how many turns. Safe
        beside another scheduler: each step is taken by a conditional UPDATE (followups/service.py)."""
        return await run_follow_ups(self._context, self._clock())

    async def send_scheduled_messages(self) -> int:
        """Send the scheduled messages that are due; how many (once each, whoever runs it)."""
        return await send_scheduled_messages(self._context, self._clock())

    async def run_ai_replies(self) -> int:
        """Answer (or draft) the AI replies that are due; how many were taken."""
        return await run_ai_replies(self._context, self._clock())

    async def maintain_health(self) -> HealthMaintenance | None:
        """Start the numbers' daily counters at their local midnight and let their scores recover;
        what it did, or None when another scheduler holds the pass."""
        async with self._context.sessions() as session, session.begin():
            if is_postgresql(session) and not await session.scalar(
                select(func.pg_try_advisory_xact_lock(_LOCK_CLASS, _HEALTH_LOCK))
            ):
                return None
            done = await maintain_health(session, self._clock())
        if done.recovered:
            logger.info("%d numbers recovered a health point (an hour without failures)", done.recovered)
        return done

    async def evaluate_alerts(self) -> Evaluation | None:
        """Raise and resolve the tenants' alerts and publish each change once; what it did, or
        None when another scheduler holds the pass (the alerts' open keys keep two passes that
        overlap anyway from raising one alert twice)."""
        async with self._context.sessions() as session, session.begin():
            if is_postgresql(session) and not await session.scalar(
                select(func.pg_try_advisory_xact_lock(_LOCK_CLASS, _ALERTS_LOCK))
            ):
                return None
            # SQLite: the open alerts read are the ones written over, whichever pass comes second.
            await take_sqlite_writer(session)
            done = await evaluate_alerts(session, self._clock())
            records = await write_outbox(session, done.published, self._context.names.events)
        await relay_outbox(self._context, records)
        for kind, count in done.open_by_kind.items():
            metrics.ALERTS_OPEN.labels(kind).set(count)
        if done.published:
            logger.info("alerts: %d raised or resolved", len(done.published))
        return done

    async def answer_waiting_customers(self) -> int | None:
        """Fire the no_agent_answer rules on the tickets that waited past their minutes, then offer
        what they queued; how many fired, or None when another scheduler holds the pass."""
        async with self._context.sessions() as session, session.begin():
            if is_postgresql(session) and not await session.scalar(
                select(func.pg_try_advisory_xact_lock(_LOCK_CLASS, _NO_ANSWER_LOCK))
            ):
                return None
            fired = await answer_waiting_customers(session, self._clock())
            records = await write_outbox(session, fired.published, self._context.names.events)
        await relay_outbox(self._context, records)
        await offer_messages(self._context, fired.offers)
        if fired.fired:
            logger.info("no agent answer: %d rules fired", fired.fired)
        return fired.fired

    async def fold_analytics(self) -> int | None:
        """Recompute the analytics hours of the messages changed since the last pass; how many, or
        None when another scheduler holds the pass (the rollup takes its own advisory lock)."""
        async with self._context.sessions() as session, session.begin():
            return await fold_changes(session, self._clock())

    async def apply_retention(self) -> list[RetentionReport] | None:
        """Delete every tenant's data past its retention; the reports, or None when another
        scheduler holds the pass."""
        async with self._retention_lock() as taken:
            if not taken:
                return None
            reports = await apply_retention_everywhere(self._context, self._clock())
        for report in reports:
            if report.total:
                logger.info("retention deleted %s", _deleted(report))
        return reports

    @contextlib.asynccontextmanager
    async def _retention_lock(self) -> AsyncIterator[bool]:
        """On PostgreSQL, a session-level advisory lock on a connection of its own, held for the
        whole pass: retention commits batch by batch, which would end a transaction's lock."""
        if self._context.engine.dialect.name != "postgresql":
            yield True
            return
        async with self._context.engine.connect() as connection:
            taken = bool(
                await connection.scalar(select(func.pg_try_advisory_lock(_LOCK_CLASS, _RETENTION_LOCK)))
            )
            # Session locks outlive the transaction: end it rather than sit idle in one.
            await connection.commit()
            try:
                yield taken
            finally:
                if taken:
                    await _unlock(connection)


async def _unlock(connection: AsyncConnection) -> None:
    try:
        await connection.scalar(select(func.pg_advisory_unlock(_LOCK_CLASS, _RETENTION_LOCK)))
        await connection.commit()
    except Exception:
        # A pooled connection must never keep the lock: dropping the connection releases it.
        await connection.invalidate()
        raise


async def _repeat(
    stop: asyncio.Event, seconds: float, work: Callable[[], Awaitable[object]], what: str
) -> None:
    """Run `work` every `seconds` until `stop` is set; a failed pass is logged and tried again."""
    while not stop.is_set():
        try:
            await work()
        except Exception:
            logger.exception("scheduler pass (%s) failed; retrying", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


def _deleted(report: RetentionReport) -> str:
    counts = ", ".join(
        f"{expiry.count} {kind}" for kind, expiry in report.kinds().items() if expiry and expiry.count
    )
    return f"{counts} of tenant {report.tenant_id}"
