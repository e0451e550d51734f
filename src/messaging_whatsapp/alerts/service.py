"""A tenant's alerts and rules: listed, the open ones for the banner, a rule changed."""

from __future__ import annotations

from sqlalchemy import and_, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.alerts.models import Alert
from messaging_whatsapp.alerts.rules import Rule, Severity, changed_rule, rule_kind, save_rule, tenant_rules
from messaging_whatsapp.alerts.schemas import AlertState, RuleChange
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.pagination import decode_time_cursor, encode_cursor


async def list_alerts(
    session: AsyncSession, tenant_id: str, state: AlertState, cursor: str | None, limit: int
) -> tuple[list[Alert], str | None]:
    """The tenant's alerts in `state`, newest raised first, with the next page's cursor."""
    query = select(Alert).where(Alert.tenant_id == tenant_id)
    if state is AlertState.OPEN:
        query = query.where(Alert.resolved_at.is_(None))
    elif state is AlertState.RESOLVED:
        query = query.where(Alert.resolved_at.is_not(None))
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(or_(Alert.raised_at < at, and_(Alert.raised_at == at, Alert.id < last_id)))
    query = query.order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    next_cursor = encode_cursor(rows[limit - 1].raised_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def open_alerts(session: AsyncSession, tenant_id: str) -> list[Alert]:
    """The tenant's open alerts, the most severe first, then the newest."""
    severity = case((Alert.severity == Severity.CRITICAL.value, 0), else_=1)
    query = (
        select(Alert)
        .where(Alert.tenant_id == tenant_id, Alert.resolved_at.is_(None))
        .order_by(severity, Alert.raised_at.desc(), Alert.id)
    )
    return list((await session.scalars(query)).all())


async def number_names(session: AsyncSession, tenant_id: str, alerts: list[Alert]) -> dict[str, str]:
    """How the tenant knows the numbers the alerts are about: name and number, by instance id."""
    ids = sorted({a.instance_id for a in alerts if a.instance_id})
    if not ids:
        return {}
    query = select(WhatsAppInstance.id, WhatsAppInstance.name, WhatsAppInstance.display_number).where(
        WhatsAppInstance.tenant_id == tenant_id, WhatsAppInstance.id.in_(ids)
    )
    rows = await session.execute(query)
    return {row.id: " ".join(part for part in (row.name, row.display_number) if part) for row in rows}


async def change_rule(session: AsyncSession, tenant_id: str, kind: str, change: RuleChange) -> Rule:
    """Change the tenant's rule `kind` (NotFound for a kind there is not, InvalidInput for a setting
    out of bounds or one the kind has not); the rule as it is now."""
    wanted = rule_kind(kind)
    current = next(rule for rule in await tenant_rules(session, tenant_id) if rule.kind is wanted)
    changed = changed_rule(current, **change.model_dump())
    return await save_rule(session, tenant_id, changed)
