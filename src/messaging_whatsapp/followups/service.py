"""Follow-ups (seed 003): a sequence of messages sent on a quiet ticket until the customer answers.

A follow-up is started on an open ticket (by an agent, an API key or an automation rule); while it
runs the ticket's status is `follow_up`. Each step waits its `delay_seconds` after the one before
(the first after the start) and, with `business_hours_only`, until the tenant's next opening;
then it is sent through the sending rules like any message (sender `system`). After the last
step, the final wait (`final_wait_seconds`, by default the last step's delay) passes and the
follow-up ends `exhausted`, closing the ticket with `follow_up_exhausted` (or `completed`, ticket
back to open, when asked not to close it).

What stops it (its `cancel_reason`): the customer's reply (at once, in the ingest batch), an
agent's message after the start, the ticket closing, the person opting out or blocking, the
person asking for a person (tickets.wants_person_at), or a user cancelling it. The scheduler's
pass checks these set-based every pass and again, for one follow-up, in each step's transaction.
After WhatsApp's 24-hour window (official APIs) a text step is skipped and logged; templates go.

Exactly once: a step is taken by a conditional UPDATE (id, current step, running) in the same
transaction as its message's insert, so two schedulers never send it twice and a scheduler that
dies mid-step (its transaction never commits) leaves it to the next pass. Its message's
Idempotency-Key (`follow-up:<id>:<step>`) would stop a second insert too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import is_postgresql, take_sqlite_writer
from messaging_whatsapp.errors import Conflict, EngineError, InvalidInput, NotFound
from messaging_whatsapp.followups.models import (
    CancelReason,
    FollowUp,
    FollowUpStatus,
    FollowUpStepLog,
    StepOutcome,
)
from messaging_whatsapp.followups.schemas import (
    FollowUpItem,
    FollowUpRequest,
    FollowUpStepItem,
    StartedBy,
)
from messaging_whatsapp.inbox.activity import sync_open_tickets
from messaging_whatsapp.inbox.models import (
    OPEN_TICKET_STATUSES,
    TEAM_SENDERS,
    Contact,
    Conversation,
    Direction,
    Message,
    SenderType,
    Ticket,
    TicketCloseReason,
    TicketStatus,
)
from messaging_whatsapp.inbox.tickets import ClosedTicket
from messaging_whatsapp.inbox.visibility import EVERYONE, Viewer
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.providers.capabilities import takes_templates
from messaging_whatsapp.sending.rules import in_service_window
from messaging_whatsapp.sending.schemas import SendMessageRequest, TemplateIn
from messaging_whatsapp.sending.service import queue_messages
from messaging_whatsapp.sending.submissions import QueuedMessage, Submission, SubmissionResult
from messaging_whatsapp.templates.check import TemplateBook
from messaging_whatsapp.tenancy.hours import business_hours
from messaging_whatsapp.tenancy.models import Tenant

STARTED = "whatsapp_follow_up_started"
ENDED = "whatsapp_follow_up_ended"
RUNNING = FollowUpStatus.RUNNING.value


@dataclass
class StepRun:
    """What one turn of a follow-up did: the messages it queued and the events to publish."""

    results: list[SubmissionResult] = field(default_factory=list)
    events: list[PublishedEvent] = field(default_factory=list)

    @property
    def queued(self) -> list[tuple[str, str]]:
        """(message id, tenant id) of the messages stored now, to offer after commit."""
        return [
            (r.message.id, r.message.tenant_id)
            for r in self.results
            if isinstance(r, QueuedMessage) and r.created
        ]


def follow_up_event(event_type: str, follow_up: FollowUp, ticket_status: str) -> PublishedEvent:
    """`whatsapp_follow_up_started` / `_ended` with the follow-up's state and the ticket's."""
    payload = {
        "follow_up_id": follow_up.id,
        "ticket_id": follow_up.ticket_id,
        "conversation_id": follow_up.conversation_id,
        "status": follow_up.status,
        "cancel_reason": follow_up.cancel_reason,
        "ticket_status": ticket_status,
    }
    return PublishedEvent(event_type, follow_up.tenant_id, payload)


async def start_follow_up(
    session: AsyncSession,
    tenant_id: str,
    ticket_id: str,
    request: FollowUpRequest,
    started_by: StartedBy,
    now: datetime,
    viewer: Viewer = EVERYONE,
) -> tuple[FollowUp, list[PublishedEvent]]:
    """Start a follow-up on an open ticket (404 unless the viewer works it; 409 ticket_closed,
    follow_up_running, opted_out); the ticket becomes `follow_up`. Returns it and the event to
    publish; the caller commits."""
    ticket = await session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, Ticket.tenant_id == tenant_id, viewer.visible_tickets())
    )
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found")
    if ticket.status not in OPEN_TICKET_STATUSES:
        raise Conflict(
            f"ticket {ticket_id} is closed ({ticket.close_reason}): a follow-up needs an open ticket",
            code="ticket_closed",
        )
    if await _running_on(session, ticket_id) is not None:
        raise _already_running(ticket_id)
    opted_out, instance = (
        await session.execute(
            select(Contact.opted_out, WhatsAppInstance)
            .join(Conversation, Conversation.contact_id == Contact.id)
            .join(WhatsAppInstance, WhatsAppInstance.id == Conversation.instance_id)
            .where(Conversation.id == ticket.conversation_id)
        )
    ).one()
    if opted_out:
        raise Conflict("the person opted out of messages from this business", code="opted_out")
    await _check_templates(session, tenant_id, request, instance)
    follow_up = FollowUp(
        tenant_id=tenant_id,
        ticket_id=ticket.id,
        conversation_id=ticket.conversation_id,
        steps=request.step_rows(),
        business_hours_only=request.business_hours_only,
        close_ticket=request.close_ticket,
        final_wait_seconds=request.final_wait,
        status=RUNNING,
        current_step=0,
        next_step_at=now + timedelta(seconds=request.steps[0].delay_seconds),
        started_by_user_id=started_by.user_id,
        started_by_api_key_id=started_by.api_key_id,
        started_by_rule_id=started_by.rule_id,
        started_at=now,
        created_at=now,
        updated_at=now,
    )
    try:
        # The unique "one running per ticket" index settles two starts at the same moment.
        async with session.begin_nested():
            session.add(follow_up)
            await session.flush()
    except IntegrityError:
        raise _already_running(ticket_id) from None
    await session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.status.in_(OPEN_TICKET_STATUSES))
        .values(status=TicketStatus.FOLLOW_UP.value, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return follow_up, [follow_up_event(STARTED, follow_up, TicketStatus.FOLLOW_UP.value)]


async def _check_templates(
    session: AsyncSession, tenant_id: str, request: FollowUpRequest, instance: WhatsAppInstance
) -> None:
    """Refuse now the template steps that could only ever be refused later: any on a number that
    has no templates (the gateways), and one the number does not have approved with that many
    parameters (the check every template send passes, templates/check.py)."""
    steps = [(index, step.template) for index, step in enumerate(request.steps) if step.template is not None]
    if not steps:
        return
    if not takes_templates(instance.provider):
        raise InvalidInput(
            f"steps[{steps[0][0]}].template: this conversation's number ({instance.provider}) cannot "
            "send templates; use text",
            code="template_unsupported",
        )
    book = await TemplateBook.load(session, tenant_id)
    for index, template in steps:
        try:
            book.check(instance, template.name, template.language, len(template.parameters))
        except InvalidInput as exc:
            raise InvalidInput(
                f"steps[{index}].template: {exc.message}", code=exc.code, details=exc.details
            ) from None


def _already_running(ticket_id: str) -> Conflict:
    return Conflict(
        f"ticket {ticket_id} already has a running follow-up; cancel it first", code="follow_up_running"
    )


async def _running_on(session: AsyncSession, ticket_id: str) -> str | None:
    return await session.scalar(
        select(FollowUp.id).where(FollowUp.ticket_id == ticket_id, FollowUp.status == RUNNING)
    )


async def list_follow_ups(
    session: AsyncSession, tenant_id: str, ticket_id: str, viewer: Viewer = EVERYONE
) -> list[FollowUpItem]:
    """A ticket's follow-ups, newest first, with their steps' outcomes (404 unless visible)."""
    await _visible_ticket(session, tenant_id, ticket_id, viewer)
    found = list(
        await session.scalars(
            select(FollowUp)
            .where(FollowUp.tenant_id == tenant_id, FollowUp.ticket_id == ticket_id)
            .order_by(FollowUp.created_at.desc(), FollowUp.id.desc())
        )
    )
    return await _items(session, found)


async def get_follow_up(
    session: AsyncSession, tenant_id: str, follow_up_id: str, viewer: Viewer = EVERYONE
) -> FollowUpItem:
    """One follow-up with its steps' outcomes (404 unless its ticket is visible)."""
    follow_up = await _visible_follow_up(session, tenant_id, follow_up_id, viewer)
    return (await _items(session, [follow_up]))[0]


