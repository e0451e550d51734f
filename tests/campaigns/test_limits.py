"""No silent limit, on both databases: a campaign's daily limit counts its own sends; each limit
that holds contacts back is logged once an hour per number with its figures, and the campaign
says why it waits (dispatcher only, with an injected clock: what it hands out stays queued)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update

from messaging_whatsapp.campaigns.dispatcher import Dispatcher
from messaging_whatsapp.campaigns.models import Campaign, CampaignLog
from messaging_whatsapp.campaigns.pacing import WarmupSchedule
from messaging_whatsapp.campaigns.schemas import CampaignItem
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.instances.models import WhatsAppInstance
from tests.campaigns.test_dispatcher import MONDAY_10, Clock, _setup

UNPACED = {"interval_min_s": 0, "interval_max_s": 0, "warmup": False}


async def _item(context: EngineContext, campaign_id: str) -> CampaignItem:
    async with context.sessions() as session:
        campaign = await session.get(Campaign, campaign_id)
        assert campaign is not None
        return CampaignItem.of(campaign)


async def _logs(context: EngineContext, campaign_id: str, log_type: str) -> list[CampaignLog]:
    async with context.sessions() as session:
        query = select(CampaignLog).where(
            CampaignLog.campaign_id == campaign_id, CampaignLog.log_type == log_type
        )
        return list(await session.scalars(query.order_by(CampaignLog.created_at)))


async def _sent_today(context: EngineContext, instance_id: str, count: int, **more: Any) -> None:
    """The number already sent `count` messages today (one-to-one, outside the campaign)."""
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id == instance_id)
            .values(msgs_sent_today=count, counters_date=date(2026, 11, 23), **more)
        )


async def test_a_campaigns_daily_limit_counts_its_own_sends_and_says_so(context: EngineContext) -> None:
    _, campaign_id, numbers = await _setup(
        context, numbers=1, contacts=6, settings={**UNPACED, "daily_limit": 3}
    )
    await _sent_today(context, numbers[0], 8)
    clock = Clock(MONDAY_10)
    dispatcher = Dispatcher(context, clock=clock)
    assert (await dispatcher.dispatch(campaign_id)).handed == 3
    assert (await _item(context, campaign_id)).waiting_reason is None
    for _ in range(3):
        assert (await dispatcher.dispatch(campaign_id)).handed == 0

    waiting = (await _item(context, campaign_id)).waiting_reason
    assert waiting is not None
    assert waiting.code == "campaign_daily_limit"
    assert "daily limit of 3" in waiting.message
    [reached] = await _logs(context, campaign_id, "limit_reached")
    assert reached.instance_id == numbers[0]
    # Midnight in São Paulo, the tenant's zone.
    assert reached.details == {
        "kind": "campaign_daily_limit",
        "limit": 3,
        "used": 3,
        "frees_at": "2026-11-24T00:00:00-03:00",
    }
    assert len(await _logs(context, campaign_id, "instance_selected")) == 1

    clock.now += timedelta(hours=1)
    assert (await dispatcher.dispatch(campaign_id)).handed == 0
    assert len(await _logs(context, campaign_id, "limit_reached")) == 2  # once an hour
    clock.now += timedelta(days=1)
    assert (await dispatcher.dispatch(campaign_id)).handed == 3
    assert (await _item(context, campaign_id)).waiting_reason is None
    assert len(await _logs(context, campaign_id, "instance_selected")) == 1  # once per number


async def test_the_numbers_daily_limit_and_the_warmup_cap_are_logged(context: EngineContext) -> None:
    _, limited, numbers = await _setup(context, numbers=1, contacts=3, settings=UNPACED)
    await _sent_today(context, numbers[0], 5, daily_limit=5)
    assert (await Dispatcher(context, clock=Clock(MONDAY_10)).dispatch(limited)).handed == 0
    waiting = (await _item(context, limited)).waiting_reason
    assert waiting is not None
    assert waiting.code == "number_daily_limit"
    [reached] = await _logs(context, limited, "limit_reached")
    assert (reached.details or {})["limit"] == 5

    _, warming, _ = await _setup(context, numbers=1, contacts=5, settings={**UNPACED, "warmup": True})
    dispatcher = Dispatcher(context, clock=Clock(MONDAY_10), warmup=WarmupSchedule(first_day=2, growth=2))
    assert (await dispatcher.dispatch(warming)).handed == 2
    assert (await dispatcher.dispatch(warming)).handed == 0
    waiting = (await _item(context, warming)).waiting_reason
    assert waiting is not None
    assert waiting.code == "warmup"
    assert Counter((log.details or {})["kind"] for log in await _logs(context, warming, "limit_reached")) == {
        "warmup": 1
    }


async def test_outside_its_send_window_a_campaign_says_when_it_opens(context: EngineContext) -> None:
    window = {"start": "08:00", "end": "18:00", "weekdays": [0, 1, 2, 3, 4]}
    _, campaign_id, _ = await _setup(
        context, numbers=1, contacts=2, settings={**UNPACED, "send_window": window}
    )
    saturday = Dispatcher(context, clock=Clock(MONDAY_10 + timedelta(days=5)))
    for _ in range(2):
        assert (await saturday.dispatch(campaign_id)).handed == 0
    waiting = (await _item(context, campaign_id)).waiting_reason
    assert waiting is not None
    assert waiting.code == "send_window"
    assert "opens at 2026-11-30T08:00:00-03:00" in waiting.message
    [reached] = await _logs(context, campaign_id, "limit_reached")
    assert reached.instance_id is None
    assert (reached.details or {})["frees_at"] == "2026-11-30T08:00:00-03:00"
