"""The tenant's alerts and alert rules: supervisors and admins read them, admins change the rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from messaging_whatsapp.alerts import service
from messaging_whatsapp.alerts.rules import tenant_rules
from messaging_whatsapp.alerts.schemas import AlertItem, AlertState, RuleChange, RuleItem
from messaging_whatsapp.deps import DbSession
from messaging_whatsapp.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import AdminPrincipal, allowed
from messaging_whatsapp.tenancy.models import UserRole

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

# Alerts are about the numbers and their sends: whoever reads the numbers reads them.
AlertReader = Annotated[Principal, Depends(allowed(UserRole.SUPERVISOR, "instances:read"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("")
async def list_alerts(
    session: DbSession,
    principal: AlertReader,
    state: AlertState = AlertState.ALL,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[AlertItem]:
    """The tenant's alerts, newest raised first; `?state=open|resolved|all` (default all)."""
    found, next_cursor = await service.list_alerts(session, principal.tenant_id, state, cursor, limit)
    return Page(items=[AlertItem.of(alert) for alert in found], next_cursor=next_cursor)


@router.get("/rules")
async def list_rules(session: DbSession, principal: AlertReader) -> Page[RuleItem]:
    """Every alert rule as the tenant has it (its own settings, or the default)."""
    return Page(items=[RuleItem.of(rule) for rule in await tenant_rules(session, principal.tenant_id)])


@router.put("/rules/{kind}")
async def change_rule(kind: str, body: RuleChange, session: DbSession, principal: AdminPrincipal) -> RuleItem:
    """Enable or disable a rule, or change its threshold, window or minimum count; the next
    evaluation applies it (an alert whose rule is disabled is resolved then)."""
    return RuleItem.of(await service.change_rule(session, principal.tenant_id, kind, body))
