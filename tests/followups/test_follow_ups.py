"""Follow-ups (seed 003) on both databases, driven by the scheduler's pass on a clock the test moves:
steps sent in order, each once; what stops one (a reply between two steps, an agent's message,
the ticket closing, an opt-out, the person asking for a person); the end (exhausted closes the
ticket, completed gives it back); the 24-hour window (text skipped and logged, template sent)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.followups import service
from messaging_whatsapp.followups.models import FollowUp, FollowUpStepLog
from messaging_whatsapp.followups.schemas import FollowUpRequest, StartedBy
from messaging_whatsapp.inbox.models import Contact, Message, SenderType, Ticket, TicketCloseReason
from messaging_whatsapp.inbox.tickets import close_ticket
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.outbox.service import relay_outbox, write_outbox
from messaging_whatsapp.providers.events import InboundMessage, MessageType
from messaging_whatsapp.sending import service as sending_service
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.tenancy.models import Tenant
from messaging_whatsapp.worker.ingest import apply_entries
from messaging_whatsapp.worker.scheduler import Scheduler
from tests.helpers import approved_template, bind, create_tenant

PHONE = "5511987654321"


class Clock:
    """The scheduler's time, moved by the test. It starts a minute ahead of the wall clock, so the
    rows the test writes before the start (by the wall clock) are older than the follow-up."""

    def __init__(self) -> None:
        self.now = utcnow() + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move on."""
        self.now += timedelta(seconds=seconds)


@dataclass
class Ticketed:
    """A tenant whose customer wrote: the ticket a follow-up runs on."""

    tenant_id: str
    instance_id: str
    ticket_id: str
    conversation_id: str


async def customer_writes(
    context: EngineContext, tenant_id: str, instance_id: str, at: datetime, text: str = "Oi"
) -> None:
    message = InboundMessage(f"SIM-{new_id()}", PHONE, MessageType.TEXT, at, text=text)
    entry = IngestEntry(new_id(), tenant_id, instance_id, at, [message])
    async with context.sessions() as session, session.begin():
        result = await apply_entries(session, [entry], context.names.events)
    await relay_outbox(context, result.outbox)


async def new_ticket(context: EngineContext, provider: str = "simulator", wrote_ago: float = 60) -> Ticketed:
    tenant_id = await create_tenant(context)
    if provider == "meta":
        instance, _ = await bind(
            context,
            tenant_id,
            provider="meta",
            display_number="+551140028922",
            phone_number_id=f"1{new_id()[-10:].replace('-', '0')}",
            access_token="EAAG-followups",
            app_secret="f" * 32,
        )
    else:
        instance, _ = await bind(
            context, tenant_id, provider="simulator", display_number="+551140028922", instance_name="sim-fu"
        )
    await customer_writes(context, tenant_id, instance.id, utcnow() - timedelta(seconds=wrote_ago))
    async with context.sessions() as session:
        ticket = (await session.scalars(select(Ticket).where(Ticket.tenant_id == tenant_id))).one()
    return Ticketed(tenant_id, instance.id, ticket.id, ticket.conversation_id)


async def start_follow_up(context: EngineContext, ticketed: Ticketed, clock: Clock, **body: Any) -> str:
    request = FollowUpRequest.model_validate(body)
    async with context.sessions() as session, session.begin():
        follow_up, events = await service.start_follow_up(
            session, ticketed.tenant_id, ticketed.ticket_id, request, StartedBy(user_id=None), clock()
        )
        records = await write_outbox(session, events, context.names.events)
    await relay_outbox(context, records)
    return follow_up.id


async def follow_up_state(context: EngineContext, follow_up_id: str) -> tuple[str, str | None, int]:
    async with context.sessions() as session:
        follow_up = await session.get_one(FollowUp, follow_up_id)
        return follow_up.status, follow_up.cancel_reason, follow_up.current_step


async def ticket_state(context: EngineContext, ticket_id: str) -> tuple[str, str | None]:
    async with context.sessions() as session:
        ticket = await session.get_one(Ticket, ticket_id)
        return ticket.status, ticket.close_reason


async def system_messages(context: EngineContext, conversation_id: str) -> list[str]:
    """The follow-up's messages in the conversation, oldest first (their text or template name)."""
    async with context.sessions() as session:
        rows = await session.scalars(
            select(Message.content)
            .where(Message.conversation_id == conversation_id, Message.sender_type == SenderType.SYSTEM.value)
            .order_by(Message.created_at, Message.id)
        )
        return [row or "" for row in rows]


