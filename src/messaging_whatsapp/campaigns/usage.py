"""What a campaign's numbers sent recently, for the limits that protect them from bans.

- Unofficial gateways (Evolution, WuzAPI) at a human pace: at most 8 messages a minute and 200 an
  hour per number, and no more than 3 identical texts an hour (vary the variations).
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

from messaging_whatsapp.campaigns.pacing import GATEWAYS
from messaging_whatsapp.inbox.models import Direction, Message
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.base import ProviderName

GATEWAY_PER_MINUTE = 8
GATEWAY_PER_HOUR = 200
IDENTICAL_TEXTS_PER_HOUR = 3
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

    def gateway_room(self, instance_id: str) -> int:
        """How many more messages a gateway number may send right now."""
        return max(
            min(
                GATEWAY_PER_MINUTE - self.last_minute[instance_id],
                GATEWAY_PER_HOUR - self.last_hour[instance_id],
            ),
            0,
        )

    def may_repeat(self, instance_id: str, text: str) -> bool:
        """Whether the number may send this exact text once more this hour (and count it)."""
        if self.texts[instance_id][text] >= IDENTICAL_TEXTS_PER_HOUR:
            return False
        self.texts[instance_id][text] += 1
        return True


async def recent_usage(
    session: AsyncSession, instances: list[WhatsAppInstance], now: datetime
) -> RecentUsage:
    """Read what the limits need, in at most two queries."""
    usage = RecentUsage()
    gateways = [i.id for i in instances if ProviderName(i.provider) in GATEWAYS]
    if gateways:
        rows = await session.execute(
            select(Message.instance_id, Message.content, Message.created_at).where(
                Message.instance_id.in_(gateways),
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


def portfolio_budgets(instances: list[WhatsAppInstance], usage: RecentUsage) -> dict[str, int]:
    """New people each tiered portfolio may still reach today (the lowest tier its numbers state)."""
    tiers: dict[str, int] = {}
    for instance in instances:
        if ProviderName(instance.provider) in TIERED and instance.messaging_tier is not None:
            key = portfolio_of(instance)
            tiers[key] = min(tiers.get(key, instance.messaging_tier), instance.messaging_tier)
    return {key: max(tier - usage.reached[key], 0) for key, tier in tiers.items()}
