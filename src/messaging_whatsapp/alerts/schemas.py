"""What goes in and out of the alerts API."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from messaging_whatsapp.alerts.models import Alert
from messaging_whatsapp.alerts.rules import Rule, RuleKind, Severity


class AlertState(enum.StrEnum):
    """Which alerts a listing shows."""

    OPEN = "open"
    RESOLVED = "resolved"
    ALL = "all"


class AlertItem(BaseModel):
    """One alert: its rule, the number it is about (null: the tenant's sends), the value that broke
    the rule and the threshold, when it was raised and resolved."""

    id: str
    kind: RuleKind
    severity: Severity
    state: AlertState
    instance_id: str | None
    value: float | None
    threshold: float
    raised_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, alert: Alert) -> Self:
        """The item of an alert row."""
        return cls(
            id=alert.id,
            kind=RuleKind(alert.kind),
            severity=Severity(alert.severity),
            state=AlertState.OPEN if alert.resolved_at is None else AlertState.RESOLVED,
            instance_id=alert.instance_id,
            value=alert.value,
            threshold=alert.threshold,
            raised_at=alert.raised_at,
            resolved_at=alert.resolved_at,
        )


class RuleItem(BaseModel):
    """One rule as the tenant has it; `window_seconds` and `min_count` only for the error-rate and
    latency rules (null otherwise)."""

    kind: RuleKind
    enabled: bool
    threshold: float
    window_seconds: int | None
    min_count: int | None
    severity: Severity
    per_number: bool

    @classmethod
    def of(cls, rule: Rule) -> Self:
        """The item of a rule."""
        return cls(
            kind=rule.kind,
            enabled=rule.enabled,
            threshold=rule.threshold,
            window_seconds=rule.window_seconds,
            min_count=rule.min_count,
            severity=rule.severity,
            per_number=rule.per_number,
        )


class RuleChange(BaseModel):
    """What to change of a rule; what is left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    window_seconds: int | None = None
    min_count: int | None = None
