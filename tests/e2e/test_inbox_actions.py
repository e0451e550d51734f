"""The team's actions on the inbox over HTTP, on both deployments: a conversation marked read, a
ticket closed by hand, as a sale or lost with its outcome (announced once, another tenant's 404),
the next message opening a new ticket, an agent's reply joining the ticket with the agent's name."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.providers.events import InboundMessage, MessageType
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.tenancy.models import User
from messaging_whatsapp.worker.ingest import apply_entries
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import bind_example_numbers, create_tenant, create_user, published_events

PHONE = "5511987654321"


async def _customer_writes(
    engine: RunningEngine, tenant_id: str, instance_id: str, text: str, phone: str = PHONE
) -> None:
    message = InboundMessage(f"SIM-{new_id()}", phone, MessageType.TEXT, utcnow(), text=text)
    async with engine.context.sessions() as session, session.begin():
        entry = IngestEntry(new_id(), tenant_id, instance_id, utcnow(), [message])
        await apply_entries(session, [entry], engine.context.names.events)


async def _user_id(engine: RunningEngine, email: str) -> str:
    async with engine.context.sessions() as session:
        return str(await session.scalar(select(User.id).where(User.email == email)))


async def _conversation(engine: RunningEngine, headers: dict[str, str]) -> dict[str, object]:
    [conversation] = (await engine.http.get("/api/v1/conversations", headers=headers)).json()["items"]
    return dict(conversation)


async def test_an_agent_marks_a_conversation_read(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    agent = await auth_headers(engine, numbers.tenant_id, role="agent")
    stranger = await auth_headers(engine, await create_tenant(engine.context, "Outra"), "rui@outra.com.br")
    for text in ("Oi", "Tem o tênis 42?"):
        await _customer_writes(engine, numbers.tenant_id, numbers.simulator.id, text)
    conversation = await _conversation(engine, agent)
    assert conversation["unread_count"] == 2

    path = f"/api/v1/conversations/{conversation['id']}/read"
    elsewhere = await engine.http.post(path, headers=stranger)
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (404, "not_found")
    read = await engine.http.post(path, headers=agent)
    assert (read.status_code, read.json()["unread_count"], read.json()["contact"]["phone"]) == (
        200,
        0,
        f"+{PHONE}",
    )
    assert (await _conversation(engine, agent))["unread_count"] == 0


async def test_an_agent_closes_a_ticket_and_the_next_message_opens_another(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    agent = await auth_headers(engine, numbers.tenant_id, role="agent")
    stranger = await auth_headers(engine, await create_tenant(engine.context, "Outra"), "rui@outra.com.br")
    await _customer_writes(engine, numbers.tenant_id, numbers.simulator.id, "Quero comprar")
    conversation = await _conversation(engine, agent)
    tickets_path = f"/api/v1/conversations/{conversation['id']}/tickets"
    [ticket] = (await engine.http.get(tickets_path, headers=agent)).json()["items"]
    assert (ticket["status"], ticket["close_reason"]) == ("open", None)
    close = f"/api/v1/tickets/{ticket['id']}/close"

    assert (await engine.http.get(tickets_path, headers=stranger)).status_code == 404
    assert (await engine.http.post(close, json={}, headers=stranger)).status_code == 404
    bad = await engine.http.post(close, json={"reason": "bored"}, headers=agent)
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "validation_error")
    closed = await engine.http.post(close, json={"reason": "sale"}, headers=agent)
    assert (closed.status_code, closed.json()["status"], closed.json()["close_reason"]) == (
        200,
        "closed",
        "sale",
    )
    again = await engine.http.post(close, headers=agent)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "ticket_closed")
    assert again.json()["error"]["close_reason"] == "sale"

    [announced] = await published_events(engine.context, "whatsapp_ticket_closed")
    assert json.loads(announced["payload"])["close_reason"] == "sale"

    await _customer_writes(engine, numbers.tenant_id, numbers.simulator.id, "Mais um par, por favor")
    listed = (await engine.http.get(tickets_path, headers=agent)).json()["items"]
    assert [(t["status"], t["close_reason"]) for t in listed] == [("open", None), ("closed", "sale")]


async def test_an_agents_reply_joins_the_ticket_which_closes_lost_with_its_outcome(
    engine: RunningEngine,
) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    agent = await auth_headers(engine, numbers.tenant_id, "bia@loja.com.br")
    await _customer_writes(engine, numbers.tenant_id, numbers.simulator.id, "Quanto custa?")
    conversation = await _conversation(engine, agent)
    [ticket] = (
        await engine.http.get(f"/api/v1/conversations/{conversation['id']}/tickets", headers=agent)
    ).json()["items"]
    reply = {"to": f"+{PHONE}", "instance_id": numbers.simulator.id, "text": "R$ 399"}

    sent = await engine.http.post("/api/v1/messages", json=reply, headers=agent)

    assert sent.status_code == 202, sent.text
    bia = await _user_id(engine, "bia@loja.com.br")
    assert (sent.json()["ticket_id"], sent.json()["sender_user_id"], sent.json()["sender_name"]) == (
        ticket["id"],
        bia,
        "bia@loja.com.br",
    )
    listed = (
        await engine.http.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=agent)
    ).json()
    assert [(m["ticket_id"], m["sender_name"]) for m in listed["items"]] == [
        (ticket["id"], None),
        (ticket["id"], "bia@loja.com.br"),
    ]
    close = f"/api/v1/tickets/{ticket['id']}/close"
    unexplained = await engine.http.post(close, json={"reason": "lost"}, headers=agent)
    assert (unexplained.status_code, unexplained.json()["error"]["code"]) == (422, "outcome_required")
    closed = await engine.http.post(close, json={"reason": "lost", "outcome": "lost_price"}, headers=agent)
    assert (closed.status_code, closed.json()["close_reason"], closed.json()["outcome"]) == (
        200,
        "lost",
        "lost_price",
    )
    [announced] = await published_events(engine.context, "whatsapp_ticket_closed")
    assert json.loads(announced["payload"])["outcome"] == "lost_price"


async def test_the_team_queue_and_assigning_a_ticket(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    other_tenant = await create_tenant(engine.context, "Outra")
    agent = await auth_headers(engine, numbers.tenant_id, "bia@loja.com.br", role="agent")
    lead = await auth_headers(engine, numbers.tenant_id, "lia@loja.com.br", role="supervisor")
    agent_id = await _user_id(engine, "bia@loja.com.br")
    caio = await create_user(engine.context, numbers.tenant_id, "caio@loja.com.br", role="agent")
    stranger = await create_user(engine.context, other_tenant, "rui@outra.com.br")
    await _customer_writes(engine, numbers.tenant_id, numbers.simulator.id, "Oi")
    [ticket] = (await engine.http.get("/api/v1/tickets?status=open", headers=agent)).json()["items"]
    assign = f"/api/v1/tickets/{ticket['id']}/assign"

    for body, status, code in [
        ({"user_id": stranger}, 404, "not_found"),
        ({"user_id": "nope"}, 404, "not_found"),
        ({}, 422, "validation_error"),
        ({"user_id": 7}, 422, "validation_error"),
    ]:
        refused = await engine.http.post(assign, json=body, headers=lead)
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, code), body
    # Giving a ticket to someone else is a supervisor's call; an agent takes from the queue.
    handed = await engine.http.post(assign, json={"user_id": caio}, headers=agent)
    assert (handed.status_code, handed.json()["error"]["code"]) == (403, "forbidden")
    given = await engine.http.post(assign, json={"user_id": caio}, headers=lead)
    assert (given.status_code, given.json()["assignee_id"]) == (200, caio)
    theirs = (await engine.http.get(f"/api/v1/tickets?assignee_id={caio}", headers=lead)).json()["items"]
    assert [t["id"] for t in theirs] == [ticket["id"]]
    # Caio's ticket is no longer in Bia's part of the inbox.
    assert (await engine.http.get("/api/v1/tickets", headers=agent)).json()["items"] == []
    assert (await engine.http.post(assign, json={"user_id": agent_id}, headers=agent)).status_code == 404
    assert (await engine.http.post(assign, json={"user_id": None}, headers=lead)).status_code == 200
    to_me = await engine.http.post(assign, json={"user_id": agent_id}, headers=agent)
    assert to_me.json()["assignee_id"] == agent_id
    mine = (await engine.http.get("/api/v1/tickets?assignee_id=me", headers=agent)).json()["items"]
    assert [t["id"] for t in mine] == [ticket["id"]]
    async with engine.context.sessions() as session, session.begin():
        _, key = await tenancy_service.create_api_key(session, numbers.tenant_id, "erp")
    machine = {"authorization": f"Bearer {key}"}
    nobody = await engine.http.get("/api/v1/tickets?assignee_id=me", headers=machine)
    assert (nobody.status_code, nobody.json()["error"]["code"]) == (422, "invalid_input")
    bad_status = await engine.http.get("/api/v1/tickets?status=sleeping", headers=agent)
    assert (bad_status.status_code, bad_status.json()["error"]["code"]) == (422, "validation_error")

    await engine.http.post(f"/api/v1/tickets/{ticket['id']}/close", headers=agent)
    assert (await engine.http.get("/api/v1/tickets?status=open", headers=agent)).json()["items"] == []
    closed = await engine.http.post(assign, json={"user_id": None}, headers=agent)
    assert (closed.status_code, closed.json()["error"]["code"]) == (409, "ticket_closed")


async def test_the_queue_pages_newest_first(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    agent = await auth_headers(engine, numbers.tenant_id, role="agent")
    instances = [numbers.simulator.id, numbers.meta.id, numbers.evolution.id]
    for instance_id in instances:  # one conversation, and so one ticket, per number
        await _customer_writes(engine, numbers.tenant_id, instance_id, "Oi")
    seen, cursor = [], None
    while True:
        page = (
            await engine.http.get(
                "/api/v1/tickets", params={"limit": 2, "cursor": cursor or ""}, headers=agent
            )
        ).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 3
    assert [t["created_at"] for t in seen] == sorted((t["created_at"] for t in seen), reverse=True)


async def test_an_agent_works_only_their_tickets_and_the_unassigned_queue(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    bia = await auth_headers(engine, numbers.tenant_id, "bia@loja.com.br", role="agent")
    caio = await auth_headers(engine, numbers.tenant_id, "caio@loja.com.br", role="agent")
    lead = await auth_headers(engine, numbers.tenant_id, "lia@loja.com.br", role="supervisor")
    other_phone = "5521998765432"
    await _customer_writes(engine, numbers.tenant_id, numbers.simulator.id, "Oi", PHONE)
    await _customer_writes(engine, numbers.tenant_id, numbers.simulator.id, "Bom dia", other_phone)
    tickets = (await engine.http.get("/api/v1/tickets", headers=lead)).json()["items"]
    caios = next(t for t in tickets if t["conversation_id"] != tickets[0]["conversation_id"])
    caio_id = await _user_id(engine, "caio@loja.com.br")
    given = await engine.http.post(
        f"/api/v1/tickets/{caios['id']}/assign", json={"user_id": caio_id}, headers=lead
    )
    assert given.status_code == 200, given.text
    hidden = caios["conversation_id"]

    def ids(answer: httpx.Response) -> set[str]:
        return {item["id"] for item in answer.json()["items"]}

    everything = ids(await engine.http.get("/api/v1/conversations", headers=lead))
    assert len(everything) == 2
    assert ids(await engine.http.get("/api/v1/conversations", headers=caio)) == everything
    assert ids(await engine.http.get("/api/v1/conversations", headers=bia)) == everything - {hidden}
    assert len(ids(await engine.http.get("/api/v1/contacts", headers=bia))) == 1
    for method, path in (
        ("GET", f"/api/v1/conversations/{hidden}/messages"),
        ("GET", f"/api/v1/conversations/{hidden}/tickets"),
        ("POST", f"/api/v1/conversations/{hidden}/read"),
        ("POST", f"/api/v1/tickets/{caios['id']}/close"),
    ):
        answer = await engine.http.request(method, path, headers=bia)
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "not_found"), path
    hidden_phone = next(
        c["contact"]["phone"]
        for c in (await engine.http.get("/api/v1/conversations", headers=lead)).json()["items"]
        if c["id"] == hidden
    )
    refused = await engine.http.post("/api/v1/messages", json={"to": hidden_phone, "text": "Oi"}, headers=bia)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    visible_phone = PHONE if hidden_phone.lstrip("+") != PHONE else other_phone
    sent = await engine.http.post("/api/v1/messages", json={"to": visible_phone, "text": "Oi"}, headers=bia)
    assert sent.status_code == 202, sent.text
    assert (
        await engine.http.post("/api/v1/messages", json={"to": hidden_phone, "text": "Oi"}, headers=caio)
    ).status_code == 202
