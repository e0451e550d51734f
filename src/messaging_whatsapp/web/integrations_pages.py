"""The integrations page (admins): events out over HTTP. The tenant's webhook subscriptions, the
form that makes one (its secret is shown once, by the script, from the API's answer: the server
never renders it), and one subscription's recent deliveries with their attempts.

`/integrations?subscription=ID` picks the subscription whose deliveries show (bookmarkable); the
script fetches the same content again as a fragment after each change.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.integrations.catalogue import EVENT_GROUPS, EVERY_EVENT
from messaging_whatsapp.integrations.schemas import DeliveryItem, SubscriptionItem
from messaging_whatsapp.integrations.service import list_deliveries, list_subscriptions
from messaging_whatsapp.tenancy.deps import IntegrationReader
from messaging_whatsapp.tenancy.models import UserRole
from messaging_whatsapp.web import queries
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.render import page
from messaging_whatsapp.web.shell import open_shell

router = APIRouter(include_in_schema=False)

PAGE_PATH = "/integrations"
# The other tab: events other systems send us (built with the event mappings).
EVENTS_IN_PATH = "/integrations/events"
# Deliveries the page shows for the chosen subscription (the API pages through all of them).
DELIVERIES_SHOWN = 30
SCRIPT_TEXTS = (
    "Subscription created",
    "Subscription deleted",
    "Delete this subscription? Its deliveries are deleted too and nothing more is sent to it.",
    "Test event queued: it shows in the deliveries in a moment.",
    "Choose at least one event type.",
    "Copied.",
    "Copy failed: select the secret and copy it.",
    # The event groups' names (integrations/catalogue.py), which the form shows translated: listed
    # here so the catalog test sees them.
    *(name for name, _ in EVENT_GROUPS),
)


@router.get(PAGE_PATH)
async def integrations_page(
    request: Request, context: Context, subscription: str | None = Query(default=None, max_length=36)
) -> Response:
    """The subscriptions, the form for a new one and the chosen one's deliveries."""
    shell = await open_shell(request, context, role=UserRole.ADMIN)
    if isinstance(shell, Response):
        return shell
    async with context.sessions() as session:
        values = await _content(session, shell.principal.tenant_id, subscription)
    return shell.render(
        "integrations/page.html",
        script_texts=SCRIPT_TEXTS,
        groups=EVENT_GROUPS,
        every_event=EVERY_EVENT,
        events_in_path=EVENTS_IN_PATH,
        **values,
    )


@router.get(PAGE_PATH + "/fragments/content")
async def content_fragment(
    request: Request,
    session: DbSession,
    principal: IntegrationReader,
    subscription: str | None = Query(default=None, max_length=36),
) -> Response:
    """The subscriptions and the chosen one's deliveries as they are now."""
    t = Texts(choose_language(request), await queries.tenant_timezone(session, principal.tenant_id))
    values = await _content(session, principal.tenant_id, subscription)
    return page(request, "integrations/content.html", t, every_event=EVERY_EVENT, **values)


async def _content(session: AsyncSession, tenant_id: str, chosen: str | None) -> dict[str, Any]:
    rows, _ = await list_subscriptions(session, tenant_id)
    subscriptions = [SubscriptionItem.of(row) for row in rows]
    selected = next((item for item in subscriptions if item.id == chosen), None)
    selected = selected or (subscriptions[0] if subscriptions else None)
    deliveries: list[DeliveryItem] = []
    if selected is not None:
        found, _ = await list_deliveries(session, tenant_id, selected.id, None, DELIVERIES_SHOWN)
        deliveries = [DeliveryItem.of(row, attempts) for row, attempts in found]
    return {"subscriptions": subscriptions, "selected": selected, "deliveries": deliveries}
