"""No silent limit: what holds a running campaign back is logged and shown.

Each limit that holds contacts back writes one `limit_reached` log per limit and number per hour,
with its figures (limit, used, when it frees); a running campaign that sends nothing carries a
waiting reason (a code and a sentence) in its API item, cleared once it sends again.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.capacity import Hold, LimitKind
from messaging_whatsapp.campaigns.models import Campaign, CampaignLog, LogType
from messaging_whatsapp.campaigns.pacing import zone

# One `limit_reached` per limit and number this often.
LOG_EVERY = timedelta(hours=1)
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MAX_WAITING_MESSAGE = 500


def window_hold(window: dict[str, Any], timezone: str, now: datetime) -> Hold:
    """The send window holding the whole campaign, with when it next opens."""
    opens = next_opening(window, timezone, now)
    days = ", ".join(WEEKDAY_NAMES[day] for day in sorted(window.get("weekdays") or range(7)))
    message = f"outside the send window {window['start']}-{window['end']} ({days}, {timezone})"
    if opens is not None:
        message += f"; opens at {opens.isoformat()}"
    return Hold(LimitKind.SEND_WINDOW, None, None, None, opens, message)


def next_opening(window: dict[str, Any], timezone: str, now: datetime) -> datetime | None:
    """When the window next opens after `now` (its start on one of its weekdays)."""
    local = now.astimezone(zone(timezone))
    start = time.fromisoformat(window["start"])
    weekdays = set(window.get("weekdays") or range(7))
    for offset in range(8):
        day: date = local.date() + timedelta(days=offset)
        opening = datetime.combine(day, start, tzinfo=local.tzinfo)
        if opening > local and day.weekday() in weekdays:
            return opening
    return None


async def log_holds(session: AsyncSession, campaign: Campaign, holds: list[Hold], now: datetime) -> None:
    """A `limit_reached` for each hold not logged for its number in the last hour."""
    if not holds:
        return
    recent = await session.execute(
        select(CampaignLog.instance_id, CampaignLog.details).where(
            CampaignLog.campaign_id == campaign.id,
            CampaignLog.log_type == LogType.LIMIT_REACHED.value,
            CampaignLog.created_at > now - LOG_EVERY,
        )
    )
    logged = {(instance_id, (details or {}).get("kind")) for instance_id, details in recent}
    new_logs = []
    for hold in holds:
        key = (hold.instance_id, hold.kind.value)
        if key in logged:
            continue
        logged.add(key)
        new_logs.append(logs.log_limit_reached(campaign, hold, now))
    await logs.add_logs(session, new_logs)


def waiting_reason(holds: list[Hold], idle: list[tuple[str, str]]) -> tuple[str, str] | None:
    """Why a campaign with contacts left sends nothing: the first limit's code (or the numbers'
    state), and every distinct reason in one sentence; None when nothing holds it (its numbers
    wait their interval or for the answers to what is on its way: that is sending)."""
    reasons: list[tuple[str, str]] = [(hold.kind.value, hold.message) for hold in holds] + idle
    if not reasons:
        return None
    sentences = list(dict.fromkeys(message for _, message in reasons))
    return reasons[0][0], "; ".join(sentences)[:MAX_WAITING_MESSAGE]


def set_waiting(campaign: Campaign, reason: tuple[str, str] | None, now: datetime) -> None:
    """Record why the campaign waits (None: it sends); a change is published as progress."""
    code, message = reason if reason is not None else (None, None)
    if (campaign.waiting_reason, campaign.waiting_message) != (code, message):
        campaign.waiting_reason, campaign.waiting_message = code, message
        campaign.updated_at = now
