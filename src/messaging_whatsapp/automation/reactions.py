"""What automation does with a batch's new customer messages, in the ingest batch's transaction.

For each customer message stored now (never the business's own echoes, a campaign's echoed
messages, a group's — dropped before storage — or a message that was an opt-out), in batch order:

1. its intent (a button's payload, else its words) is published as `whatsapp_action_requested`;
   the message is new, so a webhook delivered again publishes nothing more;
2. talk_to_human flags the ticket (`wants_person_at`) and puts it back in the unassigned queue;
3. the tenant's rules whose trigger it meets fire (automation/firing.py), with these guards:
   an opted-out person gets nothing; a closed ticket gets nothing; on a ticket whose customer
   wants a person, no rule fires except `assign` (routing them to a person helps them; a
   `close` would drop them); on the very message that asks for a person, only the rules of
   the talk_to_human intent fire (an acknowledgement: "a person will answer you shortly") and
   the out-of-hours ones (the away message says when a person will be there).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.automation.firing import Fired, Plan, fire, occasion_key
from messaging_whatsapp.automation.intents import TALK_TO_HUMAN, Detected, Intent, detect, has_phrase, words
from messaging_whatsapp.automation.models import Action, AutoReplyRule, Trigger
from messaging_whatsapp.automation.service import tenant_intents
from messaging_whatsapp.batch import InboundItem
from messaging_whatsapp.inbox.models import Contact, Message, Ticket, TicketStatus
from messaging_whatsapp.inbox.tickets import flag_wants_person
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.tenancy.hours import BusinessHours, business_hours
from messaging_whatsapp.tenancy.models import Tenant

# Triggers the ingest batch evaluates (no_agent_answer is the scheduler's: automation/waiting.py).
MESSAGE_TRIGGERS = (Trigger.NEW_TICKET, Trigger.KEYWORD, Trigger.INTENT, Trigger.OUTSIDE_HOURS)


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the guards need of a stored message: its ticket and its customer."""

    ticket_id: str
    conversation_id: str
    ticket_open: bool
    wants_person: bool
    opted_out: bool
    # The customer as the sending rules address them: phone, else BSUID or LID.
    to: str | None


@dataclass
class _TenantSetup:
    intents: list[Intent]
    rules: list[AutoReplyRule]
    hours: BusinessHours | None
    away_message: str | None


async def react_to_messages(
    session: AsyncSession,
    items: list[InboundItem],
    opened: dict[str, str],
    skip: Collection[tuple[str, str]],
    now: datetime,
) -> Fired:
    """Detect intents and fire rules for the batch's new customer messages (`opened`: conversation
    -> ticket opened by this batch; `skip`: the (instance, provider id) of opt-out messages)."""
    result = Fired()
    customer = [i for i in items if i.from_customer and i.message_id and i.key not in skip]
    if not customer:
        return result
    facts = await _facts(session, [item.message_id for item in customer])
    setups: dict[str, _TenantSetup] = {}
    new_tickets = set(opened.values())
    greeted: set[str] = set()
    plans: list[Plan] = []
    for item in customer:
        fact = facts.get(item.message_id)
        if fact is None:
            continue
        tenant_id = item.entry.tenant_id
        if tenant_id not in setups:
            setups[tenant_id] = await _setup(session, tenant_id)
        setup = setups[tenant_id]
        detected = detect(setup.intents, item.message.text, item.message.button_payload)
        asking = False
        if detected is not None:
            result.published.append(_action_requested(item, fact, detected))
            if detected.intent == TALK_TO_HUMAN and fact.ticket_open and not fact.wants_person:
                result.published += await flag_wants_person(
                    session, tenant_id, fact.ticket_id, fact.conversation_id, now
                )
                asking = True
        # The ticket's first customer message of this batch, in a ticket this batch opened.
        opening = fact.ticket_id in new_tickets and fact.ticket_id not in greeted
        greeted.add(fact.ticket_id)
        plans += _plans(item, fact, setup, detected, opening, asking)
        if asking:
            facts = _wanting(facts, fact.ticket_id)
    if plans:
        result.add(await fire(session, plans, now))
    return result


