"""The alerts page (supervisors and admins): the open alerts, the past ones and the tenant's rules,
which admins change in place; and the fragments the live banner and the page fetch when an alert
is raised or resolved."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.alerts.rules import tenant_rules
from messaging_whatsapp.alerts.schemas import AlertState
from messaging_whatsapp.alerts.service import list_alerts, number_names, open_alerts
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import allowed
from messaging_whatsapp.tenancy.models import UserRole
from messaging_whatsapp.web import queries
from messaging_whatsapp.web.alert_banner import load_banner
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.render import page
from messaging_whatsapp.web.shell import open_shell

router = APIRouter(include_in_schema=False)

PAGE_PATH = "/alerts"
# Resolved alerts the page shows (the API pages through all of them).
PAST_SHOWN = 20
SCRIPT_TEXTS = ("Rule saved",)
# As the alerts API: whoever reads the numbers.
AlertViewer = Annotated[Principal, Depends(allowed(UserRole.SUPERVISOR, "instances:read"))]


@router.get(PAGE_PATH)
async def alerts_page(request: Request, context: Context) -> Response:
    """The open alerts, the latest resolved and the rules."""
    shell = await open_shell(request, context, role=UserRole.SUPERVISOR)
    if isinstance(shell, Response):
        return shell
    async with context.sessions() as session:
        values = await _content(session, shell.principal)
    return shell.render("alerts/page.html", script_texts=SCRIPT_TEXTS, **values)


@router.get(PAGE_PATH + "/fragments/content")
async def content_fragment(request: Request, session: DbSession, principal: AlertViewer) -> Response:
    """The page's alerts and rules as they are now."""
    t = await _texts(request, session, principal)
    return page(request, "alerts/content.html", t, **await _content(session, principal))


@router.get(PAGE_PATH + "/fragments/banner")
async def banner_fragment(request: Request, session: DbSession, principal: AlertViewer) -> Response:
    """The banner as it is now (hidden when no alert is open)."""
    t = await _texts(request, session, principal)
    return page(request, "alerts/banner.html", t, banner=await load_banner(session, principal.tenant_id))


async def _texts(request: Request, session: AsyncSession, principal: Principal) -> Texts:
    return Texts(choose_language(request), await queries.tenant_timezone(session, principal.tenant_id))


async def _content(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    tenant_id = principal.tenant_id
    current = await open_alerts(session, tenant_id)
    past, _ = await list_alerts(session, tenant_id, AlertState.RESOLVED, None, PAST_SHOWN)
    return {
        "open_alerts": current,
        "past_alerts": past,
        "numbers": await number_names(session, tenant_id, current + past),
        "rules": await tenant_rules(session, tenant_id),
        "can_change": principal.role == UserRole.ADMIN.value,
        "now": utcnow(),
    }
