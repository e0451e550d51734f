"""Automation's settings as a tenant edits them: its intents, its auto-reply rules, its business
hours and away message. Every check names the field it refuses (422), and another tenant's rule
is not found (404)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.automation.intents import SEED_INTENTS, Intent, words
from messaging_whatsapp.automation.models import AutoReplyRule, IntentList, Trigger
from messaging_whatsapp.automation.schemas import (
    MAX_RULES,
    AssignThen,
    BusinessHoursIn,
    BusinessHoursOut,
    ButtonsThen,
    IntentIn,
    IntentsIn,
    IntentsOut,
    IntentWhen,
    KeywordWhen,
    RuleIn,
    RuleItem,
    RulePatch,
    TextThen,
    Then,
    When,
)
from messaging_whatsapp.errors import InvalidInput, NotFound
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.tenancy.hours import business_hours, stored_schedule
from messaging_whatsapp.tenancy.models import Tenant, User

_WHEN: TypeAdapter[Any] = TypeAdapter(When)
_THEN: TypeAdapter[Any] = TypeAdapter(Then)


def invalid(field: str, message: str, code: str = "invalid_input") -> InvalidInput:
    """A 422 naming the field (also as `field` in the error body, for forms)."""
    return InvalidInput(f"{field}: {message}", code=code, details={"field": field})


# ---------------------------------------------------------------------------------------------
# Intents


async def stored_intents(session: AsyncSession, tenant_id: str) -> tuple[list[dict[str, Any]], bool]:
    """The tenant's intents as stored, and whether they are seed 001's (it set none)."""
    row = await session.get(IntentList, tenant_id)
    if row is None:
        return [dict(intent) for intent in SEED_INTENTS], True
    return list(row.intents), False


async def tenant_intents(session: AsyncSession, tenant_id: str) -> list[Intent]:
    """The tenant's intents, ready to match."""
    raw, _ = await stored_intents(session, tenant_id)
    return [Intent.of(intent) for intent in raw]


async def read_intents(session: AsyncSession, tenant_id: str) -> IntentsOut:
    """The tenant's intents as the API shows them."""
    raw, default = await stored_intents(session, tenant_id)
    return IntentsOut(intents=[IntentIn.model_validate(intent) for intent in raw], default=default)


async def replace_intents(
    session: AsyncSession, tenant_id: str, body: IntentsIn, now: datetime
) -> IntentsOut:
    """Replace the tenant's intents: names unique, every keyword a word, a payload in one intent."""
    _check_intents(body.intents)
    raw = [intent.model_dump() for intent in body.intents]
    row = await session.get(IntentList, tenant_id)
    if row is None:
        session.add(IntentList(tenant_id=tenant_id, intents=raw, created_at=now, updated_at=now))
    else:
        row.intents, row.updated_at = raw, now
    await session.flush()
    return IntentsOut(intents=body.intents, default=False)


def _check_intents(intents: list[IntentIn]) -> None:
    names: set[str] = set()
    payloads: dict[str, str] = {}
    for index, intent in enumerate(intents):
        where = f"intents[{index}]"
        if intent.name in names:
            raise invalid(f"{where}.name", f"{intent.name!r} appears twice", "duplicate_intent")
        names.add(intent.name)
        for k, keyword in enumerate(intent.keywords):
            if not words(keyword):
                raise invalid(f"{where}.keywords[{k}]", f"{keyword!r} holds no word", "invalid_keyword")
        for payload in {intent.name, *intent.button_payloads}:
            if payload in payloads and payloads[payload] != intent.name:
                raise invalid(
                    f"{where}.button_payloads",
                    f"payload {payload!r} already chooses {payloads[payload]!r}",
                    "duplicate_payload",
                )
            payloads[payload] = intent.name


# ---------------------------------------------------------------------------------------------
# Rules