async def step_logs(context: EngineContext, follow_up_id: str) -> list[tuple[int, str, str | None]]:
    async with context.sessions() as session:
        rows = await session.scalars(
            select(FollowUpStepLog)
            .where(FollowUpStepLog.follow_up_id == follow_up_id)
            .order_by(FollowUpStepLog.step)
        )
        return [(log.step, log.outcome, log.reason) for log in rows]


async def read_events(context: EngineContext) -> dict[str, list[dict[str, Any]]]:
    """The events published since the last look, by type (each is read once)."""
    streams, stream = context.streams, context.names.events
    await streams.ensure_group(stream, "test-reader")
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in await streams.read(stream, "test-reader", "t1", 1000, 0):
        found.setdefault(entry.fields["event_type"], []).append(json.loads(entry.fields["payload"]))
    return found


async def ended_events(context: EngineContext) -> list[dict[str, Any]]:
    return (await read_events(context)).get("whatsapp_follow_up_ended", [])


THREE_STEPS = {
    "steps": [
        {"delay_seconds": 0, "text": "Oi, ainda tem interesse?"},
        {"delay_seconds": 60, "text": "Posso ajudar em algo mais?"},
        {"delay_seconds": 120, "text": "Última chamada!"},
    ]
}


async def test_the_steps_go_in_order_and_an_exhausted_follow_up_closes_the_ticket(
    context: EngineContext,
) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    scheduler = Scheduler(context, clock=clock)
    follow_up_id = await start_follow_up(context, ticketed, clock, **THREE_STEPS)
    assert await ticket_state(context, ticketed.ticket_id) == ("follow_up", None)
    [started] = (await read_events(context))["whatsapp_follow_up_started"]
    assert started["status"] == "running"

    # Each pass sends what is due, nothing before its time, nothing twice.
    await scheduler.run_follow_ups()
    await scheduler.run_follow_ups()
    assert await system_messages(context, ticketed.conversation_id) == ["Oi, ainda tem interesse?"]
    clock.advance(30)
    await scheduler.run_follow_ups()
    assert len(await system_messages(context, ticketed.conversation_id)) == 1
    clock.advance(31)
    await scheduler.run_follow_ups()
    clock.advance(121)
    await scheduler.run_follow_ups()
    assert await system_messages(context, ticketed.conversation_id) == [
        step["text"] for step in THREE_STEPS["steps"]
    ]
    assert await step_logs(context, follow_up_id) == [(0, "sent", None), (1, "sent", None), (2, "sent", None)]
    # The inactivity close leaves a follow_up ticket alone.
    async with context.sessions() as session, session.begin():
        await session.execute(update(Tenant).values(ticket_inactivity_minutes=1))
    assert await Scheduler(context, clock=lambda: clock() + timedelta(hours=2)).close_inactive_tickets() == 0
    assert await follow_up_state(context, follow_up_id) == ("running", None, 3)

    # The final wait (the last step's delay by default) passes without a reply: exhausted.
    clock.advance(121)
    await scheduler.run_follow_ups()
    assert (await follow_up_state(context, follow_up_id))[:2] == ("exhausted", None)
    assert await ticket_state(context, ticketed.ticket_id) == ("closed", "follow_up_exhausted")
    events = await read_events(context)
    [ended] = events["whatsapp_follow_up_ended"]
    assert (ended["status"], ended["ticket_status"]) == ("exhausted", "closed")
    [closed] = events["whatsapp_ticket_closed"]
    assert closed["close_reason"] == "follow_up_exhausted"
    clock.advance(600)
    await scheduler.run_follow_ups()
    assert len(await system_messages(context, ticketed.conversation_id)) == 3


async def test_a_follow_up_asked_not_to_close_ends_completed_and_the_ticket_is_open_again(
    context: EngineContext,
) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    scheduler = Scheduler(context, clock=clock)
    body = {"steps": [{"delay_seconds": 0, "text": "Oi!"}], "close_ticket": False, "final_wait_seconds": 10}
    follow_up_id = await start_follow_up(context, ticketed, clock, **body)
    await scheduler.run_follow_ups()
    clock.advance(11)
    await scheduler.run_follow_ups()
    assert (await follow_up_state(context, follow_up_id))[:2] == ("completed", None)
    assert await ticket_state(context, ticketed.ticket_id) == ("open", None)


