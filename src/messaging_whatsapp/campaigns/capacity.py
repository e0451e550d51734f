"""How much each number of a campaign may send in one dispatcher pass, and what holds it back.

A number sends nothing while it is paused for the campaign, unavailable (disconnected, inactive,
unhealthy), or waiting its interval. Otherwise its room is the smallest of: its own daily limit and
the warm-up cap (counting everything it sent today and what is still on its way), the campaign's
daily limit (counting this campaign's sends through it today only), the gateway caps a minute and
an hour, and its window of unresolved sends. Each limit that leaves no room is a Hold, with its
figures, for the logs and the campaign's waiting reason (campaigns/waiting.py).

The window of unresolved sends keeps an unpaced number from firing a whole batch before the first
failure comes back: a number not yet proven (no success yet, or failures since its last one) has
at most UNPROVEN_WINDOW messages on their way, a proven one PROVEN_WINDOW.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from messaging_whatsapp.campaigns.models import CampaignContact, CampaignInstance
from messaging_whatsapp.campaigns.pacing import Pace, WarmupSchedule, warmup_start, zone
from messaging_whatsapp.campaigns.rotation import Slot
from messaging_whatsapp.campaigns.usage import RecentUsage, portfolio_of
from messaging_whatsapp.instances.health import HealthView, unavailable_reason
from messaging_whatsapp.instances.models import WhatsAppInstance

# Contacts one pass may take from one campaign (numbers sending as fast as allowed).
BATCH_SIZE = 500
UNPROVEN_WINDOW = 3
PROVEN_WINDOW = 100


class LimitKind(enum.StrEnum):
    """The limits that hold a campaign's contacts back (each logged as `limit_reached`)."""

    CAMPAIGN_DAILY = "campaign_daily_limit"
    NUMBER_DAILY = "number_daily_limit"
    WARMUP = "warmup"
    PORTFOLIO = "portfolio_limit"
    SEND_WINDOW = "send_window"
    PER_MINUTE = "per_minute_cap"
    PER_HOUR = "per_hour_cap"
    IDENTICAL = "identical_text_cap"


@dataclass(frozen=True, slots=True)
class Hold:
    """A limit that holds contacts back: which, on which number (None: the whole campaign), its
    figures, when it frees (at the latest), and a sentence for people."""

    kind: LimitKind
    instance_id: str | None
    limit: int | None
    used: int | None
    frees_at: datetime | None
    message: str


@dataclass
class Capacity:
    """The numbers that may send now with their room, the limits holding the others, and why the
    rest send nothing (paused, unavailable) as (code, sentence)."""

    slots: list[Slot]
    paces: dict[str, Pace]
    holds: list[Hold]
    idle: list[tuple[str, str]]
    # Some number could send but has its whole window of unresolved messages on their way.
    window_full: bool = False


def next_midnight(timezone: str, now: datetime) -> datetime:
    """The next local midnight in `timezone`, as an aware datetime."""
    local = now.astimezone(zone(timezone))
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=local.tzinfo)


def unresolved_window(instance: WhatsAppInstance) -> int:
    """How many of the number's messages may be on their way at once."""
    proven = instance.last_success_at is not None and instance.consecutive_errors == 0
    return PROVEN_WINDOW if proven else UNPROVEN_WINDOW


def capacities(
    links: list[tuple[CampaignInstance, WhatsAppInstance]],
    all_paces: dict[str, Pace],
    in_flight: dict[str, int],
    campaign_today: dict[str, int],
    usage: RecentUsage,
    now: datetime,
    warmup: WarmupSchedule,
    tenant_zone: str,
) -> Capacity:
    """Each number's room in this pass. Today's counts include messages handed out but not sent
    yet, so a limit holds while the senders catch up."""
    found = Capacity([], {}, [], [])
    for link, instance in links:
        if link.paused:
            paused = f"{instance.display_number} is paused: {link.paused_reason}"
            found.idle.append(("numbers_paused", paused))
            continue
        health = HealthView.of(instance, now)
        flying = in_flight.get(instance.id, 0)
        number_used = health.sent_today + flying
        reason = unavailable_reason(instance, now)
        if reason is not None and health.sent_today < instance.daily_limit:
            found.idle.append(("numbers_unavailable", f"{instance.display_number}: {reason}"))
            continue
        if link.next_send_at is not None and link.next_send_at > now:
            continue
        pace = all_paces[instance.id]
        rooms = _daily_rooms(instance, pace, number_used, campaign_today, now, warmup, tenant_zone)
        remaining = min(room for room, _ in rooms)
        found.holds += [hold for room, hold in rooms if room <= 0 and hold is not None]
        if remaining <= 0:
            continue
        capacity = 1 if pace.paced else BATCH_SIZE
        if pace.capped:
            room, holds = _cap_room(instance, pace, usage, now)
            capacity = min(capacity, room)
            found.holds += holds
        window_room = max(unresolved_window(instance) - flying, 0)
        if capacity > 0 and window_room == 0:
            found.window_full = True
        capacity = min(capacity, window_room)
        if capacity <= 0:
            continue
        found.paces[instance.id] = pace
        found.slots.append(
            Slot(
                instance_id=instance.id,
                health_score=health.score,
                sent_today=number_used,
                capacity=capacity,
                daily_remaining=remaining,
                daily_limit=max(number_used + remaining, 1),
            )
        )
    return found