async def cancel_follow_up(
    session: AsyncSession, tenant_id: str, follow_up_id: str, now: datetime, viewer: Viewer = EVERYONE
) -> tuple[FollowUpItem, list[PublishedEvent]]:
    """A user stops a running follow-up (`cancelled_by_user`); the ticket goes back to open;
    409 follow_up_ended when it already ended."""
    follow_up = await _visible_follow_up(session, tenant_id, follow_up_id, viewer)
    await take_sqlite_writer(session)
    events = await _cancel(session, FollowUp.id == follow_up.id, CancelReason.CANCELLED_BY_USER, now)
    await session.refresh(follow_up)
    if not events:
        raise Conflict(
            f"follow-up {follow_up_id} already ended ({follow_up.status})",
            code="follow_up_ended",
            details={"status": follow_up.status, "cancel_reason": follow_up.cancel_reason},
        )
    return (await _items(session, [follow_up]))[0], events


async def _visible_ticket(session: AsyncSession, tenant_id: str, ticket_id: str, viewer: Viewer) -> None:
    found = await session.scalar(
        select(Ticket.id).where(
            Ticket.id == ticket_id, Ticket.tenant_id == tenant_id, viewer.visible_tickets()
        )
    )
    if found is None:
        raise NotFound(f"ticket {ticket_id} not found")