async def test_a_reply_between_two_steps_cancels_the_rest(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    scheduler = Scheduler(context, clock=clock)
    follow_up_id = await start_follow_up(context, ticketed, clock, **THREE_STEPS)
    await scheduler.run_follow_ups()
    assert len(await system_messages(context, ticketed.conversation_id)) == 1

    # The reply is applied by the ingest batch: the follow-up stops there, before any pass.
    await customer_writes(context, ticketed.tenant_id, ticketed.instance_id, utcnow(), "Sim, quero!")
    assert await follow_up_state(context, follow_up_id) == ("cancelled", "customer_replied", 1)
    assert await ticket_state(context, ticketed.ticket_id) == ("open", None)
    [ended] = await ended_events(context)
    assert (ended["cancel_reason"], ended["ticket_status"]) == ("customer_replied", "open")

    clock.advance(1000)
    await scheduler.run_follow_ups()
    assert await system_messages(context, ticketed.conversation_id) == ["Oi, ainda tem interesse?"]
    assert await step_logs(context, follow_up_id) == [(0, "sent", None)]


async def test_an_agents_message_cancels_it(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    scheduler = Scheduler(context, clock=clock)
    follow_up_id = await start_follow_up(context, ticketed, clock, **THREE_STEPS)
    await scheduler.run_follow_ups()
    clock.advance(10)
    reply = SendMessageRequest(to=f"+{PHONE}", instance_id=ticketed.instance_id, text="Oi, sou a Ana")
    async with context.sessions() as session, session.begin():
        await sending_service.queue_message(
            session, ticketed.tenant_id, reply, idempotency_key=None, sender_type=SenderType.USER, now=clock()
        )
    clock.advance(60)
    await scheduler.run_follow_ups()
    assert await follow_up_state(context, follow_up_id) == ("cancelled", "agent_replied", 1)
    assert len(await system_messages(context, ticketed.conversation_id)) == 1
    assert await ticket_state(context, ticketed.ticket_id) == ("open", None)


async def test_closing_the_ticket_cancels_it(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    scheduler = Scheduler(context, clock=clock)
    follow_up_id = await start_follow_up(context, ticketed, clock, **THREE_STEPS)
    async with context.sessions() as session, session.begin():
        await close_ticket(session, ticketed.tenant_id, ticketed.ticket_id, TicketCloseReason.MANUAL, clock())
    await scheduler.run_follow_ups()
    assert await follow_up_state(context, follow_up_id) == ("cancelled", "ticket_closed", 0)
    assert await system_messages(context, ticketed.conversation_id) == []
    assert await ticket_state(context, ticketed.ticket_id) == ("closed", "manual")


async def test_an_opt_out_cancels_it(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    scheduler = Scheduler(context, clock=clock)
    follow_up_id = await start_follow_up(context, ticketed, clock, **THREE_STEPS)
    await scheduler.run_follow_ups()
    # Opted out elsewhere (an agent's record, a provider block): the pass sees the contact's flag.
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(Contact)
            .where(Contact.tenant_id == ticketed.tenant_id)
            .values(opted_out=True, opted_out_at=clock())
        )
    clock.advance(60)
    await scheduler.run_follow_ups()
    assert await follow_up_state(context, follow_up_id) == ("cancelled", "opted_out", 1)
    assert len(await system_messages(context, ticketed.conversation_id)) == 1


async def test_an_opt_out_keyword_cancels_it_as_an_opt_out(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    follow_up_id = await start_follow_up(context, ticketed, clock, **THREE_STEPS)
    await customer_writes(context, ticketed.tenant_id, ticketed.instance_id, utcnow(), "SAIR")
    assert (await follow_up_state(context, follow_up_id))[:2] == ("cancelled", "opted_out")


async def test_asking_for_a_person_cancels_it(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    scheduler = Scheduler(context, clock=clock)
    follow_up_id = await start_follow_up(context, ticketed, clock, **THREE_STEPS)
    await scheduler.run_follow_ups()
    clock.advance(5)
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(Ticket).where(Ticket.id == ticketed.ticket_id).values(wants_person_at=clock())
        )
    clock.advance(60)
    await scheduler.run_follow_ups()
    assert await follow_up_state(context, follow_up_id) == ("cancelled", "wants_person", 1)
    assert len(await system_messages(context, ticketed.conversation_id)) == 1


async def test_after_the_window_a_text_step_is_skipped_and_a_template_step_sent(
    context: EngineContext,
) -> None:
    # On Meta the person last wrote 25 hours ago: free-form text would be refused by WhatsApp.
    ticketed = await new_ticket(context, provider="meta", wrote_ago=25 * 3600)
    await approved_template(context, ticketed.tenant_id, ticketed.instance_id, "retomar_conversa")
    clock = Clock()
    scheduler = Scheduler(context, clock=clock)
    body = {
        "steps": [
            {"delay_seconds": 0, "text": "Oi, ainda tem interesse?"},
            {"delay_seconds": 5, "template": {"name": "retomar_conversa", "language": "pt_BR"}},
        ]
    }
    follow_up_id = await start_follow_up(context, ticketed, clock, **body)
    await scheduler.run_follow_ups()
    clock.advance(6)
    await scheduler.run_follow_ups()
    assert await step_logs(context, follow_up_id) == [
        (0, "skipped", "outside_service_window"),
        (1, "sent", None),
    ]
    assert await system_messages(context, ticketed.conversation_id) == ["retomar_conversa"]
    assert await follow_up_state(context, follow_up_id) == ("running", None, 2)


async def test_a_step_refused_by_a_sending_rule_is_logged_with_its_error(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    scheduler = Scheduler(context, clock=clock)
    # A paused number refuses anything.
    follow_up_id = await start_follow_up(context, ticketed, clock, steps=[{"delay_seconds": 0, "text": "Oi"}])
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id == ticketed.instance_id)
            .values(status="paused")
        )
    await scheduler.run_follow_ups()
    [(step, outcome, reason)] = await step_logs(context, follow_up_id)
    assert (step, outcome, reason) == (0, "refused", "instance_unavailable")
    assert await system_messages(context, ticketed.conversation_id) == []


async def test_business_hours_hold_a_due_step_until_the_opening(context: EngineContext) -> None:
    ticketed = await new_ticket(context)
    clock = Clock()
    # Open one hour a day, starting two hours from now in the tenant's zone (UTC here).
    opening = clock() + timedelta(hours=2)
    start = opening.strftime("%H:%M")
    later = opening + timedelta(hours=1)
    end = later.strftime("%H:%M") if later.date() == opening.date() else "24:00"
    days = {day: [[start, end]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(Tenant)
            .where(Tenant.id == ticketed.tenant_id)
            .values(timezone="UTC", business_hours=json.dumps(days))
        )
    scheduler = Scheduler(context, clock=clock)
    body = {"steps": [{"delay_seconds": 0, "text": "Bom dia!"}], "business_hours_only": True}
    follow_up_id = await start_follow_up(context, ticketed, clock, **body)
    await scheduler.run_follow_ups()
    assert await system_messages(context, ticketed.conversation_id) == []
    async with context.sessions() as session:
        due = (await session.get_one(FollowUp, follow_up_id)).next_step_at
    assert due is not None
    assert due > clock()
    clock.now = due
    await scheduler.run_follow_ups()
    assert await system_messages(context, ticketed.conversation_id) == ["Bom dia!"]


async def test_a_template_step_on_a_number_without_templates_is_refused_up_front(
    context: EngineContext,
) -> None:
    ticketed = await new_ticket(context)
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id == ticketed.instance_id)
            .values(provider="evolution")
        )
    body = {"steps": [{"delay_seconds": 0, "template": {"name": "retomar_conversa"}}]}
    with pytest.raises(InvalidInput) as refused:
        await start_follow_up(context, ticketed, Clock(), **body)
    assert refused.value.code == "template_unsupported"
    assert "steps[0].template" in refused.value.message
    assert await ticket_state(context, ticketed.ticket_id) == ("open", None)


async def test_a_template_step_the_number_cannot_send_is_refused_at_the_start(
    context: EngineContext,
) -> None:
    ticketed = await new_ticket(context, provider="meta")
    await approved_template(context, ticketed.tenant_id, ticketed.instance_id, "retomar_conversa", 1)
    unknown = {"steps": [{"delay_seconds": 0, "template": {"name": "nao_existe"}}]}
    with pytest.raises(InvalidInput) as refused:
        await start_follow_up(context, ticketed, Clock(), **unknown)
    assert refused.value.code == "template_not_found"
    assert refused.value.message.startswith("steps[0].template: ")
    short = {
        "steps": [
            {"delay_seconds": 0, "text": "Oi"},
            {"delay_seconds": 60, "template": {"name": "retomar_conversa"}},
        ]
    }
    with pytest.raises(InvalidInput) as refused:
        await start_follow_up(context, ticketed, Clock(), **short)
    assert refused.value.code == "template_parameters"
    assert refused.value.message.startswith("steps[1].template: ")
    assert await ticket_state(context, ticketed.ticket_id) == ("open", None)
