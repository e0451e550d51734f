"""The scheduler's alert pass on both databases: each rule raises its alert once while its condition
holds and resolves it once when it stops, two schedulers at once raise it once, a tenant's own
settings change what pages, and the workers' signals (sends per minute, last webhook) add up."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from messaging_whatsapp.alerts.evaluation import evaluate_alerts
from messaging_whatsapp.alerts.models import Alert, SendMinute, WebhookMark
from messaging_whatsapp.alerts.rules import DEFAULT_RULES, RuleKind, tenant_rules
from messaging_whatsapp.alerts.schemas import RuleChange
from messaging_whatsapp.alerts.service import change_rule
from messaging_whatsapp.alerts.signals import MinuteCalls, mark_webhooks, minute_of, record_calls
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.worker.scheduler import Scheduler
from tests.helpers import bind, create_tenant


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _number(context: EngineContext, tenant_id: str | None = None) -> tuple[str, str]:
    tenant_id = tenant_id or await create_tenant(context)
    instance, _ = await bind(
        context,
        tenant_id,
        provider="simulator",
        display_number="+551140029000",
        instance_name=f"a-{utcnow()}",
    )
    return tenant_id, instance.id


async def _set(context: EngineContext, instance_id: str, **values: Any) -> None:
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance).where(WhatsAppInstance.id == instance_id).values(**values)
        )


async def _calls(
    context: EngineContext, tenant_id: str, instance_id: str, at: datetime, **counts: int
) -> None:
    async with context.sessions() as session, session.begin():
        await record_calls(session, {instance_id: MinuteCalls(tenant_id, **counts)}, at)


async def _alerts(context: EngineContext, tenant_id: str) -> list[Alert]:
    async with context.sessions() as session:
        found = await session.scalars(
            select(Alert).where(Alert.tenant_id == tenant_id).order_by(Alert.raised_at)
        )
        return list(found)


async def _events(context: EngineContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The alert events published since the last look, raised and resolved."""
    streams, stream = context.streams, context.names.events
    await streams.ensure_group(stream, "test-reader")
    entries = [entry.fields for entry in await streams.read(stream, "test-reader", "t1", 1000, 0)]
    return _payloads(entries, "whatsapp_alert_raised"), _payloads(entries, "whatsapp_alert_resolved")


def _payloads(entries: list[dict[str, str]], event_type: str) -> list[dict[str, Any]]:
    return [orjson.loads(entry["payload"]) for entry in entries if entry["event_type"] == event_type]