async def _visible_follow_up(
    session: AsyncSession, tenant_id: str, follow_up_id: str, viewer: Viewer
) -> FollowUp:
    follow_up = await session.scalar(
        select(FollowUp)
        .join(Ticket, Ticket.id == FollowUp.ticket_id)
        .where(FollowUp.id == follow_up_id, FollowUp.tenant_id == tenant_id, viewer.visible_tickets())
    )
    if follow_up is None:
        raise NotFound(f"follow-up {follow_up_id} not found")
    return follow_up


async def _items(session: AsyncSession, follow_ups: list[FollowUp]) -> list[FollowUpItem]:
    logs: dict[str, dict[int, FollowUpStepLog]] = {}
    if follow_ups:
        rows = await session.scalars(
            select(FollowUpStepLog).where(FollowUpStepLog.follow_up_id.in_([f.id for f in follow_ups]))
        )
        for log in rows:
            logs.setdefault(log.follow_up_id, {})[log.step] = log
    return [_item(follow_up, logs.get(follow_up.id, {})) for follow_up in follow_ups]


def _item(follow_up: FollowUp, logs: dict[int, FollowUpStepLog]) -> FollowUpItem:
    steps = []
    for index, step in enumerate(follow_up.steps):
        log = logs.get(index)
        steps.append(
            FollowUpStepItem(
                step=index,
                delay_seconds=step["delay_seconds"],
                text=step.get("text"),
                template=TemplateIn(**step["template"]) if step.get("template") else None,
                outcome=log.outcome if log else None,
                message_id=log.message_id if log else None,
                reason=log.reason if log else None,
                error=log.error if log else None,
                at=log.created_at if log else None,
            )
        )
    return FollowUpItem(
        id=follow_up.id,
        ticket_id=follow_up.ticket_id,
        conversation_id=follow_up.conversation_id,
        status=follow_up.status,
        cancel_reason=follow_up.cancel_reason,
        business_hours_only=follow_up.business_hours_only,
        close_ticket=follow_up.close_ticket,
        final_wait_seconds=follow_up.final_wait_seconds,
        current_step=follow_up.current_step,
        next_step_at=follow_up.next_step_at,
        started_by=StartedBy(
            user_id=follow_up.started_by_user_id,
            api_key_id=follow_up.started_by_api_key_id,
            rule_id=follow_up.started_by_rule_id,
        ),
        started_at=follow_up.started_at,
        ended_at=follow_up.ended_at,
        steps=steps,
    )


