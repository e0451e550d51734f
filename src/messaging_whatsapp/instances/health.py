"""Instance health (seed 002, DESIGN section 9): score, daily counters, and whether a number may send.

The score starts at 100 and moves with outcomes: +0.5 per delivered, +1 per read, -10 per failed,
clamped to 0..100. Daily counters belong to the instance's local date and start again at its local
midnight. Outcomes are applied as one conditional UPDATE per instance and batch, so concurrent
workers never lose each other's increments (no read-modify-write).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Date, Float, Integer, String, case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from messaging_whatsapp.batch import Outcomes
from messaging_whatsapp.db import UTCDateTime, rows_table
from messaging_whatsapp.instances.announcements import health_event
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance, instances_table
from messaging_whatsapp.outbox.service import PublishedEvent

START_SCORE = 100.0
DELIVERED_POINTS = 0.5
READ_POINTS = 1.0
FAILED_POINTS = -10.0
HEALTHY_SCORE = 50.0
MAX_CONSECUTIVE_ERRORS = 5


class HealthStatus(enum.StrEnum):
    """Textual health (seed 002)."""

    EXCELLENT = "excellent"
    GOOD = "good"
    WARNING = "warning"
    CRITICAL = "critical"


def health_status(score: float) -> HealthStatus:
    """excellent >= 80, good >= 60, warning >= 40, critical below."""
    if score >= 80:
        return HealthStatus.EXCELLENT
    if score >= 60:
        return HealthStatus.GOOD
    if score >= 40:
        return HealthStatus.WARNING
    return HealthStatus.CRITICAL


def clamp_score(score: float) -> float:
    """The score kept inside 0..100."""
    return max(0.0, min(START_SCORE, score))


def local_date(timezone: str, now: datetime) -> date:
    """The instance's local calendar date at `now` (UTC when the zone is unknown)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).date()


@dataclass(frozen=True, slots=True)
class HealthView:
    """An instance's health as of `now`: yesterday's counters read as zero after local midnight."""

    score: float
    sent_today: int
    delivered_today: int
    read_today: int
    failed_today: int
    consecutive_errors: int

    @classmethod
    def of(cls, instance: WhatsAppInstance, now: datetime) -> HealthView:
        """The health of an instance row at `now`."""
        current = instance.counters_date == local_date(instance.timezone, now)
        return cls(
            score=instance.health_score,
            sent_today=instance.msgs_sent_today if current else 0,
            delivered_today=instance.msgs_delivered_today if current else 0,
            read_today=instance.msgs_read_today if current else 0,
            failed_today=instance.msgs_failed_today if current else 0,
            consecutive_errors=instance.consecutive_errors,
        )

    @property
    def delivery_rate(self) -> float:
        """Delivered over sent today, in percent (0 when nothing was sent)."""
        return round(100.0 * self.delivered_today / self.sent_today, 2) if self.sent_today else 0.0

    @property
    def read_rate(self) -> float:
        """Read over delivered today, in percent (0 when nothing was delivered)."""
        return round(100.0 * self.read_today / self.delivered_today, 2) if self.delivered_today else 0.0

    @property
    def is_healthy(self) -> bool:
        """Score at least 50 and fewer than 5 errors in a row."""
        return self.score >= HEALTHY_SCORE and self.consecutive_errors < MAX_CONSECUTIVE_ERRORS

    @property
    def status(self) -> HealthStatus:
        """The textual health status."""
        return health_status(self.score)


def unavailable_reason(instance: WhatsAppInstance, now: datetime) -> str | None:
    """Why the instance cannot send right now, or None when it can (seed 002's can_send_message).

    Warm-up caps are a campaign rule (they protect a new number from bulk sending) and are checked
    by the campaign dispatcher on top of this.
    """
    if instance.connection_state != "open":
        return f"instance is not connected ({instance.connection_state})"
    if instance.status != InstanceStatus.ACTIVE.value:
        return f"instance is {instance.status}"
    health = HealthView.of(instance, now)
    if not health.is_healthy:
        return f"instance is unhealthy (score {health.score:g}, {health.consecutive_errors} errors in a row)"
    if health.sent_today >= instance.daily_limit:
        return f"instance reached its daily limit of {instance.daily_limit} messages"
    return None