async def test_a_tenant_without_rules_of_its_own_has_the_defaults(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    async with context.sessions() as session:
        rules = {rule.kind: rule for rule in await tenant_rules(session, tenant_id)}
    assert rules == DEFAULT_RULES
    assert rules[RuleKind.SEND_ERROR_RATE].threshold == 5.0
    assert rules[RuleKind.SEND_ERROR_RATE].window_seconds == 300
    assert rules[RuleKind.PROVIDER_LATENCY].threshold == 5000.0
    assert rules[RuleKind.PROVIDER_LATENCY].window_seconds == 600
    assert rules[RuleKind.CONSECUTIVE_FAILURES].threshold == 3
    assert rules[RuleKind.WEBHOOK_SILENCE].threshold == 1800


@pytest.mark.parametrize(
    ("kind", "broken", "fixed", "value"),
    [
        (
            RuleKind.NUMBER_DISCONNECTED,
            {
                "connection_state": "close",
                "status": "inactive",
                "connection_changed_at": timedelta(minutes=2),
            },
            {"connection_state": "open", "status": "active", "connection_changed_at": timedelta(0)},
            120.0,
        ),
        (RuleKind.HEALTH_CRITICAL, {"health_score": 30.0}, {"health_score": 45.0}, 30.0),
        (RuleKind.CONSECUTIVE_FAILURES, {"consecutive_errors": 3}, {"consecutive_errors": 0}, 3.0),
    ],
)
async def test_a_numbers_rule_raises_once_and_resolves_once(
    context: EngineContext, kind: RuleKind, broken: dict[str, Any], fixed: dict[str, Any], value: float
) -> None:
    now = utcnow()
    clock = Clock(now)
    scheduler = Scheduler(context, clock=clock)
    tenant_id, instance_id = await _number(context)
    await _set(context, instance_id, **_moments(broken, now))
    await scheduler.evaluate_alerts()
    await scheduler.evaluate_alerts()
    (alert,) = await _alerts(context, tenant_id)
    assert (alert.kind, alert.instance_id, alert.value, alert.resolved_at) == (
        kind.value,
        instance_id,
        value,
        None,
    )
    raised, resolved = await _events(context)
    assert [(e["kind"], e["instance_id"], e["value"], e["alert_id"]) for e in raised] == [
        (kind.value, instance_id, value, alert.id)
    ]
    assert raised[0]["threshold"] == DEFAULT_RULES[kind].threshold
    assert raised[0]["raised_at"] == now.isoformat()
    assert resolved == []

    await _set(context, instance_id, **_moments(fixed, now))
    clock.now = now + timedelta(seconds=30)
    await scheduler.evaluate_alerts()
    await scheduler.evaluate_alerts()
    (alert,) = await _alerts(context, tenant_id)
    assert alert.resolved_at == clock.now
    assert alert.open_key is None
    raised, resolved = await _events(context)
    assert raised == []
    assert [(e["alert_id"], e["resolved_at"]) for e in resolved] == [(alert.id, clock.now.isoformat())]


def _moments(values: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A timedelta as that long before now."""
    return {key: now - value if isinstance(value, timedelta) else value for key, value in values.items()}


async def test_a_disconnection_shorter_than_the_threshold_pages_nobody(context: EngineContext) -> None:
    now = utcnow()
    tenant_id, instance_id = await _number(context)
    await _set(
        context, instance_id, connection_state="close", connection_changed_at=now - timedelta(seconds=20)
    )
    await Scheduler(context, clock=Clock(now)).evaluate_alerts()
    assert await _alerts(context, tenant_id) == []


async def test_the_send_error_rate_needs_its_minimum_of_calls(context: EngineContext) -> None:
    now = utcnow()
    clock = Clock(now)
    scheduler = Scheduler(context, clock=clock)
    tenant_id, instance_id = await _number(context)
    # One failure of one call is 100 %, but not enough calls to say anything.
    await _calls(context, tenant_id, instance_id, now, failed=1)
    await scheduler.evaluate_alerts()
    assert await _alerts(context, tenant_id) == []
    # 3 failures of 30 calls in the last five minutes: 10 % > 5 %.
    await _calls(context, tenant_id, instance_id, now - timedelta(minutes=3), sent=27, failed=2)
    await scheduler.evaluate_alerts()
    (alert,) = await _alerts(context, tenant_id)
    assert (alert.kind, alert.instance_id, alert.value, alert.threshold) == (
        "send_error_rate",
        None,
        10.0,
        5.0,
    )
    assert alert.severity == "critical"
    # Six minutes on, those calls are out of the window: resolved.
    clock.now = now + timedelta(minutes=6)
    await scheduler.evaluate_alerts()
    (alert,) = await _alerts(context, tenant_id)
    assert alert.resolved_at == clock.now


async def test_provider_latency_over_its_window(context: EngineContext) -> None:
    now = utcnow()
    clock = Clock(now)
    scheduler = Scheduler(context, clock=clock)
    tenant_id, instance_id = await _number(context)
    await _calls(
        context,
        tenant_id,
        instance_id,
        now - timedelta(minutes=8),
        sent=5,
        latency_ms_total=5 * 6000,
        latency_calls=5,
    )
    await _calls(context, tenant_id, instance_id, now, sent=1, latency_ms_total=6000, latency_calls=1)
    await scheduler.evaluate_alerts()
    (alert,) = await _alerts(context, tenant_id)
    assert (alert.kind, alert.value, alert.threshold, alert.severity) == (
        "provider_latency",
        6000.0,
        5000.0,
        "warning",
    )
    # Fast calls bring the average under 5 s.
    await _calls(context, tenant_id, instance_id, now, sent=30, latency_ms_total=30 * 100, latency_calls=30)
    await scheduler.evaluate_alerts()
    (alert,) = await _alerts(context, tenant_id)
    assert alert.resolved_at is not None


async def test_webhook_silence_of_a_number_that_sent(context: EngineContext) -> None:
    now = utcnow()
    clock = Clock(now)
    scheduler = Scheduler(context, clock=clock)
    tenant_id, instance_id = await _number(context)
    hour_ago = now - timedelta(hours=1)
    await _set(context, instance_id, created_at=hour_ago, connection_changed_at=hour_ago)
    # Quiet (nothing sent): not silent.
    await scheduler.evaluate_alerts()
    assert await _alerts(context, tenant_id) == []
    # A webhook 40 minutes ago, then messages sent 10 minutes ago whose receipts never came.
    async with context.sessions() as session, session.begin():
        await mark_webhooks(session, {instance_id: now - timedelta(minutes=40)})
    await _calls(context, tenant_id, instance_id, now - timedelta(minutes=10), sent=4)
    await scheduler.evaluate_alerts()
    (alert,) = await _alerts(context, tenant_id)
    assert alert.kind == "webhook_silence"
    assert alert.value == round((now - minute_of(now - timedelta(minutes=40))).total_seconds())
    # A webhook now: resolved.
    async with context.sessions() as session, session.begin():
        await mark_webhooks(session, {instance_id: now})
    await scheduler.evaluate_alerts()
    (alert,) = await _alerts(context, tenant_id)
    assert alert.resolved_at == now


async def test_two_schedulers_at_once_raise_and_resolve_each_alert_once(context: EngineContext) -> None:
    now = utcnow()
    tenant_id, instance_id = await _number(context)
    await _set(context, instance_id, health_score=10.0)
    first, second = Scheduler(context, clock=Clock(now)), Scheduler(context, clock=Clock(now))
    await asyncio.gather(first.evaluate_alerts(), second.evaluate_alerts())
    await asyncio.gather(first.evaluate_alerts(), second.evaluate_alerts())
    assert len(await _alerts(context, tenant_id)) == 1
    await _set(context, instance_id, health_score=90.0)
    await asyncio.gather(first.evaluate_alerts(), second.evaluate_alerts())
    raised, resolved = await _events(context)
    assert len(raised) == 1
    assert len(resolved) == 1


async def test_two_passes_without_the_lock_still_raise_once(context: EngineContext) -> None:
    """Overlapping passes that both read no open alert (PostgreSQL, no advisory lock): the open key
    lets one insert; the other waits for it and inserts nothing."""
    if context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: its passes never overlap")
    now = utcnow()
    tenant_id, instance_id = await _number(context)
    await _set(context, instance_id, consecutive_errors=7)

    async def one_pass() -> int:
        async with context.sessions() as session, session.begin():
            return len((await evaluate_alerts(session, now)).published)

    assert sorted(await asyncio.gather(one_pass(), one_pass())) == [0, 1]
    assert len(await _alerts(context, tenant_id)) == 1


async def test_a_tenants_own_settings_decide(context: EngineContext) -> None:
    now = utcnow()
    scheduler = Scheduler(context, clock=Clock(now))
    tenant_id, instance_id = await _number(context)
    other_id, other_instance = await _number(context, None)
    for number in (instance_id, other_instance):
        await _set(context, number, consecutive_errors=3)
    async with context.sessions() as session, session.begin():
        await change_rule(session, tenant_id, "consecutive_failures", RuleChange(threshold=5))
    await scheduler.evaluate_alerts()
    assert await _alerts(context, tenant_id) == []
    (other,) = await _alerts(context, other_id)
    assert other.kind == "consecutive_failures"
    # Disabling the rule resolves the alert already open.
    async with context.sessions() as session, session.begin():
        await change_rule(session, other_id, "consecutive_failures", RuleChange(enabled=False))
    await scheduler.evaluate_alerts()
    (other,) = await _alerts(context, other_id)
    assert other.resolved_at == now


async def test_an_unbound_number_has_its_alerts_resolved(context: EngineContext) -> None:
    now = utcnow()
    scheduler = Scheduler(context, clock=Clock(now))
    tenant_id, instance_id = await _number(context)
    await _set(context, instance_id, health_score=0.0)
    await scheduler.evaluate_alerts()
    await _set(context, instance_id, status="unbound")
    await scheduler.evaluate_alerts()
    (alert,) = await _alerts(context, tenant_id)
    assert alert.resolved_at == now


async def test_the_sends_of_a_minute_add_up(context: EngineContext) -> None:
    now = utcnow()
    tenant_id, instance_id = await _number(context)
    await _calls(context, tenant_id, instance_id, now, sent=2, latency_ms_total=300, latency_calls=2)
    await _calls(
        context, tenant_id, instance_id, now, sent=1, failed=1, latency_ms_total=200, latency_calls=2
    )
    async with context.sessions() as session:
        (row,) = (await session.scalars(select(SendMinute))).all()
    assert (row.sent, row.failed, row.latency_ms_total, row.latency_calls) == (3, 1, 500, 4)
    assert row.minute == minute_of(now)


async def test_a_webhook_mark_never_goes_back(context: EngineContext) -> None:
    now = utcnow()
    _, instance_id = await _number(context)
    async with context.sessions() as session, session.begin():
        await mark_webhooks(session, {instance_id: now})
    async with context.sessions() as session, session.begin():
        await mark_webhooks(session, {instance_id: now - timedelta(hours=1)})
    async with context.sessions() as session:
        mark = await session.get(WebhookMark, instance_id)
    assert mark is not None
    assert mark.received_at == minute_of(now)


async def test_old_history_is_deleted(context: EngineContext) -> None:
    now = utcnow()
    clock = Clock(now - timedelta(days=91))
    scheduler = Scheduler(context, clock=clock)
    tenant_id, instance_id = await _number(context)
    await _set(context, instance_id, health_score=5.0)
    await scheduler.evaluate_alerts()
    await _set(context, instance_id, health_score=95.0)
    await scheduler.evaluate_alerts()
    await _calls(context, tenant_id, instance_id, now - timedelta(hours=26), sent=3)
    await _calls(context, tenant_id, instance_id, now - timedelta(hours=2), sent=4)
    assert len(await _alerts(context, tenant_id)) == 1
    clock.now = now
    await scheduler.evaluate_alerts()
    assert await _alerts(context, tenant_id) == []
    async with context.sessions() as session:
        kept = [row.sent for row in await session.scalars(select(SendMinute))]
    assert kept == [4]
