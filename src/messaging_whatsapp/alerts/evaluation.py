"""The scheduler's alert pass: each tenant's rules checked against its numbers and sends; an alert is
raised once when a condition starts to hold and resolved once when it stops.

Raising inserts the alert with its open key (tenant, rule, number) and ON CONFLICT DO NOTHING;
resolving is an UPDATE of an alert still open. Either returns only the rows it changed, so two
schedulers evaluating at the same moment publish each `whatsapp_alert_raised` and
`whatsapp_alert_resolved` once, whichever of them wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.alerts.models import Alert, SendMinute, WebhookMark
from messaging_whatsapp.alerts.rules import Rule, RuleKind, rules_by_tenant
from messaging_whatsapp.alerts.signals import minute_of
from messaging_whatsapp.db import insert_for, new_id
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.outbox.service import PublishedEvent

# Receipts of a send come within seconds; a send this recent may still be waiting for its own.
RECEIPT_GRACE = timedelta(minutes=5)
# The sends per minute are kept a day and an hour: the longest webhook silence a rule may wait
# for, and then some.
SENDS_KEPT = timedelta(hours=25)
LONGEST_WINDOW = timedelta(hours=1)
# Resolved alerts are history for the page and the API this long, then deleted.
RESOLVED_KEPT = timedelta(days=90)
ALERTS: Table = Alert.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule whose condition holds now, about a tenant's sends or one of its numbers."""

    tenant_id: str
    rule: Rule
    instance_id: str | None
    value: float

    @property
    def key(self) -> str:
        """The open alert's unique key."""
        return open_key(self.tenant_id, self.rule.kind.value, self.instance_id)


def open_key(tenant_id: str, kind: str, instance_id: str | None) -> str:
    """tenant:kind:number (the number empty for a tenant-wide rule)."""
    return f"{tenant_id}:{kind}:{instance_id or ''}"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one pass did: the events to publish, and the alerts open after it by kind."""

    published: list[PublishedEvent]
    open_by_kind: dict[str, int]


async def evaluate_alerts(session: AsyncSession, now: datetime) -> Evaluation:
    """Check every tenant's rules now, raise and resolve alerts (in the caller's transaction)."""
    numbers = await _numbers(session)
    minutes = await _recent_minutes(session, now)
    last_sends = await _last_sends(session, now - RECEIPT_GRACE)
    still_open = list(await session.scalars(select(Alert).where(Alert.resolved_at.is_(None))))
    tenant_ids = {n.tenant_id for n in numbers} | {m.tenant_id for m in minutes}
    tenant_ids |= {a.tenant_id for a in still_open}
    rules = await rules_by_tenant(session, tenant_ids)
    findings = [
        *_tenant_findings(rules, minutes, now),
        *_number_findings(rules, numbers, last_sends, now),
    ]
    published = await _raise(session, findings, {a.open_key for a in still_open}, now)
    published += await _resolve(session, still_open, {f.key for f in findings}, now)
    await session.execute(delete(SendMinute).where(SendMinute.minute < now - SENDS_KEPT))
    await session.execute(delete(Alert).where(Alert.resolved_at < now - RESOLVED_KEPT))
    counted = select(Alert.kind, func.count()).where(Alert.resolved_at.is_(None)).group_by(Alert.kind)
    open_by_kind: dict[str, int] = {kind: 0 for kind in RuleKind}
    open_by_kind.update({kind: count for kind, count in await session.execute(counted)})
    return Evaluation(published, open_by_kind)


# --------------------------------------------------------------------------------------------------
# What holds now


async def _numbers(session: AsyncSession) -> list[Any]:
    """Every number in use, with what the per-number rules look at."""
    i = WhatsAppInstance
    query = (
        select(
            i.id,
            i.tenant_id,
            i.status,
            i.connection_state,
            i.connection_changed_at,
            i.created_at,
            i.health_score,
            i.consecutive_errors,
            WebhookMark.received_at,
        )
        .outerjoin(WebhookMark, WebhookMark.instance_id == i.id)
        .where(i.status != InstanceStatus.UNBOUND.value)
        .order_by(i.id)
    )
    return list((await session.execute(query)).all())


async def _recent_minutes(session: AsyncSession, now: datetime) -> list[Any]:
    """Each tenant's provider calls per minute over the longest window a rule may have."""
    m = SendMinute
    query = (
        select(
            m.tenant_id,
            m.minute,
            func.sum(m.sent).label("sent"),
            func.sum(m.failed).label("failed"),
            func.sum(m.latency_ms_total).label("latency_ms_total"),
            func.sum(m.latency_calls).label("latency_calls"),
        )
        .where(m.minute > minute_of(now - LONGEST_WINDOW))
        .group_by(m.tenant_id, m.minute)
    )
    return list((await session.execute(query)).all())


async def _last_sends(session: AsyncSession, before: datetime) -> dict[str, datetime]:
    """Each number's last minute with a message sent, no later than `before`."""
    m = SendMinute
    query = (
        select(m.instance_id, func.max(m.minute))
        .where(m.sent > 0, m.minute <= before)
        .group_by(m.instance_id)
    )
    return {instance_id: minute for instance_id, minute in await session.execute(query)}


