"""The follow-up and scheduled-message contract end to end on both deployments: the served
engine's own scheduler runs the steps and sends at `send_at`; every refusal up front (404 for
another tenant's ticket or a ticket an agent does not work, 409s, 422s naming the field)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from messaging_whatsapp.inbox.models import Ticket
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.followups.test_follow_ups import PHONE, customer_writes
from tests.helpers import bind, create_tenant, create_user, wait_until


async def ticket_with_admin(engine: RunningEngine) -> tuple[str, str, str, dict[str, str]]:
    """A tenant whose customer wrote: (tenant, instance, ticket, an admin's headers)."""
    tenant_id = await create_tenant(engine.context)
    instance, _ = await bind(
        engine.context,
        tenant_id,
        provider="simulator",
        display_number="+551140028922",
        instance_name="sim-e2e",
    )
    await customer_writes(engine.context, tenant_id, instance.id, datetime.now(UTC))
    async with engine.context.sessions() as session:
        ticket_id = (await session.scalars(select(Ticket.id).where(Ticket.tenant_id == tenant_id))).one()
    return tenant_id, instance.id, ticket_id, await auth_headers(engine, tenant_id)


async def test_a_follow_up_runs_its_steps_and_closes_the_ticket(engine: RunningEngine) -> None:
    _tenant_id, _, ticket_id, headers = await ticket_with_admin(engine)
    path = f"/api/v1/tickets/{ticket_id}/follow-ups"
    body = {
        "steps": [
            {"delay_seconds": 0, "text": "Oi, ainda tem interesse?"},
            {"delay_seconds": 1, "text": "Oi?"},
        ],
        "final_wait_seconds": 1,
    }
    started = await engine.http.post(path, json=body, headers=headers)
    assert started.status_code == 201, started.text
    follow_up = started.json()
    assert (follow_up["status"], follow_up["cancel_reason"], follow_up["current_step"]) == (
        "running",
        None,
        0,
    )
    assert follow_up["started_by"]["user_id"] is not None
    again = await engine.http.post(path, json=body, headers=headers)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "follow_up_running")

    async def ended() -> dict[str, Any] | None:
        [item] = (await engine.http.get(path, headers=headers)).json()["items"]
        return item if item["status"] != "running" else None

    item = await wait_until(ended, timeout=30, what="the follow-up to end")
    assert (item["status"], item["cancel_reason"]) == ("exhausted", None)
    assert [(s["step"], s["outcome"]) for s in item["steps"]] == [(0, "sent"), (1, "sent")]
    conversation_id = item["conversation_id"]
    [ticket] = (
        await engine.http.get(f"/api/v1/conversations/{conversation_id}/tickets", headers=headers)
    ).json()["items"]
    assert (ticket["status"], ticket["close_reason"]) == ("closed", "follow_up_exhausted")
    messages = (
        await engine.http.get(f"/api/v1/conversations/{conversation_id}/messages", headers=headers)
    ).json()
    system = [m["content"] for m in messages["items"] if m["sender_type"] == "system"]
    assert sorted(system) == ["Oi, ainda tem interesse?", "Oi?"]
    closed = await engine.http.post(path, json=body, headers=headers)
    assert (closed.status_code, closed.json()["error"]["code"]) == (409, "ticket_closed")


