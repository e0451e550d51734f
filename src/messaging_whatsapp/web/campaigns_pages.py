"""The campaign pages: the list, the create and edit form, and a campaign's detail, with the
fragments their script fetches (a list row, pages of contacts and logs).

Supervisors and admins only (the campaign API's roles): an agent gets the 403 page. The pages
read through the campaigns domain; every change goes through the campaign API from the browser
(MW.api), so the page answers exactly what the API answers, refusals included.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns import queries
from messaging_whatsapp.campaigns.lifecycle import CLOSED
from messaging_whatsapp.campaigns.models import CampaignContactStatus, CampaignStatus, LogType, Severity
from messaging_whatsapp.campaigns.pacing import WarmupSchedule
from messaging_whatsapp.campaigns.reports import NumberOutlook, campaign_numbers, number_outlooks
from messaging_whatsapp.campaigns.schemas import CampaignDetail, CampaignItem
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.errors import InvalidInput, NotFound
from messaging_whatsapp.tenancy.deps import CampaignReader
from messaging_whatsapp.tenancy.models import UserRole
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.queries import instances, tenant_timezone
from messaging_whatsapp.web.render import page
from messaging_whatsapp.web.shell import Shell, open_shell

router = APIRouter(include_in_schema=False)
E = TypeVar("E", bound=StrEnum)
LIST_PAGE = 50
TABLE_PAGE = 25
EDITABLE = frozenset({CampaignStatus.DRAFT.value, CampaignStatus.PAUSED.value})

# The actions a campaign in each status offers (the API's transitions; delete: drafts only).
ACTIONS: dict[str, tuple[str, ...]] = {
    "draft": ("start", "edit", "cancel", "delete"),
    "scheduled": ("pause", "cancel"),
    "running": ("pause", "cancel"),
    "paused": ("resume", "edit", "cancel"),
    "completed": (),
    "cancelled": (),
}

STATUS_LABELS = {
    "draft": "Draft",
    "scheduled": "Scheduled",
    "running": "Running",
    "paused": "Paused",
    "completed": "Completed",
    "cancelled": "Cancelled",
}
CONTACT_STATUS_LABELS = {
    "pending": "Waiting",
    "sending": "Sending",
    "sent": "Sent",
    "delivered": "Delivered",
    "read": "Read",
    "failed": "Failed",
    "opted_out": "Opted out",
    "skipped": "Skipped",
}
SEVERITY_LABELS = {"info": "Info", "warning": "Warning", "error": "Error", "critical": "Critical"}
LOG_TYPE_LABELS = {
    "created": "Campaign created",
    "started": "Campaign started",
    "paused": "Campaign paused",
    "resumed": "Campaign resumed",
    "completed": "Campaign completed",
    "cancelled": "Campaign cancelled",
    "instance_selected": "Number selected",
    "instance_paused": "Number paused",
    "instance_resumed": "Number resumed",
    "message_sent": "Message sent",
    "message_delivered": "Message delivered",
    "message_read": "Message read",
    "message_failed": "Message failed",
    "rotation_changed": "Rotation changed",
    "contact_added": "Contacts added",
    "contact_removed": "Contact removed",
    "limit_reached": "Limit reached",
    "health_issue": "Health issue",
    "error": "Error",
    "contact_opted_out": "Contact opted out",
    "instance_disconnected": "Number disconnected",
}
HEALTH_LABELS = {"excellent": "Excellent", "good": "Good", "warning": "Warning", "critical": "Critical"}
WEEKDAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ROTATION_LABELS = {"intelligent": "Intelligent", "balanced": "Balanced", "round_robin": "Round robin"}

# The API's validation messages people meet most in the form, shown in the page's language.
API_MESSAGES = (
    "Field required",
    "String should have at least 1 character",
    "Input should be greater than or equal to 0",
    "Input should be greater than or equal to 1",
    "String should match pattern '^https?://'",
    "interval_max_s must not be below interval_min_s",
    "send_window start and end must differ",
    "a variation has exactly one of content or template",
    "a template variation takes no media (the template defines its header)",
)

# Strings the pages' script shows (handed over in the page's language).
SCRIPT_TEXTS = (
    *API_MESSAGES,
    *STATUS_LABELS.values(),
    *CONTACT_STATUS_LABELS.values(),
    *SEVERITY_LABELS.values(),
    *LOG_TYPE_LABELS.values(),
    *HEALTH_LABELS.values(),
    *ROTATION_LABELS.values(),
    *WEEKDAY_LABELS,
    "Time",
    "Saving...",
    "Save draft",
    "Save changes",
    "Campaign saved.",
    "Importing the contacts...",
    "{added} contacts accepted.",
    "{count} rows refused:",
    "{count} duplicates merged, {opted_out} opted out.",
    "line {line}",
    "Fix the fields marked in red.",
    "Paused: every number of the campaign is disconnected; it resumes when one reconnects.",
    "Paused by a user.",
    "Sample: {phone}",
    "No CSV yet: variables show as written.",
    "{rows} rows, columns: {columns}",
    "Delete this draft? This cannot be undone.",
    "Cancel this campaign? Contacts not yet sent will be skipped.",
    "Campaign started.",
    "Campaign paused.",
    "Campaign resumed.",
    "Campaign cancelled.",
    "Campaign deleted.",
    "No sends yet.",
    "Text",
    "Template",
    "Variation {n}",
    "Remove",
    "Open the campaign",
)


def _warmup(context: EngineContext) -> WarmupSchedule:
    settings = context.settings
    return WarmupSchedule(settings.campaign_warmup_first_day, settings.campaign_warmup_growth)


async def _shell(request: Request, context: EngineContext) -> Shell | Response:
    return await open_shell(request, context, role=UserRole.SUPERVISOR)


def _choice(kind: type[E], value: str | None, name: str) -> E | None:
    """A filter's value (an empty one, as a form sends "All", is none); 422 for an unknown one."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(f"{name} must be one of: {', '.join(kind)}", code="validation_error") from None


