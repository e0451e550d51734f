"""Signed provider payloads POSTed to the running engine land in the inbox as the API contract shows."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from sqlalchemy import func, select

from messaging_whatsapp.consent.models import OptOut
from messaging_whatsapp.inbox.models import Contact, Message, Ticket
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.simulator import build_inbound_message_body
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.e2e.test_events_stream import Streams
from tests.helpers import (
    META_APP_SECRET,
    BoundNumbers,
    bind,
    bind_example_numbers,
    create_outbound_message,
    create_tenant,
    example,
    example_bytes,
    get_message,
    meta_signature,
    twilio_signature,
    wait_until,
    wuzapi_signature,
)

MARIA = "+5511987654321"


async def _post_meta(engine: RunningEngine, body: bytes, path: str = "/webhook") -> httpx.Response:
    headers = {"content-type": "application/json", "x-hub-signature-256": meta_signature(body)}
    return await engine.http.post(path, content=body, headers=headers)


def _meta_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def _post_twilio(engine: RunningEngine, url: str, form: dict[str, str]) -> httpx.Response:
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio_signature(url, form),
    }
    return await engine.http.post(urlsplit(url).path, content=urlencode(form), headers=headers)


async def _post_evolution(engine: RunningEngine, numbers: BoundNumbers, body: bytes) -> httpx.Response:
    path = urlsplit(numbers.urls[ProviderName.EVOLUTION]).path
    return await engine.http.post(path, content=body, headers={"content-type": "application/json"})


async def _post_wuzapi(engine: RunningEngine, body: bytes) -> httpx.Response:
    headers = {"content-type": "application/json", "x-hmac-signature": wuzapi_signature(body)}
    return await engine.http.post("/webhook", content=body, headers=headers)


async def _count(engine: RunningEngine, model: Any, *where: Any) -> int:
    async with engine.context.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_inbound_from_every_provider_lands_in_the_inbox(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    headers = await auth_headers(engine, tenant_id, "ana@loja.com.br")

    assert (await _post_meta(engine, example_bytes("meta_text.json"))).status_code == 200
    twilio = example("twilio_inbound.json")
    assert (await _post_twilio(engine, numbers.urls[ProviderName.TWILIO], twilio["form"])).status_code == 200
    evolution = example_bytes("evolution_messages_upsert_text.json")
    assert (await _post_evolution(engine, numbers, evolution)).status_code == 200
    assert (await _post_wuzapi(engine, example_bytes("wuzapi_message.json"))).status_code == 200
    simulated = build_inbound_message_body(
        "sim-loja", "SIM-1", "5511987654321", "Oi do simulador", "Maria Souza", 1763035300
    )
    simulator_path = urlsplit(numbers.urls[ProviderName.SIMULATOR]).path
    response = await engine.http.post(
        simulator_path, content=simulated, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"

    async def five_conversations() -> list[dict[str, Any]] | None:
        page = (await engine.http.get("/api/v1/conversations", headers=headers)).json()
        return page["items"] if len(page["items"]) == 5 else None

    conversations = await wait_until(five_conversations, what="five conversations")
    assert {c["instance_id"] for c in conversations} == {
        numbers.meta.id,
        numbers.twilio.id,
        numbers.evolution.id,
        numbers.wuzapi.id,
        numbers.simulator.id,
    }
    for conversation in conversations:
        assert conversation["status"] == "open"
        assert conversation["unread_count"] == 1
        assert conversation["last_message_at"] is not None
        assert conversation["contact"]["phone"] == MARIA
        assert conversation["contact"]["name"] == "Maria Souza"
        assert conversation["contact"]["opted_out"] is False
    # One person, whichever provider they wrote through.
    assert len({c["contact"]["id"] for c in conversations}) == 1

    meta_conversation = next(c for c in conversations if c["instance_id"] == numbers.meta.id)
    messages = (
        await engine.http.get(f"/api/v1/conversations/{meta_conversation['id']}/messages", headers=headers)
    ).json()
    assert messages["next_cursor"] is None
    [message] = messages["items"]
    assert message["direction"] == "inbound"
    assert message["type"] == "text"
    assert message["content"] == "Oi! Vocês entregam em Pinheiros hoje?"
    assert message["provider_message_id"].startswith("wamid.")
    for key in ("id", "status", "sent_at", "delivered_at", "read_at", "created_at"):
        assert key in message

    contacts = (await engine.http.get("/api/v1/contacts", headers=headers, params={"phone": MARIA})).json()[
        "items"
    ]
    assert len(contacts) == 1
    assert contacts[0]["messages_received"] == 5
    assert await _count(engine, Ticket, Ticket.tenant_id == tenant_id, Ticket.status == "open") == 5


async def test_same_payload_three_times_is_applied_once(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    body = example_bytes("meta_text.json")
    for _ in range(3):
        assert (await _post_meta(engine, body)).status_code == 200

    async def applied() -> bool:
        return (
            await _count(engine, Message, Message.instance_id == numbers.meta.id) == 1
            and (await engine.context.streams.info(engine.settings.stream_prefix + "bc:whatsapp:inbound"))
            .groups[0]
            .pending
            == 0
        )

    await wait_until(applied, what="three deliveries applied")
    await wait_until(lambda: _all_acknowledged(engine), what="all acknowledged")
    async with engine.context.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.tenant_id == tenant_id))
        assert contact is not None
        assert contact.messages_received == 1
    assert await _count(engine, Ticket, Ticket.tenant_id == tenant_id) == 1
    assert await _count(engine, Message, Message.instance_id == numbers.meta.id) == 1


async def _all_acknowledged(engine: RunningEngine) -> bool:
    info = await engine.context.streams.info(engine.context.names.inbound)
    return bool(info.groups) and all(group.pending == 0 and not group.lag for group in info.groups)


def _meta_status(wamid: str, status: str, timestamp: int) -> bytes:
    payload = copy.deepcopy(example("meta_status_read.json"))
    entry = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    entry.update(id=wamid, status=status, timestamp=str(timestamp))
    return _meta_body(payload)


async def test_receipts_out_of_order_and_repeated_give_the_in_order_state(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    in_order, shuffled = "wamid.IN-ORDER", "wamid.SHUFFLED"
    for wamid in (in_order, shuffled):
        await create_outbound_message(engine.context, numbers.meta, MARIA, wamid, status="queued")
    stages = [("sent", 1763035262), ("delivered", 1763035263), ("read", 1763035275)]
    for status, at in stages:
        assert (await _post_meta(engine, _meta_status(in_order, status, at))).status_code == 200
    for status, at in [*reversed(stages), stages[1], stages[2], stages[0], stages[2]]:
        assert (await _post_meta(engine, _meta_status(shuffled, status, at))).status_code == 200
    await wait_until(lambda: _all_acknowledged(engine), what="receipts applied")

    first = await get_message(engine.context, numbers.meta.id, in_order)
    second = await get_message(engine.context, numbers.meta.id, shuffled)
    assert first is not None
    assert second is not None
    assert first.status == second.status == "read"
    assert (first.sent_at, first.delivered_at, first.read_at) == (
        second.sent_at,
        second.delivered_at,
        second.read_at,
    )
    assert first.delivered_at is not None
    assert int(first.delivered_at.timestamp()) == 1763035263
    assert first.read_at is not None
    assert int(first.read_at.timestamp()) == 1763035275

    # Each message confirmed once per stage reached, whatever the order, repetition or batching.
    events = await _read_events(engine)
    confirmations = [e for e in events if e["event_type"] == "whatsapp_delivery_confirmed"]
    assert sorted(json.loads(e["payload"])["status"] for e in confirmations if in_order in e["payload"]) == [
        "delivered",
        "read",
    ]
    assert sorted(json.loads(e["payload"])["status"] for e in confirmations if shuffled in e["payload"]) == [
        "delivered",
        "read",
    ]


async def _read_events(engine: RunningEngine) -> list[dict[str, str]]:
    streams, stream = engine.context.streams, engine.context.names.events
    await streams.ensure_group(stream, "test-reader")
    entries = await streams.read(stream, "test-reader", "t1", 1000, 0)
    return [entry.fields for entry in entries]


async def test_failed_receipt_records_the_error_and_publishes_it(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    failed = example("meta_status_failed_131026.json")
    wamid = failed["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
    await create_outbound_message(engine.context, numbers.meta, MARIA, wamid)
    assert (await _post_meta(engine, example_bytes("meta_status_failed_131026.json"))).status_code == 200
    await wait_until(lambda: _all_acknowledged(engine), what="receipt applied")
    message = await get_message(engine.context, numbers.meta.id, wamid)
    assert message is not None
    assert message.status == "failed"
    assert message.error_code == "131026"
    events = await _read_events(engine)
    assert [e["event_type"] for e in events] == ["whatsapp_delivery_failed"]


async def test_optout_keyword_opts_the_contact_out_with_proof(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    body = example_bytes("evolution_messages_upsert_optout_sair.json")
    assert (await _post_evolution(engine, numbers, body)).status_code == 200
    assert (await _post_evolution(engine, numbers, body)).status_code == 200
    await wait_until(lambda: _all_acknowledged(engine), what="opt-out applied")

    async with engine.context.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.tenant_id == tenant_id))
        record = await session.scalar(select(OptOut).where(OptOut.tenant_id == tenant_id))
    assert contact is not None
    assert contact.opted_out
    assert contact.opted_out_at is not None
    assert record is not None
    assert record.phone == contact.phone
    assert record.keyword == "sair"
    opted = [e for e in await _read_events(engine) if e["event_type"] == "whatsapp_customer_opted_out"]
    assert len(opted) == 1
    assert json.loads(opted[0]["payload"])["phone"] == contact.phone


async def test_connection_changes_update_the_instance(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    live = Streams(engine)
    screen = await live.open(await auth_headers(engine, tenant_id, role="supervisor"))

    async def state() -> tuple[str, str]:
        async with engine.context.sessions() as session:
            instance = await session.get(WhatsAppInstance, numbers.evolution.id)
            assert instance is not None
            return instance.connection_state, instance.status

    body = example_bytes("evolution_connection_update_close.json")
    assert (await _post_evolution(engine, numbers, body)).status_code == 200
    await wait_until(lambda: _all_acknowledged(engine), what="close applied")
    assert await state() == ("close", "inactive")
    body = example_bytes("evolution_connection_update_open.json")
    assert (await _post_evolution(engine, numbers, body)).status_code == 200
    await wait_until(lambda: _all_acknowledged(engine), what="open applied")
    assert await state() == ("open", "active")
    # Live screens heard both, after each was stored.
    try:
        heard = [(await screen.event("instance_updated")).data or {} for _ in range(2)]
    finally:
        await live.close()
    assert [(event["instance_id"], event["connection_state"]) for event in heard] == [
        (numbers.evolution.id, "close"),
        (numbers.evolution.id, "open"),
    ]


async def test_groups_are_ignored_and_counted(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    assert (
        await _post_evolution(engine, numbers, example_bytes("evolution_messages_upsert_group.json"))
    ).status_code == 200
    assert (await _post_wuzapi(engine, example_bytes("wuzapi_message_group.json"))).status_code == 200
    await wait_until(lambda: _all_acknowledged(engine), what="groups applied")
    assert await _count(engine, Message, Message.tenant_id == tenant_id) == 0
    metrics = (await engine.http.get("/metrics")).text
    assert 'whatsapp_ignored_events_total{reason="group"}' in metrics


async def test_ad_referral_opens_an_attributed_ticket(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    await bind_example_numbers(engine.context, tenant_id)
    assert (await _post_meta(engine, example_bytes("meta_referral_ctwa.json"))).status_code == 200
    await wait_until(lambda: _all_acknowledged(engine), what="referral applied")
    async with engine.context.sessions() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.tenant_id == tenant_id))
        contact = await session.scalar(select(Contact).where(Contact.tenant_id == tenant_id))
    referral = example("meta_referral_ctwa.json")["entry"][0]["changes"][0]["value"]["messages"][0][
        "referral"
    ]
    assert ticket is not None
    assert ticket.source == "ctwa"
    assert ticket.ad_id == referral["source_id"]
    assert ticket.click_id == referral["ctwa_clid"]
    assert contact is not None
    assert contact.first_source == "ctwa"


async def test_brazilian_ninth_digit_is_one_contact(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    await bind_example_numbers(engine.context, tenant_id)
    headers = await auth_headers(engine, tenant_id, "ops@loja.com.br")
    payload = copy.deepcopy(example("meta_text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0].update(wa_id="553199887766", profile={"name": "João Pereira"})
    value["messages"][0].update({"from": "553199887766", "id": "wamid.JOAO-1"})
    assert (await _post_meta(engine, _meta_body(payload))).status_code == 200
    value["messages"][0].update({"from": "5531999887766", "id": "wamid.JOAO-2"})
    assert (await _post_meta(engine, _meta_body(payload))).status_code == 200
    await wait_until(lambda: _all_acknowledged(engine), what="messages applied")

    for phone in ("+5531999887766", "+553199887766"):
        found = (await engine.http.get("/api/v1/contacts", headers=headers, params={"phone": phone})).json()
        assert [c["phone"] for c in found["items"]] == ["+5531999887766"]
        assert found["items"][0]["messages_received"] == 2


async def test_another_tenants_ids_answer_404(engine: RunningEngine) -> None:
    tenant_a = await create_tenant(engine.context, "A")
    await bind_example_numbers(engine.context, tenant_a)
    tenant_b = await create_tenant(engine.context, "B")
    headers_b = await auth_headers(engine, tenant_b, "b@b.com.br")
    assert (await _post_meta(engine, example_bytes("meta_text.json"))).status_code == 200
    await wait_until(lambda: _all_acknowledged(engine), what="message applied")
    async with engine.context.sessions() as session:
        message = await session.scalar(select(Message).where(Message.tenant_id == tenant_a))
    assert message is not None
    response = await engine.http.get(
        f"/api/v1/conversations/{message.conversation_id}/messages", headers=headers_b
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    for path in ("/api/v1/conversations", "/api/v1/contacts", "/api/v1/instances"):
        assert (await engine.http.get(path, headers=headers_b)).json()["items"] == []
    assert (await engine.http.get("/api/v1/conversations")).status_code == 401


async def test_meta_verification_handshake(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    query = {
        "hub.mode": "subscribe",
        "hub.challenge": "1158201444",
        "hub.verify_token": "tok-verificacao-7d2f",
    }
    for path in ("/webhook", urlsplit(numbers.urls[ProviderName.META]).path):
        response = await engine.http.get(path, params=query)
        assert response.status_code == 200
        assert response.text == "1158201444"
    response = await engine.http.get("/webhook", params={**query, "hub.verify_token": "wrong"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "verification_failed"


async def test_instances_listing_shows_state_and_health(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    await bind_example_numbers(engine.context, tenant_id)
    headers = await auth_headers(engine, tenant_id, "adm@loja.com.br")
    items = (await engine.http.get("/api/v1/instances", headers=headers)).json()["items"]
    assert sorted(i["provider"] for i in items) == ["evolution", "meta", "simulator", "twilio", "wuzapi"]
    for item in items:
        assert {"id", "provider", "name", "display_number", "connection_state", "status"} <= item.keys()
        assert "credentials_encrypted" not in item
        assert "access_token" not in json.dumps(item)


async def test_a_number_bound_by_another_process_is_found_within_a_second(engine: RunningEngine) -> None:
    body = example_bytes("meta_text.json")
    # Nothing bound yet: a miss, which the resolver caches.
    assert (await _post_meta(engine, body)).status_code == 401
    tenant_id = await create_tenant(engine.context)
    await bind_example_numbers(engine.context, tenant_id)

    async def accepted() -> bool:
        return (await _post_meta(engine, body)).status_code == 200

    await wait_until(accepted, timeout=5, what="the new number to be resolved")


async def test_a_simulator_webhook_without_secret_or_signature_is_refused_and_nothing_queued(
    engine: RunningEngine,
) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    # Knowing the instance's name is not enough: a forged "SAIR" would opt the customer out.
    forged = build_inbound_message_body("sim-loja", "SIM-FORGED", "5511987654321", "SAIR", None, 1763035300)
    json_headers = {"content-type": "application/json"}
    for path in ("/webhook", "/webhooks/simulator", f"/webhooks/simulator/{numbers.simulator.id}"):
        response = await engine.http.post(path, content=forged, headers=json_headers)
        assert response.status_code == 401, (path, response.text)
    wrong_secret = f"/webhooks/simulator/{numbers.simulator.id}/not-the-secret"
    assert (await engine.http.post(wrong_secret, content=forged, headers=json_headers)).status_code == 401
    assert await _count(engine, Message, Message.provider_message_id == "SIM-FORGED") == 0
    assert await _count(engine, OptOut) == 0


async def test_an_unknown_instance_answers_like_a_known_one_with_a_wrong_secret(
    engine: RunningEngine,
) -> None:
    tenant_id = await create_tenant(engine.context)
    await bind_example_numbers(engine.context, tenant_id)
    json_headers = {"content-type": "application/json"}
    known = build_inbound_message_body("sim-loja", "SIM-2", "5511987654321", "Oi", None, 1763035300)
    unknown = build_inbound_message_body("sim-nobody", "SIM-3", "5511987654321", "Oi", None, 1763035300)

    answers = [
        await engine.http.post("/webhook", content=body, headers=json_headers) for body in (known, unknown)
    ]

    assert [answer.status_code for answer in answers] == [401, 401]
    assert answers[0].json() == answers[1].json()


async def test_a_meta_batch_for_two_numbers_files_each_under_its_own_tenant(engine: RunningEngine) -> None:
    first = await create_tenant(engine.context, "Loja A")
    second = await create_tenant(engine.context, "Loja B")
    await bind_example_numbers(engine.context, first)
    # The same Meta app (and app secret) serves another business's number.
    other, _ = await bind(
        engine.context,
        second,
        provider="meta",
        display_number="+551130001000",
        phone_number_id="200000000000002",
        access_token="EAAG-other",
        app_secret=META_APP_SECRET,
    )
    payload = example("meta_text.json")
    foreign = copy.deepcopy(payload["entry"][0])
    change = foreign["changes"][0]["value"]
    change["metadata"]["phone_number_id"] = "200000000000002"
    change["messages"][0]["id"] = "wamid.OTHER-TENANT"
    change["messages"][0]["from"] = "5521988880000"
    change["contacts"][0]["wa_id"] = "5521988880000"
    # An entry for a number bound nowhere: its part is nobody's and is dropped.
    stranger = copy.deepcopy(foreign)
    stranger["changes"][0]["value"]["metadata"]["phone_number_id"] = "300000000000003"
    stranger["changes"][0]["value"]["messages"][0]["id"] = "wamid.NOBODY"
    payload["entry"] += [foreign, stranger]

    assert (await _post_meta(engine, _meta_body(payload))).status_code == 200

    async def filed() -> dict[str, str] | None:
        async with engine.context.sessions() as session:
            rows = (await session.execute(select(Message.provider_message_id, Message.tenant_id))).all()
        return {row.provider_message_id: row.tenant_id for row in rows} if len(rows) >= 2 else None

    by_message = await wait_until(filed, timeout=10, what="both numbers' messages")
    original = example("meta_text.json")["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert by_message == {original: first, "wamid.OTHER-TENANT": second}
    assert await _count(engine, Message, Message.instance_id == other.id) == 1


async def _watch_inbound(engine: RunningEngine) -> None:
    """A group of the test's own on the inbound stream, so what it stores stays to be read."""
    await engine.context.streams.ensure_group(engine.context.names.inbound, "test-peek")