async def test_cancelling_gives_the_ticket_back_and_bad_requests_are_refused(engine: RunningEngine) -> None:
    tenant_id, _, ticket_id, headers = await ticket_with_admin(engine)
    path = f"/api/v1/tickets/{ticket_id}/follow-ups"
    bad: list[tuple[dict[str, Any], str]] = [
        ({"steps": []}, "steps"),
        ({"steps": [{"delay_seconds": 0, "text": "x"}] * 11}, "steps"),
        ({"steps": [{"delay_seconds": -1, "text": "x"}]}, "delay_seconds"),
        ({"steps": [{"delay_seconds": 0, "text": "x", "template": {"name": "t"}}]}, "text or template"),
        ({"steps": [{"delay_seconds": 0}]}, "text or template"),
    ]
    for body, field in bad:
        answer = await engine.http.post(path, json=body, headers=headers)
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.json()["error"]["message"], (body, answer.text)

    body = {"steps": [{"delay_seconds": 3600, "text": "Oi?"}]}
    follow_up = (await engine.http.post(path, json=body, headers=headers)).json()
    for status in ("follow_up", "open"):
        tickets = (await engine.http.get(f"/api/v1/tickets?status={status}", headers=headers)).json()["items"]
        assert [(t["id"], t["status"]) for t in tickets] == [(ticket_id, "follow_up")]
    cancelled = await engine.http.post(f"/api/v1/follow-ups/{follow_up['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["cancel_reason"]) == (
        "cancelled",
        "cancelled_by_user",
    )
    twice = await engine.http.post(f"/api/v1/follow-ups/{follow_up['id']}/cancel", headers=headers)
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "follow_up_ended")
    tickets = (await engine.http.get("/api/v1/tickets?status=open", headers=headers)).json()["items"]
    assert [t["id"] for t in tickets] == [ticket_id]

    # Another tenant's ticket and follow-up are not there.
    other = await auth_headers(engine, await create_tenant(engine.context, "Outra"), "bia@outra.com.br")
    assert (await engine.http.post(path, json=body, headers=other)).status_code == 404
    assert (await engine.http.get(path, headers=other)).status_code == 404
    assert (
        await engine.http.post(f"/api/v1/follow-ups/{follow_up['id']}/cancel", headers=other)
    ).status_code == 404

    # An agent works only their tickets and the unassigned queue.
    owner = await create_user(engine.context, tenant_id, "dono@loja.com.br", role="agent")
    assign = await engine.http.post(
        f"/api/v1/tickets/{ticket_id}/assign", json={"user_id": owner}, headers=headers
    )
    assert assign.status_code == 200, assign.text
    agent = await auth_headers(engine, tenant_id, "outro@loja.com.br", role="agent")
    assert (await engine.http.post(path, json=body, headers=agent)).status_code == 404
    assert (await engine.http.get(path, headers=agent)).status_code == 404


async def test_a_message_scheduled_through_the_api_goes_at_its_time(engine: RunningEngine) -> None:
    _, instance_id, _, headers = await ticket_with_admin(engine)
    send_at = datetime.now(UTC) + timedelta(seconds=2)
    body = {"to": f"+{PHONE}", "instance_id": instance_id, "text": "Bom dia!", "send_at": send_at.isoformat()}
    answer = await engine.http.post("/api/v1/messages", json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    item = answer.json()
    assert (item["status"], item["to"], item["kind"], item["preview"]) == (
        "scheduled",
        f"+{PHONE}",
        "text",
        "Bom dia!",
    )
    later = {**body, "send_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    kept = (await engine.http.post("/api/v1/messages", json=later, headers=headers)).json()

    async def sent() -> dict[str, Any] | None:
        listed = (await engine.http.get("/api/v1/scheduled-messages", headers=headers)).json()["items"]
        found = next(i for i in listed if i["id"] == item["id"])
        return found if found["status"] != "scheduled" else None

    done = await wait_until(sent, timeout=30, what="the scheduled message to go")
    assert done["status"] == "sent"
    message = (await engine.http.get(f"/api/v1/messages/{done['message_id']}", headers=headers)).json()
    assert (message["content"], message["sender_type"]) == ("Bom dia!", "user")
    refused = await engine.http.delete(f"/api/v1/scheduled-messages/{item['id']}", headers=headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "not_scheduled")
    cancelled = await engine.http.delete(f"/api/v1/scheduled-messages/{kept['id']}", headers=headers)
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    by_conversation = await engine.http.get(
        f"/api/v1/scheduled-messages?conversation_id={done['conversation_id']}&status=cancelled",
        headers=headers,
    )
    assert [i["id"] for i in by_conversation.json()["items"]] == [kept["id"]]

    naive = {**body, "send_at": "2030-01-01T09:00:00"}
    answer = await engine.http.post("/api/v1/messages", json=naive, headers=headers)
    assert answer.status_code == 422
    assert "send_at" in answer.json()["error"]["message"]
    past = {**body, "send_at": "2020-01-01T09:00:00-03:00"}
    answer = await engine.http.post("/api/v1/messages", json=past, headers=headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "invalid_send_at")
