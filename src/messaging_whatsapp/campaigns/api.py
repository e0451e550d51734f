"""Campaigns of the caller's tenant under /api/v1/campaigns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from messaging_whatsapp.campaigns import contacts, lifecycle, queries, reports, service
from messaging_whatsapp.campaigns.importing import decode, read_csv
from messaging_whatsapp.campaigns.lifecycle import Action
from messaging_whatsapp.campaigns.models import CampaignContactStatus, LogType, Severity
from messaging_whatsapp.campaigns.report_schemas import CampaignLogItem, CampaignStats, Timeline
from messaging_whatsapp.campaigns.reports import Bucket
from messaging_whatsapp.campaigns.schemas import (
    CampaignContactItem,
    CampaignCreate,
    CampaignDetail,
    CampaignItem,
    CampaignUpdate,
    ContactsIn,
    ImportReport,
)
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.errors import InvalidInput, PayloadTooLarge
from messaging_whatsapp.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import CampaignReader, CampaignWriter

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])

# A CSV of 100,000 contacts with a few columns is a few MiB.
MAX_CSV_BYTES = 50 * 1024 * 1024
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post("", status_code=201)
async def create_campaign(
    data: CampaignCreate, session: DbSession, principal: CampaignWriter
) -> JSONResponse:
    """Create a draft campaign; the answer adds `import` (what happened to the contacts)."""
    campaign, report = await service.create_campaign(
        session, principal.tenant_id, data, user_id=principal.user_id, now=utcnow()
    )
    detail = await queries.campaign_detail(session, campaign)
    body = {**detail.model_dump(mode="json"), "import": report.model_dump(mode="json")}
    return JSONResponse(body, status_code=201)


@router.get("")
async def list_campaigns(
    session: DbSession,
    principal: CampaignReader,
    status: str | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[CampaignItem]:
    """The tenant's campaigns, newest first."""
    return await queries.list_campaigns(
        session, principal.tenant_id, status=status, cursor=cursor, limit=limit
    )


@router.get("/stats")
async def campaign_stats(session: DbSession, principal: CampaignReader) -> CampaignStats:
    """Totals over the tenant's campaigns."""
    return await queries.campaign_stats(session, principal.tenant_id)


@router.get("/{campaign_id}")
async def get_campaign(campaign_id: str, session: DbSession, principal: CampaignReader) -> CampaignDetail:
    """One campaign with its variations and numbers."""
    return await queries.campaign_detail(
        session, await queries.get_campaign(session, principal.tenant_id, campaign_id)
    )


@router.get("/{campaign_id}/progress", response_class=StreamingResponse)
async def campaign_progress(
    campaign_id: str, session: DbSession, context: Context, principal: CampaignReader
) -> StreamingResponse:
    """Live progress as server-sent events: `campaign_updated` with the campaign item now and at
    each change (at most twice a second), until it completes or is cancelled."""
    await queries.get_campaign(session, principal.tenant_id, campaign_id)  # 404 before streaming

    async def events() -> AsyncIterator[str]:
        updates = lifecycle.watch_campaign(context.sessions, principal.tenant_id, campaign_id)
        async for item in updates:
            yield f"event: campaign_updated\ndata: {item.model_dump_json()}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/{campaign_id}/timeline")
async def campaign_timeline(
    campaign_id: str, session: DbSession, principal: CampaignReader, bucket: Bucket = Bucket.MINUTE
) -> Timeline:
    """Sent, delivered, read and failed per minute or hour, overall and per number."""
    return await reports.timeline(session, principal.tenant_id, campaign_id, bucket)


@router.patch("/{campaign_id}")
async def update_campaign(
    campaign_id: str, data: CampaignUpdate, session: DbSession, principal: CampaignWriter
) -> CampaignDetail:
    """Change a draft or paused campaign (409 campaign_not_editable otherwise)."""
    campaign = await service.update_campaign(
        session, principal.tenant_id, campaign_id, data, user_id=principal.user_id, now=utcnow()
    )
    return await queries.campaign_detail(session, campaign)


@router.delete("/{campaign_id}", status_code=204)
async def delete_campaign(campaign_id: str, session: DbSession, principal: CampaignWriter) -> None:
    """Delete a draft campaign."""
    await service.delete_campaign(session, principal.tenant_id, campaign_id)


async def _transition(
    session: DbSession, principal: Principal, campaign_id: str, action: Action
) -> CampaignItem:
    campaign = await lifecycle.transition(
        session, principal.tenant_id, campaign_id, action, user_id=principal.user_id, now=utcnow()
    )
    return CampaignItem.of(campaign)


@router.post("/{campaign_id}/start")
async def start_campaign(campaign_id: str, session: DbSession, principal: CampaignWriter) -> CampaignItem:
    """Start now, or at scheduled_at when it is ahead (status `scheduled`)."""
    return await _transition(session, principal, campaign_id, Action.START)