async def _stored_inbound(engine: RunningEngine) -> list[dict[str, str]]:
    """Every raw request in the inbound stream since _watch_inbound, as stored."""
    streams, inbound = engine.context.streams, engine.context.names.inbound
    return [entry.fields for entry in await streams.read(inbound, "test-peek", "t", 100, 0)]


async def test_stored_raw_requests_keep_no_webhook_secret_and_no_credential(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    await _watch_inbound(engine)
    evolution_path = urlsplit(numbers.urls[ProviderName.EVOLUTION]).path
    secret = evolution_path.rsplit("/", 1)[1]
    evolution = example_bytes("evolution_messages_upsert_text.json")
    api_key = json.loads(evolution)["apikey"]
    assert (await _post_evolution(engine, numbers, evolution)).status_code == 200
    # The oldest WuzAPI builds post a form naming the user only by its token.
    wuzapi = json.loads(example_bytes("wuzapi_message.json"))
    for name in ("instanceName", "userID"):
        wuzapi.pop(name)
    form = urlencode({"jsonData": json.dumps(wuzapi), "token": "wuz-token"})
    wuzapi_path = urlsplit(numbers.urls[ProviderName.WUZAPI]).path
    signature = wuzapi_signature(form.encode())
    headers = {"content-type": "application/x-www-form-urlencoded", "x-hmac-signature": signature}
    assert (await engine.http.post(wuzapi_path, content=form, headers=headers)).status_code == 200

    stored = await _stored_inbound(engine)

    assert len(stored) == 2
    for fields in stored:
        for credential in (secret, api_key, "wuz-token"):
            assert credential not in json.dumps(fields), (credential, fields["provider"])
    assert stored[0]["url"].endswith("/[secret]")
    # Still a whole message for the worker.
    await wait_until(lambda: _count_ready(engine), timeout=10, what="both messages stored")


async def _count_ready(engine: RunningEngine) -> bool:
    return await _count(engine, Message) == 2
