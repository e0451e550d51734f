"""Instance health: status thresholds, the healthy rule, whether a number may send, daily counters
that start again at the instance's local midnight, and outcomes applied to a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from messaging_whatsapp.batch import Outcomes
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.instances.health import (
    HealthStatus,
    HealthView,
    can_send_message,
    clamp_score,
    health_status,
    local_date,
    record_outcomes,
    score_change,
    unavailable_reason,
)
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.instances.resolver import InstanceResolver
from messaging_whatsapp.instances.service import set_instance_status
from messaging_whatsapp.outbox.service import PublishedEvent
from tests.helpers import bind, create_tenant

# 23:59 on 9 June in São Paulo (UTC-3) is 02:59 on 10 June in UTC; 00:01 on 10 June is 03:01 UTC.
SP_BEFORE_MIDNIGHT = datetime(2025, 6, 10, 2, 59, tzinfo=UTC)
SP_AFTER_MIDNIGHT = datetime(2025, 6, 10, 3, 1, tzinfo=UTC)
# Tokyo (UTC+9): local midnight of 10 June is 15:00 UTC on 9 June.
TOKYO_BEFORE_MIDNIGHT = datetime(2025, 6, 9, 14, 59, tzinfo=UTC)
TOKYO_AFTER_MIDNIGHT = datetime(2025, 6, 9, 15, 1, tzinfo=UTC)
JUNE_9 = date(2025, 6, 9)
JUNE_10 = date(2025, 6, 10)
NOON_UTC = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def instance(**overrides: Any) -> WhatsAppInstance:
    """An instance row in memory only, every health field set (column defaults apply on insert)."""
    values: dict[str, Any] = {
        "tenant_id": "tenant-1",
        "provider": "simulator",
        "name": "sim",
        "display_number": "+551140028922",
        "routing_key": "sim",
        "credentials_encrypted": "-",
        "connection_state": "open",
        "status": "active",
        "health_score": 100.0,
        "msgs_sent_today": 0,
        "msgs_delivered_today": 0,
        "msgs_read_today": 0,
        "msgs_failed_today": 0,
        "consecutive_errors": 0,
        "counters_date": JUNE_10,
        "daily_limit": 1000,
        "timezone": "America/Sao_Paulo",
    }
    values.update(overrides)
    return WhatsAppInstance(**values)


# --- status, score, view -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "status"),
    [
        (100.0, HealthStatus.EXCELLENT),
        (80.0, HealthStatus.EXCELLENT),
        (79.99, HealthStatus.GOOD),
        (60.0, HealthStatus.GOOD),
        (59.99, HealthStatus.WARNING),
        (40.0, HealthStatus.WARNING),
        (39.99, HealthStatus.CRITICAL),
        (0.0, HealthStatus.CRITICAL),
    ],
)
def test_health_status_thresholds(score: float, status: HealthStatus) -> None:
    assert health_status(score) is status
    assert HealthView(score, 0, 0, 0, 0, 0).status is status


@pytest.mark.parametrize(
    ("score", "clamped"),
    [(-0.5, 0.0), (-100.0, 0.0), (0.0, 0.0), (42.5, 42.5), (100.0, 100.0), (100.5, 100.0), (250.0, 100.0)],
)
def test_clamp_score(score: float, clamped: float) -> None:
    assert clamp_score(score) == clamped


def test_rates_are_percentages_and_zero_without_a_denominator() -> None:
    view = HealthView(
        score=90.0, sent_today=3, delivered_today=2, read_today=1, failed_today=1, consecutive_errors=0
    )
    assert view.delivery_rate == 66.67
    assert view.read_rate == 50.0
    assert HealthView(90.0, 4, 4, 4, 0, 0).delivery_rate == 100.0
    assert HealthView(90.0, 3, 3, 1, 0, 0).read_rate == 33.33
    empty = HealthView(90.0, 0, 0, 0, 0, 0)
    assert empty.delivery_rate == 0.0
    assert empty.read_rate == 0.0
    assert HealthView(90.0, 5, 0, 0, 5, 0).read_rate == 0.0


@pytest.mark.parametrize(
    ("score", "errors", "healthy"),
    [
        (100.0, 0, True),
        (50.0, 0, True),
        (50.0, 4, True),
        (49.99, 0, False),
        (100.0, 5, False),
        (100.0, 12, False),
        (0.0, 0, False),
    ],
)
def test_is_healthy(score: float, errors: int, healthy: bool) -> None:
    assert HealthView(score, 0, 0, 0, 0, errors).is_healthy is healthy


def test_view_of_an_instance_reads_its_row() -> None:
    row = instance(
        health_score=72.5,
        msgs_sent_today=10,
        msgs_delivered_today=8,
        msgs_read_today=2,
        msgs_failed_today=1,
        consecutive_errors=3,
    )
    assert HealthView.of(row, NOON_UTC) == HealthView(72.5, 10, 8, 2, 1, 3)


def test_counters_of_no_date_read_as_zero() -> None:
    row = instance(msgs_sent_today=7, msgs_delivered_today=7, counters_date=None)
    view = HealthView.of(row, NOON_UTC)
    assert (view.sent_today, view.delivered_today) == (0, 0)


# --- whether a number may send -------------------------------------------------------------------


def test_a_healthy_connected_active_instance_can_send() -> None:
    row = instance(msgs_sent_today=999)
    assert unavailable_reason(row, NOON_UTC) is None
    assert can_send_message(row, NOON_UTC)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"connection_state": "close"}, ["not connected", "close"]),
        ({"connection_state": "connecting"}, ["not connected", "connecting"]),
        ({"status": "paused"}, ["paused"]),
        ({"status": "inactive"}, ["inactive"]),
        ({"health_score": 49.5}, ["unhealthy", "49.5"]),
        ({"consecutive_errors": 5}, ["unhealthy", "5 errors"]),
        ({"msgs_sent_today": 1000}, ["daily limit", "1000"]),
        ({"msgs_sent_today": 3, "daily_limit": 3}, ["daily limit", "3"]),
        ({"daily_limit": 0}, ["daily limit"]),
    ],
)
def test_each_reason_stops_sending(overrides: dict[str, Any], words: list[str]) -> None:
    row = instance(**overrides)
    reason = unavailable_reason(row, NOON_UTC)
    assert reason is not None
    for word in words:
        assert word in reason
    assert not can_send_message(row, NOON_UTC)


def test_disconnection_is_reported_before_the_other_reasons() -> None:
    row = instance(
        connection_state="close",
        status="paused",
        health_score=0.0,
        consecutive_errors=9,
        msgs_sent_today=5000,
    )
    reason = unavailable_reason(row, NOON_UTC)
    assert reason is not None
    assert "not connected" in reason


def test_yesterdays_sends_do_not_count_against_todays_limit() -> None:
    row = instance(msgs_sent_today=1000, counters_date=JUNE_9)
    assert can_send_message(row, NOON_UTC)


# --- the daily reset at the instance's local midnight -------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "before", "after", "counters_day"),
    [
        ("America/Sao_Paulo", SP_BEFORE_MIDNIGHT, SP_AFTER_MIDNIGHT, JUNE_9),
        ("Asia/Tokyo", TOKYO_BEFORE_MIDNIGHT, TOKYO_AFTER_MIDNIGHT, JUNE_9),
    ],
)
def test_counters_start_again_at_local_midnight(
    timezone: str, before: datetime, after: datetime, counters_day: date
) -> None:
    row = instance(
        timezone=timezone,
        counters_date=counters_day,
        health_score=81.0,
        msgs_sent_today=40,
        msgs_delivered_today=30,
        msgs_read_today=20,
        msgs_failed_today=10,
        consecutive_errors=2,
        daily_limit=40,
    )
    assert local_date(timezone, before) == counters_day
    assert HealthView.of(row, before) == HealthView(81.0, 40, 30, 20, 10, 2)
    assert not can_send_message(row, before)
    reason = unavailable_reason(row, before)
    assert reason is not None
    assert "daily limit" in reason

    assert local_date(timezone, after) == date.fromordinal(counters_day.toordinal() + 1)
    # The score and the run of errors are not daily: only the counters start again.
    assert HealthView.of(row, after) == HealthView(81.0, 0, 0, 0, 0, 2)
    assert can_send_message(row, after)


def test_utc_date_is_not_the_local_date() -> None:
    # At 02:59 UTC it is already 10 June in UTC but still 9 June in São Paulo.
    row = instance(counters_date=JUNE_10, msgs_sent_today=5)
    assert HealthView.of(row, SP_BEFORE_MIDNIGHT).sent_today == 0
    assert HealthView.of(row, SP_AFTER_MIDNIGHT).sent_today == 5


def test_an_unknown_time_zone_counts_days_in_utc() -> None:
    assert local_date("Not/AZone", SP_BEFORE_MIDNIGHT) == JUNE_10
    assert local_date("", TOKYO_AFTER_MIDNIGHT) == JUNE_9


# --- outcomes -----------------------------------------------------------------------------------


def test_outcome_points_and_truth() -> None:
    assert score_change(Outcomes(delivered=2, read=3, failed=1)) == 2 * 0.5 + 3 * 1.0 - 10.0
    assert score_change(Outcomes(sent=5)) == 0.0
    assert not Outcomes()
    assert Outcomes(sent=1)
    assert Outcomes(failed=1)


@pytest.fixture
async def context(fresh_sqlite_url: str, tmp_path: Path) -> AsyncIterator[EngineContext]:
    """An engine context on a migrated SQLite file of this test's own."""
    settings = Settings(_env_file=None, database_url=fresh_sqlite_url, data_dir=tmp_path)
    context = await EngineContext.open(settings)
    yield context
    await context.close()