def _tenant_findings(
    rules: dict[str, dict[RuleKind, Rule]], minutes: Iterable[Any], now: datetime
) -> list[Finding]:
    """The error-rate and latency rules, over each tenant's own window."""
    by_tenant: dict[str, list[Any]] = {}
    for row in minutes:
        by_tenant.setdefault(row.tenant_id, []).append(row)
    findings = []
    for tenant_id, rows in sorted(by_tenant.items()):
        error_rate = rules[tenant_id][RuleKind.SEND_ERROR_RATE]
        sent, failed, _, _ = _totals(rows, error_rate, now)
        calls = sent + failed
        if error_rate.enabled and calls >= (error_rate.min_count or 1):
            rate = 100.0 * failed / calls
            if rate > error_rate.threshold:
                findings.append(Finding(tenant_id, error_rate, None, round(rate, 2)))
        latency = rules[tenant_id][RuleKind.PROVIDER_LATENCY]
        _, _, total_ms, timed = _totals(rows, latency, now)
        if latency.enabled and timed and timed >= (latency.min_count or 1):
            average = total_ms / timed
            if average > latency.threshold:
                findings.append(Finding(tenant_id, latency, None, round(average, 1)))
    return findings


def _totals(rows: list[Any], rule: Rule, now: datetime) -> tuple[int, int, int, int]:
    """Sent, failed, milliseconds and timed calls of the minutes inside the rule's window."""
    since = minute_of(now - timedelta(seconds=rule.window_seconds or 0))
    inside = [row for row in rows if row.minute > since]
    return (
        sum(int(row.sent) for row in inside),
        sum(int(row.failed) for row in inside),
        sum(int(row.latency_ms_total) for row in inside),
        sum(int(row.latency_calls) for row in inside),
    )


def _number_findings(
    rules: dict[str, dict[RuleKind, Rule]],
    numbers: Iterable[Any],
    last_sends: dict[str, datetime],
    now: datetime,
) -> list[Finding]:
    findings = []
    for number in numbers:
        for rule in rules[number.tenant_id].values():
            if not rule.enabled or not rule.per_number:
                continue
            value = _number_value(rule, number, last_sends.get(number.id), now)
            if value is not None:
                findings.append(Finding(number.tenant_id, rule, number.id, value))
    return findings


def _number_value(rule: Rule, number: Any, last_send: datetime | None, now: datetime) -> float | None:
    """The measure that breaks the rule for this number (errors in a row, seconds disconnected,
    score, seconds of silence), or None when the rule holds."""
    if rule.kind is RuleKind.CONSECUTIVE_FAILURES:
        return float(number.consecutive_errors) if number.consecutive_errors >= rule.threshold else None
    if rule.kind is RuleKind.HEALTH_CRITICAL:
        return round(number.health_score, 1) if number.health_score < rule.threshold else None
    if rule.kind is RuleKind.NUMBER_DISCONNECTED:
        if number.connection_state == "open":
            return None
        seconds = (now - (number.connection_changed_at or number.created_at)).total_seconds()
        return round(seconds) if seconds >= rule.threshold else None
    return _silence(rule, number, last_send, now)


def _silence(rule: Rule, number: Any, last_send: datetime | None, now: datetime) -> float | None:
    """Seconds since a connected, active number's last webhook, when over the threshold although
    it sent messages after it (whose receipts never came); a number with nothing to hear is quiet,
    not silent."""
    if number.connection_state != "open" or number.status != InstanceStatus.ACTIVE.value:
        return None
    heard = minute_of(number.received_at or number.connection_changed_at or number.created_at)
    seconds = (now - heard).total_seconds()
    if seconds < rule.threshold or last_send is None or last_send <= heard:
        return None
    return round(seconds)


# --------------------------------------------------------------------------------------------------
# Raise and resolve


async def _raise(
    session: AsyncSession, findings: list[Finding], open_keys: set[str | None], now: datetime
) -> list[PublishedEvent]:
    """Insert an alert for each finding not open yet; an event for each this pass inserted."""
    published = []
    for finding in findings:
        if finding.key in open_keys:
            continue
        rule = finding.rule
        statement = (
            insert_for(session, ALERTS)
            .values(
                id=new_id(),
                tenant_id=finding.tenant_id,
                kind=rule.kind.value,
                severity=rule.severity.value,
                instance_id=finding.instance_id,
                value=finding.value,
                threshold=rule.threshold,
                raised_at=now,
                open_key=finding.key,
            )
            .on_conflict_do_nothing(index_elements=["open_key"])
            .returning(*ALERTS.c)
        )
        raised = (await session.execute(statement)).first()
        if raised is not None:
            published.append(alert_event("whatsapp_alert_raised", raised))
    return published


async def _resolve(
    session: AsyncSession, still_open: list[Alert], holding: set[str], now: datetime
) -> list[PublishedEvent]:
    """Resolve each open alert whose condition no longer holds (its rule disabled, its number
    unbound too); an event for each this pass resolved."""
    ended = sorted(a.id for a in still_open if a.open_key not in holding)
    if not ended:
        return []
    statement = (
        update(ALERTS)
        .where(ALERTS.c.id.in_(ended), ALERTS.c.resolved_at.is_(None))
        .values(resolved_at=now, open_key=None)
        .returning(*ALERTS.c)
    )
    resolved = list((await session.execute(statement)).all())
    return [alert_event("whatsapp_alert_resolved", alert) for alert in sorted(resolved, key=lambda a: a.id)]


def alert_event(event_type: str, alert: Alert | Row[Any]) -> PublishedEvent:
    """`whatsapp_alert_raised` or `whatsapp_alert_resolved`: the rule, the number (or null), the
    value that broke it, the threshold, when."""
    payload = {
        "alert_id": alert.id,
        "kind": alert.kind,
        "severity": alert.severity,
        "instance_id": alert.instance_id,
        "value": alert.value,
        "threshold": alert.threshold,
        "raised_at": alert.raised_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }
    return PublishedEvent(event_type, alert.tenant_id, payload)