# ---------------------------------------------------------------------------------------------
# What stops a follow-up, as conditions on its row (correlated: set-based for every running one,
# or narrowed to one in a step's transaction). In this order: the first that holds names it.


def _stop_conditions() -> list[tuple[CancelReason, ColumnElement[bool]]]:
    f = FollowUp
    ticket_closed = exists().where(Ticket.id == f.ticket_id, Ticket.status.not_in(OPEN_TICKET_STATUSES))
    opted_out = exists().where(
        Conversation.id == f.conversation_id,
        Contact.id == Conversation.contact_id,
        Contact.opted_out.is_(True),
    )
    wants_person = exists().where(Ticket.id == f.ticket_id, Ticket.wants_person_at >= f.started_at)
    customer_replied = _message_since(Message.direction == Direction.INBOUND.value)
    agent_replied = _message_since(
        and_(Message.direction == Direction.OUTBOUND.value, Message.sender_type.in_(TEAM_SENDERS))
    )
    return [
        (CancelReason.TICKET_CLOSED, ticket_closed),
        (CancelReason.OPTED_OUT, opted_out),
        (CancelReason.WANTS_PERSON, wants_person),
        (CancelReason.CUSTOMER_REPLIED, customer_replied),
        (CancelReason.AGENT_REPLIED, agent_replied),
    ]


def _message_since(kind: ColumnElement[bool]) -> ColumnElement[bool]:
    # The conversation's messages in time order (ix_messages_conversation_created).
    return exists().where(
        Message.conversation_id == FollowUp.conversation_id, Message.created_at > FollowUp.started_at, kind
    )


async def cancel_stopped(session: AsyncSession, now: datetime) -> list[PublishedEvent]:
    """Cancel every running follow-up that something stopped, naming what (a few statements
    whatever their number); the events to publish."""
    events: list[PublishedEvent] = []
    for reason, condition in _stop_conditions():
        events += await _cancel(session, condition, reason, now)
    return events


async def cancel_for_replies(
    session: AsyncSession, conversation_ids: list[str], reason: CancelReason, now: datetime
) -> list[PublishedEvent]:
    """Cancel the running follow-ups of these conversations (the customer wrote, or opted out, in
    the ingest batch); the events to publish."""
    if not conversation_ids:
        return []
    return await _cancel(session, FollowUp.conversation_id.in_(sorted(set(conversation_ids))), reason, now)


async def _cancel(
    session: AsyncSession, condition: ColumnElement[bool], reason: CancelReason, now: datetime
) -> list[PublishedEvent]:
    """Cancel the running follow-ups matching `condition`; their tickets go back to open."""
    rows = await session.execute(
        update(FollowUp)
        .where(FollowUp.status == RUNNING, condition)
        .values(
            status=FollowUpStatus.CANCELLED.value, cancel_reason=reason.value, ended_at=now, updated_at=now
        )
        .returning(FollowUp.id)
        .execution_options(synchronize_session=False)
    )
    ids = list(rows.scalars())
    if not ids:
        return []
    return await _ended(session, ids, now)


