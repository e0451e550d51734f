"""The no_agent_answer rules: the scheduler finds the open tickets whose customer wrote more than
the rule's minutes ago with no answer from the team since, and fires the rule on each.

An answer is a team member's message (sender `user`) or one typed on the business phone (`phone`);
automatic messages do not count. Only customers who wrote within the last 24 hours are waited on
(a new rule does not write to every old ticket, and free-form text could not reach them anyway on
the official APIs). A ticket whose customer wants a person, an opted-out person, are left alone.
The firing key (rule, ticket, the customer's turn) keeps two schedulers from firing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.automation.firing import Fired, Plan, fire, occasion_key
from messaging_whatsapp.automation.models import Action, AutoReplyRule, Trigger
from messaging_whatsapp.inbox.models import (
    TEAM_SENDERS,
    Contact,
    Conversation,
    Direction,
    Message,
    Ticket,
    TicketStatus,
)

# How far back a customer's message is still waited on.
WAITED_ON = timedelta(hours=24)
# Tickets one rule fires on per pass (the next pass takes the rest).
PASS_LIMIT = 500


async def answer_waiting_customers(session: AsyncSession, now: datetime) -> Fired:
    """Fire every enabled no_agent_answer rule on the tickets that waited past its minutes."""
    rules = await session.scalars(
        select(AutoReplyRule)
        .where(AutoReplyRule.trigger == Trigger.NO_AGENT_ANSWER.value, AutoReplyRule.enabled.is_(True))
        .order_by(AutoReplyRule.tenant_id, AutoReplyRule.position, AutoReplyRule.id)
    )
    fired = Fired()
    for rule in list(rules):
        plans = await _waiting(session, rule, now)
        if plans:
            fired.add(await fire(session, plans, now))
    return fired


async def _waiting(session: AsyncSession, rule: AutoReplyRule, now: datetime) -> list[Plan]:
    minutes = int((rule.trigger_config or {}).get("minutes", 0))
    if minutes <= 0:
        return []
    answered = (
        select(Message.id)
        .where(
            Message.ticket_id == Ticket.id,
            Message.sender_type.in_(TEAM_SENDERS),
            Message.created_at >= Conversation.last_inbound_at,
        )
        .exists()
    )
    customer_wrote = (
        select(Message.id)
        .where(Message.ticket_id == Ticket.id, Message.direction == Direction.INBOUND.value)
        .exists()
    )
    query = (
        select(
            Ticket.id,
            Conversation.instance_id,
            Conversation.last_inbound_at,
            Contact.phone,
            Contact.bsuid,
            Contact.lid,
        )
        .join(Conversation, Conversation.id == Ticket.conversation_id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(
            Ticket.tenant_id == rule.tenant_id,
            Ticket.status == TicketStatus.OPEN.value,
            Ticket.wants_person_at.is_(None)
            if rule.action != Action.ASSIGN.value
            else Ticket.id.is_not(None),
            Contact.opted_out.is_(False),
            Conversation.last_inbound_at <= now - timedelta(minutes=minutes),
            Conversation.last_inbound_at > now - WAITED_ON,
            customer_wrote,
            ~answered,
        )
        .order_by(Conversation.last_inbound_at)
        .limit(PASS_LIMIT)
    )
    if rule.instance_ids:
        query = query.where(Conversation.instance_id.in_(list(rule.instance_ids)))
    plans = []
    for row in await session.execute(query):
        to = row.phone or row.bsuid or row.lid
        if to is None:
            continue
        plans.append(
            Plan(
                rule=rule,
                tenant_id=rule.tenant_id,
                ticket_id=row.id,
                instance_id=row.instance_id,
                to=to,
                key=occasion_key(rule, f"wait:{row.last_inbound_at.isoformat()}"),
            )
        )
    return plans