def more_url(campaign_id: str, table: str, filters: dict[str, str], cursor: str) -> str:
    """The next page of a campaign's contacts or logs, keeping the filters that are set."""
    query = urlencode({**{key: value for key, value in filters.items() if value}, "cursor": cursor})
    return f"/campaigns/{campaign_id}/fragments/{table}?{query}"


async def _numbers_of(
    session: AsyncSession, tenant_id: str, items: list[CampaignItem]
) -> dict[str, list[str]]:
    return await campaign_numbers(session, tenant_id, [item.id for item in items])


async def _number_names(session: AsyncSession, tenant_id: str) -> dict[str, str]:
    return {number.id: number.display_number for number in await instances(session, tenant_id)}


def _shared_values() -> dict[str, Any]:
    """What every campaign template reads: the labels of statuses and types, the actions each
    status offers, the next-page URL."""
    return {
        "more_url": more_url,
        "STATUS_LABELS": STATUS_LABELS,
        "CONTACT_STATUS_LABELS": CONTACT_STATUS_LABELS,
        "SEVERITY_LABELS": SEVERITY_LABELS,
        "LOG_TYPE_LABELS": LOG_TYPE_LABELS,
        "HEALTH_LABELS": HEALTH_LABELS,
        "ROTATION_LABELS": ROTATION_LABELS,
        "ACTIONS": ACTIONS,
    }


async def _fragment_texts(request: Request, session: AsyncSession, tenant_id: str) -> Texts:
    return Texts(choose_language(request), await tenant_timezone(session, tenant_id))


@router.get("/campaigns")
async def campaign_list(request: Request, context: Context, session: DbSession) -> Response:
    """The tenant's campaigns, newest first, live."""
    shell = await _shell(request, context)
    if not isinstance(shell, Shell):
        return shell
    listed = await queries.list_campaigns(
        session, shell.principal.tenant_id, status=None, cursor=None, limit=LIST_PAGE
    )
    stats = await queries.campaign_stats(session, shell.principal.tenant_id)
    return shell.render(
        "campaigns/list.html",
        script_texts=SCRIPT_TEXTS,
        campaigns=listed.items,
        next_cursor=listed.next_cursor,
        stats=stats,
        campaign_numbers=await _numbers_of(session, shell.principal.tenant_id, listed.items),
        **_shared_values(),
    )


@router.get("/campaigns/fragments/rows")
async def campaign_rows(
    request: Request, session: DbSession, principal: CampaignReader, cursor: str | None = None
) -> Response:
    """The next page of the list."""
    t = await _fragment_texts(request, session, principal.tenant_id)
    listed = await queries.list_campaigns(
        session, principal.tenant_id, status=None, cursor=cursor, limit=LIST_PAGE
    )
    return page(
        request,
        "campaigns/rows.html",
        t,
        campaigns=listed.items,
        next_cursor=listed.next_cursor,
        campaign_numbers=await _numbers_of(session, principal.tenant_id, listed.items),
        **_shared_values(),
    )


@router.get("/campaigns/fragments/row/{campaign_id}")
async def campaign_row(
    campaign_id: str, request: Request, session: DbSession, principal: CampaignReader
) -> Response:
    """One row of the list (a campaign the list has not shown yet); 404 for another tenant's."""
    t = await _fragment_texts(request, session, principal.tenant_id)
    item = CampaignItem.of(await queries.get_campaign(session, principal.tenant_id, campaign_id))
    return page(
        request,
        "campaigns/rows.html",
        t,
        campaigns=[item],
        next_cursor=None,
        campaign_numbers=await _numbers_of(session, principal.tenant_id, [item]),
        **_shared_values(),
    )


@router.get("/campaigns/new")
async def new_campaign(request: Request, context: Context, session: DbSession) -> Response:
    """The form for a new campaign."""
    shell = await _shell(request, context)
    if not isinstance(shell, Shell):
        return shell
    return await _form(shell, context, session, None)