async def _bind(context: EngineContext, tenant_id: str, name: str, timezone: str) -> str:
    bound, _url = await bind(
        context,
        tenant_id,
        provider="simulator",
        display_number="+551140028922",
        instance_name=name,
        timezone=timezone,
    )
    return bound.id


async def _record(
    context: EngineContext, outcomes: dict[str, Outcomes], now: datetime
) -> list[PublishedEvent]:
    async with context.sessions() as session, session.begin():
        return await record_outcomes(session, outcomes, now)


async def _load(context: EngineContext, instance_id: str) -> WhatsAppInstance:
    async with context.sessions() as session:
        row = await session.get(WhatsAppInstance, instance_id)
    assert row is not None
    return row


def _counters(row: WhatsAppInstance) -> tuple[int, int, int, int]:
    return (row.msgs_sent_today, row.msgs_delivered_today, row.msgs_read_today, row.msgs_failed_today)


async def test_record_outcomes_counts_scores_and_tracks_errors(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    instance_id = await _bind(context, tenant_id, "sim-health", "America/Sao_Paulo")
    fresh = await _load(context, instance_id)
    assert (fresh.health_score, fresh.consecutive_errors, _counters(fresh)) == (100.0, 0, (0, 0, 0, 0))

    # A batch with successes: counters add up, +0.5/+1/-10 per outcome, errors count from zero.
    first = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
    # Still excellent: no health change announced.
    assert (
        await _record(context, {instance_id: Outcomes(sent=10, delivered=8, read=4, failed=2)}, first) == []
    )
    row = await _load(context, instance_id)
    assert _counters(row) == (10, 8, 4, 2)
    assert row.health_score == 100.0 + 8 * 0.5 + 4 * 1.0 - 2 * 10.0 == 88.0
    assert row.consecutive_errors == 2
    assert row.counters_date == JUNE_10
    assert row.last_success_at == first
    assert row.last_health_update == first

    # Failures only: the run of errors grows, last success stays.
    second = datetime(2025, 6, 10, 12, 5, tzinfo=UTC)
    [changed] = await _record(context, {instance_id: Outcomes(failed=3)}, second)
    assert (changed.type, changed.tenant_id) == ("whatsapp_instance_health_changed", tenant_id)
    assert changed.payload == {"instance_id": instance_id, "health_status": "warning", "health_score": 58.0}
    row = await _load(context, instance_id)
    assert _counters(row) == (10, 8, 4, 5)
    assert row.health_score == 58.0
    assert row.consecutive_errors == 5
    assert row.last_success_at == first
    assert row.last_health_update == second
    assert not HealthView.of(row, second).is_healthy
    assert not can_send_message(row, second)

    # A success ends the run; this batch's failures count from there.
    third = datetime(2025, 6, 10, 12, 10, tzinfo=UTC)
    await _record(context, {instance_id: Outcomes(delivered=2, failed=1)}, third)
    row = await _load(context, instance_id)
    assert _counters(row) == (10, 10, 4, 6)
    assert row.health_score == 58.0 + 1.0 - 10.0 == 49.0
    assert row.consecutive_errors == 1
    assert row.last_success_at == third

    # A read-only batch is a success too.
    await _record(context, {instance_id: Outcomes(read=1)}, third)
    row = await _load(context, instance_id)
    assert (row.health_score, row.consecutive_errors) == (50.0, 0)
    assert can_send_message(row, third)


async def test_record_outcomes_clamps_the_score(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    instance_id = await _bind(context, tenant_id, "sim-clamp", "America/Sao_Paulo")

    await _record(context, {instance_id: Outcomes(read=50, delivered=50)}, NOON_UTC)
    assert (await _load(context, instance_id)).health_score == 100.0

    await _record(context, {instance_id: Outcomes(failed=7)}, NOON_UTC)
    row = await _load(context, instance_id)
    assert row.health_score == 30.0
    await _record(context, {instance_id: Outcomes(failed=4)}, NOON_UTC)
    row = await _load(context, instance_id)
    assert row.health_score == 0.0
    assert row.consecutive_errors == 11

    await _record(context, {instance_id: Outcomes(delivered=3)}, NOON_UTC)
    row = await _load(context, instance_id)
    assert row.health_score == 1.5
    assert row.consecutive_errors == 0


@pytest.mark.parametrize(
    ("timezone", "before", "after"),
    [
        ("America/Sao_Paulo", SP_BEFORE_MIDNIGHT, SP_AFTER_MIDNIGHT),
        ("Asia/Tokyo", TOKYO_BEFORE_MIDNIGHT, TOKYO_AFTER_MIDNIGHT),
    ],
)
async def test_outcomes_after_local_midnight_start_the_counters_again(
    context: EngineContext, timezone: str, before: datetime, after: datetime
) -> None:
    tenant_id = await create_tenant(context)
    instance_id = await _bind(context, tenant_id, "sim-midnight", timezone)

    await _record(context, {instance_id: Outcomes(sent=6, delivered=4, read=2, failed=3)}, before)
    await _record(context, {instance_id: Outcomes(sent=1)}, before)
    row = await _load(context, instance_id)
    assert _counters(row) == (7, 4, 2, 3)
    assert row.counters_date == local_date(timezone, before)
    score = row.health_score
    assert score == 100.0 + 2.0 + 2.0 - 30.0

    await _record(context, {instance_id: Outcomes(sent=2, failed=1)}, after)
    row = await _load(context, instance_id)
    assert _counters(row) == (2, 0, 0, 1)
    assert row.counters_date == local_date(timezone, after) != local_date(timezone, before)
    # Score and error run carry over the night.
    assert row.health_score == score - 10.0
    assert row.consecutive_errors == 1
    assert HealthView.of(row, after) == HealthView(score - 10.0, 2, 0, 0, 1, 1)

    # Still the same local day a moment later: counters keep adding.
    await _record(context, {instance_id: Outcomes(delivered=2)}, after)
    assert _counters(await _load(context, instance_id)) == (2, 2, 0, 1)


async def test_record_outcomes_per_instance_skips_empty_and_unknown(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    first = await _bind(context, tenant_id, "sim-one", "America/Sao_Paulo")
    second = await _bind(context, tenant_id, "sim-two", "Asia/Tokyo")
    untouched = await _bind(context, tenant_id, "sim-three", "America/Sao_Paulo")

    await _record(
        context,
        {
            first: Outcomes(sent=3, delivered=1),
            second: Outcomes(failed=2),
            untouched: Outcomes(),
            "no-such-instance": Outcomes(sent=1),
        },
        NOON_UTC,
    )
    one, two, three = [await _load(context, i) for i in (first, second, untouched)]
    assert (_counters(one), one.health_score, one.consecutive_errors) == ((3, 1, 0, 0), 100.0, 0)
    assert one.counters_date == JUNE_10
    assert (_counters(two), two.health_score, two.consecutive_errors) == ((0, 0, 0, 2), 80.0, 2)
    # 12:00 UTC is 21:00 on 10 June in Tokyo.
    assert two.counters_date == JUNE_10
    assert two.last_success_at is None
    assert (_counters(three), three.health_score, three.counters_date) == ((0, 0, 0, 0), 100.0, None)
    assert three.last_health_update is None

    # Nothing to apply: nothing happens.
    await _record(context, {}, NOON_UTC)
    await _record(context, {first: Outcomes()}, NOON_UTC)
    assert _counters(await _load(context, first)) == (3, 1, 0, 0)


async def test_health_updates_keep_the_webhooks_instance_cache(
    context: EngineContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant_id = await create_tenant(context)
    number = await _bind(context, tenant_id, "sim-cached", "America/Sao_Paulo")
    monkeypatch.setattr(InstanceResolver, "FINGERPRINT_INTERVAL", 0.0)  # look at every lookup
    resolver = InstanceResolver.for_context(context)
    cached = await resolver.by_id(number)
    before = (await _load(context, number)).updated_at

    await _record(context, {number: Outcomes(sent=5, delivered=2)}, NOON_UTC)

    assert (await _load(context, number)).updated_at == before
    assert await resolver.by_id(number) is cached
    # A change to the number itself still reaches the cache.
    async with context.sessions() as session, session.begin():
        await set_instance_status(session, tenant_id, number, InstanceStatus.PAUSED)
    assert await resolver.by_id(number) is not cached
