"""A number's health over time: daily counters that start again at local midnight, a score that
recovers while nothing fails, and the floor an operator's resume lifts it to.

Without these a number whose score fell below 50 never sent again. The scheduler runs
`maintain_health` every minute; each step is a few set-based statements, safe to repeat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.instances.health import START_SCORE, local_date
from messaging_whatsapp.instances.models import WhatsAppInstance, instances_table

logger = logging.getLogger(__name__)

# A point back for each full hour without a failure about the number.
RECOVERY_POINTS = 1.0
RECOVERY_EVERY = timedelta(hours=1)
# An explicit resume is the operator saying the trouble is fixed: the score starts here at least.
RESUME_FLOOR = 60.0


@dataclass(frozen=True, slots=True)
class HealthMaintenance:
    """What one pass did: numbers whose counters started a new day, numbers that got a point back."""

    reset: int
    recovered: int


async def maintain_health(session: AsyncSession, now: datetime) -> HealthMaintenance:
    """Start the day's counters of numbers past their local midnight; give a point back to numbers
    an hour without failures."""
    reset = await reset_daily_counters(session, now)
    recovered = await recover_scores(session, now)
    return HealthMaintenance(reset, recovered)


async def reset_daily_counters(session: AsyncSession, now: datetime) -> int:
    """Zero the daily counters of every number whose local date (its zone, by default its
    tenant's) moved on; one statement per time zone in use."""
    c = instances_table.c
    zones = list(await session.scalars(select(c.timezone).distinct()))
    reset = 0
    for zone in sorted(zones):
        today = local_date(zone, now)
        result = await session.execute(
            update(instances_table)
            .where(c.timezone == zone, or_(c.counters_date.is_(None), c.counters_date != today))
            .values(
                msgs_sent_today=0,
                msgs_delivered_today=0,
                msgs_read_today=0,
                msgs_failed_today=0,
                counters_date=today,
                updated_at=c.updated_at,  # health is not a change of the number (instance caches)
            )
        )
        reset += int(getattr(result, "rowcount", 0) or 0)
    return reset


async def recover_scores(session: AsyncSession, now: datetime) -> int:
    """+1 (up to 100) for each number whose last failure and last recovery are an hour old or
    more; its run of errors ends too, so a number paused by failures sends again in time."""
    c = instances_table.c
    hour_ago = now - RECOVERY_EVERY
    quiet = and_(
        or_(c.last_error_at.is_(None), c.last_error_at <= hour_ago),
        or_(c.health_recovered_at.is_(None), c.health_recovered_at <= hour_ago),
        or_(c.health_score < START_SCORE, c.consecutive_errors > 0),
    )
    score = c.health_score + RECOVERY_POINTS
    result = await session.execute(
        update(instances_table)
        .where(quiet)
        .values(
            health_score=case((score > START_SCORE, START_SCORE), else_=score),
            consecutive_errors=0,
            health_recovered_at=now,
            last_health_update=now,
            updated_at=c.updated_at,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def lift_to_resume_floor(instance: WhatsAppInstance, now: datetime) -> None:
    """An explicit resume: the run of errors forgotten and the score at least RESUME_FLOOR, logged."""
    before = instance.health_score
    instance.consecutive_errors = 0
    instance.health_score = max(before, RESUME_FLOOR)
    instance.health_recovered_at = now
    instance.last_health_update = now
    logger.info(
        "instance %s (%s) resumed: health score %g -> %g, errors in a row reset",
        instance.id,
        instance.display_number,
        before,
        instance.health_score,
    )