async def _ended(session: AsyncSession, follow_up_ids: list[str], now: datetime) -> list[PublishedEvent]:
    """The follow-ups just ended (not exhausted): their tickets back to open; their events."""
    ended = list(
        await session.scalars(
            select(FollowUp).where(FollowUp.id.in_(follow_up_ids)).execution_options(populate_existing=True)
        )
    )
    await session.execute(
        update(Ticket)
        .where(Ticket.id.in_([f.ticket_id for f in ended]), Ticket.status == TicketStatus.FOLLOW_UP.value)
        .values(status=TicketStatus.OPEN.value, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    rows = await session.execute(
        select(Ticket.id, Ticket.status).where(Ticket.id.in_([f.ticket_id for f in ended]))
    )
    statuses = {row.id: row.status for row in rows}
    return [follow_up_event(ENDED, f, statuses.get(f.ticket_id, TicketStatus.CLOSED.value)) for f in ended]


# ---------------------------------------------------------------------------------------------
# The scheduler's turns


async def due_follow_ups(session: AsyncSession, now: datetime, limit: int = 200) -> list[tuple[str, int]]:
    """(id, current step) of the running follow-ups whose next step (or end) is due, oldest first."""
    rows = await session.execute(
        select(FollowUp.id, FollowUp.current_step)
        .where(FollowUp.status == RUNNING, FollowUp.next_step_at <= now)
        .order_by(FollowUp.next_step_at)
        .limit(limit)
    )
    return [(row.id, row.current_step) for row in rows]


async def run_step(session: AsyncSession, follow_up_id: str, step: int, now: datetime) -> StepRun | None:
    """Take step `step` of a follow-up and do it in the session's transaction: send it (or skip
    it, or record its refusal), or end the follow-up after its last; or cancel it when something
    stopped it. None when it is not this step's turn any more (another scheduler took it, or
    it ended). The caller commits, then relays the events and offers the messages."""
    await take_sqlite_writer(session)
    if is_postgresql(session):
        # The ingest batch locks a conversation, then its follow-ups (a reply stops them); a step
        # takes them in the same order, so the two never deadlock.
        of_follow_up = select(FollowUp.conversation_id).where(FollowUp.id == follow_up_id).scalar_subquery()
        await session.execute(
            select(Conversation.id).where(Conversation.id == of_follow_up).with_for_update()
        )
    follow_up = await session.scalar(
        select(FollowUp).where(FollowUp.id == follow_up_id).execution_options(populate_existing=True)
    )
    if follow_up is None or follow_up.status != RUNNING or follow_up.current_step != step:
        return None
    for reason, condition in _stop_conditions():
        events = await _cancel(session, and_(FollowUp.id == follow_up.id, condition), reason, now)
        if events:
            return StepRun(events=events)
    opening = await _next_opening(session, follow_up, now)
    if opening is not None:
        # Not open now: the step waits for the opening (nothing is taken, nothing sent).
        await session.execute(_this_turn(follow_up.id, step).values(next_step_at=opening, updated_at=now))
        return StepRun()
    if step >= len(follow_up.steps):
        return await _end(session, follow_up, step, now)
    if not await _take(session, follow_up, step, now):
        return None
    return await _send(session, follow_up, step, now)


def _this_turn(follow_up_id: str, step: int) -> Update:
    """UPDATE of the follow-up only while it is still at this step and running."""
    return (
        update(FollowUp)
        .where(FollowUp.id == follow_up_id, FollowUp.current_step == step, FollowUp.status == RUNNING)
        .execution_options(synchronize_session=False)
    )


async def _take(session: AsyncSession, follow_up: FollowUp, step: int, now: datetime) -> bool:
    """Move the follow-up past `step` (conditional: once), with the next one's due time."""
    steps = follow_up.steps
    wait = steps[step + 1]["delay_seconds"] if step + 1 < len(steps) else follow_up.final_wait_seconds
    taken = await session.scalar(
        _this_turn(follow_up.id, step)
        .values(current_step=step + 1, next_step_at=now + timedelta(seconds=wait), updated_at=now)
        .returning(FollowUp.id)
    )
    return taken is not None


async def _next_opening(session: AsyncSession, follow_up: FollowUp, now: datetime) -> datetime | None:
    """The tenant's next opening when the follow-up keeps to business hours and it is closed now."""
    if not follow_up.business_hours_only:
        return None
    row = (
        await session.execute(
            select(Tenant.business_hours, Tenant.timezone).where(Tenant.id == follow_up.tenant_id)
        )
    ).one()
    hours = business_hours(row.business_hours, row.timezone)
    if hours is None or hours.is_open(now):
        return None
    return hours.next_open(now)


async def _send(session: AsyncSession, follow_up: FollowUp, step: int, now: datetime) -> StepRun:
    """Send the step through the sending rules, and log what became of it."""
    content = follow_up.steps[step]
    conversation, contact, instance = (
        await session.execute(
            select(Conversation, Contact, WhatsAppInstance)
            .join(Contact, Contact.id == Conversation.contact_id)
            .join(WhatsAppInstance, WhatsAppInstance.id == Conversation.instance_id)
            .where(Conversation.id == follow_up.conversation_id)
        )
    ).one()
    log: dict[str, Any] = {"outcome": StepOutcome.SENT.value}
    run = StepRun()
    if "text" in content and not in_service_window(instance, conversation.last_inbound_at, now):
        log = {"outcome": StepOutcome.SKIPPED.value, "reason": "outside_service_window"}
    else:
        request = SendMessageRequest(
            to=contact.phone or contact.bsuid or contact.lid or "",
            instance_id=instance.id,
            text=content.get("text"),
            template=TemplateIn(**content["template"]) if "template" in content else None,
        )
        submission = Submission(
            follow_up.tenant_id, request, f"follow-up:{follow_up.id}:{step}", SenderType.SYSTEM
        )
        [result] = await queue_messages(session, [submission], now)
        run.results.append(result)
        if isinstance(result, EngineError):
            log = {"outcome": StepOutcome.REFUSED.value, "reason": result.code, "error": result.message}
        else:
            log["message_id"] = result.message.id
    session.add(
        FollowUpStepLog(
            tenant_id=follow_up.tenant_id, follow_up_id=follow_up.id, step=step, created_at=now, **log
        )
    )
    await session.flush()
    return run


async def _end(session: AsyncSession, follow_up: FollowUp, step: int, now: datetime) -> StepRun | None:
    """The final wait passed without a reply: exhausted (the ticket closes, follow_up_exhausted) or
    completed (the ticket goes back to open)."""
    status = FollowUpStatus.EXHAUSTED if follow_up.close_ticket else FollowUpStatus.COMPLETED
    ended = await session.scalar(
        _this_turn(follow_up.id, step)
        .values(status=status.value, ended_at=now, next_step_at=None, updated_at=now)
        .returning(FollowUp.id)
    )
    if ended is None:
        return None
    if status is FollowUpStatus.COMPLETED:
        return StepRun(events=await _ended(session, [follow_up.id], now))
    reason = TicketCloseReason.FOLLOW_UP_EXHAUSTED.value
    closed = await session.scalar(
        update(Ticket)
        .where(Ticket.id == follow_up.ticket_id, Ticket.status.in_(OPEN_TICKET_STATUSES))
        .values(status=TicketStatus.CLOSED.value, closed_at=now, close_reason=reason, updated_at=now)
        .returning(Ticket.id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(follow_up)
    events = [follow_up_event(ENDED, follow_up, TicketStatus.CLOSED.value)]
    if closed is not None:
        await sync_open_tickets(session, [follow_up.conversation_id])
        ticket = ClosedTicket(
            follow_up.ticket_id, follow_up.tenant_id, follow_up.conversation_id, reason, now
        )
        events.append(ticket.event())
    return StepRun(events=events)
