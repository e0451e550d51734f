"""The automation routes under /api/v1: thin over the service. Supervisors and admins read,
admins change (API keys: automation:read / automation:write)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from messaging_whatsapp.automation import service
from messaging_whatsapp.automation.schemas import (
    BusinessHoursIn,
    BusinessHoursOut,
    IntentsIn,
    IntentsOut,
    RuleIn,
    RuleItem,
    RulePatch,
)
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import DbSession
from messaging_whatsapp.pagination import Page
from messaging_whatsapp.tenancy.deps import AutomationReader, AutomationWriter

router = APIRouter(prefix="/api/v1", tags=["automation"])


@router.get("/automation/intents")
async def read_intents(session: DbSession, principal: AutomationReader) -> IntentsOut:
    """The tenant's intents in the order they are tried (seed 001's until it sets its own)."""
    return await service.read_intents(session, principal.tenant_id)


@router.put("/automation/intents")
async def replace_intents(body: IntentsIn, session: DbSession, principal: AutomationWriter) -> IntentsOut:
    """Replace the tenant's intents: `{"intents": [{"name", "keywords": [...], "button_payloads":
    [...]}]}`; names unique (a-z, 0-9, _), at most 30; `[]` turns intent detection off."""
    return await service.replace_intents(session, principal.tenant_id, body, utcnow())


@router.get("/automation/rules")
async def list_rules(session: DbSession, principal: AutomationReader) -> Page[RuleItem]:
    """Every auto-reply rule of the tenant, in the order they are evaluated (at most 100: one page)."""
    rules = await service.list_rules(session, principal.tenant_id)
    return Page(items=[service.rule_item(rule) for rule in rules])


@router.post("/automation/rules", status_code=201)
async def create_rule(body: RuleIn, session: DbSession, principal: AutomationWriter) -> RuleItem:
    """A new rule: `{"name", "when": {"type", ...}, "then": {"type", ...}, "instance_ids",
    "once_per_ticket", "enabled", "position"}` (README: Automation)."""
    return service.rule_item(await service.create_rule(session, principal.tenant_id, body, utcnow()))


@router.get("/automation/rules/{rule_id}")
async def get_rule(rule_id: str, session: DbSession, principal: AutomationReader) -> RuleItem:
    """One rule."""
    return service.rule_item(await service.get_rule(session, principal.tenant_id, rule_id))


@router.patch("/automation/rules/{rule_id}")
async def change_rule(
    rule_id: str, body: RulePatch, session: DbSession, principal: AutomationWriter
) -> RuleItem:
    """Change a rule: the fields given replace the rule's (`when` and `then` whole)."""
    return service.rule_item(await service.change_rule(session, principal.tenant_id, rule_id, body, utcnow()))


@router.delete("/automation/rules/{rule_id}", status_code=204)
async def delete_rule(rule_id: str, session: DbSession, principal: AutomationWriter) -> Response:
    """Delete a rule."""
    await service.delete_rule(session, principal.tenant_id, rule_id)
    return Response(status_code=204)


@router.get("/automation/business-hours")
async def read_business_hours(session: DbSession, principal: AutomationReader) -> BusinessHoursOut:
    """The tenant's business hours, away message and (read-only) time zone."""
    return await service.read_business_hours(session, principal.tenant_id, utcnow())


@router.put("/automation/business-hours")
async def change_business_hours(
    body: BusinessHoursIn, session: DbSession, principal: AutomationWriter
) -> BusinessHoursOut:
    """Replace the business hours (`{"schedule": {"mon": [["08:00", "18:00"]], ...} | null,
    "away_message"}`); the time zone is the tenant's (PATCH /api/v1/tenant changes it)."""
    return await service.change_business_hours(session, principal.tenant_id, body, utcnow())
