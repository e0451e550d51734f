"""How fast a number may send campaign messages: interval, daily limit, warm-up, send window.

Defaults follow the provider's risk. The unofficial gateways (Evolution, WuzAPI) get a human pace:
a random 5 to 30 s gap per number, at most 8 messages a minute and 200 an hour, at most 3
identical texts an hour, "typing..." before each message, and a warm-up that restarts after 72 h
idle. The official APIs (Meta, Twilio) and the simulator go as fast as the sender's rate limits
allow (Meta's 80/s per number and pair limit live there). A campaign or one of its numbers may
override each default; zero intervals ("as fast as allowed") also lift the gateway caps, unless
the campaign or the number sets them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from messaging_whatsapp.campaigns.models import Campaign, CampaignInstance
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.base import GATEWAYS, ProviderName

GATEWAY_INTERVAL_S = (5.0, 30.0)
GATEWAY_PER_MINUTE = 8
GATEWAY_PER_HOUR = 200
GATEWAY_IDENTICAL_PER_HOUR = 3
# A gateway number left idle this long warms up again from the first day's cap.
WARMUP_IDLE_RESTART = timedelta(hours=72)


@dataclass(frozen=True, slots=True)
class WarmupSchedule:
    """Messages a new number may send on its first day, multiplied by `growth` each day after."""

    first_day: int = 20
    growth: float = 2.0

    def cap(self, started_at: datetime, now: datetime, limit: int) -> int:
        """Today's cap for a number warming up since `started_at`, never above `limit`."""
        days = max((now - started_at).days, 0)
        # Past ~30 days any schedule has reached the limit; stop before the power overflows.
        cap = self.first_day * self.growth ** min(days, 30)
        return int(min(cap, limit))


@dataclass(frozen=True, slots=True)
class Pace:
    """The effective pacing of one number in one campaign (a cap of None: none)."""

    interval_min_s: float
    interval_max_s: float
    daily_limit: int
    warmup: bool
    max_per_minute: int | None = None
    max_per_hour: int | None = None
    max_identical_per_hour: int | None = None
    typing: bool = False
    # The campaign's own daily limit for the number (the number's override, else the campaign's):
    # it counts this campaign's sends only, where `daily_limit` also caps it at the number's own.
    campaign_daily_limit: int | None = None

    @property
    def paced(self) -> bool:
        """Whether messages are spaced out (one per pass) rather than sent as fast as allowed."""
        return self.interval_max_s > 0

    @property
    def capped(self) -> bool:
        """Whether the number's sends of the last minute or hour limit it."""
        return self.max_per_minute is not None or self.max_per_hour is not None

    def next_send_at(self, now: datetime, rng: random.Random) -> datetime | None:
        """When the number may send its next campaign message (None: right away)."""
        if not self.paced:
            return None
        return now + timedelta(seconds=rng.uniform(self.interval_min_s, self.interval_max_s))


def pace_for(campaign: Campaign, link: CampaignInstance, instance: WhatsAppInstance) -> Pace:
    """The number's own override, else the campaign's setting, else the provider's default."""
    gateway = ProviderName(instance.provider) in GATEWAYS
    default_min, default_max = GATEWAY_INTERVAL_S if gateway else (0.0, 0.0)
    low = _first(link.interval_min_s, campaign.interval_min_s, default_min)
    high = max(_first(link.interval_max_s, campaign.interval_max_s, default_max), low)
    campaign_limit = _first(link.daily_limit, campaign.daily_limit)
    limit = _first(campaign_limit, instance.daily_limit)
    # A human pace on a gateway comes with its caps; "as fast as allowed" (zero gaps) does not.
    human = gateway and high > 0
    per_minute, per_hour, identical = (
        (GATEWAY_PER_MINUTE, GATEWAY_PER_HOUR, GATEWAY_IDENTICAL_PER_HOUR) if human else (None, None, None)
    )
    return Pace(
        interval_min_s=low,
        interval_max_s=high,
        daily_limit=int(min(limit, instance.daily_limit)),
        warmup=_first(link.warmup, campaign.warmup),
        max_per_minute=_first(link.max_per_minute, campaign.max_per_minute, per_minute),
        max_per_hour=_first(link.max_per_hour, campaign.max_per_hour, per_hour),
        max_identical_per_hour=_first(
            link.max_identical_per_hour, campaign.max_identical_per_hour, identical
        ),
        typing=_first(link.typing, campaign.typing, gateway),
        campaign_daily_limit=campaign_limit,
    )


def _first(*values: Any) -> Any:
    """The first value that is set (the last one may be None: then nothing is)."""
    return next((value for value in values if value is not None), None)


def warmup_start(instance: WhatsAppInstance, now: datetime) -> datetime:
    """When the number's warm-up began: now for a new number or an idle gateway number."""
    started = instance.warmup_started_at
    if started is None:
        return now
    idle_since = instance.last_success_at or started
    if ProviderName(instance.provider) in GATEWAYS and now - idle_since > WARMUP_IDLE_RESTART:
        return now
    return started


def zone(timezone: str) -> ZoneInfo:
    """The time zone, UTC when the name is unknown."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def in_send_window(window: dict[str, Any] | None, timezone: str, now: datetime) -> bool:
    """Whether `now` is inside the window (its hours on its weekdays, in the tenant's zone).

    A window across midnight (22:00 to 06:00) belongs to the weekday it starts on.
    """
    if not window:
        return True
    local = now.astimezone(zone(timezone))
    start, end = time.fromisoformat(window["start"]), time.fromisoformat(window["end"])
    weekdays = set(window.get("weekdays") or range(7))
    clock = local.time()
    if start < end:
        return local.weekday() in weekdays and start <= clock < end
    if clock >= start:
        return local.weekday() in weekdays
    if clock < end:
        return (local.weekday() - 1) % 7 in weekdays
    return False
