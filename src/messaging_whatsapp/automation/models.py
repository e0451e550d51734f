"""Automation's tables: a tenant's intent list, its auto-reply rules, and each rule's firings.

A firing is unique per (rule, ticket, key): `key` is "once" for a rule that fires once per ticket,
else what makes one occasion of it (the customer's message, the customer's turn a no-answer rule
waited on). It is inserted in the transaction of the message (or scheduler pass) that caused it,
so a webhook delivered again, two workers or two schedulers can never fire a rule twice.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin


class Trigger(enum.StrEnum):
    """When a rule fires."""

    # A customer's message opened a new ticket.
    NEW_TICKET = "new_ticket"
    # The customer's message holds one of the rule's keywords (whole words, case and accents folded).
    KEYWORD = "keyword"
    # The customer's message (text or button) was found to be the rule's intent.
    INTENT = "intent"
    # A customer's message arrived while the tenant is closed (its business hours, its time zone).
    OUTSIDE_HOURS = "outside_hours"
    # The customer wrote and nobody of the team answered for the rule's minutes (the scheduler).
    NO_AGENT_ANSWER = "no_agent_answer"


class Action(enum.StrEnum):
    """What a rule does (schemas.Then has each one's settings, firing.py carries it out)."""

    TEXT = "text"
    BUTTONS = "buttons"
    TEMPLATE = "template"
    ASSIGN = "assign"
    CLOSE = "close"
    # Start a follow-up sequence on the ticket (followups/, seed 003).
    FOLLOW_UP = "follow_up"


# The actions that write to the customer (the others change the ticket only).
SENDING_ACTIONS = frozenset({Action.TEXT, Action.BUTTONS, Action.TEMPLATE})


class FiringOutcome(enum.StrEnum):
    """What came of a firing."""

    # The message was queued (the senders send it, or it fails like any message).
    QUEUED = "queued"
    # The sending rules refused it (opted out, outside the 24-hour window, no number can send...).
    REFUSED = "refused"
    ASSIGNED = "assigned"
    CLOSED = "closed"
    FOLLOW_UP_STARTED = "follow_up"
    # Nothing to do after all (the ticket closed meanwhile, no away message set, a user left).
    SKIPPED = "skipped"


class IntentList(TimestampMixin, Base):
    """A tenant's own intents (JSON list of {name, keywords, button_payloads}); a tenant without a
    row uses seed 001's."""

    __tablename__ = "automation_intents"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    intents: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class AutoReplyRule(IdMixin, TimestampMixin, Base):
    """One auto-reply rule of a tenant: when it fires, on which numbers, and what it does."""

    __tablename__ = "automation_rules"
    __table_args__ = (
        Index("ix_automation_rules_tenant_position", "tenant_id", "position"),
        # The scheduler's no-answer pass finds its rules across tenants.
        Index("ix_automation_rules_trigger", "trigger"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(default=True)
    # Rules are evaluated in this order (then by creation).
    position: Mapped[int] = mapped_column(default=0)
    once_per_ticket: Mapped[bool] = mapped_column(default=True)
    # The numbers it applies to (ids); empty: every number of the tenant.
    instance_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    trigger: Mapped[str] = mapped_column(String(32))
    # The trigger's settings: {"keywords": [...]}, {"intent": name}, {"minutes": n}, or {}.
    trigger_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    action: Mapped[str] = mapped_column(String(32))
    # The action's settings: {"text"}, {"text", "buttons"}, {"template"}, {"user_id"}, or {}.
    action_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RuleFiring(IdMixin, Base):
    """A rule fired on a ticket, and what came of it (a refusal is kept here, never raised)."""

    __tablename__ = "automation_firings"
    __table_args__ = (
        UniqueConstraint("rule_id", "ticket_id", "key"),
        Index("ix_automation_firings_ticket", "ticket_id"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("automation_rules.id", ondelete="CASCADE"))
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    # The customer's message that caused it (None for the scheduler's no-answer pass).
    cause_message_id: Mapped[str | None] = mapped_column(String(36), default=None)
    fired_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    # Why it was refused or skipped (the sending rule's message).
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    # The message it queued.
    message_id: Mapped[str | None] = mapped_column(String(36), default=None)


intents_table: Table = IntentList.__table__  # type: ignore[assignment]
rules_table: Table = AutoReplyRule.__table__  # type: ignore[assignment]
firings_table: Table = RuleFiring.__table__  # type: ignore[assignment]
