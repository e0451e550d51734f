"""A number's health recovers, on both databases: daily counters start again at its tenant's local
midnight, the score gets a point back per hour without failures (the scheduler's pass), and an
explicit resume lifts it to 60."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.instances import service
from messaging_whatsapp.instances.health import HealthView
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.worker.scheduler import Scheduler
from tests.helpers import bind, create_tenant

# 23:30 in Tokyo on 2026-11-23 (14:30 UTC).
TOKYO_LATE = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _number(context: EngineContext, **health: object) -> tuple[str, str]:
    tenant_id = await create_tenant(context, timezone="Asia/Tokyo")
    instance, _ = await bind(
        context,
        tenant_id,
        provider="simulator",
        display_number="+551140029000",
        instance_name=f"r-{tenant_id}",
    )
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance).where(WhatsAppInstance.id == instance.id).values(**health)
        )
    return tenant_id, instance.id


async def _instance(context: EngineContext, instance_id: str) -> WhatsAppInstance:
    async with context.sessions() as session:
        instance = await session.get(WhatsAppInstance, instance_id)
    assert instance is not None
    return instance


async def test_daily_counters_start_again_at_the_tenants_midnight(context: EngineContext) -> None:
    _, instance_id = await _number(
        context, counters_date=date(2026, 11, 23), msgs_sent_today=8, msgs_failed_today=2
    )
    instance = await _instance(context, instance_id)
    assert instance.timezone == "Asia/Tokyo"
    clock = Clock(TOKYO_LATE)
    scheduler = Scheduler(context, clock=clock)
    await scheduler.maintain_health()
    assert (await _instance(context, instance_id)).msgs_sent_today == 8
    clock.now += timedelta(minutes=31)  # 00:01 in Tokyo, still the 23rd in UTC
    await scheduler.maintain_health()
    instance = await _instance(context, instance_id)
    assert (instance.msgs_sent_today, instance.msgs_failed_today) == (0, 0)
    assert instance.counters_date == date(2026, 11, 24)


async def test_the_score_recovers_a_point_an_hour_without_failures(context: EngineContext) -> None:
    _, instance_id = await _number(
        context, health_score=40.0, consecutive_errors=5, last_error_at=TOKYO_LATE - timedelta(minutes=30)
    )
    clock = Clock(TOKYO_LATE)
    scheduler = Scheduler(context, clock=clock)
    await scheduler.maintain_health()
    assert (await _instance(context, instance_id)).health_score == 40.0  # failed half an hour ago
    clock.now += timedelta(minutes=30)
    await scheduler.maintain_health()
    await scheduler.maintain_health()  # the same hour: the point is given once
    instance = await _instance(context, instance_id)
    assert (instance.health_score, instance.consecutive_errors) == (41.0, 0)
    clock.now += timedelta(minutes=59)
    await scheduler.maintain_health()
    assert (await _instance(context, instance_id)).health_score == 41.0
    clock.now += timedelta(minutes=1)
    await scheduler.maintain_health()
    assert (await _instance(context, instance_id)).health_score == 42.0


async def test_a_resume_lifts_the_score_to_60_and_forgets_the_errors(context: EngineContext) -> None:
    tenant_id, instance_id = await _number(
        context, health_score=12.0, consecutive_errors=7, status=InstanceStatus.PAUSED.value
    )
    async with context.sessions() as session, session.begin():
        await service.set_instance_status(session, tenant_id, instance_id, InstanceStatus.ACTIVE)
    instance = await _instance(context, instance_id)
    assert (instance.health_score, instance.consecutive_errors, instance.status) == (60.0, 0, "active")
    assert HealthView.of(instance, TOKYO_LATE).is_healthy
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance).where(WhatsAppInstance.id == instance_id).values(health_score=85.0)
        )
        await service.set_instance_status(session, tenant_id, instance_id, InstanceStatus.ACTIVE)
    assert (await _instance(context, instance_id)).health_score == 85.0  # a floor, never lower
