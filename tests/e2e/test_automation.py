"""Automation end to end on both deployments: the API's contract (intents, rules, business hours:
roles, 422s that name the field, another tenant's rule 404) and, through the simulator's signed
webhook delivered twice, one greeting sent by the senders and one intent on the events stream."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.simulator import build_inbound_message_body
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import bind_example_numbers, create_tenant, published_events, wait_until

RULES = "/api/v1/automation/rules"
INTENTS = "/api/v1/automation/intents"
HOURS = "/api/v1/automation/business-hours"


async def _error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    return f"{error['code']}: {error['message']}"


async def test_intents_rules_and_hours_follow_the_contract(engine: RunningEngine) -> None:
    http = engine.http
    tenant_id = await create_tenant(engine.context, timezone="America/Manaus")
    admin = await auth_headers(engine, tenant_id, "ana@loja.com.br", "admin")
    supervisor = await auth_headers(engine, tenant_id, "lia@loja.com.br", "supervisor")
    agent = await auth_headers(engine, tenant_id, "bia@loja.com.br", "agent")

    seed = (await http.get(INTENTS, headers=supervisor)).json()
    assert seed["default"] is True
    assert [(i["name"], i["keywords"]) for i in seed["intents"]] == [
        ("create_quote", ["cotacao", "orcamento", "preco", "valor"]),
        ("order_status", ["status", "pedido", "entrega", "rastrear"]),
        ("talk_to_human", ["atendente", "humano", "ajuda", "suporte"]),
    ]
    assert (await http.get(INTENTS, headers=agent)).status_code == 403
    assert (await http.put(INTENTS, json={"intents": []}, headers=supervisor)).status_code == 403
    for body, expected in (
        ({"intents": [{"name": "", "keywords": ["x"]}]}, "intents.0.name"),
        ({"intents": [{"name": "a", "keywords": []}, {"name": "a"}]}, "intents[1].name"),
        ({"intents": [{"name": f"i{n}"} for n in range(31)]}, "intents"),
        ({"intents": [{"name": "a", "keywords": ["?!"]}]}, "intents[0].keywords[0]"),
        ({"intents": [{"name": "a", "button_payloads": ["b"]}, {"name": "b"}]}, "intents[1].button_payloads"),
    ):
        assert expected in await _error(await http.put(INTENTS, json=body, headers=admin), 422)
    mine = {"intents": [{"name": "falar", "keywords": ["gerente"], "button_payloads": ["BTN_FALAR"]}]}
    assert (await http.put(INTENTS, json=mine, headers=admin)).json() == {
        "intents": mine["intents"],
        "default": False,
    }

    greeting = {"name": "Saudação", "when": {"type": "new_ticket"}, "then": {"type": "buttons"}}
    assert (await http.post(RULES, json=greeting, headers=supervisor)).status_code == 403
    created = await http.post(RULES, json=greeting, headers=admin)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["then"]["buttons"] == [
        {"id": "create_quote", "title": "Fazer cotação"},
        {"id": "order_status", "title": "Status do pedido"},
        {"id": "talk_to_human", "title": "Falar com atendente"},
    ]
    assert (rule["enabled"], rule["once_per_ticket"], rule["instance_ids"]) == (True, True, [])
    for body, expected in (
        ({**greeting, "name": ""}, "name"),
        ({**greeting, "when": {"type": "intent", "intent": "create_quote"}}, "when.intent"),
        ({**greeting, "when": {"type": "no_agent_answer", "minutes": 0}}, "when.no_agent_answer.minutes"),
        ({**greeting, "when": {"type": "sometimes"}}, "when"),
        ({**greeting, "then": {"type": "text"}}, "then.text"),
        ({**greeting, "then": {"type": "assign", "user_id": "nobody"}}, "then.user_id"),
        ({**greeting, "then": {"type": "buttons", "buttons": [{"id": "a", "title": "x" * 21}]}}, "title"),
        (
            {
                **greeting,
                "then": {"type": "buttons", "buttons": [{"id": str(n), "title": "x"} for n in range(4)]},
            },
            "then.buttons",
        ),
        ({**greeting, "instance_ids": ["00000000-0000-0000-0000-000000000000"]}, "instance_ids"),
    ):
        assert expected in await _error(await http.post(RULES, json=body, headers=admin), 422)
    away = {"name": "Fora", "position": 1, "when": {"type": "outside_hours"}, "then": {"type": "text"}}
    away_id = (await http.post(RULES, json=away, headers=admin)).json()["id"]
    patched = await http.patch(f"{RULES}/{away_id}", json={"enabled": False, "position": 0}, headers=admin)
    assert (patched.json()["enabled"], patched.json()["when"]) == (False, {"type": "outside_hours"})
    listed = (await http.get(RULES, headers=supervisor)).json()["items"]
    assert [r["name"] for r in listed] == ["Saudação", "Fora"]  # position 0 both: created first, first
    assert "then.text" in await _error(
        await http.patch(f"{RULES}/{away_id}", json={"when": {"type": "new_ticket"}}, headers=admin), 422
    )

    other = await auth_headers(engine, await create_tenant(engine.context, "Outra"), "eva@outra.com")
    for method in ("GET", "PATCH", "DELETE"):
        body = {"enabled": True} if method == "PATCH" else None
        response = await http.request(method, f"{RULES}/{rule['id']}", json=body, headers=other)
        assert response.status_code == 404, (method, response.text)
    assert (await http.delete(f"{RULES}/{away_id}", headers=admin)).status_code == 204
    assert [r["id"] for r in (await http.get(RULES, headers=admin)).json()["items"]] == [rule["id"]]

    hours = (await http.get(HOURS, headers=supervisor)).json()
    assert hours == {"schedule": None, "away_message": None, "timezone": "America/Manaus", "open_now": True}
    week = {"mon": [["08:00", "12:00"], ["13:00", "18:00"]], "sat": [["09:00", "13:00"]]}
    body = {"schedule": week, "away_message": "Voltamos segunda às 8h.", "timezone": "UTC"}
    changed = (await http.put(HOURS, json=body, headers=admin)).json()
    assert changed["schedule"]["mon"] == week["mon"]
    assert changed["schedule"]["sun"] == []
    assert (changed["timezone"], changed["away_message"]) == ("America/Manaus", "Voltamos segunda às 8h.")
    bad = {"schedule": {"mon": [["18:00", "08:00"]]}}
    assert "schedule: mon[0]" in await _error(await http.put(HOURS, json=bad, headers=admin), 422)
    assert (await http.put(HOURS, json=body, headers=supervisor)).status_code == 403


async def test_a_webhook_delivered_twice_greets_once_and_publishes_one_intent(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    admin = await auth_headers(engine, tenant_id, "ana@loja.com.br", "admin")
    greeting = {
        "name": "Saudação",
        "instance_ids": [numbers.simulator.id],
        "when": {"type": "new_ticket"},
        "then": {"type": "buttons", "text": "Olá! Escolha uma opção:"},
    }
    assert (await engine.http.post(RULES, json=greeting, headers=admin)).status_code == 201

    body = build_inbound_message_body(
        "sim-loja", "SIM-PRECO", "5511987654321", "Qual o preço?", "Maria", 1765000000
    )
    path = urlsplit(numbers.urls[ProviderName.SIMULATOR]).path
    for _ in range(2):
        response = await engine.http.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text

    async def greeting_sent() -> list[dict[str, Any]] | None:
        conversations = (await engine.http.get("/api/v1/conversations", headers=admin)).json()["items"]
        if not conversations:
            return None
        url = f"/api/v1/conversations/{conversations[0]['id']}/messages"
        messages = (await engine.http.get(url, headers=admin)).json()["items"]
        sent = [m for m in messages if m["sender_type"] == "system" and m["status"] != "queued"]
        return messages if sent else None

    await wait_until(greeting_sent, timeout=20, what="the greeting sent by the simulator")

    async def both_applied() -> bool:
        info = await engine.context.streams.info(engine.context.names.inbound)
        return any(g.name == "workers" and g.oldest_unacked_at is None and not g.pending for g in info.groups)

    await wait_until(both_applied, what="both deliveries applied")
    messages = await greeting_sent() or []
    [automatic] = [m for m in messages if m["sender_type"] == "system"]
    assert automatic["type"] == "interactive"
    assert automatic["content"] == "Olá! Escolha uma opção:"
    [requested] = await published_events(engine.context, "whatsapp_action_requested")
    assert requested["tenant_id"] == tenant_id
    assert '"intent":"create_quote"' in requested["payload"]
    assert '"source":"keyword"' in requested["payload"]

    asking = build_inbound_message_body(
        "sim-loja", "SIM-HUMANO", "5511987654321", "Quero um atendente", "Maria", 1765000060
    )
    assert (
        await engine.http.post(path, content=asking, headers={"content-type": "application/json"})
    ).status_code == 200

    async def flagged() -> dict[str, Any] | None:
        items = (await engine.http.get("/api/v1/conversations", headers=admin)).json()["items"]
        return items[0] if items and items[0]["ticket"]["wants_person"] else None

    conversation = await wait_until(flagged, what="the conversation flagged as wanting a person")
    assert conversation["ticket"]["assignee_id"] is None
    tickets = (
        await engine.http.get(f"/api/v1/conversations/{conversation['id']}/tickets", headers=admin)
    ).json()
    assert tickets["items"][0]["wants_person_at"] is not None
