"""The no_agent_answer rules, fired by the scheduler's pass on both databases: once per ticket
(even with two schedulers at once), never where the team answered, and again for a new wait when
the rule fires on every wait."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import SenderType
from messaging_whatsapp.sending import service as sending_service
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.worker.scheduler import Scheduler
from tests.automation.helpers import (
    apply,
    automatic_messages,
    create_rule,
    firings,
    message,
    tenant_with_number,
)
from tests.helpers import create_user

WAIT = {"type": "no_agent_answer", "minutes": 10}


async def test_no_agent_answer_fires_once_per_ticket(context: EngineContext) -> None:
    tenant_id, instance_id = await tenant_with_number(context)
    user_id = await create_user(context, tenant_id, "bia@loja.com.br", role="agent")
    await create_rule(
        context, tenant_id, name="Espera", when=WAIT, then={"type": "text", "text": "Já vamos te atender!"}
    )
    now = utcnow()
    # Maria waits 15 minutes; João was answered by an agent; Ana wrote 5 minutes ago.
    await apply(
        context, tenant_id, instance_id, message("Oi", phone="5511911110001", at=now - timedelta(minutes=15))
    )
    await apply(
        context, tenant_id, instance_id, message("Oi", phone="5511911110002", at=now - timedelta(minutes=15))
    )
    await apply(
        context, tenant_id, instance_id, message("Oi", phone="5511911110003", at=now - timedelta(minutes=5))
    )
    async with context.sessions() as session, session.begin():
        request = SendMessageRequest(to="+5511911110002", instance_id=instance_id, text="Olá, João")
        await sending_service.queue_message(
            session,
            tenant_id,
            request,
            idempotency_key=None,
            sender_type=SenderType.USER,
            now=now,
            sender_user_id=user_id,
        )

    # Two schedulers at the same moment: the firings' key lets one of them fire.
    first, second = await asyncio.gather(
        Scheduler(context, clock=lambda: now).answer_waiting_customers(),
        Scheduler(context, clock=lambda: now).answer_waiting_customers(),
    )
    assert (first or 0) + (second or 0) == 1
    assert await Scheduler(context, clock=lambda: now + timedelta(minutes=1)).answer_waiting_customers() == 0
    [reply] = await automatic_messages(context, tenant_id)
    assert reply.content == "Já vamos te atender!"
    # Ana's wait passes later: her ticket gets it too, once.
    later = now + timedelta(minutes=6)
    assert await Scheduler(context, clock=lambda: later).answer_waiting_customers() == 1
    assert await Scheduler(context, clock=lambda: later).answer_waiting_customers() == 0
    assert len(await firings(context, tenant_id)) == 2


async def test_a_rule_not_once_per_ticket_fires_again_for_each_new_wait(context: EngineContext) -> None:
    tenant_id, instance_id = await tenant_with_number(context)
    await create_rule(
        context,
        tenant_id,
        name="Espera",
        when=WAIT,
        then={"type": "text", "text": "Um momento"},
        once_per_ticket=False,
    )
    now = utcnow()
    await apply(context, tenant_id, instance_id, message("Oi", at=now - timedelta(minutes=30)))
    assert await Scheduler(context, clock=lambda: now).answer_waiting_customers() == 1
    assert await Scheduler(context, clock=lambda: now).answer_waiting_customers() == 0
    await apply(context, tenant_id, instance_id, message("Alô?", at=now))
    assert await Scheduler(context, clock=lambda: now + timedelta(minutes=11)).answer_waiting_customers() == 1
    assert len(await automatic_messages(context, tenant_id)) == 2
