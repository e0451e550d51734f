"""Campaign logs: the constructors seed 002 names, and writing logs (only ever inserting).

Each constructor returns an unsaved CampaignLog; `add_logs` inserts them. Nothing here (or
anywhere) updates or deletes a log, and the database refuses it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns.capacity import Hold
from messaging_whatsapp.campaigns.models import Campaign, CampaignLog, LogType, Severity
from messaging_whatsapp.db import insert_rows, new_id, utcnow

logs_table: Table = CampaignLog.__table__  # type: ignore[assignment]
LOG_COLUMNS = tuple(column.name for column in logs_table.columns)


def progress_of(campaign: Campaign) -> float:
    """Share of the campaign's contacts no longer waiting to be sent, in percent."""
    if not campaign.total_contacts:
        return 0.0
    done = campaign.total_contacts - campaign.pending_count
    return round(100.0 * done / campaign.total_contacts, 2)


def new_log(
    campaign: Campaign,
    log_type: LogType,
    severity: Severity,
    message: str,
    *,
    details: dict[str, Any] | None = None,
    instance_id: str | None = None,
    contact_id: str | None = None,
    campaign_contact_id: str | None = None,
    created_by: str | None = None,
    instance_health_score: float | None = None,
    duration_ms: int | None = None,
    http_status: int | None = None,
    request_data: dict[str, Any] | None = None,
    response_data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> CampaignLog:
    """A log of the campaign with a snapshot of its progress."""
    return CampaignLog(
        id=new_id(),
        tenant_id=campaign.tenant_id,
        campaign_id=campaign.id,
        log_type=log_type.value,
        severity=severity.value,
        message=message,
        details=details,
        instance_id=instance_id,
        contact_id=contact_id,
        campaign_contact_id=campaign_contact_id,
        created_by=created_by,
        campaign_progress=progress_of(campaign),
        instance_health_score=instance_health_score,
        duration_ms=duration_ms,
        http_status=http_status,
        request_data=request_data,
        response_data=response_data,
        created_at=at or utcnow(),
    )


def log_campaign_created(campaign: Campaign, user_id: str | None, instances: int) -> CampaignLog:
    """`created`: who made the campaign and with what."""
    return new_log(
        campaign,
        LogType.CREATED,
        Severity.INFO,
        f"Campaign '{campaign.name}' created",
        details={
            "rotation_mode": campaign.rotation_mode,
            "total_contacts": campaign.total_contacts,
            "instances_count": instances,
        },
        created_by=user_id,
    )


def log_campaign_started(campaign: Campaign, user_id: str | None) -> CampaignLog:
    """`started`: the dispatcher may now send."""
    return new_log(
        campaign,
        LogType.STARTED,
        Severity.INFO,
        f"Campaign '{campaign.name}' started",
        details={"total_contacts": campaign.total_contacts},
        created_by=user_id,
    )


def log_message_sent(
    campaign: Campaign,
    instance_id: str,
    contact_id: str,
    campaign_contact_id: str,
    provider_message_id: str | None,
) -> CampaignLog:
    """`message_sent`: the provider took the message."""
    return new_log(
        campaign,
        LogType.MESSAGE_SENT,
        Severity.INFO,
        "Message sent",
        details={"provider_message_id": provider_message_id},
        instance_id=instance_id,
        contact_id=contact_id,
        campaign_contact_id=campaign_contact_id,
    )


def log_contact_opted_out(
    campaign: Campaign, contact_id: str, campaign_contact_id: str, at: datetime
) -> CampaignLog:
    """`contact_opted_out`: the person asked to stop; nothing more goes to them."""
    return new_log(
        campaign,
        LogType.CONTACT_OPTED_OUT,
        Severity.INFO,
        "Contact opted out; nothing more will be sent",
        contact_id=contact_id,
        campaign_contact_id=campaign_contact_id,
        at=at,
    )


def log_message_delivered(
    campaign: Campaign, instance_id: str | None, contact_id: str, campaign_contact_id: str
) -> CampaignLog:
    """`message_delivered`: the person's phone has it."""
    return new_log(
        campaign,
        LogType.MESSAGE_DELIVERED,
        Severity.INFO,
        "Message delivered",
        instance_id=instance_id,
        contact_id=contact_id,
        campaign_contact_id=campaign_contact_id,
    )


def log_message_read(
    campaign: Campaign, instance_id: str | None, contact_id: str, campaign_contact_id: str
) -> CampaignLog:
    """`message_read`: the person opened it."""
    return new_log(
        campaign,
        LogType.MESSAGE_READ,
        Severity.INFO,
        "Message read",
        instance_id=instance_id,
        contact_id=contact_id,
        campaign_contact_id=campaign_contact_id,
    )


def log_message_failed(
    campaign: Campaign,
    instance_id: str | None,
    contact_id: str,
    campaign_contact_id: str,
    code: str | None,
    title: str | None,
) -> CampaignLog:
    """`message_failed`: with the provider's code and reason."""
    return new_log(
        campaign,
        LogType.MESSAGE_FAILED,
        Severity.ERROR,
        f"Message failed: {title or code or 'unknown error'}",
        details={"error": {"code": code, "title": title}},
        instance_id=instance_id,
        contact_id=contact_id,
        campaign_contact_id=campaign_contact_id,
    )


def log_instance_selected(campaign: Campaign, instance_id: str, reason: str, at: datetime) -> CampaignLog:
    """`instance_selected`: the rotation chose the number for the first time in this campaign."""
    return new_log(
        campaign,
        LogType.INSTANCE_SELECTED,
        Severity.INFO,
        f"Instance selected: {reason}",
        details={"rotation_mode": campaign.rotation_mode},
        instance_id=instance_id,
        at=at,
    )


def log_instance_paused(
    campaign: Campaign, instance_id: str, reason: str, score: float | None
) -> CampaignLog:
    """`instance_paused`: the number stops sending for this campaign; the others carry on."""
    return new_log(
        campaign,
        LogType.INSTANCE_PAUSED,
        Severity.WARNING,
        f"Instance paused for this campaign: {reason}",
        details={"reason": reason},
        instance_id=instance_id,
        instance_health_score=score,
    )


def log_limit_reached(campaign: Campaign, hold: Hold, at: datetime) -> CampaignLog:
    """`limit_reached`: a limit holds contacts back, with its figures and when it frees."""
    return new_log(
        campaign,
        LogType.LIMIT_REACHED,
        Severity.WARNING,
        f"Limit reached: {hold.message}",
        details={
            "kind": hold.kind.value,
            "limit": hold.limit,
            "used": hold.used,
            "frees_at": hold.frees_at.isoformat() if hold.frees_at else None,
        },
        instance_id=hold.instance_id,
        at=at,
    )


def log_health_issue(campaign: Campaign, instance_id: str, message: str, score: float) -> CampaignLog:
    """`health_issue`: the number's health fell below the threshold."""
    return new_log(
        campaign,
        LogType.HEALTH_ISSUE,
        Severity.WARNING,
        message,
        details={"health_score": score},
        instance_id=instance_id,
        instance_health_score=score,
    )


def log_error(
    campaign: Campaign, message: str, details: dict[str, Any] | None = None, at: datetime | None = None
) -> CampaignLog:
    """`error`: something went wrong that is not one message's failure."""
    return new_log(campaign, LogType.ERROR, Severity.ERROR, message, details=details, at=at)


async def add_logs(session: AsyncSession, logs: Iterable[CampaignLog]) -> None:
    """Insert logs in one statement (they are never changed afterwards)."""
    rows = [{name: getattr(log, name) for name in LOG_COLUMNS} for log in logs]
    if rows:
        statement, params = insert_rows(session, logs_table, rows)
        await session.execute(statement, params)
