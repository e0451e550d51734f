"""The Analytics page (supervisors and admins): how messaging went over a range, per number and per
campaign, with charts and CSV export.

The figures are rendered by the server (the same service as `GET /api/v1/analytics/*`); the
charts draw the series the page carries as JSON. While the range ends now, live events of
messages and campaigns make the page fetch its figures again (`/analytics/figures`, at most once
every few seconds: the rollup folds changes every two).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.analytics import service
from messaging_whatsapp.analytics.schemas import Bucket, DeliveryReport, VolumeReport
from messaging_whatsapp.campaigns.models import Campaign
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context
from messaging_whatsapp.errors import EngineError
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.tenancy.models import UserRole
from messaging_whatsapp.web.i18n import PORTUGUESE, Texts
from messaging_whatsapp.web.shell import Shell, open_shell

router = APIRouter(include_in_schema=False)

RANGES = ("today", "week", "month", "custom")
RANGE_DAYS = {"week": 7, "month": 30}
# Campaigns offered in the filter: the newest.
CAMPAIGN_CHOICES = 200
# What the page says of a refused filter (an unknown number or campaign: the API's own message).
PROBLEMS = {
    "range_reversed": "The start must be before the end.",
    "range_too_long": "The period can be at most 400 days.",
    "not_found": "That number or campaign was not found.",
}
SCRIPT_TEXTS = ("Sends", "Deliveries", "Reads", "Failures", "Received", "Sent out", "When")


@dataclass(frozen=True)
class Choice:
    """What the filter bar asks for, as typed (strings of the query)."""

    range: str = "week"
    start: str = ""
    end: str = ""
    instance_id: str = ""
    campaign_id: str = ""
    bucket: str = ""

    def query(self, **more: str) -> str:
        """These filters (and `more`) as a query string, empty values left out."""
        values = {
            "range": self.range,
            "from": self.start,
            "to": self.end,
            "instance_id": self.instance_id,
            "campaign_id": self.campaign_id,
            "bucket": self.bucket,
            **more,
        }
        return urlencode({key: value for key, value in values.items() if value})


def _choice(
    chosen: Annotated[str, Query(alias="range", max_length=10)] = "week",
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
    instance_id: Annotated[str, Query(max_length=36)] = "",
    campaign_id: Annotated[str, Query(max_length=36)] = "",
    bucket: Annotated[str, Query(max_length=8)] = "",
) -> Choice:
    return Choice(chosen if chosen in RANGES else "week", start, end, instance_id, campaign_id, bucket)


PageChoice = Annotated[Choice, Depends(_choice)]


@dataclass(frozen=True)
class Figures:
    """What the page shows: both reports, or the problem with the filters."""

    choice: Choice
    delivery: DeliveryReport | None
    volume: VolumeReport | None
    error: str | None
    live: bool


def _bounds(choice: Choice, t: Texts, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The range the picker names, in the tenant's zone (custom: whole days, both included)."""
    if choice.range == "today":
        return datetime.combine(t.local(now).date(), time(), t.zone), None
    if choice.range in RANGE_DAYS:
        return now - timedelta(days=RANGE_DAYS[choice.range]), None
    start = date.fromisoformat(choice.start) if choice.start else t.local(now).date() - timedelta(days=7)
    end = date.fromisoformat(choice.end) if choice.end else t.local(now).date()
    return datetime.combine(start, time(), t.zone), datetime.combine(end + timedelta(days=1), time(), t.zone)


def _bucket(choice: Choice) -> Bucket:
    if choice.bucket in (Bucket.HOUR.value, Bucket.DAY.value):
        return Bucket(choice.bucket)
    return Bucket.HOUR if choice.range == "today" else Bucket.DAY


async def _figures(session: AsyncSession, shell: Shell, choice: Choice) -> Figures:
    """Both reports for the filters, or the reason they cannot be read (shown in place)."""
    tenant_id, now = shell.principal.tenant_id, utcnow()
    filters = service.Filters(choice.instance_id or None, choice.campaign_id or None)
    try:
        start, end = _bounds(choice, shell.t, now)
        period = await service.read_period(session, tenant_id, now, start, end, _bucket(choice))
        await service.check_filters(session, tenant_id, filters)
    except ValueError:
        return Figures(choice, None, None, shell.t("Dates must be written as YYYY-MM-DD."), False)
    except EngineError as problem:
        return Figures(choice, None, None, shell.t(PROBLEMS.get(problem.code, problem.message)), False)
    delivery = await service.delivery(session, tenant_id, period, filters)
    volume = await service.volume(session, tenant_id, period, filters)
    return Figures(choice, delivery, volume, None, choice.range != "custom")


async def _options(session: AsyncSession, tenant_id: str) -> tuple[list[Any], list[Any]]:
    """The tenant's numbers and newest campaigns, for the filters."""
    numbers = await session.execute(
        select(WhatsAppInstance.id, WhatsAppInstance.display_number, WhatsAppInstance.instance_name)
        .where(WhatsAppInstance.tenant_id == tenant_id)
        .order_by(WhatsAppInstance.display_number, WhatsAppInstance.id)
    )
    campaigns = await session.execute(
        select(Campaign.id, Campaign.name)
        .where(Campaign.tenant_id == tenant_id)
        .order_by(Campaign.created_at.desc())
        .limit(CAMPAIGN_CHOICES)
    )
    return list(numbers), list(campaigns)


@router.get("/analytics")
async def analytics_page(request: Request, context: Context, choice: PageChoice) -> Response:
    """The Analytics page."""
    shell = await open_shell(request, context, role=UserRole.SUPERVISOR)
    if not isinstance(shell, Shell):
        return shell
    async with context.sessions() as session:
        figures = await _figures(session, shell, choice)
        numbers, campaigns = await _options(session, shell.principal.tenant_id)
    return shell.render(
        "analytics/page.html",
        script_texts=SCRIPT_TEXTS,
        figures=figures,
        numbers=numbers,
        campaigns=campaigns,
        **_formats(shell.t),
    )


@router.get("/analytics/figures")
async def analytics_figures(request: Request, context: Context, choice: PageChoice) -> Response:
    """The page's figures alone (stat cards, charts' data, tables), fetched again on live events."""
    shell = await open_shell(request, context, role=UserRole.SUPERVISOR)
    if not isinstance(shell, Shell):
        return shell
    async with context.sessions() as session:
        figures = await _figures(session, shell, choice)
    return shell.render("analytics/figures.html", figures=figures, **_formats(shell.t))


def _formats(t: Texts) -> dict[str, Any]:
    """Number, percentage and duration formats in the viewer's language."""
    portuguese = t.language == PORTUGUESE

    def count(value: int) -> str:
        text = f"{value:,}"
        return text.replace(",", ".") if portuguese else text

    def decimal(value: float, places: int = 1) -> str:
        text = f"{value:,.{places}f}"
        return text.translate(str.maketrans(",.", ".,")) if portuguese else text

    def percent(value: float) -> str:
        return f"{decimal(value)} %" if portuguese else f"{decimal(value)}%"

    def duration(milliseconds: int | None) -> str:
        if milliseconds is None:
            return "—"
        seconds = milliseconds / 1000
        if seconds < 60:
            return f"{decimal(seconds)} s"
        if seconds < 3600:
            return f"{int(seconds // 60)} min {int(seconds % 60)} s"
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"

    def bucket_label(moment: datetime, bucket: str) -> str:
        if bucket == Bucket.HOUR.value:
            return f"{t.short_date(moment.date())} {t.clock(moment)}"
        return t.short_date(moment.date())

    return {"count": count, "percent": percent, "duration": duration, "bucket_label": bucket_label}