@router.post("/{campaign_id}/pause")
async def pause_campaign(campaign_id: str, session: DbSession, principal: CampaignWriter) -> CampaignItem:
    """Stop sending until resumed."""
    return await _transition(session, principal, campaign_id, Action.PAUSE)


@router.post("/{campaign_id}/resume")
async def resume_campaign(campaign_id: str, session: DbSession, principal: CampaignWriter) -> CampaignItem:
    """Send again after a pause."""
    return await _transition(session, principal, campaign_id, Action.RESUME)


@router.post("/{campaign_id}/cancel")
async def cancel_campaign(campaign_id: str, session: DbSession, principal: CampaignWriter) -> CampaignItem:
    """Stop for good; contacts not yet sent end `skipped`."""
    return await _transition(session, principal, campaign_id, Action.CANCEL)


@router.post("/{campaign_id}/contacts")
async def add_contacts(
    campaign_id: str, data: ContactsIn, session: DbSession, principal: CampaignWriter
) -> ImportReport:
    """Add contacts (merged with those already in the campaign; opt-outs excluded)."""
    campaign = await queries.get_campaign(session, principal.tenant_id, campaign_id, lock=True)
    return await contacts.add_contacts(session, campaign, contacts.contact_rows(data.contacts), now=utcnow())


@router.post("/{campaign_id}/contacts/import")
async def import_contacts(
    campaign_id: str, request: Request, session: DbSession, principal: CampaignWriter
) -> ImportReport:
    """Import a CSV sent as the request body (text/csv): a phone column, optionally name, and any
    other columns as variables."""
    campaign = await queries.get_campaign(session, principal.tenant_id, campaign_id, lock=True)
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > MAX_CSV_BYTES:
            raise PayloadTooLarge(f"the CSV is over {MAX_CSV_BYTES // (1024 * 1024)} MiB")
    if not data:
        raise InvalidInput("send the CSV file as the request body", code="invalid_csv")
    rows = read_csv(decode(bytes(data)))
    return await contacts.add_contacts(session, campaign, rows, now=utcnow(), imported=True)


@router.delete("/{campaign_id}/contacts/{campaign_contact_id}", status_code=204)
async def remove_contact(
    campaign_id: str, campaign_contact_id: str, session: DbSession, principal: CampaignWriter
) -> None:
    """Take a contact not yet written to out of the campaign (409 once it is being sent)."""
    await contacts.remove_contact(
        session,
        principal.tenant_id,
        campaign_id,
        campaign_contact_id,
        user_id=principal.user_id,
        now=utcnow(),
    )


@router.get("/{campaign_id}/contacts")
async def list_contacts(
    campaign_id: str,
    session: DbSession,
    principal: CampaignReader,
    status: CampaignContactStatus | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[CampaignContactItem]:
    """The campaign's contacts and what happened to each, optionally of one status."""
    return await queries.list_campaign_contacts(
        session, principal.tenant_id, campaign_id, status=status, cursor=cursor, limit=limit
    )


@router.get("/{campaign_id}/logs")
async def list_logs(
    campaign_id: str,
    session: DbSession,
    principal: CampaignReader,
    log_type: LogType | None = None,
    severity: Severity | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[CampaignLogItem]:
    """The campaign's logs, newest first."""
    return await queries.list_logs(
        session,
        principal.tenant_id,
        campaign_id,
        log_type=log_type,
        severity=severity,
        limit=limit,
        cursor=cursor,
    )


def _csv_download(lines: AsyncIterator[str], campaign_id: str, what: str) -> StreamingResponse:
    filename = f"campaign-{campaign_id}-{what}.csv"
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.get("/{campaign_id}/contacts/export", response_class=StreamingResponse)
async def export_contacts(
    campaign_id: str,
    session: DbSession,
    context: Context,
    principal: CampaignReader,
    status: CampaignContactStatus | None = None,
) -> StreamingResponse:
    """The campaign's contacts (optionally of one status) as a CSV file, streamed."""
    await queries.get_campaign(session, principal.tenant_id, campaign_id)  # 404 before streaming
    lines = reports.export_contacts(context.sessions, principal.tenant_id, campaign_id, status)
    return _csv_download(lines, campaign_id, "contacts")


@router.get("/{campaign_id}/logs/export", response_class=StreamingResponse)
async def export_logs(
    campaign_id: str,
    session: DbSession,
    context: Context,
    principal: CampaignReader,
    log_type: LogType | None = None,
    severity: Severity | None = None,
) -> StreamingResponse:
    """The campaign's logs (optionally of one type and severity) as a CSV file, streamed."""
    await queries.get_campaign(session, principal.tenant_id, campaign_id)  # 404 before streaming
    lines = reports.export_logs(context.sessions, principal.tenant_id, campaign_id, log_type, severity)
    return _csv_download(lines, campaign_id, "logs")
