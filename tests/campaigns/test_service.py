"""Campaign rules on both databases: contacts in, the life cycle, and logs nobody can change."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from messaging_whatsapp.campaigns import lifecycle, queries, service
from messaging_whatsapp.campaigns.contacts import add_contacts
from messaging_whatsapp.campaigns.importing import ContactRow
from messaging_whatsapp.campaigns.lifecycle import TRANSITIONS, Action
from messaging_whatsapp.campaigns.locks import try_lock_campaign
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignLog,
    CampaignStatus,
    LogType,
)
from messaging_whatsapp.campaigns.schemas import CampaignCreate, CampaignUpdate
from messaging_whatsapp.consent.models import OptOut
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.errors import Conflict, InvalidInput, NotFound
from tests.helpers import bind, create_tenant


async def _tenant_with_number(context: EngineContext) -> tuple[str, str]:
    tenant_id = await create_tenant(context)
    instance, _ = await bind(
        context,
        tenant_id,
        provider="simulator",
        display_number="+551140028922",
        instance_name=f"sim-{new_id()[:8]}",
    )
    return tenant_id, instance.id


async def _create(context: EngineContext, tenant_id: str, **fields: object) -> Campaign:
    async with context.sessions() as session, session.begin():
        campaign, _ = await service.create_campaign(
            session,
            tenant_id,
            CampaignCreate.model_validate({"name": "Black Friday", **fields}),
            user_id=None,
            now=utcnow(),
        )
        return campaign


async def test_contacts_are_normalised_merged_and_opt_outs_excluded(context: EngineContext) -> None:
    tenant_id, instance_id = await _tenant_with_number(context)
    async with context.sessions() as session, session.begin():
        session.add(OptOut(tenant_id=tenant_id, phone="+5511966660000", reason="keyword"))
    contacts = [
        {"phone": "+5511987654321", "name": "Maria"},
        {"phone": "(11) 8765-4321"},  # Maria again, without the ninth digit
        {"phone": "not a phone"},
        {"phone": "11 96666-0000"},  # opted out
        {"phone": "+5521999990000", "name": "Ana", "variables": {"cupom": "BF10"}},
    ]
    async with context.sessions() as session, session.begin():
        campaign, report = await service.create_campaign(
            session,
            tenant_id,
            CampaignCreate.model_validate(
                {"name": "BF", "instance_ids": [instance_id], "contacts": contacts}
            ),
            user_id=None,
            now=utcnow(),
        )
    assert (report.added, report.duplicates, report.invalid, report.opted_out) == (2, 1, 1, 1)
    assert [(r.line, r.phone) for r in report.rejected] == [(3, "not a phone")]
    assert (campaign.total_contacts, campaign.pending_count) == (2, 2)
    async with context.sessions() as session, session.begin():
        again = await add_contacts(
            session,
            await queries.get_campaign(session, tenant_id, campaign.id),
            [ContactRow("5521 99999-0000"), ContactRow("+5531988887777")],
            now=utcnow(),
        )
        assert (again.added, again.duplicates) == (1, 1)
        variables = await session.scalars(
            select(CampaignContact.variables).where(CampaignContact.campaign_id == campaign.id)
        )
        assert {"name": "Ana", "cupom": "BF10"} in list(variables)


async def test_thousands_of_rows_go_in_chunks(context: EngineContext) -> None:
    tenant_id, _ = await _tenant_with_number(context)
    campaign = await _create(context, tenant_id)
    rows = [ContactRow(f"+55119{index % 4500:08d}", line=index + 2) for index in range(5000)]
    async with context.sessions() as session, session.begin():
        fresh = await session.get(Campaign, campaign.id)
        assert fresh is not None
        report = await add_contacts(session, fresh, rows, now=utcnow())
    assert (report.added, report.duplicates) == (4500, 500)
    async with context.sessions() as session:
        count = await session.scalar(select(func.count()).where(CampaignContact.campaign_id == campaign.id))
        assert count == 4500


def _legal(status: CampaignStatus, action: Action) -> bool:
    return status in TRANSITIONS[action]


@pytest.mark.parametrize("status", list(CampaignStatus))
@pytest.mark.parametrize("action", list(Action))
async def test_every_transition_is_legal_or_a_409_naming_the_status(
    context: EngineContext, status: CampaignStatus, action: Action
) -> None:
    tenant_id, instance_id = await _tenant_with_number(context)
    campaign = await _create(
        context,
        tenant_id,
        instance_ids=[instance_id],
        messages=[{"content": "Oi {{name}}"}],
        contacts=[{"phone": "+5511987654321"}],
    )
    async with context.sessions() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == campaign.id).values(status=status.value))
    async with context.sessions() as session, session.begin():
        if not _legal(status, action):
            with pytest.raises(Conflict) as refused:
                await lifecycle.transition(
                    session, tenant_id, campaign.id, action, user_id=None, now=utcnow()
                )
            assert refused.value.code == "invalid_transition"
            assert refused.value.details == {"status": status.value}
            return
        changed = await lifecycle.transition(
            session, tenant_id, campaign.id, action, user_id=None, now=utcnow()
        )
        assert changed.status == TRANSITIONS[action][status].value


async def test_start_needs_a_message_an_instance_and_a_contact(context: EngineContext) -> None:
    tenant_id, _ = await _tenant_with_number(context)
    campaign = await _create(context, tenant_id)
    async with context.sessions() as session, session.begin():
        with pytest.raises(InvalidInput, match="a message, an instance, a contact"):
            await lifecycle.transition(
                session, tenant_id, campaign.id, Action.START, user_id=None, now=utcnow()
            )


async def test_a_scheduled_campaign_starts_when_its_time_comes(context: EngineContext) -> None:
    tenant_id, instance_id = await _tenant_with_number(context)
    now = utcnow()
    campaign = await _create(
        context,
        tenant_id,
        instance_ids=[instance_id],
        messages=[{"content": "Oi"}],
        contacts=[{"phone": "+5511987654321"}],
        scheduled_at=(now + timedelta(hours=1)).isoformat(),
    )
    async with context.sessions() as session, session.begin():
        started = await lifecycle.transition(
            session, tenant_id, campaign.id, Action.START, user_id=None, now=now
        )
        assert started.status == CampaignStatus.SCHEDULED.value
    async with context.sessions() as session, session.begin():
        assert await lifecycle.start_due_campaigns(session, now + timedelta(minutes=59)) == []
    async with context.sessions() as session, session.begin():
        [due] = await lifecycle.start_due_campaigns(session, now + timedelta(hours=1))
        assert (due.id, due.status) == (campaign.id, CampaignStatus.RUNNING.value)
    async with context.sessions() as session:
        types = set(
            await session.scalars(select(CampaignLog.log_type).where(CampaignLog.campaign_id == campaign.id))
        )
        assert types == {LogType.CREATED.value, LogType.STARTED.value}


async def test_cancelling_skips_the_contacts_not_yet_sent(context: EngineContext) -> None:
    tenant_id, instance_id = await _tenant_with_number(context)
    campaign = await _create(
        context,
        tenant_id,
        instance_ids=[instance_id],
        messages=[{"content": "Oi"}],
        contacts=[{"phone": "+5511987654321"}, {"phone": "+5511987654322"}],
    )
    async with context.sessions() as session, session.begin():
        cancelled = await lifecycle.transition(
            session, tenant_id, campaign.id, Action.CANCEL, user_id=None, now=utcnow()
        )
        assert (cancelled.status, cancelled.pending_count, cancelled.skipped_count) == ("cancelled", 0, 2)
        assert cancelled.finished_at is not None
    async with context.sessions() as session, session.begin():
        closed = await queries.get_campaign(session, tenant_id, campaign.id)
        with pytest.raises(Conflict):
            await add_contacts(session, closed, [ContactRow("+5511987654323")], now=utcnow())


async def test_a_status_change_waits_for_the_pass_that_holds_the_campaign(context: EngineContext) -> None:
    # A pass read `running` and completes the campaign: a cancel meanwhile must not land in
    # between (and be overwritten), but wait and then find the campaign completed.
    tenant_id, instance_id = await _tenant_with_number(context)
    campaign = await _create(
        context,
        tenant_id,
        instance_ids=[instance_id],
        messages=[{"content": "Oi"}],
        contacts=[{"phone": "+5511987654321"}],
    )
    async with context.sessions() as session, session.begin():
        await lifecycle.transition(session, tenant_id, campaign.id, Action.START, user_id=None, now=utcnow())

    async def cancel() -> None:
        async with context.sessions() as session, session.begin():
            await lifecycle.transition(
                session, tenant_id, campaign.id, Action.CANCEL, user_id=None, now=utcnow()
            )

    async with context.sessions() as passing, passing.begin():
        assert await try_lock_campaign(passing, campaign.id)
        held = await queries.get_campaign(passing, tenant_id, campaign.id)
        assert held.status == "running"
        cancelling = asyncio.create_task(cancel())
        await asyncio.sleep(0.3)
        assert not cancelling.done()
        held.status = CampaignStatus.COMPLETED.value
    with pytest.raises(Conflict, match="cannot cancel a campaign that is completed"):
        await cancelling
    async with context.sessions() as session:
        closed = await queries.get_campaign(session, tenant_id, campaign.id)
        assert closed.status == "completed"
        types = set(
            await session.scalars(select(CampaignLog.log_type).where(CampaignLog.campaign_id == campaign.id))
        )
        assert LogType.CANCELLED.value not in types


async def test_only_drafts_and_paused_campaigns_change_and_only_drafts_go(context: EngineContext) -> None:
    tenant_id, instance_id = await _tenant_with_number(context)
    campaign = await _create(
        context,
        tenant_id,
        instance_ids=[instance_id],
        messages=[{"content": "Oi"}],
        contacts=[{"phone": "+5511987654321"}],
    )
    async with context.sessions() as session, session.begin():
        updated = await service.update_campaign(
            session,
            tenant_id,
            campaign.id,
            CampaignUpdate(rotation_mode="round_robin", name="BF 2026"),
            user_id=None,
            now=utcnow(),
        )
        assert (updated.name, updated.rotation_mode) == ("BF 2026", "round_robin")
        await lifecycle.transition(session, tenant_id, campaign.id, Action.START, user_id=None, now=utcnow())
    async with context.sessions() as session, session.begin():
        with pytest.raises(Conflict) as refused:
            await service.update_campaign(
                session, tenant_id, campaign.id, CampaignUpdate(name="x"), user_id=None, now=utcnow()
            )
        assert refused.value.details == {"status": "running"}
        with pytest.raises(Conflict):
            await service.delete_campaign(session, tenant_id, campaign.id)
    other = await create_tenant(context, "Outra")
    async with context.sessions() as session:
        with pytest.raises(NotFound):
            await queries.get_campaign(session, other, campaign.id)
    draft = await _create(context, tenant_id)
    async with context.sessions() as session, session.begin():
        await service.delete_campaign(session, tenant_id, draft.id)
    async with context.sessions() as session:
        assert await session.get(Campaign, draft.id) is None
        # The deleted draft's logs stay: they are the audit trail.
        assert await session.scalar(select(func.count()).where(CampaignLog.campaign_id == draft.id)) == 1


async def test_the_database_refuses_to_change_or_delete_a_log(context: EngineContext) -> None:
    tenant_id, _ = await _tenant_with_number(context)
    campaign = await _create(context, tenant_id)
    for statement in (
        update(CampaignLog).where(CampaignLog.campaign_id == campaign.id).values(message="rewritten"),
        delete(CampaignLog).where(CampaignLog.campaign_id == campaign.id),
    ):
        async with context.sessions() as session:
            with pytest.raises(DBAPIError, match="immutable"):
                async with session.begin():
                    await session.execute(statement)
    async with context.sessions() as session:
        assert await session.scalar(
            select(CampaignLog.message).where(CampaignLog.campaign_id == campaign.id)
        ) == ("Campaign 'Black Friday' created")
    if context.settings.database_url.startswith("postgresql"):
        async with context.sessions() as session:
            with pytest.raises(DBAPIError, match="immutable"):
                async with session.begin():
                    await session.execute(text("TRUNCATE campaign_logs"))
