"""Firing rules: a rule's firing is recorded under its unique key, then its action is carried out,
all in the caller's transaction (the ingest batch's, or the scheduler pass's).

The key (rule, ticket, occasion) makes a firing happen once however often its cause is seen: a
webhook delivered again, two workers, two schedulers. A send goes through the sending rules
(sending.service.queue_messages, sender `system`): what they refuse (opted out, outside the 24-hour
window, no number that can send...) is recorded on the firing as `refused`, never raised. Sends
are queued before ticket changes, so a message joins the ticket a `close` rule then ends.
A `follow_up` rule starts a follow-up sequence (followups/), which a `wants a person` ticket or
one already following up refuses (recorded as a skip).
To add an action, add it to models.Action, schemas.Then and `_change_ticket` here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.automation.models import (
    SENDING_ACTIONS,
    Action,
    AutoReplyRule,
    FiringOutcome,
    RuleFiring,
    firings_table,
)
from messaging_whatsapp.automation.schemas import ButtonsThen, TemplateThen, TextThen
from messaging_whatsapp.automation.service import rule_then
from messaging_whatsapp.db import insert_for, new_id
from messaging_whatsapp.errors import EngineError
from messaging_whatsapp.followups.schemas import FollowUpRequest, StartedBy
from messaging_whatsapp.followups.service import start_follow_up
from messaging_whatsapp.inbox.announcements import assigned_event
from messaging_whatsapp.inbox.models import SenderType, TicketCloseReason
from messaging_whatsapp.inbox.tickets import assign_ticket, close_ticket
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.sending.schemas import ButtonsIn, SendMessageRequest
from messaging_whatsapp.sending.service import queue_messages
from messaging_whatsapp.sending.submissions import QueuedMessage, Submission, queued_events

# The firing key of a rule that fires once per ticket.
ONCE = "once"


@dataclass(frozen=True, slots=True)
class Plan:
    """A rule about to fire on a ticket: who it writes to, through which number, and why."""

    rule: AutoReplyRule
    tenant_id: str
    ticket_id: str
    instance_id: str
    # The customer: a phone, or the BSUID / LID they are known by.
    to: str
    key: str
    cause_message_id: str | None = None
    # The text an outside_hours rule sends when it names none (the tenant's away message).
    away_message: str | None = None


@dataclass
class Fired:
    """What firing did: events to publish with the transaction, messages to offer after it."""

    published: list[PublishedEvent] = field(default_factory=list)
    offers: list[tuple[str, str]] = field(default_factory=list)
    fired: int = 0

    def add(self, other: Fired) -> None:
        """Take another's results in."""
        self.published += other.published
        self.offers += other.offers
        self.fired += other.fired


def occasion_key(rule: AutoReplyRule, occasion: str) -> str:
    """The firing key: ONCE for a once-per-ticket rule, else the occasion (a message, a wait)."""
    return ONCE if rule.once_per_ticket else occasion[:64]


async def fire(session: AsyncSession, plans: list[Plan], now: datetime) -> Fired:
    """Record each plan's firing (those fired before are dropped) and carry the new ones out."""
    fired = Fired()
    new: list[tuple[str, Plan]] = []
    for plan in plans:
        firing_id = await _record(session, plan, now)
        if firing_id is not None:
            new.append((firing_id, plan))
    fired.fired = len(new)
    sends = [(fid, plan) for fid, plan in new if plan.rule.action in SENDING_ACTIONS]
    if sends:
        await _send(session, sends, now, fired)
    for firing_id, plan in new:
        if plan.rule.action not in SENDING_ACTIONS:
            await _change_ticket(session, firing_id, plan, now, fired)
    return fired


async def _record(session: AsyncSession, plan: Plan, now: datetime) -> str | None:
    """The new firing's id, or None when this rule already fired on this ticket for this key."""
    statement = (
        insert_for(session, firings_table)
        .values(
            id=new_id(),
            tenant_id=plan.tenant_id,
            rule_id=plan.rule.id,
            ticket_id=plan.ticket_id,
            key=plan.key,
            cause_message_id=plan.cause_message_id,
            fired_at=now,
            outcome=FiringOutcome.SKIPPED.value,
        )
        .on_conflict_do_nothing(index_elements=["rule_id", "ticket_id", "key"])
        .returning(firings_table.c.id)
    )
    firing_id: str | None = await session.scalar(statement)
    return firing_id


