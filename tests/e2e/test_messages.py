"""POST /api/v1/messages end to end on both deployments: queued, sent through the simulator over
HTTP, moved on by its signed receipts through the public webhook; and every refusal up front."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from messaging_whatsapp.config import Settings
from messaging_whatsapp.consent.models import OptOut
from messaging_whatsapp.db import new_id
from messaging_whatsapp.inbox.models import Message
from messaging_whatsapp.instances.models import WhatsAppInstance
from tests.e2e.conftest import RunningEngine, auth_headers, serve
from tests.helpers import approved_template, bind_example_numbers, create_tenant, wait_until


async def _message_count(engine: RunningEngine) -> int:
    async with engine.context.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Message)) or 0)


async def _queued_entries(engine: RunningEngine) -> int:
    return (await engine.context.streams.info(engine.context.names.outbound)).length


async def test_a_text_goes_out_through_the_simulator_and_its_receipts_come_back(
    engine: RunningEngine,
) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    headers = await auth_headers(engine, numbers.tenant_id)
    body = {"to": "+5511987654321", "instance_id": numbers.simulator.id, "text": "Olá, Maria!"}

    response = await engine.http.post("/api/v1/messages", json=body, headers=headers)

    assert response.status_code == 202
    item = response.json()
    assert (item["status"], item["direction"], item["content"]) == ("queued", "outbound", "Olá, Maria!")

    async def delivered() -> dict[str, Any] | None:
        current = (await engine.http.get(f"/api/v1/messages/{item['id']}", headers=headers)).json()
        return current if current["status"] in ("delivered", "read", "failed") else None

    settled = await wait_until(delivered, what="the simulator's receipts")
    if settled["status"] != "failed":
        assert settled["provider_message_id"].startswith("SIM-")
        assert settled["sent_at"] is not None
        assert settled["delivered_at"] is not None
    instances = (await engine.http.get("/api/v1/instances", headers=headers)).json()["items"]
    simulator = next(i for i in instances if i["id"] == numbers.simulator.id)
    assert simulator["msgs_sent_today"] == 1
    assert simulator["health_status"] == "excellent"


async def test_each_content_kind_is_accepted_and_stored(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    headers = await auth_headers(engine, numbers.tenant_id)
    contents: list[dict[str, Any]] = [
        {"media": {"type": "image", "url": "https://example.com/a.jpg", "caption": "Veja"}},
        {"media": {"type": "document", "url": "https://example.com/a.pdf", "filename": "boleto.pdf"}},
        {"template": {"name": "promo", "language": "pt_BR", "parameters": ["Maria"]}},
        {
            "buttons": {
                "text": "Quer continuar?",
                "buttons": [{"id": "sim", "title": "Sim"}, {"id": "nao", "title": "Não"}],
            }
        },
    ]
    await approved_template(engine.context, numbers.tenant_id, numbers.simulator, "promo", 1)
    for content in contents:
        body = {"to": "+5511987654321", "instance_id": numbers.simulator.id, **content}
        response = await engine.http.post("/api/v1/messages", json=body, headers=headers)
        assert response.status_code == 202, response.text
    types = [m["type"] for m in await _all_messages(engine, headers, numbers.simulator.id)]
    assert sorted(types) == ["document", "image", "interactive", "template"]


async def _all_messages(
    engine: RunningEngine, headers: dict[str, str], instance_id: str
) -> list[dict[str, Any]]:
    conversations = (
        await engine.http.get(f"/api/v1/conversations?instance_id={instance_id}", headers=headers)
    ).json()
    messages: list[dict[str, Any]] = []
    for conversation in conversations["items"]:
        page = (
            await engine.http.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=headers)
        ).json()
        messages += page["items"]
    return messages


async def test_an_idempotency_key_sends_once(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    headers = {**await auth_headers(engine, numbers.tenant_id), "Idempotency-Key": "pedido-42"}
    body = {"to": "+5511987654321", "instance_id": numbers.simulator.id, "text": "Seu pedido saiu"}

    first = await engine.http.post("/api/v1/messages", json=body, headers=headers)
    again = await engine.http.post("/api/v1/messages", json=body, headers=headers)

    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert await _message_count(engine) == 1


async def test_refusals_are_clear_and_queue_nothing(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    headers = await auth_headers(engine, numbers.tenant_id)
    async with engine.context.sessions() as session, session.begin():
        session.add(OptOut(id=new_id(), tenant_id=numbers.tenant_id, phone="+5511987654321", keyword="SAIR"))
        await session.execute(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id == numbers.evolution.id)
            .values(connection_state="close")
        )
    other = await create_tenant(engine.context, "Outra")
    other_numbers = await bind_example_numbers_elsewhere(engine, other)
    before = (await _message_count(engine), await _queued_entries(engine))
    cases = [
        ({"to": "+55 11 98765-4321", "instance_id": numbers.simulator.id, "text": "x"}, 409, "opted_out"),
        ({"to": "+55 (11) 9 8765-4321", "text": "x"}, 409, "opted_out"),
        ({"to": "12", "instance_id": numbers.simulator.id, "text": "x"}, 422, "invalid_phone"),
        (
            {"to": "+5521976543210", "instance_id": numbers.meta.id, "text": "x"},
            422,
            "outside_service_window",
        ),
        (
            {"to": "+5521976543210", "instance_id": numbers.twilio.id, "text": "x"},
            422,
            "outside_service_window",
        ),
        (
            {"to": "+5521976543210", "instance_id": numbers.evolution.id, "text": "x"},
            409,
            "instance_unavailable",
        ),
        ({"to": "+5521976543210", "instance_id": other_numbers, "text": "x"}, 404, "not_found"),
        (
            {"to": "+5521976543210", "text": "x", "media": {"type": "image", "url": "https://e.com/a.png"}},
            422,
            "validation_error",
        ),
        (
            {
                "to": "+5521976543210",
                "buttons": {"text": "?", "buttons": [{"id": str(i), "title": "t"} for i in range(4)]},
            },
            422,
            "validation_error",
        ),
        ({"to": 5521976543210, "text": "x"}, 422, "validation_error"),
        ({"to": "+5521976543210", "text": "x", "reply_to": new_id()}, 404, "not_found"),
    ]
    for body, status, code in cases:
        response = await engine.http.post("/api/v1/messages", json=body, headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
        assert response.json()["error"]["message"]
    assert (await _message_count(engine), await _queued_entries(engine)) == before
    outside = await engine.http.post(
        "/api/v1/messages",
        json={"to": "+5521976543210", "instance_id": numbers.meta.id, "text": "x"},
        headers=headers,
    )
    assert "template" in outside.json()["error"]["message"]


async def bind_example_numbers_elsewhere(engine: RunningEngine, tenant_id: str) -> str:
    """A simulator number of another tenant (the example numbers' ids are taken)."""
    from tests.helpers import bind

    instance, _ = await bind(
        engine.context,
        tenant_id,
        provider="simulator",
        instance_name=f"outra-{new_id()[-6:]}",
        display_number="+5511912345678",
    )
    return instance.id


async def test_a_template_opens_the_window_on_meta(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    headers = await auth_headers(engine, numbers.tenant_id)
    await approved_template(engine.context, numbers.tenant_id, numbers.meta, "boas_vindas")
    body = {"to": "+5521976543210", "instance_id": numbers.meta.id, "template": {"name": "boas_vindas"}}
    response = await engine.http.post("/api/v1/messages", json=body, headers=headers)
    assert response.status_code == 202


async def test_a_message_of_another_tenant_is_not_found(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    headers = await auth_headers(engine, numbers.tenant_id)
    body = {"to": "+5511987654321", "instance_id": numbers.simulator.id, "text": "oi"}
    message_id = (await engine.http.post("/api/v1/messages", json=body, headers=headers)).json()["id"]
    other_headers = await auth_headers(
        engine, await create_tenant(engine.context, "Outra"), "bia@outra.com.br"
    )
    response = await engine.http.get(f"/api/v1/messages/{message_id}", headers=other_headers)
    assert response.status_code == 404


async def test_the_api_limits_each_client_with_retry_after(deployment: Settings) -> None:
    # A bucket that refills once a minute: past its burst every request is limited, however slow
    # the machine is.
    limits = {"api_rate_per_client": 1 / 60, "api_burst_per_client": 10}
    async with serve(deployment.model_copy(update=limits)) as engine:
        numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
        headers = await auth_headers(engine, numbers.tenant_id)
        responses = [
            await engine.http.get(f"/api/v1/messages/{new_id()}", headers=headers) for _ in range(20)
        ]
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    assert {r.status_code for r in responses} == {404, 429}
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert {r.json()["error"]["code"] for r in limited} == {"rate_limited"}


async def test_an_admin_pauses_and_resumes_an_instance_and_an_agent_may_not(engine: RunningEngine) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    admin = await auth_headers(engine, numbers.tenant_id)
    agent = await auth_headers(engine, numbers.tenant_id, "bia@loja.com.br", role="agent")
    path = f"/api/v1/instances/{numbers.simulator.id}"

    refused = await engine.http.post(f"{path}/pause", headers=agent)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")

    paused = await engine.http.post(f"{path}/pause", headers=admin)
    assert (paused.status_code, paused.json()["status"], paused.json()["can_send"]) == (200, "paused", False)
    body = {"to": "+5511987654321", "instance_id": numbers.simulator.id, "text": "Olá"}
    blocked = await engine.http.post("/api/v1/messages", json=body, headers=admin)
    assert (blocked.status_code, blocked.json()["error"]["code"]) == (409, "instance_unavailable")

    resumed = await engine.http.post(f"{path}/resume", headers=admin)
    assert (resumed.status_code, resumed.json()["status"]) == (200, "active")
    assert (await engine.http.post("/api/v1/messages", json=body, headers=admin)).status_code == 202

    other = await auth_headers(engine, await create_tenant(engine.context, "Outra"), "caio@outra.com.br")
    assert (await engine.http.post(f"{path}/pause", headers=other)).status_code == 404
