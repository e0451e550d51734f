"""The automation page (supervisors read, admins change): the auto-reply rules with a form to
create and edit them, the intents with their keywords as chips, and the business hours with the
away message. Every change goes through the automation API, whose 422s the form shows next to
their fields; the rules' list is a fragment the page fetches again after each change."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.automation import service
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import AutomationReader
from messaging_whatsapp.tenancy.hours import WEEKDAYS
from messaging_whatsapp.tenancy.models import User, UserRole
from messaging_whatsapp.web import queries
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.render import page
from messaging_whatsapp.web.shell import open_shell

router = APIRouter(include_in_schema=False)

PAGE_PATH = "/automation"
# The shifts a weekday shows in the form (the API takes up to six).
SHIFTS = 2
SCRIPT_TEXTS = (
    "Rule saved",
    "Rule deleted",
    'Delete the rule "{name}"?',
    "Intents saved",
    "Business hours saved",
    "Remove",
    "New rule",
    "Edit rule",
)


@router.get(PAGE_PATH)
async def automation_page(request: Request, context: Context) -> Response:
    """The rules, the intents and the business hours."""
    shell = await open_shell(request, context, role=UserRole.SUPERVISOR)
    if isinstance(shell, Response):
        return shell
    async with context.sessions() as session:
        values = await _content(session, shell.principal)
    return shell.render("automation/page.html", script_texts=SCRIPT_TEXTS, **values)


@router.get(PAGE_PATH + "/fragments/rules")
async def rules_fragment(request: Request, session: DbSession, principal: AutomationReader) -> Response:
    """The rules' card as it is now."""
    t = Texts(choose_language(request), await queries.tenant_timezone(session, principal.tenant_id))
    return page(request, "automation/rules.html", t, **await _content(session, principal))


async def _content(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    tenant_id = principal.tenant_id
    rules = [service.rule_item(rule) for rule in await service.list_rules(session, tenant_id)]
    numbers = (
        await session.execute(
            select(WhatsAppInstance.id, WhatsAppInstance.name, WhatsAppInstance.display_number)
            .where(WhatsAppInstance.tenant_id == tenant_id)
            .order_by(WhatsAppInstance.name)
        )
    ).all()
    users = (
        await session.execute(
            select(User.id, User.email)
            .where(User.tenant_id == tenant_id, User.is_active.is_(True))
            .order_by(User.email)
        )
    ).all()
    intents = await service.read_intents(session, tenant_id)
    hours = await service.read_business_hours(session, tenant_id, utcnow())
    return {
        "rules": rules,
        "rules_json": [rule.model_dump(mode="json") for rule in rules],
        "numbers": [{"id": n.id, "name": n.name, "display_number": n.display_number} for n in numbers],
        "users": [{"id": u.id, "email": u.email} for u in users],
        "intents": intents,
        "hours": hours,
        "weekdays": WEEKDAYS,
        "shifts": SHIFTS,
        "can_change": principal.role == UserRole.ADMIN.value,
    }
