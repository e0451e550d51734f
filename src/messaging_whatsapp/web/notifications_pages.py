"""The events-in page (admins), /integrations/events: the four event types with their mapping,
edited in place through the API, and the latest events consumed with what became of each."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.notifications import service
from messaging_whatsapp.notifications.models import EventType
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import IntegrationReader
from messaging_whatsapp.tenancy.models import UserRole
from messaging_whatsapp.web import queries
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.render import page
from messaging_whatsapp.web.shell import open_shell

router = APIRouter(include_in_schema=False)

PAGE_PATH = "/integrations/events"
# Events the page lists (GET /api/v1/events pages through all of them).
EVENTS_SHOWN = 50
SCRIPT_TEXTS = ("Mapping saved", "Mapping removed")


@router.get(PAGE_PATH)
async def events_page(request: Request, context: Context) -> Response:
    """The mappings and the latest events in."""
    shell = await open_shell(request, context, role=UserRole.ADMIN)
    if isinstance(shell, Response):
        return shell
    async with context.sessions() as session:
        values = await _content(session, shell.principal)
    return shell.render("notifications/page.html", script_texts=SCRIPT_TEXTS, **values)


@router.get(PAGE_PATH + "/fragments/content")
async def content_fragment(request: Request, session: DbSession, principal: IntegrationReader) -> Response:
    """The page's mappings and events as they are now."""
    t = Texts(choose_language(request), await queries.tenant_timezone(session, principal.tenant_id))
    return page(request, "notifications/content.html", t, **await _content(session, principal))


async def _content(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    tenant_id = principal.tenant_id
    mappings = {m.event_type: m for m in await service.list_mappings(session, tenant_id)}
    events, _ = await service.list_events(session, tenant_id, None, EVENTS_SHOWN)
    return {
        "event_types": [event_type.value for event_type in EventType],
        "mappings": mappings,
        "events": events,
        "numbers": await service.template_numbers(session, tenant_id),
    }
