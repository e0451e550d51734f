"""What a campaign's numbers sent recently, for the limits that protect them from bans.

- Numbers with caps (by default the unofficial gateways at a human pace, campaigns/pacing.py):
  messages a minute and an hour, and identical texts an hour (vary the variations).
- Official APIs (Meta, Twilio): the business portfolio's 24-hour limit of unique people reached
  (its messaging tier), shared by every number of the portfolio, so rotating numbers does not
  raise it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns.models import CampaignContact
from messaging_whatsapp.campaigns.pacing import Pace
from messaging_whatsapp.db import one_of
from messaging_whatsapp.inbox.models import Direction, Message
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.base import ProviderName

TIERED = frozenset({ProviderName.META, ProviderName.TWILIO})


def portfolio_of(instance: WhatsAppInstance) -> str:
    """The business portfolio a number counts against (the number itself when unknown)."""
    return instance.waba_id or instance.id


@dataclass
class RecentUsage:
    """Sends of the last minute and hour per gateway number, their texts, and unique people reached
    in the last 24 hours per portfolio."""

    last_minute: Counter[str] = field(default_factory=Counter)
    last_hour: Counter[str] = field(default_factory=Counter)
    texts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    reached: Counter[str] = field(default_factory=Counter)

    def room(self, instance_id: str, pace: Pace) -> int:
        """How many more messages a capped number may send right now."""
        rooms = [
            cap - sent
            for cap, sent in (
                (pace.max_per_minute, self.last_minute[instance_id]),
                (pace.max_per_hour, self.last_hour[instance_id]),
            )
            if cap is not None
        ]
        return max(min(rooms), 0) if rooms else 1 << 30

    def may_repeat(self, instance_id: str, text: str, limit: int) -> bool:
        """Whether the number may send this exact text once more this hour (and count it)."""
        if self.texts[instance_id][text] >= limit:
            return False
        self.texts[instance_id][text] += 1
        return True


async def recent_usage(
    session: AsyncSession, instances: list[WhatsAppInstance], capped: list[str], now: datetime
) -> RecentUsage:
    """Read what the limits need, in at most two queries: the last hour of the `capped` numbers
    (caps a minute or an hour, or on identical texts), the last day of the tiered portfolios."""
    usage = RecentUsage()
    if capped:
        rows = await session.execute(
            select(Message.instance_id, Message.content, Message.created_at).where(
                one_of(session, Message.instance_id, capped),
                Message.direction == Direction.OUTBOUND.value,
                Message.created_at >= now - timedelta(hours=1),
            )
        )
        for instance_id, content, created_at in rows:
            usage.last_hour[instance_id] += 1
            if created_at >= now - timedelta(minutes=1):
                usage.last_minute[instance_id] += 1
            if content:
                usage.texts[instance_id][content] += 1
    tiered = [i for i in instances if ProviderName(i.provider) in TIERED and i.messaging_tier is not None]
    if tiered:
        portfolios = {portfolio_of(i) for i in tiered}
        key = func.coalesce(WhatsAppInstance.waba_id, WhatsAppInstance.id)
        reached = await session.execute(
            select(key, func.count(func.distinct(Message.contact_id)))
            .join(WhatsAppInstance, WhatsAppInstance.id == Message.instance_id)
            .where(
                key.in_(portfolios),
                Message.direction == Direction.OUTBOUND.value,
                Message.created_at >= now - timedelta(hours=24),
            )
            .group_by(key)
        )
        for portfolio, count in reached:
            usage.reached[portfolio] = int(count)
    return usage


async def campaign_sends_since(session: AsyncSession, campaign_id: str, since: datetime) -> dict[str, int]:
    """The campaign's messages handed to each of its numbers since `since` (its daily limit counts
    these only, not what the number sent for others)."""
    c = CampaignContact
    counted = await session.execute(
        select(c.instance_id, func.count())
        .where(c.campaign_id == campaign_id, c.instance_id.is_not(None), c.sending_at >= since)
        .group_by(c.instance_id)
    )
    return {str(instance_id): int(count) for instance_id, count in counted}


def portfolio_budgets(instances: list[WhatsAppInstance], usage: RecentUsage) -> dict[str, int]:
    """New people each tiered portfolio may still reach today (the lowest tier its numbers state)."""
    tiers: dict[str, int] = {}
    for instance in instances:
        if ProviderName(instance.provider) in TIERED and instance.messaging_tier is not None:
            key = portfolio_of(instance)
            tiers[key] = min(tiers.get(key, instance.messaging_tier), instance.messaging_tier)
    return {key: max(tier - usage.reached[key], 0) for key, tier in tiers.items()}
