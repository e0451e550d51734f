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
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.locks import lock_campaigns
from messaging_whatsapp.campaigns.models import (
    Campaign,
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
from messaging_whatsapp.db import UTCDateTime, one_of, rows_table, take_sqlite_writer
from messaging_whatsapp.inbox.models import Message, SendState, messages_table
from messaging_whatsapp.providers.events import DeliveryStatus
from messaging_whatsapp.providers.trace import SendTrace

RANKS = {DeliveryStatus.SENT.value: 1, DeliveryStatus.DELIVERED.value: 2, DeliveryStatus.READ.value: 3}
STAGES = (
    (1, "sent_count", LogType.MESSAGE_SENT),
    (2, "delivered_count", LogType.MESSAGE_DELIVERED),
    (3, "read_count", LogType.MESSAGE_READ),
)
COUNTERS = ("sent_count", "delivered_count", "read_count", "failed_count")
# What following a message reads: these columns of the campaign contact, then of its message
# (the times and status as `message_*`).
_TIMES = ("sent_at", "delivered_at", "read_at", "failed_at")
FOLLOWED_COLUMNS = (
    *(
        campaign_contacts_table.c[name]
        for name in ("id", "campaign_id", "contact_id", "message_id", "status", "status_rank", *_TIMES)
    ),
    *(messages_table.c[name].label(f"message_{name}") for name in ("status", *_TIMES)),
    *(messages_table.c[name] for name in ("instance_id", "provider_message_id", "error_code", "error_title")),
)
# A row of FOLLOWED_COLUMNS (an SQLAlchemy Row, read by attribute).
Followed = Any
# A campaign contact's move to its message's status.
MOVE_COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("id", String()),
    ("status", String()),
    ("status_rank", Integer()),
    ("provider_message_id", String()),
    ("sent_at", UTCDateTime()),
    ("delivered_at", UTCDateTime()),
    ("read_at", UTCDateTime()),
    ("failed_at", UTCDateTime()),
    ("error_code", String()),
    ("error_title", String()),
]


async def follow_messages(
    session: AsyncSession,
    message_ids: list[str],
    now: datetime,
    traces: Mapping[str, SendTrace | None] | None = None,
) -> None:
    """Move the campaign contacts of these messages to their messages' status; count and log
    (with each send's `traces`, by message id, when the sender has them)."""
    if not message_ids:
        return
    await take_sqlite_writer(session)  # the rows read below are changed from what they were
    c = campaign_contacts_table.c
    # Plain rows, not ORM objects: a sender records one batch of these per pass.
    rows = (
        await session.execute(
            select(*FOLLOWED_COLUMNS)
            .join(messages_table, messages_table.c.id == c.message_id)
            .where(one_of(session, c.message_id, message_ids))
            .order_by(c.id)
            .with_for_update(of=campaign_contacts_table)
        )
    ).all()
    counters: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    changes = []
    new_logs: list[tuple[LogType, Followed]] = []
    for row in rows:
        change = _move(row, counters[row.campaign_id], new_logs)
        if change is not None:
            changes.append(change)
    if not changes:
        return
    moved = rows_table(session, "moved", MOVE_COLUMNS, changes).c
    await session.execute(
        update(campaign_contacts_table)
        .where(c.id == moved.id)
        .values({name: moved[name] for name, _ in MOVE_COLUMNS[1:]} | {"updated_at": now})
        .execution_options(synchronize_session=False)
    )
    await _count(session, counters, now)
    await _log(session, new_logs, now, traces or {})


