"""Seed 000: campaigns follow what happens to their messages, people and numbers.

A campaign contact follows its message (sent, delivered, read, failed); an opt-out stops the
person in every campaign; a number that disconnects pauses its campaigns until it reconnects.

Called in the same transaction as whatever moved the messages (the sender recording an answer,
the worker applying receipts). Each stage is counted once per contact, whatever the order or
repetition of receipts: a contact only moves up in rank, and a counter grows only for the stages
its move crossed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignContactStatus,
    CampaignInstance,
    CampaignLog,
    CampaignStatus,
    LogType,
    PausedReason,
    Severity,
    campaign_contacts_table,
    campaigns_table,
)
from messaging_whatsapp.db import one_of
from messaging_whatsapp.inbox.models import Message, SendState
from messaging_whatsapp.providers.base import DeliveryStatus

RANKS = {DeliveryStatus.SENT.value: 1, DeliveryStatus.DELIVERED.value: 2, DeliveryStatus.READ.value: 3}
STAGES = (
    (1, "sent_count", LogType.MESSAGE_SENT),
    (2, "delivered_count", LogType.MESSAGE_DELIVERED),
    (3, "read_count", LogType.MESSAGE_READ),
)
COUNTERS = ("sent_count", "delivered_count", "read_count", "failed_count")


async def follow_messages(session: AsyncSession, message_ids: list[str], now: datetime) -> None:
    """Move the campaign contacts of these messages to their messages' status; count and log."""
    if not message_ids:
        return
    rows = (
        await session.execute(
            select(CampaignContact, Message)
            .join(Message, Message.id == CampaignContact.message_id)
            .where(one_of(session, CampaignContact.message_id, message_ids))
            .order_by(CampaignContact.id)
            .with_for_update(of=campaign_contacts_table)
        )
    ).all()
    counters: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    changes = []
    new_logs: list[tuple[str, CampaignContact, LogType, Message]] = []
    for contact, message in rows:
        change = _move(contact, message, counters[contact.campaign_id], new_logs)
        if change is not None:
            changes.append(change)
    if not changes:
        return
    c = campaign_contacts_table.c
    await session.execute(
        update(campaign_contacts_table)
        .where(c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            status_rank=bindparam("b_rank"),
            provider_message_id=bindparam("b_provider_id"),
            sent_at=bindparam("b_sent_at"),
            delivered_at=bindparam("b_delivered_at"),
            read_at=bindparam("b_read_at"),
            failed_at=bindparam("b_failed_at"),
            error_code=bindparam("b_code"),
            error_title=bindparam("b_title"),
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
        changes,
    )
    await _count(session, counters, now)
    await _log(session, new_logs, now)


def _move(
    contact: CampaignContact,
    message: Message,
    counters: dict[str, int],
    new_logs: list[tuple[str, CampaignContact, LogType, Message]],
) -> dict[str, object] | None:
    old_rank, old_status = contact.status_rank, contact.status
    new_rank = RANKS.get(message.status, 0)
    if new_rank > old_rank:
        status = message.status
        for stage, counter, log_type in STAGES:
            if old_rank < stage <= new_rank:
                counters[counter] += 1
                new_logs.append((contact.campaign_id, contact, log_type, message))
        if old_status == CampaignContactStatus.FAILED.value:
            # A receipt proved the failure report wrong.
            counters["failed_count"] -= 1
    elif (
        message.status == DeliveryStatus.FAILED.value
        and old_status != CampaignContactStatus.FAILED.value
        and old_rank < RANKS[DeliveryStatus.DELIVERED.value]
    ):
        status = CampaignContactStatus.FAILED.value
        new_rank = old_rank
        counters["failed_count"] += 1
        new_logs.append((contact.campaign_id, contact, LogType.MESSAGE_FAILED, message))
    else:
        return None
    return {
        "b_id": contact.id,
        "b_status": status,
        "b_rank": new_rank,
        "b_provider_id": message.provider_message_id,
        "b_sent_at": contact.sent_at or message.sent_at,
        "b_delivered_at": contact.delivered_at or message.delivered_at,
        "b_read_at": contact.read_at or message.read_at,
        "b_failed_at": contact.failed_at or message.failed_at,
        "b_code": message.error_code,
        "b_title": message.error_title,
    }


async def _count(session: AsyncSession, counters: dict[str, dict[str, int]], now: datetime) -> None:
    k = campaigns_table.c
    rows = [
        {"b_id": campaign_id, **{f"b_{name}": value for name, value in counts.items()}}
        for campaign_id, counts in sorted(counters.items())
        if any(counts.values())
    ]
    if not rows:
        return
    await session.execute(
        update(campaigns_table)
        .where(k.id == bindparam("b_id"))
        .values({name: k[name] + bindparam(f"b_{name}") for name in COUNTERS} | {"updated_at": now})
        .execution_options(synchronize_session=False),
        rows,
    )


async def _log(
    session: AsyncSession, new_logs: list[tuple[str, CampaignContact, LogType, Message]], now: datetime
) -> None:
    if not new_logs:
        return
    campaigns = {
        campaign.id: campaign
        for campaign in await session.scalars(
            select(Campaign).where(Campaign.id.in_({campaign_id for campaign_id, *_ in new_logs}))
        )
    }
    entries: list[CampaignLog] = []
    for campaign_id, contact, log_type, message in new_logs:
        campaign = campaigns[campaign_id]
        if log_type is LogType.MESSAGE_FAILED:
            entry = logs.log_message_failed(
                campaign,
                message.instance_id,
                contact.contact_id,
                contact.id,
                message.error_code,
                message.error_title,
            )
        elif log_type is LogType.MESSAGE_SENT:
            entry = logs.log_message_sent(
                campaign, message.instance_id, contact.contact_id, contact.id, message.provider_message_id
            )
        elif log_type is LogType.MESSAGE_DELIVERED:
            entry = logs.log_message_delivered(campaign, message.instance_id, contact.contact_id, contact.id)
        else:
            entry = logs.log_message_read(campaign, message.instance_id, contact.contact_id, contact.id)
        entry.created_at = now
        entries.append(entry)
    await logs.add_logs(session, entries)


async def opt_out_contacts(session: AsyncSession, contact_ids: list[str], now: datetime) -> None:
    """Seed 000: a person who opted out gets nothing more from any campaign.

    Their pending campaign contacts end `opted_out`, with a log in each campaign; messages already
    handed to the senders are stopped there (the sender checks opt-out before each send).
    """
    if not contact_ids:
        return
    c = campaign_contacts_table.c
    stopped = (
        await session.execute(
            update(campaign_contacts_table)
            .where(
                one_of(session, c.contact_id, contact_ids), c.status == CampaignContactStatus.PENDING.value
            )
            .values(status=CampaignContactStatus.OPTED_OUT.value, error_code="opted_out", updated_at=now)
            .returning(c.id, c.campaign_id, c.contact_id)
        )
    ).all()
    if not stopped:
        return
    per_campaign: dict[str, int] = defaultdict(int)
    for row in stopped:
        per_campaign[row.campaign_id] += 1
    k = campaigns_table.c
    await session.execute(
        update(campaigns_table)
        .where(k.id == bindparam("b_id"))
        .values(
            pending_count=k.pending_count - bindparam("b_count"),
            opted_out_count=k.opted_out_count + bindparam("b_count"),
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
        [{"b_id": campaign_id, "b_count": count} for campaign_id, count in sorted(per_campaign.items())],
    )
    campaigns = {
        campaign.id: campaign
        for campaign in await session.scalars(select(Campaign).where(Campaign.id.in_(list(per_campaign))))
    }
    await logs.add_logs(
        session,
        [
            logs.log_contact_opted_out(campaigns[row.campaign_id], row.contact_id, row.id, now)
            for row in stopped
        ],
    )


async def pause_for_disconnection(
    session: AsyncSession, instance_id: str, reason: str | None, now: datetime
) -> None:
    """Seed 000: a number that disconnects pauses the running campaigns that use it."""
    campaigns = await _campaigns_using(session, instance_id, CampaignStatus.RUNNING, None)
    for campaign in campaigns:
        campaign.status = CampaignStatus.PAUSED.value
        campaign.paused_reason = PausedReason.INSTANCE_DISCONNECTED.value
        campaign.updated_at = now
        await withdraw_queued(session, campaign, back_to=CampaignContactStatus.PENDING, now=now)
    await logs.add_logs(
        session,
        [
            logs.new_log(
                campaign,
                LogType.INSTANCE_DISCONNECTED,
                Severity.CRITICAL,
                "A number of the campaign disconnected; campaign paused until it reconnects",
                details={"reason": reason},
                instance_id=instance_id,
                at=now,
            )
            for campaign in campaigns
        ],
    )


async def resume_after_reconnection(session: AsyncSession, instance_id: str, now: datetime) -> None:
    """Campaigns paused only because this number disconnected run again (a manual pause stays)."""
    campaigns = await _campaigns_using(
        session, instance_id, CampaignStatus.PAUSED, PausedReason.INSTANCE_DISCONNECTED
    )
    for campaign in campaigns:
        campaign.status = CampaignStatus.RUNNING.value
        campaign.paused_reason = None
        campaign.updated_at = now
    await logs.add_logs(
        session,
        [
            logs.new_log(
                campaign,
                LogType.RESUMED,
                Severity.INFO,
                "The number reconnected; campaign resumed",
                instance_id=instance_id,
                at=now,
            )
            for campaign in campaigns
        ],
    )


async def _campaigns_using(
    session: AsyncSession, instance_id: str, status: CampaignStatus, reason: PausedReason | None
) -> list[Campaign]:
    query = (
        select(Campaign)
        .join(CampaignInstance, CampaignInstance.campaign_id == Campaign.id)
        .where(CampaignInstance.instance_id == instance_id, Campaign.status == status.value)
        .order_by(Campaign.id)
        .with_for_update(of=campaigns_table)
    )
    if reason is not None:
        query = query.where(Campaign.paused_reason == reason.value)
    return list(await session.scalars(query))


async def withdraw_queued(
    session: AsyncSession, campaign: Campaign, *, back_to: CampaignContactStatus, now: datetime
) -> int:
    """Take back the campaign's messages no sender has taken yet (pause, cancel, disconnection).

    Their contacts go back to `pending` (to be sent on resume) or end `skipped` (cancel). A sender
    that reads such a message's stream entry afterwards finds nothing to claim. Returns how many.
    """
    c = campaign_contacts_table.c
    queued = select(c.message_id).where(
        c.campaign_id == campaign.id,
        c.status == CampaignContactStatus.SENDING.value,
        c.message_id.is_not(None),
    )
    withdrawn = list(
        await session.scalars(
            delete(Message)
            .where(
                Message.id.in_(queued),
                Message.send_state.in_([SendState.PENDING.value, SendState.WAITING.value]),
            )
            .returning(Message.id)
        )
    )
    if not withdrawn:
        return 0
    skipped = back_to is CampaignContactStatus.SKIPPED
    await session.execute(
        update(campaign_contacts_table)
        .where(one_of(session, c.message_id, withdrawn))
        .values(
            status=back_to.value,
            message_id=None,
            instance_id=None,
            campaign_message_id=None,
            sending_at=None,
            error_code="campaign_cancelled" if skipped else None,
            updated_at=now,
        )
    )
    if skipped:
        campaign.skipped_count += len(withdrawn)
    else:
        campaign.pending_count += len(withdrawn)
    return len(withdrawn)


async def record_replies(session: AsyncSession, contact_ids: list[str], now: datetime) -> None:
    """The person wrote back: campaign contacts that reached them note the first reply."""
    if not contact_ids:
        return
    c = campaign_contacts_table.c
    await session.execute(
        update(campaign_contacts_table)
        .where(
            one_of(session, c.contact_id, contact_ids),
            c.status_rank >= RANKS[DeliveryStatus.SENT.value],
            c.replied_at.is_(None),
        )
        .values(replied_at=now, updated_at=now)
    )