def _daily_rooms(
    instance: WhatsAppInstance,
    pace: Pace,
    number_used: int,
    campaign_today: dict[str, int],
    now: datetime,
    warmup: WarmupSchedule,
    tenant_zone: str,
) -> list[tuple[int, Hold | None]]:
    """Room left today under each daily limit, with the hold it makes when none is left."""
    number = instance.display_number
    midnight = next_midnight(instance.timezone, now)
    rooms: list[tuple[int, Hold | None]] = [
        (
            instance.daily_limit - number_used,
            Hold(
                LimitKind.NUMBER_DAILY,
                instance.id,
                instance.daily_limit,
                number_used,
                midnight,
                f"{number} reached its daily limit of {instance.daily_limit} messages "
                f"({number_used} today); frees at {midnight.isoformat()}",
            ),
        )
    ]
    if pace.warmup:
        started = warmup_start(instance, now)
        cap = warmup.cap(started, now, instance.daily_limit)
        next_step = started + timedelta(days=max((now - started).days, 0) + 1)
        message = (
            f"{number} is warming up: {cap} messages today ({number_used} sent); "
            f"more from {next_step.isoformat()}"
        )
        rooms.append(
            (cap - number_used, Hold(LimitKind.WARMUP, instance.id, cap, number_used, next_step, message))
        )
    limit = pace.campaign_daily_limit
    if limit is not None:
        used = campaign_today.get(instance.id, 0)
        frees = next_midnight(tenant_zone, now)
        message = (
            f"the campaign's daily limit of {limit} messages through {number} is reached "
            f"({used} today); frees at {frees.isoformat()}"
        )
        rooms.append((limit - used, Hold(LimitKind.CAMPAIGN_DAILY, instance.id, limit, used, frees, message)))
    return rooms


def _cap_room(
    instance: WhatsAppInstance, pace: Pace, usage: RecentUsage, now: datetime
) -> tuple[int, list[Hold]]:
    """Room under the caps a minute and an hour, and a hold for each cap with none left."""
    room = usage.room(instance.id, pace)
    holds = []
    minute, hour = usage.last_minute[instance.id], usage.last_hour[instance.id]
    for kind, cap, used, span, word in (
        (LimitKind.PER_MINUTE, pace.max_per_minute, minute, timedelta(minutes=1), "minute"),
        (LimitKind.PER_HOUR, pace.max_per_hour, hour, timedelta(hours=1), "hour"),
    ):
        if cap is not None and used >= cap:
            message = f"{instance.display_number} sent {used} messages in the last {word} (cap {cap})"
            holds.append(Hold(kind, instance.id, cap, used, now + span, f"{message}; frees within a {word}"))
    return room, holds


def plan_holds(
    pairs: list[tuple[tuple[CampaignContact, str], Slot]],
    refused: list[CampaignContact],
    instances: list[WhatsAppInstance],
    usage: RecentUsage,
    budgets: dict[str, int],
    now: datetime,
) -> list[Hold]:
    """The limits that refused contacts a number had room for: the portfolio's reach of unique
    people in 24 hours, or identical texts an hour (every variation used up)."""
    if not refused:
        return []
    by_id = {instance.id: instance for instance in instances}
    refused_ids = {contact.id for contact in refused}
    holds: dict[tuple[LimitKind, str], Hold] = {}
    for (contact, _), slot in pairs:
        if contact.id not in refused_ids:
            continue
        instance = by_id[slot.instance_id]
        portfolio = portfolio_of(instance)
        if portfolio in budgets and budgets[portfolio] <= 0:
            tier, reached = instance.messaging_tier, usage.reached[portfolio]
            message = (
                f"{instance.display_number}'s business portfolio reached {reached} of its {tier} "
                "unique people in 24 hours; frees within 24 hours"
            )
            hold = Hold(LimitKind.PORTFOLIO, instance.id, tier, reached, now + timedelta(hours=24), message)
        else:
            message = (
                f"{instance.display_number} sent every variation as often as allowed this hour; "
                "frees within an hour"
            )
            hold = Hold(LimitKind.IDENTICAL, instance.id, None, None, now + timedelta(hours=1), message)
        holds.setdefault((hold.kind, instance.id), hold)
    return list(holds.values())