def _move(
    row: Followed, counters: dict[str, int], new_logs: list[tuple[LogType, Followed]]
) -> tuple[Any, ...] | None:
    """The campaign contact's move to its message's status (None when it stays), counted and
    logged; `row` is the contact's columns and its message's (`message_*`)."""
    old_rank, old_status = row.status_rank, row.status
    new_rank = RANKS.get(row.message_status, 0)
    if new_rank > old_rank:
        status = row.message_status
        for stage, counter, log_type in STAGES:
            if old_rank < stage <= new_rank:
                counters[counter] += 1
                new_logs.append((log_type, row))
        if old_status == CampaignContactStatus.FAILED.value:
            # A receipt proved the failure report wrong.
            counters["failed_count"] -= 1
    elif (
        row.message_status == DeliveryStatus.FAILED.value
        and old_status != CampaignContactStatus.FAILED.value
        and old_rank < RANKS[DeliveryStatus.DELIVERED.value]
    ):
        status = CampaignContactStatus.FAILED.value
        new_rank = old_rank
        if old_rank < RANKS[DeliveryStatus.SENT.value] and row.message_sent_at is not None:
            # Sent, then failed before this contact was followed at "sent": it was sent all the
            # same (as the analytics count it), whichever the follow saw first.
            new_rank = RANKS[DeliveryStatus.SENT.value]
            counters["sent_count"] += 1
            new_logs.append((LogType.MESSAGE_SENT, row))
        counters["failed_count"] += 1
        new_logs.append((LogType.MESSAGE_FAILED, row))
    else:
        return None
    return (
        row.id,
        status,
        new_rank,
        row.provider_message_id,
        row.sent_at or row.message_sent_at,
        row.delivered_at or row.message_delivered_at,
        row.read_at or row.message_read_at,
        row.failed_at or row.message_failed_at,
        row.error_code,
        row.error_title,
    )


async def _count(session: AsyncSession, counters: dict[str, dict[str, int]], now: datetime) -> None:
    k = campaigns_table.c
    rows = [
        (campaign_id, *(counts[name] for name in COUNTERS))
        for campaign_id, counts in sorted(counters.items())
        if any(counts.values())
    ]
    if not rows:
        return
    counted = rows_table(session, "counted", [("id", String()), *((n, Integer()) for n in COUNTERS)], rows).c
    await session.execute(
        update(campaigns_table)
        .where(k.id == counted.id)
        .values({name: k[name] + counted[name] for name in COUNTERS} | {"updated_at": now})
        .execution_options(synchronize_session=False)
    )


async def _log(
    session: AsyncSession,
    new_logs: list[tuple[LogType, Followed]],
    now: datetime,
    traces: Mapping[str, SendTrace | None],
) -> None:
    if not new_logs:
        return
    campaigns = {
        campaign.id: campaign
        for campaign in await session.scalars(
            select(Campaign).where(Campaign.id.in_({row.campaign_id for _, row in new_logs}))
        )
    }
    entries: list[CampaignLog] = []
    for log_type, row in new_logs:
        campaign = campaigns[row.campaign_id]
        if log_type is LogType.MESSAGE_FAILED:
            entry = logs.log_message_failed(
                campaign, row.instance_id, row.contact_id, row.id, row.error_code, row.error_title
            )
        elif log_type is LogType.MESSAGE_SENT:
            entry = logs.log_message_sent(
                campaign, row.instance_id, row.contact_id, row.id, row.provider_message_id
            )
        elif log_type is LogType.MESSAGE_DELIVERED:
            entry = logs.log_message_delivered(campaign, row.instance_id, row.contact_id, row.id)
        else:
            entry = logs.log_message_read(campaign, row.instance_id, row.contact_id, row.id)
        entry.created_at = now
        trace = traces.get(row.message_id)
        if trace is not None and log_type in (LogType.MESSAGE_SENT, LogType.MESSAGE_FAILED):
            entry.duration_ms, entry.http_status = trace.duration_ms, trace.http_status
            if log_type is LogType.MESSAGE_FAILED:
                # What was asked and answered, credentials removed, for whoever debugs it.
                entry.request_data, entry.response_data = trace.request_data(), trace.response_data()
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
    )
    if reason is not None:
        query = query.where(Campaign.paused_reason == reason.value)
    # Their dispatcher passes finish first; then their status is read again, under lock.
    await lock_campaigns(session, await session.scalars(query.with_only_columns(Campaign.id)))
    return list(await session.scalars(query.with_for_update(of=campaigns_table)))


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
