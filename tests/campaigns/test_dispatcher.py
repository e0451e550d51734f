"""The dispatcher's rules with an injected clock, on both databases (no sender running: what it
hands out stays queued, which is what limits must count)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.campaigns import lifecycle, progress, queries, service
from messaging_whatsapp.campaigns.dispatcher import PROGRESS_INTERVAL, Dispatcher
from messaging_whatsapp.campaigns.handout import render
from messaging_whatsapp.campaigns.lifecycle import Action
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignInstance,
    CampaignLog,
    CampaignStatus,
)
from messaging_whatsapp.campaigns.pacing import WarmupSchedule
from messaging_whatsapp.campaigns.schemas import CampaignCreate, CampaignUpdate
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.inbox.models import Message
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.events import DeliveryStatus, StatusError, StatusUpdate
from messaging_whatsapp.worker.ingest import apply_entries
from tests.helpers import approved_template, bind, create_tenant

# Monday 2026-11-23 10:00 in São Paulo.
MONDAY_10 = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _setup(
    context: EngineContext,
    *,
    numbers: int,
    contacts: int,
    settings: dict[str, object],
    provider: str = "simulator",
) -> tuple[str, str, list[str]]:
    tenant_id = await create_tenant(context)
    instance_ids = []
    for index in range(numbers):
        options: dict[str, object] = {"provider": provider, "display_number": f"+55114002100{index}"}
        if provider == "evolution":
            options |= {"instance_name": f"evo-{index}", "api_url": "http://127.0.0.1:9", "api_key": "k"}
        else:
            options["instance_name"] = f"sim-{tenant_id[-6:]}-{index}"
        instance, _ = await bind(context, tenant_id, **options)
        instance_ids.append(instance.id)
    await _proven(context, instance_ids)
    body = {
        "name": "Teste",
        "instance_ids": instance_ids,
        "messages": [{"content": "Oi {{name}}"}],
        "contacts": [{"phone": f"+55119911{index:05d}", "name": f"C{index}"} for index in range(contacts)],
        "settings": settings,
    }
    async with context.sessions() as session, session.begin():
        campaign, _ = await service.create_campaign(
            session, tenant_id, CampaignCreate.model_validate(body), user_id=None, now=MONDAY_10
        )
        await lifecycle.transition(session, tenant_id, campaign.id, Action.START, user_id=None, now=MONDAY_10)
    return tenant_id, campaign.id, instance_ids


async def _proven(context: EngineContext, instance_ids: list[str]) -> None:
    """Numbers that have sent before: a new one has only a few messages on their way at once until
    its first success (campaigns/capacity.py), which no sender here would bring."""
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id.in_(instance_ids))
            .values(last_success_at=MONDAY_10 - timedelta(hours=1))
        )


async def _messages_per_instance(context: EngineContext) -> Counter[str]:
    async with context.sessions() as session:
        return Counter(
            await session.scalars(select(Message.instance_id).where(Message.sender_type == "campaign"))
        )


async def test_each_number_waits_its_interval(context: EngineContext) -> None:
    _, campaign_id, numbers = await _setup(
        context,
        numbers=2,
        contacts=10,
        settings={"interval_min_s": 10, "interval_max_s": 10, "warmup": False},
    )
    clock = Clock(MONDAY_10)
    dispatcher = Dispatcher(context, clock=clock, rng=random.Random(3))
    assert (await dispatcher.dispatch(campaign_id)).handed == 2
    assert (await dispatcher.dispatch(campaign_id)).handed == 0
    clock.now += timedelta(seconds=9)
    assert (await dispatcher.dispatch(campaign_id)).handed == 0
    clock.now += timedelta(seconds=1)
    assert (await dispatcher.dispatch(campaign_id)).handed == 2
    assert await _messages_per_instance(context) == {numbers[0]: 2, numbers[1]: 2}


async def test_gateways_get_a_human_pace_by_default(context: EngineContext) -> None:
    _, campaign_id, _ = await _setup(
        context, numbers=1, contacts=5, settings={"warmup": False}, provider="evolution"
    )
    clock = Clock(MONDAY_10)
    dispatcher = Dispatcher(context, clock=clock, rng=random.Random(1))
    assert (await dispatcher.dispatch(campaign_id)).handed == 1
    clock.now += timedelta(seconds=4)
    assert (await dispatcher.dispatch(campaign_id)).handed == 0
    async with context.sessions() as session:
        link = await session.scalar(
            select(CampaignInstance).where(CampaignInstance.campaign_id == campaign_id)
        )
        assert link is not None
        assert link.next_send_at is not None
        assert timedelta(seconds=5) <= link.next_send_at - MONDAY_10 <= timedelta(seconds=30)


async def test_warmup_caps_a_new_number_and_the_daily_limit_holds(context: EngineContext) -> None:
    _, campaign_id, numbers = await _setup(
        context, numbers=1, contacts=60, settings={"interval_min_s": 0, "interval_max_s": 0, "warmup": True}
    )
    async with context.sessions() as session, session.begin():
        await session.execute(update(WhatsAppInstance).values(warmup_started_at=None))
    clock = Clock(MONDAY_10)
    dispatcher = Dispatcher(context, clock=clock, warmup=WarmupSchedule(first_day=20, growth=2))
    assert (await dispatcher.dispatch(campaign_id)).handed == 20
    # Nothing sent yet (no sender): queued messages count against today's cap.
    assert (await dispatcher.dispatch(campaign_id)).handed == 0
    clock.now += timedelta(days=1)
    async with context.sessions() as session, session.begin():
        await session.execute(update(Message).values(send_state="done", status="sent"))
        await session.execute(update(WhatsAppInstance).values(msgs_sent_today=0, counters_date=None))
    assert (await dispatcher.dispatch(campaign_id)).handed == 40
    assert await _messages_per_instance(context) == {numbers[0]: 60}


async def test_nothing_leaves_outside_the_send_window(context: EngineContext) -> None:
    window = {"start": "08:00", "end": "18:00", "weekdays": [0, 1, 2, 3, 4]}
    _, campaign_id, _ = await _setup(
        context,
        numbers=1,
        contacts=3,
        settings={"interval_min_s": 0, "interval_max_s": 0, "warmup": False, "send_window": window},
    )
    saturday = Clock(MONDAY_10 + timedelta(days=5))
    assert (await Dispatcher(context, clock=saturday).dispatch(campaign_id)).handed == 0
    late_friday = Clock(MONDAY_10 + timedelta(days=4, hours=8, minutes=30))  # 18:30 in São Paulo
    assert (await Dispatcher(context, clock=late_friday).dispatch(campaign_id)).handed == 0
    next_monday = Clock(MONDAY_10 + timedelta(days=7))
    assert (await Dispatcher(context, clock=next_monday).dispatch(campaign_id)).handed == 3


async def test_an_unhealthy_number_is_paused_for_the_campaign_and_the_others_carry_on(
    context: EngineContext,
) -> None:
    _, campaign_id, numbers = await _setup(
        context, numbers=2, contacts=6, settings={"interval_min_s": 0, "interval_max_s": 0, "warmup": False}
    )
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance).where(WhatsAppInstance.id == numbers[0]).values(health_score=42)
        )
    assert (await Dispatcher(context, clock=Clock(MONDAY_10)).dispatch(campaign_id)).handed == 6
    assert await _messages_per_instance(context) == {numbers[1]: 6}
    async with context.sessions() as session:
        types = Counter(
            await session.scalars(select(CampaignLog.log_type).where(CampaignLog.campaign_id == campaign_id))
        )
        link = await session.get(CampaignInstance, (campaign_id, numbers[0]))
    assert (types["health_issue"], types["instance_paused"]) == (1, 1)
    assert link is not None
    assert link.paused


async def test_a_campaign_completes_when_no_contact_is_left(context: EngineContext) -> None:
    _, campaign_id, _ = await _setup(
        context, numbers=1, contacts=2, settings={"interval_min_s": 0, "interval_max_s": 0, "warmup": False}
    )
    dispatcher = Dispatcher(context, clock=Clock(MONDAY_10))
    assert (await dispatcher.dispatch(campaign_id)).handed == 2
    assert not (await dispatcher.dispatch(campaign_id)).completed  # still in flight
    async with context.sessions() as session, session.begin():
        ids = list(await session.scalars(select(Message.id)))
        await session.execute(update(Message).values(status="sent", send_state="done", sent_at=MONDAY_10))
        await progress.follow_messages(session, ids, MONDAY_10)
    assert (await dispatcher.dispatch(campaign_id)).completed
    async with context.sessions() as session:
        campaign = await session.get(Campaign, campaign_id)
        assert campaign is not None
        assert (campaign.status, campaign.sent_count, campaign.pending_count) == ("completed", 2, 0)
        statuses = set(await session.scalars(select(CampaignContact.status)))
        assert statuses == {"sent"}


async def test_a_message_sent_then_failed_before_it_was_followed_counts_as_sent_and_failed(
    context: EngineContext,
) -> None:
    _, campaign_id, _ = await _setup(
        context, numbers=1, contacts=1, settings={"interval_min_s": 0, "interval_max_s": 0, "warmup": False}
    )
    assert (await Dispatcher(context, clock=Clock(MONDAY_10)).dispatch(campaign_id)).handed == 1
    async with context.sessions() as session, session.begin():
        ids = list(await session.scalars(select(Message.id)))
        # The provider took it (sent_at) and its failure came before the contact saw "sent".
        await session.execute(
            update(Message).values(status="failed", send_state="done", sent_at=MONDAY_10, failed_at=MONDAY_10)
        )
        await progress.follow_messages(session, ids, MONDAY_10)
        await progress.follow_messages(session, ids, MONDAY_10)  # followed twice, counted once
    assert await _counters(context, campaign_id) == (1, 0, 0, 1)


async def test_a_disconnection_pauses_the_campaign_and_the_reconnection_resumes_it(
    context: EngineContext,
) -> None:
    tenant_id, campaign_id, numbers = await _setup(
        context, numbers=1, contacts=2, settings={"interval_min_s": 0, "interval_max_s": 0, "warmup": False}
    )
    async with context.sessions() as session, session.begin():
        await progress.pause_for_disconnection(session, numbers[0], "logged out", MONDAY_10)
    async with context.sessions() as session:
        campaign = await session.get(Campaign, campaign_id)
        assert campaign is not None
        assert (campaign.status, campaign.paused_reason) == ("paused", "instance_disconnected")
        critical = await session.scalar(
            select(CampaignLog.severity).where(
                CampaignLog.campaign_id == campaign_id, CampaignLog.log_type == "instance_disconnected"
            )
        )
        assert critical == "critical"
    async with context.sessions() as session, session.begin():
        await progress.resume_after_reconnection(session, numbers[0], MONDAY_10)
    async with context.sessions() as session, session.begin():
        resumed = await session.get(Campaign, campaign_id)
        assert resumed is not None
        assert resumed.status == CampaignStatus.RUNNING.value
        await lifecycle.transition(session, tenant_id, campaign_id, Action.PAUSE, user_id=None, now=MONDAY_10)
    async with context.sessions() as session, session.begin():
        await progress.resume_after_reconnection(session, numbers[0], MONDAY_10)
    async with context.sessions() as session:
        # A manual pause is the user's: a reconnection does not undo it.
        kept = await session.get(Campaign, campaign_id)
        assert kept is not None
        assert kept.paused_reason == "manual"


def test_variables_are_filled_and_missing_ones_left_out_cleanly() -> None:
    assert (
        render("Oi {{name}}, cupom {{ cupom }}!", {"name": "Ana", "cupom": "BF10"}) == "Oi Ana, cupom BF10!"
    )
    assert render("Oi {{name}}, tudo bem?", None) == "Oi, tudo bem?"


async def _handed_and_sent(context: EngineContext, contacts: int) -> tuple[str, str, str, list[str]]:
    """A campaign whose messages all went out; returns tenant, campaign, instance, provider ids."""
    tenant_id, campaign_id, numbers = await _setup(
        context,
        numbers=1,
        contacts=contacts,
        settings={"interval_min_s": 0, "interval_max_s": 0, "warmup": False},
    )
    await Dispatcher(context, clock=Clock(MONDAY_10)).dispatch(campaign_id)
    async with context.sessions() as session, session.begin():
        ids = list(
            await session.scalars(
                select(CampaignContact.message_id)
                .where(CampaignContact.campaign_id == campaign_id)
                .order_by(CampaignContact.message_id)
            )
        )
        for index, message_id in enumerate(ids):
            await session.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(
                    provider_message_id=f"wamid.{index}",
                    status="sent",
                    status_rank=1,
                    send_state="done",
                    sent_at=MONDAY_10,
                )
            )
        await progress.follow_messages(session, ids, MONDAY_10)
    return tenant_id, campaign_id, numbers[0], [f"wamid.{index}" for index in range(len(ids))]


def _receipts(provider_ids: list[str], rng: random.Random) -> list[StatusUpdate]:
    """Per message: delivered, then read for two thirds, failed for one in ten."""
    updates = []
    for index, provider_id in enumerate(provider_ids):
        if index % 10 == 9:
            updates.append(
                StatusUpdate(provider_id, DeliveryStatus.FAILED, MONDAY_10, error=StatusError("131026", "x"))
            )
            continue
        updates.append(StatusUpdate(provider_id, DeliveryStatus.DELIVERED, MONDAY_10 + timedelta(seconds=1)))
        if index % 3:
            updates.append(StatusUpdate(provider_id, DeliveryStatus.READ, MONDAY_10 + timedelta(seconds=2)))
    return updates


async def _apply(
    context: EngineContext, tenant_id: str, instance_id: str, batches: list[list[StatusUpdate]]
) -> None:
    for number, batch in enumerate(batches):
        async with context.sessions() as session, session.begin():
            entry = IngestEntry(
                f"r-{number}-{random.random()}", tenant_id, instance_id, MONDAY_10, list(batch)
            )
            await apply_entries(session, [entry], context.names.events)


async def _counters(context: EngineContext, campaign_id: str) -> tuple[int, int, int, int]:
    async with context.sessions() as session:
        campaign = await session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.sent_count, campaign.delivered_count, campaign.read_count, campaign.failed_count


async def test_duplicated_shuffled_receipts_count_as_one_in_order_delivery(context: EngineContext) -> None:
    ordered_tenant, ordered_campaign, ordered_instance, ordered_ids = await _handed_and_sent(context, 30)
    in_order = _receipts(ordered_ids, random.Random(0))
    await _apply(context, ordered_tenant, ordered_instance, [in_order])
    expected = await _counters(context, ordered_campaign)
    assert expected == (30, 27, 18, 3)

    tenant_id, campaign_id, instance_id, provider_ids = await _handed_and_sent(context, 30)
    rng = random.Random(5)
    messy = _receipts(provider_ids, rng) * 3
    rng.shuffle(messy)
    await _apply(context, tenant_id, instance_id, [messy[i : i + 7] for i in range(0, len(messy), 7)])
    assert await _counters(context, campaign_id) == expected


async def test_pausing_takes_back_the_messages_no_sender_took_yet(context: EngineContext) -> None:
    tenant_id, campaign_id, _ = await _setup(
        context, numbers=1, contacts=5, settings={"interval_min_s": 0, "interval_max_s": 0, "warmup": False}
    )
    dispatcher = Dispatcher(context, clock=Clock(MONDAY_10))
    assert (await dispatcher.dispatch(campaign_id)).handed == 5
    async with context.sessions() as session, session.begin():
        # One already went to a sender: that one is on its way and stays.
        first = await session.scalar(select(Message.id).order_by(Message.id).limit(1))
        await session.execute(update(Message).where(Message.id == first).values(send_state="claimed"))
    async with context.sessions() as session, session.begin():
        paused = await lifecycle.transition(
            session, tenant_id, campaign_id, Action.PAUSE, user_id=None, now=MONDAY_10
        )
        assert paused.pending_count == 4
    async with context.sessions() as session:
        assert list(await session.scalars(select(Message.id))) == [first]
        statuses = Counter(await session.scalars(select(CampaignContact.status)))
        assert statuses == {"pending": 4, "sending": 1}
    assert (await dispatcher.dispatch(campaign_id)).handed == 0
    async with context.sessions() as session, session.begin():
        await lifecycle.transition(
            session, tenant_id, campaign_id, Action.RESUME, user_id=None, now=MONDAY_10
        )
    assert (await dispatcher.dispatch(campaign_id)).handed == 4
    async with context.sessions() as session, session.begin():
        cancelled = await lifecycle.transition(
            session, tenant_id, campaign_id, Action.CANCEL, user_id=None, now=MONDAY_10
        )
        assert (cancelled.pending_count, cancelled.skipped_count) == (0, 4)


async def test_a_gateway_number_sends_at_most_8_a_minute(context: EngineContext) -> None:
    _, campaign_id, _numbers = await _setup(
        context,
        numbers=1,
        contacts=20,
        settings={"interval_min_s": 1, "interval_max_s": 1, "warmup": False},
        provider="evolution",
    )
    clock = Clock(MONDAY_10)
    dispatcher = Dispatcher(context, clock=clock)
    handed = []
    for _ in range(15):
        handed.append((await dispatcher.dispatch(campaign_id)).handed)
        clock.now += timedelta(seconds=1)
    assert sum(handed) == 8
    clock.now = MONDAY_10 + timedelta(minutes=1, seconds=1)
    assert (await dispatcher.dispatch(campaign_id)).handed == 1


async def test_a_gateway_number_repeats_a_text_at_most_3_times_an_hour(context: EngineContext) -> None:
    tenant_id, campaign_id, _ = await _setup(
        context,
        numbers=1,
        contacts=10,
        settings={"interval_min_s": 1, "interval_max_s": 1, "warmup": False},
        provider="evolution",
    )
    async with context.sessions() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="paused"))
        await service.update_campaign(
            session,
            tenant_id,
            campaign_id,
            CampaignUpdate.model_validate({"messages": [{"content": "Promoção!"}, {"content": "Oferta!"}]}),
            user_id=None,
            now=MONDAY_10,
        )
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="running"))
    clock = Clock(MONDAY_10)
    dispatcher = Dispatcher(context, clock=clock)
    for _ in range(10):
        await dispatcher.dispatch(campaign_id)
        clock.now += timedelta(seconds=8)
    async with context.sessions() as session:
        texts = Counter(await session.scalars(select(Message.content)))
    assert texts == {"Promoção!": 3, "Oferta!": 3}


async def test_a_campaign_raises_the_gateway_cap_and_a_number_lowers_its_repeats(
    context: EngineContext,
) -> None:
    settings = {"interval_min_s": 1, "interval_max_s": 1, "warmup": False, "max_per_minute": 12}
    tenant_id, campaign_id, numbers = await _setup(
        context, numbers=1, contacts=20, settings=settings, provider="evolution"
    )
    clock = Clock(MONDAY_10)
    dispatcher = Dispatcher(context, clock=clock)
    for _ in range(15):
        await dispatcher.dispatch(campaign_id)
        clock.now += timedelta(seconds=1)
    assert sum((await _messages_per_instance(context)).values()) == 12
    async with context.sessions() as session:
        extras = list(await session.scalars(select(Message.extra)))
    assert extras == [{"typing": True}] * 12  # a gateway's default courtesy

    # The number now takes each text once an hour and no typing; two variations, two messages.
    async with context.sessions() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="paused"))
        body = {
            "messages": [{"content": "Promoção!"}, {"content": "Oferta!"}],
            "instances": [{"id": numbers[0], "max_identical_per_hour": 1, "typing": False}],
        }
        await service.update_campaign(
            session, tenant_id, campaign_id, CampaignUpdate.model_validate(body), user_id=None, now=clock.now
        )
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="running"))
    clock.now += timedelta(minutes=2)
    for _ in range(5):
        await dispatcher.dispatch(campaign_id)
        clock.now += timedelta(seconds=1)
    async with context.sessions() as session:
        rows = (
            await session.execute(select(Message.content, Message.extra).where(Message.content != "Oi C0"))
        ).all()
    fresh = [(content, extra) for content, extra in rows if content in ("Promoção!", "Oferta!")]
    assert sorted(fresh) == [("Oferta!", None), ("Promoção!", None)]


async def test_numbers_of_one_portfolio_share_its_daily_tier(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    numbers = []
    for index in range(2):
        instance, _ = await bind(
            context,
            tenant_id,
            provider="meta",
            display_number=f"+55114002200{index}",
            phone_number_id=f"10928374650{index}",
            waba_id="104857293847561",
            access_token="EAAG",
            app_secret="x" * 32,
            messaging_tier=5,
        )
        numbers.append(instance.id)
    await approved_template(context, tenant_id, numbers[0], "novidades", 1)
    await _proven(context, numbers)
    body = {
        "name": "Tier",
        "instance_ids": numbers,
        # Business-initiated on Meta: an approved template (free-form would need the 24 h window).
        "messages": [{"template": {"name": "novidades", "parameters": ["{{name}}"]}}],
        "contacts": [{"phone": f"+55119922{index:05d}", "name": f"C{index}"} for index in range(12)],
        "settings": {"interval_min_s": 0, "interval_max_s": 0, "warmup": False},
    }
    async with context.sessions() as session, session.begin():
        campaign, _ = await service.create_campaign(
            session, tenant_id, CampaignCreate.model_validate(body), user_id=None, now=MONDAY_10
        )
        await lifecycle.transition(session, tenant_id, campaign.id, Action.START, user_id=None, now=MONDAY_10)
    dispatcher = Dispatcher(context, clock=Clock(MONDAY_10))
    assert (await dispatcher.dispatch(campaign.id)).handed == 5
    assert (await dispatcher.dispatch(campaign.id)).handed == 0
    assert sum((await _messages_per_instance(context)).values()) == 5
    tomorrow = Dispatcher(context, clock=Clock(MONDAY_10 + timedelta(hours=24, seconds=1)))
    assert (await tomorrow.dispatch(campaign.id)).handed == 5


async def test_a_numbers_own_settings_override_the_campaigns(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    numbers = []
    for index in range(2):
        instance, _ = await bind(
            context,
            tenant_id,
            provider="simulator",
            display_number=f"+55114002300{index}",
            instance_name=f"ov-{index}",
        )
        numbers.append(instance.id)
    await _proven(context, numbers)
    body = {
        "name": "Overrides",
        "instance_ids": [numbers[0]],
        "instances": [{"id": numbers[1], "interval_min_s": 60, "daily_limit": 1}],
        "messages": [{"content": "Oi"}],
        "contacts": [{"phone": f"+55119933{index:05d}"} for index in range(10)],
        "settings": {"interval_min_s": 0, "interval_max_s": 0, "warmup": False},
    }
    async with context.sessions() as session, session.begin():
        campaign, _ = await service.create_campaign(
            session, tenant_id, CampaignCreate.model_validate(body), user_id=None, now=MONDAY_10
        )
        await lifecycle.transition(session, tenant_id, campaign.id, Action.START, user_id=None, now=MONDAY_10)
        detail = await queries.campaign_detail(session, campaign)
    overrides = {
        item.instance_id: (item.interval_min_s, item.interval_max_s, item.daily_limit)
        for item in detail.instances
    }
    assert overrides == {numbers[0]: (None, None, None), numbers[1]: (60.0, 60.0, 1)}
    clock = Clock(MONDAY_10)
    dispatcher = Dispatcher(context, clock=clock)
    for _ in range(3):
        await dispatcher.dispatch(campaign.id)
        clock.now += timedelta(seconds=1)
    per_instance = await _messages_per_instance(context)
    # The paced number sent its one message of the day; the other took the rest at full speed.
    assert per_instance == {numbers[0]: 9, numbers[1]: 1}


async def test_a_restarted_dispatcher_offers_again_what_a_killed_one_never_offered(
    context: EngineContext,
) -> None:
    _, campaign_id, _ = await _setup(
        context, numbers=1, contacts=5, settings={"interval_min_s": 0, "interval_max_s": 0, "warmup": False}
    )
    assert (await Dispatcher(context, clock=Clock(MONDAY_10)).dispatch(campaign_id)).handed == 5
    # Stored and committed; suppose the dispatcher died before its stream entries were written.
    fresh = Dispatcher(context, clock=Clock(MONDAY_10 + timedelta(seconds=2)))
    assert await fresh.reoffer_orphans() == 0  # too recent: its dispatcher may still be offering
    later = Dispatcher(context, clock=Clock(MONDAY_10 + timedelta(seconds=30)))
    assert await later.reoffer_orphans() == 5


async def _progress_published(context: EngineContext, group: str) -> list[dict[str, object]]:
    streams, stream = context.streams, context.names.events
    await streams.ensure_group(stream, group)
    entries = await streams.read(stream, group, "reader", 100, 0)
    return [
        json.loads(entry.fields["payload"])
        for entry in entries
        if entry.fields["event_type"] == "campaign_updated"
    ]


async def test_progress_is_published_for_late_commits_and_held_back_changes(context: EngineContext) -> None:
    _, campaign_id, _ = await _setup(
        context, numbers=1, contacts=3, settings={"interval_min_s": 0, "interval_max_s": 0, "warmup": False}
    )
    clock = Clock(MONDAY_10 + timedelta(seconds=1))
    dispatcher = Dispatcher(context, clock=clock)
    assert await dispatcher.publish_progress() == 1

    # A writer whose transaction started before that check commits after it.
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(Campaign).values(sent_count=1, updated_at=clock.now - timedelta(seconds=3))
        )
    clock.now += timedelta(seconds=1)
    await asyncio.sleep(PROGRESS_INTERVAL.total_seconds())
    assert await dispatcher.publish_progress() == 1

    # A change within the interval of the last publication is held back, not lost.
    async with context.sessions() as session, session.begin():
        await session.execute(update(Campaign).values(sent_count=2, updated_at=clock.now))
    assert await dispatcher.publish_progress() == 0
    clock.now += timedelta(seconds=5)
    await asyncio.sleep(PROGRESS_INTERVAL.total_seconds())
    assert await dispatcher.publish_progress() == 1
    assert await dispatcher.publish_progress() == 0  # nothing new

    published = await _progress_published(context, "progress-test")
    assert [(event["id"], event["sent_count"]) for event in published] == [
        (campaign_id, 0),
        (campaign_id, 1),
        (campaign_id, 2),
    ]