async def _facts(session: AsyncSession, message_ids: list[str]) -> dict[str, _Facts]:
    rows = await session.execute(
        select(
            Message.id,
            Message.ticket_id,
            Message.conversation_id,
            Ticket.status,
            Ticket.wants_person_at,
            Contact.opted_out,
            Contact.phone,
            Contact.bsuid,
            Contact.lid,
        )
        .join(Ticket, Ticket.id == Message.ticket_id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.id.in_(message_ids))
    )
    return {
        row.id: _Facts(
            ticket_id=row.ticket_id,
            conversation_id=row.conversation_id,
            ticket_open=row.status == TicketStatus.OPEN.value,
            wants_person=row.wants_person_at is not None,
            opted_out=row.opted_out,
            to=row.phone or row.bsuid or row.lid,
        )
        for row in rows
    }


def _wanting(facts: dict[str, _Facts], ticket_id: str) -> dict[str, _Facts]:
    """The facts with the ticket's later messages seeing its customer wants a person."""
    return {
        key: (replace(fact, wants_person=True) if fact.ticket_id == ticket_id else fact)
        for key, fact in facts.items()
    }


async def _setup(session: AsyncSession, tenant_id: str) -> _TenantSetup:
    rules = await session.scalars(
        select(AutoReplyRule)
        .where(
            AutoReplyRule.tenant_id == tenant_id,
            AutoReplyRule.enabled.is_(True),
            AutoReplyRule.trigger.in_([t.value for t in MESSAGE_TRIGGERS]),
        )
        .order_by(AutoReplyRule.position, AutoReplyRule.created_at, AutoReplyRule.id)
    )
    tenant = await session.get(Tenant, tenant_id)
    hours = business_hours(tenant.business_hours, tenant.timezone) if tenant else None
    return _TenantSetup(
        intents=await tenant_intents(session, tenant_id),
        rules=list(rules),
        hours=hours,
        away_message=tenant.away_message if tenant else None,
    )


def _action_requested(item: InboundItem, fact: _Facts, detected: Detected) -> PublishedEvent:
    """`whatsapp_action_requested` (seed 001): the intent, who asked, and where."""
    payload = {
        "intent": detected.intent,
        "from_phone": item.phone or fact.to,
        "context": {
            "conversation_id": fact.conversation_id,
            "ticket_id": fact.ticket_id,
            "message_id": item.message_id,
        },
        "instance_id": item.entry.instance_id,
        "source": detected.source,
    }
    return PublishedEvent("whatsapp_action_requested", item.entry.tenant_id, payload)


def _plans(
    item: InboundItem,
    fact: _Facts,
    setup: _TenantSetup,
    detected: Detected | None,
    opening: bool,
    asking: bool,
) -> list[Plan]:
    """The rules this message fires, after the guards."""
    if fact.opted_out or not fact.ticket_open or fact.to is None:
        return []
    plans = []
    text_words = words(item.message.text or "")
    for rule in setup.rules:
        if rule.instance_ids and item.entry.instance_id not in rule.instance_ids:
            continue
        if fact.wants_person and rule.action != Action.ASSIGN.value:
            continue
        if asking and not _answers_the_ask(rule):
            continue
        if not _triggered(rule, item, setup, detected, opening, text_words):
            continue
        plans.append(
            Plan(
                rule=rule,
                tenant_id=item.entry.tenant_id,
                ticket_id=fact.ticket_id,
                instance_id=item.entry.instance_id,
                to=fact.to,
                key=occasion_key(rule, item.message_id),
                cause_message_id=item.message_id,
                away_message=setup.away_message if rule.trigger == Trigger.OUTSIDE_HOURS.value else None,
            )
        )
    return plans


def _answers_the_ask(rule: AutoReplyRule) -> bool:
    """Whether a rule may answer the message that asks for a person: one of the talk_to_human
    intent (an acknowledgement), or an out-of-hours one (when a person will be there)."""
    if rule.trigger == Trigger.OUTSIDE_HOURS.value:
        return True
    return rule.trigger == Trigger.INTENT.value and rule.trigger_config.get("intent") == TALK_TO_HUMAN


def _triggered(
    rule: AutoReplyRule,
    item: InboundItem,
    setup: _TenantSetup,
    detected: Detected | None,
    opening: bool,
    text_words: tuple[str, ...],
) -> bool:
    config = rule.trigger_config or {}
    if rule.trigger == Trigger.NEW_TICKET.value:
        return opening
    if rule.trigger == Trigger.KEYWORD.value:
        return any(has_phrase(text_words, words(keyword)) for keyword in config.get("keywords", []))
    if rule.trigger == Trigger.INTENT.value:
        return detected is not None and detected.intent == config.get("intent")
    if rule.trigger == Trigger.OUTSIDE_HOURS.value:
        # When the message was written (the provider's time), in the tenant's time zone.
        return setup.hours is not None and not setup.hours.is_open(item.message.timestamp)
    return False
