"""The team's own actions on the event stream (send, read, assign, typing, a number paused), and
what each viewer may hear of them, in both deployments."""

from __future__ import annotations

from tests.e2e import test_events_stream
from tests.e2e.conftest import RunningEngine
from tests.e2e.test_events_stream import EventStream, Frame, Streams, _inbound, _stored
from tests.helpers import approved_template, bind_example_numbers, create_tenant, create_user

# The engine with a short keep-alive, and its streams closed after each test.
engine = test_events_stream.engine
streams = test_events_stream.streams

PHONE = "5511987654321"
OTHER_PHONE = "5511912345678"


async def _login(engine: RunningEngine, tenant_id: str, email: str, role: str) -> tuple[str, dict[str, str]]:
    """A new user's id and bearer header."""
    user_id = await create_user(engine.context, tenant_id, email, role=role)
    response = await engine.http.post("/api/v1/auth/login", json={"email": email, "password": "s3cret-pass"})
    assert response.status_code == 200, response.text
    return user_id, {"authorization": f"Bearer {response.json()['access_token']}"}


async def _conversation(engine: RunningEngine, stream: EventStream, number: int, phone: str) -> Frame:
    """A customer writes; the new_message as the stream tells it (and the conversation_updated
    after it read too)."""
    await _stored(engine, await _inbound(engine, number, phone=phone))
    message = await stream.event("new_message")
    assert (await stream.event()).event == "conversation_updated"
    return message


def _data(frame: Frame) -> dict[str, object]:
    assert frame.data is not None
    return frame.data


async def _ticket_id(engine: RunningEngine, headers: dict[str, str], conversation_id: str) -> str:
    tickets = await engine.http.get(f"/api/v1/conversations/{conversation_id}/tickets", headers=headers)
    return str(tickets.json()["items"][0]["id"])


async def test_send_read_assign_and_typing_reach_the_stream_after_their_action(
    engine: RunningEngine, streams: Streams
) -> None:
    tenant_id = await create_tenant(engine.context, "Loja A")
    numbers = await bind_example_numbers(engine.context, tenant_id)
    ana_id, ana = await _login(engine, tenant_id, "ana@a.com.br", "admin")
    bia_id, _ = await _login(engine, tenant_id, "bia@a.com.br", "agent")
    stream = await streams.open(ana)
    conversation_id = _data(await _conversation(engine, stream, 1, PHONE))["conversation_id"]
    await approved_template(engine.context, tenant_id, numbers.meta, "boas_vindas")

    # The agent's send: announced as it is stored, before any tick.
    sent = await engine.http.post(
        "/api/v1/messages",
        json={
            "to": f"+{PHONE}",
            "template": {"name": "boas_vindas", "language": "pt_BR"},
            "instance_id": numbers.meta.id,
        },
        headers={**ana, "idempotency-key": "live-1"},
    )
    assert sent.status_code == 202, sent.text
    outbound = _data(await stream.event("new_message"))
    assert outbound["message_id"] == sent.json()["id"]
    assert (outbound["direction"], outbound["sender_type"], outbound["sender_user_id"]) == (
        "outbound",
        "user",
        ana_id,
    )
    assert outbound["conversation_id"] == conversation_id
    assert not {"text", "content"} & outbound.keys()

    # A first message to someone new opens a ticket: announced before the message.
    body = {"to": "+5511955554444", "text": "Oi", "instance_id": numbers.simulator.id}
    assert (await engine.http.post("/api/v1/messages", json=body, headers=ana)).status_code == 202
    opened = await stream.event("ticket_updated", "new_message")
    assert (opened.event, _data(opened)["status"]) == ("ticket_updated", "open")
    first_message = _data(await stream.event("new_message"))
    assert first_message["conversation_id"] == _data(opened)["conversation_id"] != conversation_id

    read = await engine.http.post(f"/api/v1/conversations/{conversation_id}/read", headers=ana)
    assert read.status_code == 200, read.text
    updated = _data(await stream.event("conversation_updated"))
    assert updated == {"conversation_id": conversation_id, "unread_count": 0, "read_by": ana_id}

    ticket_id = await _ticket_id(engine, ana, str(conversation_id))
    assign = f"/api/v1/tickets/{ticket_id}/assign"
    assert (await engine.http.post(assign, json={"user_id": bia_id}, headers=ana)).status_code == 200
    assigned = _data(await stream.event("ticket_updated"))
    assert assigned == {
        "ticket_id": ticket_id,
        "conversation_id": conversation_id,
        "status": "open",
        "assignee_id": bia_id,
    }

    # Typing: 204, announced once per 2 s per person and conversation (the rest dropped silently).
    typing = f"/api/v1/conversations/{conversation_id}/typing"
    for _ in range(2):
        assert (await engine.http.post(typing, headers=ana)).status_code == 204
    assert _data(await stream.event("typing")) == {
        "conversation_id": conversation_id,
        "user_id": ana_id,
        "user_name": "ana@a.com.br",
    }
    await engine.http.post(assign, json={"user_id": None}, headers=ana)
    # The next of these is the unassignment: the second typing was not announced.
    back = await stream.event("typing", "ticket_updated")
    assert (back.event, _data(back)["assignee_id"]) == ("ticket_updated", None)

    # Another tenant's conversation is 404; without credentials 401.
    _, stranger = await _login(engine, await create_tenant(engine.context, "Loja B"), "bob@b.com.br", "admin")
    assert (await engine.http.post(typing, headers=stranger)).status_code == 404
    assert (await engine.http.post(typing)).status_code == 401