async def _outcome(
    session: AsyncSession,
    firing_id: str,
    outcome: FiringOutcome,
    detail: str | None = None,
    message_id: str | None = None,
) -> None:
    await session.execute(
        update(RuleFiring)
        .where(RuleFiring.id == firing_id)
        .values(outcome=outcome.value, detail=detail, message_id=message_id)
        .execution_options(synchronize_session=False)
    )


def _request(plan: Plan) -> SendMessageRequest | str:
    """The message the plan sends, or why there is none."""
    then = rule_then(plan.rule)
    base = {"to": plan.to, "instance_id": plan.instance_id}
    if isinstance(then, TextThen):
        text = then.text or plan.away_message
        if not text:
            return "no text and no away message set"
        return SendMessageRequest(**base, text=text)
    if isinstance(then, ButtonsThen):
        return SendMessageRequest(**base, buttons=ButtonsIn(text=then.text, buttons=then.buttons))
    if isinstance(then, TemplateThen):
        return SendMessageRequest(**base, template=then.template)
    return f"action {plan.rule.action} sends nothing"


async def _send(session: AsyncSession, sends: list[tuple[str, Plan]], now: datetime, fired: Fired) -> None:
    """Queue every send of the batch through the sending rules, in one call."""
    submissions: list[tuple[str, Submission]] = []
    for firing_id, plan in sends:
        request = _request(plan)
        if isinstance(request, str):
            await _outcome(session, firing_id, FiringOutcome.SKIPPED, request)
            continue
        # The firing's id as the Idempotency-Key: one firing, one message.
        key = f"automation:{firing_id}"
        submissions.append((firing_id, Submission(plan.tenant_id, request, key, SenderType.SYSTEM)))
    if not submissions:
        return
    results = await queue_messages(session, [s for _, s in submissions], now)
    for (firing_id, _), result in zip(submissions, results, strict=True):
        if isinstance(result, EngineError):
            await _outcome(session, firing_id, FiringOutcome.REFUSED, f"{result.code}: {result.message}")
            continue
        await _outcome(session, firing_id, FiringOutcome.QUEUED, message_id=result.message.id)
        if result.created:
            fired.offers.append((result.message.id, result.message.tenant_id))
    fired.published += queued_events([r for r in results if isinstance(r, QueuedMessage)])


async def _change_ticket(
    session: AsyncSession, firing_id: str, plan: Plan, now: datetime, fired: Fired
) -> None:
    """Assign, close or start a follow-up; a ticket closed meanwhile, a user gone or a follow-up
    refused is a skip, not an error."""
    then = rule_then(plan.rule)
    try:
        if plan.rule.action == Action.ASSIGN.value:
            ticket = await assign_ticket(session, plan.tenant_id, plan.ticket_id, then.user_id, now)
            fired.published.append(assigned_event(ticket))
            await _outcome(session, firing_id, FiringOutcome.ASSIGNED)
        elif plan.rule.action == Action.CLOSE.value:
            _, closed = await close_ticket(
                session, plan.tenant_id, plan.ticket_id, TicketCloseReason.MANUAL, now
            )
            fired.published.append(closed.event())
            await _outcome(session, firing_id, FiringOutcome.CLOSED)
        elif plan.rule.action == Action.FOLLOW_UP.value:
            request = FollowUpRequest.model_validate(then.model_dump(exclude={"type"}))
            started_by = StartedBy(rule_id=plan.rule.id)
            _, events = await start_follow_up(
                session, plan.tenant_id, plan.ticket_id, request, started_by, now
            )
            fired.published += events
            await _outcome(session, firing_id, FiringOutcome.FOLLOW_UP_STARTED)
    except EngineError as exc:
        await _outcome(session, firing_id, FiringOutcome.SKIPPED, f"{exc.code}: {exc.message}")


async def firings_of(session: AsyncSession, tenant_id: str, ticket_id: str) -> list[RuleFiring]:
    """A ticket's firings, oldest first (for tests and support)."""
    query = (
        select(RuleFiring)
        .where(RuleFiring.tenant_id == tenant_id, RuleFiring.ticket_id == ticket_id)
        .order_by(RuleFiring.fired_at, RuleFiring.id)
    )
    return list((await session.scalars(query)).all())