def rule_item(rule: AutoReplyRule) -> RuleItem:
    """A rule as the API shows it."""
    return RuleItem(
        id=rule.id,
        name=rule.name,
        enabled=rule.enabled,
        position=rule.position,
        once_per_ticket=rule.once_per_ticket,
        instance_ids=list(rule.instance_ids or []),
        when={"type": rule.trigger, **(rule.trigger_config or {})},
        then={"type": rule.action, **(rule.action_config or {})},
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def rule_when(rule: AutoReplyRule) -> Any:
    """The rule's trigger, typed (NewTicketWhen, KeywordWhen...)."""
    return _WHEN.validate_python({"type": rule.trigger, **(rule.trigger_config or {})})


def rule_then(rule: AutoReplyRule) -> Any:
    """The rule's action, typed (TextThen, ButtonsThen...)."""
    return _THEN.validate_python({"type": rule.action, **(rule.action_config or {})})


async def list_rules(session: AsyncSession, tenant_id: str) -> list[AutoReplyRule]:
    """The tenant's rules in the order they are evaluated."""
    query = (
        select(AutoReplyRule)
        .where(AutoReplyRule.tenant_id == tenant_id)
        .order_by(AutoReplyRule.position, AutoReplyRule.created_at, AutoReplyRule.id)
    )
    return list((await session.scalars(query)).all())


async def get_rule(session: AsyncSession, tenant_id: str, rule_id: str) -> AutoReplyRule:
    """One of the tenant's rules; another tenant's is not found."""
    rule = await session.scalar(
        select(AutoReplyRule).where(AutoReplyRule.id == rule_id, AutoReplyRule.tenant_id == tenant_id)
    )
    if rule is None:
        raise NotFound(f"rule {rule_id} not found")
    return rule


async def create_rule(session: AsyncSession, tenant_id: str, body: RuleIn, now: datetime) -> AutoReplyRule:
    """A new rule, checked against the tenant's numbers, intents and users."""
    count = await session.scalar(
        select(func.count(AutoReplyRule.id)).where(AutoReplyRule.tenant_id == tenant_id)
    )
    if (count or 0) >= MAX_RULES:
        raise invalid("rules", f"a tenant has at most {MAX_RULES} rules", "too_many_rules")
    await _check_rule(session, tenant_id, body.when, body.then, body.instance_ids)
    rule = AutoReplyRule(
        tenant_id=tenant_id,
        name=body.name.strip() or body.name,
        enabled=body.enabled,
        position=body.position,
        once_per_ticket=body.once_per_ticket,
        instance_ids=sorted(set(body.instance_ids)),
        created_at=now,
        updated_at=now,
    )
    _set_when_then(rule, body.when, body.then)
    session.add(rule)
    await session.flush()
    return rule


async def change_rule(
    session: AsyncSession, tenant_id: str, rule_id: str, body: RulePatch, now: datetime
) -> AutoReplyRule:
    """Change the fields given; the rule as a whole is checked again."""
    rule = await get_rule(session, tenant_id, rule_id)
    when = body.when if body.when is not None else rule_when(rule)
    then = body.then if body.then is not None else rule_then(rule)
    instance_ids = body.instance_ids if body.instance_ids is not None else list(rule.instance_ids or [])
    await _check_rule(session, tenant_id, when, then, instance_ids)
    for field in ("name", "enabled", "position", "once_per_ticket"):
        value = getattr(body, field)
        if value is not None:
            setattr(rule, field, value)
    rule.instance_ids = sorted(set(instance_ids))
    _set_when_then(rule, when, then)
    rule.updated_at = now
    await session.flush()
    return rule


async def delete_rule(session: AsyncSession, tenant_id: str, rule_id: str) -> None:
    """Delete the rule (its firings go with it)."""
    rule = await get_rule(session, tenant_id, rule_id)
    await session.execute(delete(AutoReplyRule).where(AutoReplyRule.id == rule.id))


def _set_when_then(rule: AutoReplyRule, when: Any, then: Any) -> None:
    rule.trigger = when.type
    rule.trigger_config = when.model_dump(mode="json", exclude={"type"})
    rule.action = then.type
    rule.action_config = then.model_dump(mode="json", exclude={"type"})


async def _check_rule(
    session: AsyncSession, tenant_id: str, when: Any, then: Any, instance_ids: list[str]
) -> None:
    await _check_numbers(session, tenant_id, instance_ids)
    if isinstance(when, KeywordWhen):
        for index, keyword in enumerate(when.keywords):
            if not words(keyword):
                raise invalid(f"when.keywords[{index}]", f"{keyword!r} holds no word", "invalid_keyword")
    if isinstance(when, IntentWhen):
        names = [intent.name for intent in await tenant_intents(session, tenant_id)]
        if when.intent not in names:
            raise invalid(
                "when.intent", f"unknown intent {when.intent!r}: use {', '.join(names)}", "unknown_intent"
            )
    if isinstance(then, TextThen) and then.text is None and when.type != Trigger.OUTSIDE_HOURS.value:
        raise invalid(
            "then.text",
            "give the text to send (only an outside_hours rule may leave it out: it sends the away message)",
        )
    if isinstance(then, ButtonsThen) and len({button.id for button in then.buttons}) < len(then.buttons):
        raise invalid("then.buttons", "each button needs an id of its own")
    if isinstance(then, AssignThen):
        active = await session.scalar(
            select(User.id).where(
                User.id == then.user_id, User.tenant_id == tenant_id, User.is_active.is_(True)
            )
        )
        if active is None:
            raise invalid(
                "then.user_id", f"{then.user_id} is not an active user of this tenant", "unknown_user"
            )


async def _check_numbers(session: AsyncSession, tenant_id: str, instance_ids: list[str]) -> None:
    if not instance_ids:
        return
    found = set(
        await session.scalars(
            select(WhatsAppInstance.id).where(
                WhatsAppInstance.tenant_id == tenant_id, WhatsAppInstance.id.in_(set(instance_ids))
            )
        )
    )
    missing = [instance_id for instance_id in instance_ids if instance_id not in found]
    if missing:
        raise invalid("instance_ids", f"{missing[0]} is not a number of this tenant", "unknown_instance")


# ---------------------------------------------------------------------------------------------
# Business hours


async def read_business_hours(session: AsyncSession, tenant_id: str, now: datetime) -> BusinessHoursOut:
    """The tenant's hours, away message and time zone, and whether it is open now."""
    tenant = await _tenant(session, tenant_id)
    hours = business_hours(tenant.business_hours, tenant.timezone)
    return BusinessHoursOut(
        schedule=hours.as_json() if hours else None,
        away_message=tenant.away_message,
        timezone=tenant.timezone,
        open_now=hours is None or hours.is_open(now),
    )


async def change_business_hours(
    session: AsyncSession, tenant_id: str, body: BusinessHoursIn, now: datetime
) -> BusinessHoursOut:
    """Replace the tenant's hours (null: none, never closed) and away message (blank: none)."""
    tenant = await _tenant(session, tenant_id)
    try:
        tenant.business_hours = None if body.schedule is None else stored_schedule(body.schedule)
    except InvalidInput as exc:
        raise invalid("schedule", exc.message, exc.code) from None
    tenant.away_message = (body.away_message or "").strip() or None
    tenant.updated_at = now
    await session.flush()
    return await read_business_hours(session, tenant_id, now)


async def _tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant
