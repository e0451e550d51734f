"""The alert rules (seed 004's AlertConfig): six kinds, each with a default every tenant has until it
changes its own (enable or disable, threshold, window, minimum count)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.alerts.models import AlertRule
from messaging_whatsapp.db import insert_for, new_id, utcnow
from messaging_whatsapp.errors import InvalidInput, NotFound


class RuleKind(enum.StrEnum):
    """What a rule watches."""

    # Provider calls that failed over those made, in percent, over the window (tenant-wide).
    SEND_ERROR_RATE = "send_error_rate"
    # The provider calls' average duration in milliseconds over the window (tenant-wide).
    PROVIDER_LATENCY = "provider_latency"
    # A number's failures in a row reached the threshold.
    CONSECUTIVE_FAILURES = "consecutive_failures"
    # A number in use has not been connected for the threshold's seconds.
    NUMBER_DISCONNECTED = "number_disconnected"
    # A number's health score fell below the threshold (critical is below 40).
    HEALTH_CRITICAL = "health_critical"
    # A connected number we sent through has sent no webhook for the threshold's seconds.
    WEBHOOK_SILENCE = "webhook_silence"


class Severity(enum.StrEnum):
    """How urgent an alert is: critical ones come first in the banner."""

    CRITICAL = "critical"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Limits:
    """What a kind's settings may be: the threshold's range, and the window's and minimum count's
    when the kind has them (None: it has none)."""

    threshold: tuple[float, float]
    window: tuple[int, int] | None = None
    min_count: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as a tenant has it."""

    kind: RuleKind
    enabled: bool
    threshold: float
    window_seconds: int | None = None
    min_count: int | None = None

    @property
    def severity(self) -> Severity:
        """How urgent the kind's alerts are."""
        return SEVERITY[self.kind]

    @property
    def per_number(self) -> bool:
        """Whether its alerts are about one number (else about the tenant's sends)."""
        return self.kind not in TENANT_WIDE


# The windows are counted in whole minutes (the sender's counts are per minute), one hour at most.
WINDOW = (60, 3600)
DEFAULT_RULES: dict[RuleKind, Rule] = {
    # A minimum of 20 calls: one failure of the first call must not page anyone.
    RuleKind.SEND_ERROR_RATE: Rule(RuleKind.SEND_ERROR_RATE, True, 5.0, 300, 20),
    RuleKind.PROVIDER_LATENCY: Rule(RuleKind.PROVIDER_LATENCY, True, 5000.0, 600, 5),
    RuleKind.CONSECUTIVE_FAILURES: Rule(RuleKind.CONSECUTIVE_FAILURES, True, 3.0),
    # A minute's grace: a gateway that reconnects by itself at once pages nobody.
    RuleKind.NUMBER_DISCONNECTED: Rule(RuleKind.NUMBER_DISCONNECTED, True, 60.0),
    RuleKind.HEALTH_CRITICAL: Rule(RuleKind.HEALTH_CRITICAL, True, 40.0),
    RuleKind.WEBHOOK_SILENCE: Rule(RuleKind.WEBHOOK_SILENCE, True, 1800.0),
}
LIMITS: dict[RuleKind, Limits] = {
    RuleKind.SEND_ERROR_RATE: Limits((0.1, 100.0), WINDOW, (1, 100_000)),
    RuleKind.PROVIDER_LATENCY: Limits((1.0, 600_000.0), WINDOW, (1, 100_000)),
    RuleKind.CONSECUTIVE_FAILURES: Limits((1.0, 1000.0)),
    RuleKind.NUMBER_DISCONNECTED: Limits((0.0, 86_400.0)),
    RuleKind.HEALTH_CRITICAL: Limits((1.0, 100.0)),
    RuleKind.WEBHOOK_SILENCE: Limits((300.0, 86_400.0)),
}
SEVERITY: dict[RuleKind, Severity] = {
    RuleKind.SEND_ERROR_RATE: Severity.CRITICAL,
    RuleKind.PROVIDER_LATENCY: Severity.WARNING,
    RuleKind.CONSECUTIVE_FAILURES: Severity.WARNING,
    RuleKind.NUMBER_DISCONNECTED: Severity.CRITICAL,
    RuleKind.HEALTH_CRITICAL: Severity.CRITICAL,
    RuleKind.WEBHOOK_SILENCE: Severity.WARNING,
}
TENANT_WIDE = frozenset({RuleKind.SEND_ERROR_RATE, RuleKind.PROVIDER_LATENCY})


def rule_kind(value: str) -> RuleKind:
    """The kind named `value`, or NotFound listing the kinds there are."""
    try:
        return RuleKind(value)
    except ValueError:
        raise NotFound(f"no alert rule {value!r}: the rules are {', '.join(RuleKind)}") from None


def _of_row(row: AlertRule) -> Rule:
    return Rule(RuleKind(row.kind), row.enabled, row.threshold, row.window_seconds, row.min_count)


async def tenant_rules(session: AsyncSession, tenant_id: str) -> list[Rule]:
    """Every rule of the tenant: its own where it changed one, the default otherwise."""
    return list((await rules_by_tenant(session, [tenant_id]))[tenant_id].values())


async def rules_by_tenant(
    session: AsyncSession, tenant_ids: Iterable[str]
) -> dict[str, dict[RuleKind, Rule]]:
    """Each tenant's rules by kind, in one query."""
    wanted = sorted(set(tenant_ids))
    found: dict[str, dict[RuleKind, Rule]] = {tenant_id: dict(DEFAULT_RULES) for tenant_id in wanted}
    if not wanted:
        return found
    rows = await session.scalars(select(AlertRule).where(AlertRule.tenant_id.in_(wanted)))
    for row in rows:
        if row.kind in RuleKind.__members__.values():
            found[row.tenant_id][RuleKind(row.kind)] = _of_row(row)
    return found


def changed_rule(
    rule: Rule,
    *,
    enabled: bool | None = None,
    threshold: float | None = None,
    window_seconds: int | None = None,
    min_count: int | None = None,
) -> Rule:
    """The rule with the given settings changed, or InvalidInput naming the one out of bounds."""
    limits = LIMITS[rule.kind]
    _within("threshold", threshold, limits.threshold)
    _only_with("window_seconds", window_seconds, limits.window, rule.kind)
    _only_with("min_count", min_count, limits.min_count, rule.kind)
    return dataclasses.replace(
        rule,
        enabled=rule.enabled if enabled is None else enabled,
        threshold=rule.threshold if threshold is None else float(threshold),
        window_seconds=rule.window_seconds if window_seconds is None else window_seconds,
        min_count=rule.min_count if min_count is None else min_count,
    )


def _within(name: str, value: float | None, bounds: tuple[float, float]) -> None:
    if value is not None and not bounds[0] <= value <= bounds[1]:
        raise InvalidInput(f"{name} must be from {bounds[0]:g} to {bounds[1]:g}", code="invalid_rule")


def _only_with(name: str, value: int | None, bounds: tuple[int, int] | None, kind: RuleKind) -> None:
    if value is None:
        return
    if bounds is None:
        raise InvalidInput(f"the {kind} rule has no {name}", code="invalid_rule")
    _within(name, value, (float(bounds[0]), float(bounds[1])))


async def save_rule(session: AsyncSession, tenant_id: str, rule: Rule) -> Rule:
    """Store the tenant's setting of the rule (in the caller's transaction)."""
    now = utcnow()
    values = {
        "enabled": rule.enabled,
        "threshold": rule.threshold,
        "window_seconds": rule.window_seconds,
        "min_count": rule.min_count,
        "updated_at": now,
    }
    statement = (
        insert_for(session, AlertRule)
        .values(id=new_id(), tenant_id=tenant_id, kind=rule.kind.value, created_at=now, **values)
        .on_conflict_do_update(index_elements=["tenant_id", "kind"], set_=values)
    )
    await session.execute(statement)
    return rule
