"""LGPD over HTTP, on both deployments: a person erased (and, if they had opted out, kept
unreachable by the suppression list alone), everything held about them exported, and their
consent recorded by the team, each step in the append-only consent ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.consent.models import Consent, Suppression
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.providers.events import InboundMessage, MessageType
from messaging_whatsapp.streams.base import StreamEntry
from messaging_whatsapp.streams.records import dead_letter_fields
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.tenancy.models import Tenant
from messaging_whatsapp.worker.ingest import apply_entries
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import bind_example_numbers, create_tenant, published_events

ANA = "5511987654321"
ANA_OLD_FORM = "551187654321"  # the same person without the ninth digit
CAIO = "5521998765432"


async def _writes(engine: RunningEngine, tenant_id: str, instance_id: str, phone: str, text: str) -> None:
    message = InboundMessage(f"SIM-{new_id()}", phone, MessageType.TEXT, utcnow(), text=text)
    async with engine.context.sessions() as session, session.begin():
        entry = IngestEntry(new_id(), tenant_id, instance_id, utcnow(), [message])
        await apply_entries(session, [entry], engine.context.names.events)


async def _contact(engine: RunningEngine, headers: dict[str, str], phone: str) -> dict[str, object] | None:
    found = (await engine.http.get(f"/api/v1/contacts?phone=%2B{phone}", headers=headers)).json()["items"]
    return found[0] if found else None


async def _raw_request_in_dlq(engine: RunningEngine, phone: str) -> None:
    body = json.dumps({"entry": [{"changes": [{"value": {"messages": [{"from": phone, "text": "oi"}]}}]}]})
    names = engine.context.names
    entry = StreamEntry(names.inbound, "1-1", {"body": body})
    await engine.context.streams.append(
        names.dlq, dead_letter_fields(names.inbound, "inbound", entry, "test")
    )


async def _campaign_with(
    engine: RunningEngine, headers: dict[str, str], instance_id: str, phones: list[str]
) -> str:
    body = {
        "name": "Black Friday",
        "instance_ids": [instance_id],
        "messages": [{"content": "Oi {{name}}, temos ofertas!"}],
        "contacts": [{"phone": f"+{phone}"} for phone in phones],
    }
    created = await engine.http.post("/api/v1/campaigns", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_an_erased_person_who_had_opted_out_stays_unreachable(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    tenant_id, simulator = numbers.tenant_id, numbers.simulator.id
    admin = await auth_headers(engine, tenant_id)
    await _writes(engine, tenant_id, simulator, ANA, "Oi, quero saber do tênis")
    await _writes(engine, tenant_id, simulator, CAIO, "Bom dia")
    campaign_id = await _campaign_with(engine, admin, simulator, [ANA, CAIO])
    await _writes(engine, tenant_id, simulator, ANA, "Sair")
    await _raw_request_in_dlq(engine, ANA)
    await _raw_request_in_dlq(engine, CAIO)
    ana = await _contact(engine, admin, ANA)
    assert ana is not None
    assert ana["opted_out"] is True
    await published_events(engine.context, "whatsapp_contact_erased")  # start reading from here

    erased = await engine.http.delete(f"/api/v1/contacts/{ana['id']}", headers=admin)

    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report == {
        "contact_id": ana["id"],
        "messages": 2,
        "conversations": 1,
        "tickets": 1,
        "campaign_contacts": 1,
        "opt_outs": 1,
        "consents_blanked": 1,
        "suppressed": True,
        "raw_requests": 1,
        "events": 3,  # two messages received, one opt-out
    }
    assert await _contact(engine, admin, ANA) is None
    assert (await engine.http.delete(f"/api/v1/contacts/{ana['id']}", headers=admin)).status_code == 404
    conversations = (await engine.http.get("/api/v1/conversations", headers=admin)).json()["items"]
    assert [c["contact"]["phone"] for c in conversations] == [f"+{CAIO}"]
    contacts = (await engine.http.get(f"/api/v1/campaigns/{campaign_id}/contacts", headers=admin)).json()
    assert [c["contact"]["phone"] for c in contacts["items"]] == [f"+{CAIO}"]
    [event] = await published_events(engine.context, "whatsapp_contact_erased")
    assert ANA not in json.dumps(event)
    assert ANA_OLD_FORM not in json.dumps(event)

    async with engine.context.sessions() as session:
        [entry] = (await session.scalars(select(Consent).where(Consent.tenant_id == tenant_id))).all()
        assert (entry.status, entry.source, entry.phone, entry.evidence) == (
            "opted_out",
            "keyword",
            None,
            None,
        )
        [suppression] = (await session.scalars(select(Suppression))).all()
        stored_key = await session.scalar(select(Tenant.suppression_key).where(Tenant.id == tenant_id))
    assert ANA not in suppression.phone_hash
    assert suppression.reason == "erased_opted_out"
    assert stored_key is not None
    assert len(stored_key) > 64

    # Unreachable by every path, in either Brazilian form, although nothing names them any more.
    for to in (f"+{ANA}", f"+{ANA_OLD_FORM}"):
        refused = await engine.http.post("/api/v1/messages", json={"to": to, "text": "Oi"}, headers=admin)
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "opted_out"), to
    added = await engine.http.post(
        f"/api/v1/campaigns/{campaign_id}/contacts",
        json={"contacts": [{"phone": f"+{ANA_OLD_FORM}"}]},
        headers=admin,
    )
    assert (added.status_code, added.json()["added"], added.json()["opted_out"]) == (200, 0, 1), added.text

    # They write again: a new contact, opted out from the start.
    await _writes(engine, tenant_id, simulator, ANA, "Oi de novo")
    again = await _contact(engine, admin, ANA)
    assert again is not None
    assert again["id"] != ana["id"]
    assert again["opted_out"] is True


async def test_erasing_a_person_who_never_opted_out_leaves_no_trace(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    admin = await auth_headers(engine, numbers.tenant_id)
    stranger = await auth_headers(engine, await create_tenant(engine.context, "Outra"), "rui@outra.com.br")
    await _writes(engine, numbers.tenant_id, numbers.simulator.id, ANA, "Oi")
    ana = await _contact(engine, admin, ANA)
    assert ana is not None

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = {"to": f"+{ANA}", "text": "Lembrete", "instance_id": numbers.simulator.id, "send_at": later}
    assert (await engine.http.post("/api/v1/messages", json=scheduled, headers=admin)).status_code == 202

    elsewhere = await engine.http.delete(f"/api/v1/contacts/{ana['id']}", headers=stranger)
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (404, "not_found")
    erased = (await engine.http.delete(f"/api/v1/contacts/{ana['id']}", headers=admin)).json()
    # Her message and the one scheduled to her.
    assert (erased["messages"], erased["suppressed"]) == (2, False)
    listed = await engine.http.get("/api/v1/scheduled-messages", headers=admin)
    assert listed.json()["items"] == []

    async with engine.context.sessions() as session:
        assert (await session.scalars(select(Suppression))).all() == []
    message = {"to": f"+{ANA}", "text": "Oi", "instance_id": numbers.simulator.id}
    sent = await engine.http.post("/api/v1/messages", json=message, headers=admin)
    assert sent.status_code == 202, sent.text


async def test_everything_held_about_a_person_is_exported(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    admin = await auth_headers(engine, numbers.tenant_id)
    agent = await auth_headers(engine, numbers.tenant_id, "bia@loja.com.br", role="agent")
    stranger = await auth_headers(engine, await create_tenant(engine.context, "Outra"), "rui@outra.com.br")
    await _writes(engine, numbers.tenant_id, numbers.simulator.id, ANA, "Oi, quero saber do tênis")
    await _campaign_with(engine, admin, numbers.simulator.id, [ANA])
    await _writes(engine, numbers.tenant_id, numbers.simulator.id, ANA, "Parar")
    ana = await _contact(engine, admin, ANA)
    assert ana is not None
    path = f"/api/v1/contacts/{ana['id']}/export"

    exported = await engine.http.get(path, headers=admin)

    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert document["contact"]["phone"] == f"+{ANA}"
    assert [m["content"] for m in document["messages"]] == ["Oi, quero saber do tênis", "Parar"]
    assert len(document["conversations"]) == len(document["tickets"]) == 1
    [row] = document["campaigns"]
    assert (row["campaign_name"], row["status"]) == ("Black Friday", "opted_out")
    [consent] = document["consents"]
    assert (consent["status"], consent["source"], consent["evidence"]) == ("opted_out", "keyword", "Parar")
    assert document["opt_out"]["keyword"] == "parar"
    assert (await engine.http.get(path, headers=agent)).status_code == 403
    assert (await engine.http.get(path, headers=stranger)).status_code == 404


async def test_the_team_records_an_opt_out_and_an_opt_in_with_their_evidence(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    admin = await auth_headers(engine, numbers.tenant_id)
    agent = await auth_headers(engine, numbers.tenant_id, "bia@loja.com.br", role="agent")
    async with engine.context.sessions() as session, session.begin():
        key, raw_key = await tenancy_service.create_api_key(session, numbers.tenant_id, "crm", role="agent")
    machine = {"authorization": f"Bearer {raw_key}"}
    await _writes(engine, numbers.tenant_id, numbers.simulator.id, ANA, "Oi")
    ana = await _contact(engine, admin, ANA)
    assert ana is not None
    path = f"/api/v1/contacts/{ana['id']}/consent"
    for body in ({"status": "maybe"}, {}, {"status": "opted_out", "extra": 1}):
        refused = await engine.http.post(path, json=body, headers=agent)
        assert refused.status_code == 422, body
    await published_events(engine.context, "whatsapp_customer_opted_out")

    out = await engine.http.post(
        path, json={"status": "opted_out", "note": "pediu por telefone"}, headers=agent
    )

    assert (out.status_code, out.json()["opted_out"]) == (200, True), out.text
    [event] = await published_events(engine.context, "whatsapp_customer_opted_out")
    assert "agent" in json.dumps(event)
    refused = await engine.http.post("/api/v1/messages", json={"to": f"+{ANA}", "text": "Oi"}, headers=admin)
    assert refused.json()["error"]["code"] == "opted_out"

    back = await engine.http.post(
        path, json={"status": "opted_in", "note": "pediu para voltar"}, headers=machine
    )
    assert (back.status_code, back.json()["opted_out"]) == (200, False), back.text
    assert len(await published_events(engine.context, "whatsapp_customer_opted_in")) == 1
    sent = await engine.http.post("/api/v1/messages", json={"to": f"+{ANA}", "text": "Oi"}, headers=admin)
    assert sent.status_code == 202, sent.text

    consents = (await engine.http.get(f"/api/v1/contacts/{ana['id']}/export", headers=admin)).json()[
        "consents"
    ]
    assert [(c["status"], c["source"], c["evidence"]) for c in consents] == [
        ("opted_out", "agent", "pediu por telefone"),
        ("opted_in", "api", "pediu para voltar"),
    ]
    assert consents[1]["actor"] == key.id
    missing = await engine.http.post(
        "/api/v1/contacts/nope/consent", json={"status": "opted_in"}, headers=admin
    )
    assert missing.status_code == 404


async def test_a_list_that_says_the_person_agreed_goes_to_the_ledger_but_never_undoes_an_opt_out(
    engine: RunningEngine,
) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    admin = await auth_headers(engine, numbers.tenant_id)
    await _writes(engine, numbers.tenant_id, numbers.simulator.id, CAIO, "Sair")
    campaign_id = await _campaign_with(engine, admin, numbers.simulator.id, [])
    csv = f"telefone;nome;consentimento\n(11) 98765-4321;Ana;sim\n+{CAIO};Caio;sim\n"

    imported = await engine.http.post(
        f"/api/v1/campaigns/{campaign_id}/contacts/import", content=csv.encode(), headers=admin
    )

    assert (imported.json()["added"], imported.json()["opted_out"]) == (1, 1), imported.text
    ana = await _contact(engine, admin, ANA)
    assert ana is not None
    export = (await engine.http.get(f"/api/v1/contacts/{ana['id']}/export", headers=admin)).json()
    [consent] = export["consents"]
    assert (consent["status"], consent["source"], consent["actor"]) == ("opted_in", "import", campaign_id)
    assert consent["evidence"] == "campaign 'Black Friday', line 2"
    caio = await _contact(engine, admin, CAIO)
    assert caio is not None
    assert caio["opted_out"] is True
    caio_consents = (await engine.http.get(f"/api/v1/contacts/{caio['id']}/export", headers=admin)).json()
    assert [c["status"] for c in caio_consents["consents"]] == ["opted_out"]