@router.get("/campaigns/{campaign_id}/edit")
async def edit_campaign(campaign_id: str, request: Request, context: Context, session: DbSession) -> Response:
    """The form for a draft or paused campaign (others show it read-only, saying why)."""
    shell = await _shell(request, context)
    if not isinstance(shell, Shell):
        return shell
    try:
        campaign = await queries.get_campaign(session, shell.principal.tenant_id, campaign_id)
    except NotFound:
        return shell.render("campaigns/not_found.html", status_code=404)
    return await _form(shell, context, session, await queries.campaign_detail(session, campaign))


async def _form(
    shell: Shell, context: EngineContext, session: AsyncSession, campaign: CampaignDetail | None
) -> Response:
    numbers = await number_outlooks(session, shell.principal.tenant_id, utcnow(), _warmup(context))
    sample = None
    if campaign is not None:
        contacts = await queries.list_campaign_contacts(
            session, shell.principal.tenant_id, campaign.id, status=None, cursor=None, limit=1
        )
        if contacts.items:
            first = contacts.items[0]
            sample = {
                "phone": first.contact.phone or "",
                "name": first.contact.name or "",
                **{key: str(value) for key, value in (first.variables or {}).items()},
            }
    return shell.render(
        "campaigns/form.html",
        script_texts=SCRIPT_TEXTS,
        campaign=campaign,
        editable=campaign is None or campaign.status in EDITABLE,
        numbers=numbers,
        sample=sample,
        initial=campaign.model_dump(mode="json") if campaign else None,
        **_shared_values(),
    )


@router.get("/campaigns/{campaign_id}")
async def campaign_page(campaign_id: str, request: Request, context: Context, session: DbSession) -> Response:
    """One campaign: counters, chart, numbers, variations, contacts and logs, live."""
    shell = await _shell(request, context)
    if not isinstance(shell, Shell):
        return shell
    try:
        campaign = await queries.get_campaign(session, shell.principal.tenant_id, campaign_id)
    except NotFound:
        return shell.render("campaigns/not_found.html", status_code=404)
    detail = await queries.campaign_detail(session, campaign)
    outlooks = await number_outlooks(session, shell.principal.tenant_id, utcnow(), _warmup(context))
    by_id: dict[str, NumberOutlook] = {number.id: number for number in outlooks}
    contacts = await queries.list_campaign_contacts(
        session, shell.principal.tenant_id, campaign_id, status=None, cursor=None, limit=TABLE_PAGE
    )
    logs = await queries.list_logs(
        session, shell.principal.tenant_id, campaign_id, log_type=None, severity=None, limit=TABLE_PAGE
    )
    return shell.render(
        "campaigns/detail.html",
        script_texts=SCRIPT_TEXTS,
        campaign=detail,
        numbers=by_id,
        contacts=contacts.items,
        contacts_cursor=contacts.next_cursor,
        logs=logs.items,
        logs_cursor=logs.next_cursor,
        closed=detail.status in CLOSED,
        filters={"status": "", "log_type": "", "severity": ""},
        number_names={number_id: number.display_number for number_id, number in by_id.items()},
        **_shared_values(),
    )


@router.get("/campaigns/{campaign_id}/fragments/contacts")
async def contact_rows(
    campaign_id: str,
    request: Request,
    session: DbSession,
    principal: CampaignReader,
    status: Annotated[str | None, Query(max_length=32)] = None,
    cursor: str | None = None,
) -> Response:
    """A page of the campaign's contacts, optionally of one status."""
    t = await _fragment_texts(request, session, principal.tenant_id)
    chosen = _choice(CampaignContactStatus, status, "status")
    found = await queries.list_campaign_contacts(
        session, principal.tenant_id, campaign_id, status=chosen, cursor=cursor, limit=TABLE_PAGE
    )
    return page(
        request,
        "campaigns/contact_rows.html",
        t,
        campaign_id=campaign_id,
        contacts=found.items,
        contacts_cursor=found.next_cursor,
        filters={"status": chosen.value if chosen else ""},
        number_names=await _number_names(session, principal.tenant_id),
        **_shared_values(),
    )


@router.get("/campaigns/{campaign_id}/fragments/logs")
async def log_rows(
    campaign_id: str,
    request: Request,
    session: DbSession,
    principal: CampaignReader,
    log_type: Annotated[str | None, Query(max_length=32)] = None,
    severity: Annotated[str | None, Query(max_length=32)] = None,
    cursor: str | None = None,
) -> Response:
    """A page of the campaign's logs, newest first, optionally of one type and severity."""
    t = await _fragment_texts(request, session, principal.tenant_id)
    found = await queries.list_logs(
        session,
        principal.tenant_id,
        campaign_id,
        log_type=_choice(LogType, log_type, "log_type"),
        severity=_choice(Severity, severity, "severity"),
        limit=TABLE_PAGE,
        cursor=cursor,
    )
    return page(
        request,
        "campaigns/log_rows.html",
        t,
        campaign_id=campaign_id,
        logs=found.items,
        logs_cursor=found.next_cursor,
        filters={
            "log_type": log_type or "",
            "severity": severity or "",
        },
        **_shared_values(),
    )
