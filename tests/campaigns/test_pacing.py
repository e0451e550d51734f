"""Pacing rules with an injected clock, in São Paulo (UTC-3), across midnight and a weekend."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from messaging_whatsapp.campaigns.models import Campaign, CampaignInstance
from messaging_whatsapp.campaigns.pacing import WarmupSchedule, in_send_window, pace_for, warmup_start
from messaging_whatsapp.instances.models import WhatsAppInstance

SAO_PAULO = "America/Sao_Paulo"
WORKDAYS = {"start": "08:00", "end": "20:00", "weekdays": [0, 1, 2, 3, 4]}


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    """A UTC time for a São Paulo wall clock in the week of Monday 2026-11-23 (UTC-3)."""
    return datetime(2026, 11, 23 + day, hour, minute, tzinfo=UTC) + timedelta(hours=3)


def test_the_window_follows_the_tenants_clock_and_weekdays() -> None:
    assert not in_send_window(WORKDAYS, SAO_PAULO, _at(0, 7, 59))
    assert in_send_window(WORKDAYS, SAO_PAULO, _at(0, 8, 0))
    assert in_send_window(WORKDAYS, SAO_PAULO, _at(4, 19, 59))
    assert not in_send_window(WORKDAYS, SAO_PAULO, _at(4, 20, 0))
    # 22:00 UTC on Friday is 19:00 in São Paulo: still open there, though UTC says evening.
    assert in_send_window(WORKDAYS, SAO_PAULO, datetime(2026, 11, 27, 22, 0, tzinfo=UTC))
    assert not in_send_window(WORKDAYS, SAO_PAULO, _at(5, 12))  # Saturday
    assert not in_send_window(WORKDAYS, SAO_PAULO, _at(6, 12))  # Sunday
    assert in_send_window(WORKDAYS, SAO_PAULO, _at(7, 9))  # Monday again
    assert in_send_window(None, SAO_PAULO, _at(5, 3))


def test_a_window_across_midnight_belongs_to_the_day_it_starts() -> None:
    nights = {"start": "22:00", "end": "02:00", "weekdays": [4]}  # Friday night
    assert in_send_window(nights, SAO_PAULO, _at(4, 23))
    assert in_send_window(nights, SAO_PAULO, _at(5, 1, 30))  # Saturday 01:30, Friday's night
    assert not in_send_window(nights, SAO_PAULO, _at(5, 23))  # Saturday night
    assert not in_send_window(nights, SAO_PAULO, _at(4, 1))  # Friday 01:30 is Thursday's night


def _instance(provider: str, **fields: object) -> WhatsAppInstance:
    return WhatsAppInstance(provider=provider, daily_limit=1000, timezone=SAO_PAULO, **fields)


def test_defaults_differ_by_provider_and_overrides_win() -> None:
    campaign = Campaign(warmup=True, interval_min_s=None, interval_max_s=None, daily_limit=None)
    link = CampaignInstance(interval_min_s=None, interval_max_s=None, daily_limit=None)
    gateway = pace_for(campaign, link, _instance("evolution"))
    assert (gateway.interval_min_s, gateway.interval_max_s, gateway.daily_limit) == (5.0, 30.0, 1000)
    official = pace_for(campaign, link, _instance("meta"))
    assert (official.interval_min_s, official.interval_max_s, official.paced) == (0.0, 0.0, False)
    campaign.interval_min_s, campaign.interval_max_s, campaign.daily_limit = 1.0, 2.0, 300
    link.interval_max_s, link.daily_limit = 4.0, 5000
    paced = pace_for(campaign, link, _instance("wuzapi"))
    # The number's override beats the campaign; a limit never exceeds the number's own.
    assert (paced.interval_min_s, paced.interval_max_s, paced.daily_limit) == (1.0, 4.0, 1000)
    gap = paced.next_send_at(_at(0, 9), random.Random(1))
    assert gap is not None
    assert timedelta(seconds=1) <= gap - _at(0, 9) <= timedelta(seconds=4)


def test_gateway_caps_and_typing_are_defaults_a_campaign_or_a_number_can_change() -> None:
    campaign = Campaign(warmup=True)
    link = CampaignInstance()
    gateway = pace_for(campaign, link, _instance("evolution"))
    assert (gateway.max_per_minute, gateway.max_per_hour, gateway.max_identical_per_hour) == (8, 200, 3)
    assert gateway.typing
    assert gateway.warmup
    official = pace_for(campaign, link, _instance("meta"))
    assert (official.max_per_minute, official.max_per_hour, official.max_identical_per_hour) == (None,) * 3
    assert not official.typing
    assert not official.capped
    # "As fast as allowed" on a gateway lifts the default caps; the typing courtesy stays.
    campaign.interval_min_s = campaign.interval_max_s = 0.0
    fast = pace_for(campaign, link, _instance("wuzapi"))
    assert (fast.max_per_minute, fast.max_per_hour, fast.max_identical_per_hour, fast.typing) == (
        None,
        None,
        None,
        True,
    )
    campaign.max_per_minute, campaign.max_identical_per_hour, campaign.typing = 12, 5, False
    link.max_per_minute, link.warmup = 4, False
    chosen = pace_for(campaign, link, _instance("evolution"))
    # The number's own setting beats the campaign's, which beats the provider's default.
    assert (chosen.max_per_minute, chosen.max_per_hour, chosen.max_identical_per_hour) == (4, None, 5)
    assert (chosen.typing, chosen.warmup, chosen.capped) == (False, False, True)


def test_warmup_doubles_daily_and_restarts_after_three_idle_days_on_gateways() -> None:
    schedule = WarmupSchedule(first_day=20, growth=2.0)
    start = _at(0, 9)
    assert [schedule.cap(start, start + timedelta(days=d, hours=1), 1000) for d in range(8)] == [
        20,
        40,
        80,
        160,
        320,
        640,
        1000,
        1000,
    ]
    now = _at(6, 9)
    idle = _instance("evolution", warmup_started_at=start, last_success_at=_at(2, 8))
    assert warmup_start(idle, now) == now
    busy = _instance("evolution", warmup_started_at=start, last_success_at=_at(5, 8))
    assert warmup_start(busy, now) == start
    official = _instance("meta", warmup_started_at=start, last_success_at=_at(0, 10))
    assert warmup_start(official, now) == start
    assert warmup_start(_instance("meta"), now) == now