async def test_an_agent_hears_only_their_conversations_and_no_campaign_or_number_events(
    engine: RunningEngine, streams: Streams
) -> None:
    tenant_id = await create_tenant(engine.context, "Loja A")
    numbers = await bind_example_numbers(engine.context, tenant_id)
    _, ana = await _login(engine, tenant_id, "ana@a.com.br", "admin")
    _, lia = await _login(engine, tenant_id, "lia@a.com.br", "supervisor")
    bia_id, bia = await _login(engine, tenant_id, "bia@a.com.br", "agent")
    _, carla = await _login(engine, tenant_id, "carla@a.com.br", "agent")
    supervisor, bia_stream, carla_stream = [await streams.open(h) for h in (lia, bia, carla)]

    # Two customers write: both in the unassigned queue, so every agent hears of both.
    first = _data(await _conversation(engine, supervisor, 1, PHONE))["conversation_id"]
    second = _data(await _conversation(engine, supervisor, 2, OTHER_PHONE))["conversation_id"]
    for agent_stream in (bia_stream, carla_stream):
        heard = [_data(await agent_stream.event("new_message"))["conversation_id"] for _ in range(2)]
        assert heard == [first, second]

    # The first goes to Bia: Carla hears that it left her queue, then nothing more of it.
    ticket_id = await _ticket_id(engine, lia, str(first))
    answer = await engine.http.post(
        f"/api/v1/tickets/{ticket_id}/assign", json={"user_id": bia_id}, headers=lia
    )
    assert answer.status_code == 200, answer.text
    for agent_stream in (bia_stream, carla_stream):
        left = await agent_stream.event("ticket_updated")
        assert _data(left)["assignee_id"] == bia_id

    # A number paused: the supervisor hears of it, the agents do not.
    paused = await engine.http.post(f"/api/v1/instances/{numbers.twilio.id}/pause", headers=ana)
    assert paused.status_code == 200, paused.text
    instance = await supervisor.event("instance_updated")
    assert _data(instance) == {"instance_id": numbers.twilio.id, "status": "paused", "reason": "operator"}

    await _stored(engine, await _inbound(engine, 3, phone=PHONE))
    await _stored(engine, await _inbound(engine, 4, phone=OTHER_PHONE))
    mine = await bia_stream.event()
    assert (mine.event, _data(mine)["conversation_id"]) == ("new_message", first)
    # Carla's next event is the second customer's message: the first's and the pause passed her by.
    theirs = await carla_stream.event()
    assert (theirs.event, _data(theirs)["conversation_id"]) == ("new_message", second)
    # Replayed after a reconnect, the same: what she missed of her own part only.
    resumed = await streams.open({**carla, "last-event-id": left.id or ""})
    replayed = await resumed.event()
    assert (replayed.event, _data(replayed)["conversation_id"]) == ("new_message", second)


async def test_centrifugo_token_says_what_is_missing_until_configured(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context, "Loja A")
    _, ana = await _login(engine, tenant_id, "ana@a.com.br", "agent")
    answer = await engine.http.post("/api/v1/realtime/centrifugo/token", headers=ana)
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "centrifugo_not_configured"
    assert "CENTRIFUGO_TOKEN_SECRET" in answer.json()["error"]["message"]
    assert (await engine.http.post("/api/v1/realtime/centrifugo/token")).status_code == 401
