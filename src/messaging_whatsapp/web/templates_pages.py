"""The templates page (supervisors and admins see it, admins act): each number's templates with
their status, category, language and body, Meta's sync and the creation of templates for
simulator numbers; and the fragment the page fetches again after either."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.meta_cloud.management import PLACEHOLDER
from messaging_whatsapp.templates.models import MessageTemplateRow, TemplateStatus
from messaging_whatsapp.templates.service import numbers_by_scope, tenant_numbers
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import allowed
from messaging_whatsapp.tenancy.models import UserRole
from messaging_whatsapp.web import queries
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.render import page
from messaging_whatsapp.web.shell import open_shell

router = APIRouter(include_in_schema=False)

PAGE_PATH = "/templates"
SCRIPT_TEXTS = (
    "Template created",
    "Templates synced: {added} added, {updated} updated, {removed} removed",
    "{number}: {error}",
    "Syncing...",
)
# Whoever sees the page: supervisors and admins (agents read templates through the API only).
TemplatePageViewer = Annotated[Principal, Depends(allowed(UserRole.SUPERVISOR, "templates:read"))]


@dataclass
class ScopeGroup:
    """The templates one WABA (or one simulator number) sends, and the numbers that send them."""

    scope: str
    provider: str
    numbers: list[WhatsAppInstance]
    templates: list[MessageTemplateRow] = field(default_factory=list)

    @property
    def last_sync(self) -> datetime | None:
        """When Meta's list was last read for this scope (None: never, or not a Meta scope)."""
        return max((row.synced_at for row in self.templates if row.synced_at), default=None)


@router.get(PAGE_PATH)
async def templates_page(request: Request, context: Context) -> Response:
    """Every number's templates; the sync button and the creation form for admins."""
    shell = await open_shell(request, context, role=UserRole.SUPERVISOR)
    if isinstance(shell, Response):
        return shell
    async with context.sessions() as session:
        values = await _content(session, shell.principal)
    return shell.render("templates/page.html", script_texts=SCRIPT_TEXTS, **values)


@router.get(PAGE_PATH + "/fragments/content")
async def content_fragment(request: Request, session: DbSession, principal: TemplatePageViewer) -> Response:
    """The page's numbers and templates as they are now."""
    t = Texts(choose_language(request), await queries.tenant_timezone(session, principal.tenant_id))
    return page(request, "templates/content.html", t, **await _content(session, principal))


def body_parts(body: str) -> list[tuple[str, bool]]:
    """A template body as (text, is_parameter) pieces, so the page shows each {{n}} as a chip
    (rendered as text by Jinja's autoescape, never as markup)."""
    parts: list[tuple[str, bool]] = []
    at = 0
    for match in PLACEHOLDER.finditer(body):
        if match.start() > at:
            parts.append((body[at : match.start()], False))
        parts.append((match.group(1), True))
        at = match.end()
    if at < len(body):
        parts.append((body[at:], False))
    return parts


async def _content(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    tenant_id = principal.tenant_id
    numbers = await tenant_numbers(session, tenant_id)
    groups = {
        scope: ScopeGroup(scope, sharing[0].provider, sharing)
        for scope, sharing in numbers_by_scope(numbers).items()
    }
    row = MessageTemplateRow
    query = (
        select(row)
        .where(row.tenant_id == tenant_id, row.status != TemplateStatus.REMOVED.value)
        .order_by(row.name, row.language)
    )
    for template in await session.scalars(query):
        if template.scope in groups:
            groups[template.scope].templates.append(template)
    others = await session.scalars(
        select(WhatsAppInstance).where(
            WhatsAppInstance.tenant_id == tenant_id,
            WhatsAppInstance.provider == ProviderName.TWILIO.value,
            WhatsAppInstance.status != InstanceStatus.UNBOUND.value,
        )
    )
    # Meta's first (what a business really sends), then the simulator's.
    ordered = sorted(groups.values(), key=lambda g: (g.provider != "meta", g.numbers[0].name))
    meta_numbers = [n for n in numbers if n.provider == ProviderName.META.value]
    return {
        "groups": ordered,
        "unscoped": [n for n in meta_numbers if not n.waba_id],
        "twilio_numbers": list(others),
        "simulators": [n for n in numbers if n.provider == ProviderName.SIMULATOR.value],
        "has_meta": bool(meta_numbers),
        "can_act": principal.role == UserRole.ADMIN.value,
        "body_parts": body_parts,
    }