def can_send_message(instance: WhatsAppInstance, now: datetime) -> bool:
    """Whether the instance may send now: connected, active, healthy and under its daily limit."""
    return unavailable_reason(instance, now) is None


def score_change(outcomes: Outcomes) -> float:
    """What these outcomes are worth to the number's score."""
    return (
        outcomes.delivered * DELIVERED_POINTS + outcomes.read * READ_POINTS + outcomes.failed * FAILED_POINTS
    )


OUTCOME_COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("id", String()),
    ("today", Date()),
    ("sent", Integer()),
    ("delivered", Integer()),
    ("read", Integer()),
    ("failed", Integer()),
    ("failed_other", Integer()),
    ("points", Float()),
]


async def record_outcomes(
    session: AsyncSession, outcomes: dict[str, Outcomes], now: datetime
) -> list[PublishedEvent]:
    """Apply each instance's outcomes to its counters and score, in the caller's transaction (one
    statement for every instance of the batch); a `whatsapp_instance_health_changed` for each
    whose health status moved."""
    changed = {instance_id: o for instance_id, o in outcomes.items() if o}
    if not changed:
        return []
    numbers = await _numbers(session, changed)
    rows = [
        (
            instance_id,
            local_date(numbers[instance_id].timezone, now),
            o.sent,
            o.delivered,
            o.read,
            o.failed,
            o.failed_other,
            score_change(o),
        )
        for instance_id, o in sorted(changed.items())
        if instance_id in numbers
    ]
    if not rows:
        return []
    statement = _outcomes_statement(rows_table(session, "outcomes", OUTCOME_COLUMNS, rows), now)
    scored = await session.execute(statement.returning(instances_table.c.id, instances_table.c.health_score))
    published = []
    for instance_id, score in scored:
        before = numbers[instance_id]
        status = health_status(score)
        # The score before is as read a moment ago: announcing is all it is used for.
        if status != health_status(before.health_score):
            published.append(health_event(before.tenant_id, instance_id, status.value, score))
    return published


async def _numbers(session: AsyncSession, instance_ids: Iterable[str]) -> dict[str, Any]:
    """id -> (tenant, timezone, score) of each instance."""
    query = select(
        WhatsAppInstance.id,
        WhatsAppInstance.tenant_id,
        WhatsAppInstance.timezone,
        WhatsAppInstance.health_score,
    ).where(WhatsAppInstance.id.in_(sorted(instance_ids)))
    return {row.id: row for row in await session.execute(query)}


def _outcomes_statement(outcomes: Any, now: datetime) -> Any:
    c, o = instances_table.c, outcomes.c
    same_day = c.counters_date == o.today

    def counter(column: Any, increment: Any) -> Any:
        return case((same_day, column), else_=0) + increment

    # A success after failures ends the run of errors; failures then count from there.
    succeeded = (o.sent + o.delivered + o.read) > 0
    score = c.health_score + o.points
    return (
        update(instances_table)
        .where(c.id == o.id)
        .values(
            msgs_sent_today=counter(c.msgs_sent_today, o.sent),
            msgs_delivered_today=counter(c.msgs_delivered_today, o.delivered),
            msgs_read_today=counter(c.msgs_read_today, o.read),
            msgs_failed_today=counter(c.msgs_failed_today, o.failed + o.failed_other),
            counters_date=o.today,
            consecutive_errors=case((succeeded, 0), else_=c.consecutive_errors) + o.failed,
            health_score=case((score < 0, 0.0), (score > START_SCORE, START_SCORE), else_=score),
            last_health_update=now,
            last_success_at=case((succeeded, literal(now, UTCDateTime())), else_=c.last_success_at),
            # A failure about the number starts its hour without failures (the recovery) again.
            last_error_at=case((o.failed > 0, literal(now, UTCDateTime())), else_=c.last_error_at),
            # Health moves with every batch of sends and receipts; updated_at marks changes to the
            # number itself, which every webhook process's instance cache watches (a health
            # update bumping it emptied those caches each second under load).
            updated_at=c.updated_at,
        )
    )
