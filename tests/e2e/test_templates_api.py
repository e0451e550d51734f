"""Templates over the API on both deployments: the sync against the Meta fake (paging, statuses,
removal, a refused token), templates created for a simulator number, the check before a template
send is queued, roles and tenants."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from messaging_whatsapp.inbox.models import Message
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.fakes.meta import MetaGraphFake, meta_template
from tests.helpers import META_PHONE_NUMBER_ID, bind, create_tenant

TOKEN = "EAAG-templates-token"
WABA = "104857293847561"
# More than our page size (100): the sync must follow two next pages.
MANY = 205


@pytest.fixture
def meta() -> MetaGraphFake:
    return MetaGraphFake(token=TOKEN, phone_number_id=META_PHONE_NUMBER_ID, waba_id=WABA)


@pytest.fixture
def engine(meta_engine: RunningEngine) -> RunningEngine:
    """The whole engine, its Meta numbers talking to the Graph API fake (tests/e2e/conftest.py)."""
    return meta_engine


async def _meta_number(
    engine: RunningEngine, tenant_id: str, *, token: str = TOKEN, number_id: str = META_PHONE_NUMBER_ID
) -> str:
    instance, _ = await bind(
        engine.context,
        tenant_id,
        provider="meta",
        name="Loja Meta",
        display_number="+551140028922",
        phone_number_id=number_id,
        waba_id=WABA,
        access_token=token,
        app_secret="a" * 32,
    )
    return instance.id


async def _simulator(engine: RunningEngine, tenant_id: str, name: str = "sim-loja") -> str:
    instance, _ = await bind(
        engine.context, tenant_id, provider="simulator", display_number="+551140028933", instance_name=name
    )
    return instance.id


async def _all(engine: RunningEngine, headers: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        page = await engine.http.get(f"/api/v1/templates?limit=200{query}{suffix}", headers=headers)
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


async def _message_count(engine: RunningEngine, tenant_id: str) -> int:
    async with engine.context.sessions() as session:
        query = select(func.count()).select_from(Message).where(Message.tenant_id == tenant_id)
        return int(await session.scalar(query) or 0)


async def test_the_sync_reads_every_page_and_follows_meta(engine: RunningEngine, meta: MetaGraphFake) -> None:
    tenant_id = await create_tenant(engine.context)
    number = await _meta_number(engine, tenant_id)
    headers = await auth_headers(engine, tenant_id)
    meta.templates = [
        meta_template(f"aviso_{index:03d}", "Olá {{1}}, pedido {{2}}", examples=["Maria", "123"])
        for index in range(MANY)
    ]
    meta.templates += [
        meta_template("promo_pendente", "Promo {{1}}", status="PENDING", category="MARKETING"),
        meta_template("recusado", "Oi", status="REJECTED"),
        meta_template("boas_vindas", "Welcome {{1}}", language="en_US"),
    ]

    synced = await engine.http.post("/api/v1/templates/sync", headers=headers)

    assert synced.status_code == 200, synced.text
    result = synced.json()
    assert (result["added"], result["updated"], result["removed"]) == (MANY + 3, 0, 0)
    assert result["numbers"] == [
        {
            "instance_id": number,
            "name": "Loja Meta",
            "display_number": "+551140028922",
            "waba_id": WABA,
            "added": MANY + 3,
            "updated": 0,
            "removed": 0,
            "error": None,
        }
    ]
    # Three pages: the first without a cursor, the next two with the previous page's `after`.
    assert len(meta.template_queries) == 3
    assert "after" not in meta.template_queries[0]
    assert all("after" in query for query in meta.template_queries[1:])
    assert {query["fields"] for query in meta.template_queries} == {
        "name,language,status,category,components,id"
    }

    stored = await _all(engine, headers)
    assert len(stored) == MANY + 3
    first = next(item for item in stored if item["name"] == "aviso_000")
    assert (first["status"], first["category"], first["language"]) == ("APPROVED", "UTILITY", "pt_BR")
    assert (first["body"], first["parameter_names"], first["parameter_count"]) == (
        "Olá {{1}}, pedido {{2}}",
        ["1", "2"],
        2,
    )
    assert first["instance_ids"] == [number]
    assert first["meta_template_id"] == meta.templates[0]["id"]
    assert first["synced_at"] is not None
    pending = await _all(engine, headers, "&status=PENDING")
    assert [(item["name"], item["category"]) for item in pending] == [("promo_pendente", "MARKETING")]
    assert [item["name"] for item in await _all(engine, headers, "&name=recus")] == ["recusado"]
    assert len(await _all(engine, headers, f"&instance_id={number}")) == MANY + 3

    # Meta approves the pending one, deletes two; the next sync follows.
    meta.templates = [t for t in meta.templates if t["name"] not in ("aviso_000", "recusado")]
    next(t for t in meta.templates if t["name"] == "promo_pendente")["status"] = "APPROVED"
    again = (await engine.http.post("/api/v1/templates/sync", headers=headers)).json()
    assert (again["added"], again["updated"], again["removed"]) == (0, 1, 2)
    removed = await _all(engine, headers, "&status=REMOVED")
    assert sorted(item["name"] for item in removed) == ["aviso_000", "recusado"]
    # A removed template cannot be sent.
    body = {
        "to": "+5511987654321",
        "instance_id": number,
        "template": {"name": "aviso_000", "parameters": ["a", "b"]},
    }
    refused = await engine.http.post("/api/v1/messages", json=body, headers=headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "template_not_found")


async def test_a_refused_token_is_a_clear_error_naming_the_number(
    engine: RunningEngine, meta: MetaGraphFake
) -> None:
    tenant_id = await create_tenant(engine.context)
    await _meta_number(engine, tenant_id, token="EAAG-revoked-token")
    headers = await auth_headers(engine, tenant_id)

    answer = await engine.http.post("/api/v1/templates/sync", headers=headers)

    assert answer.status_code == 502, answer.text
    error = answer.json()["error"]
    assert error["code"] == "meta_sync_failed"
    assert "Loja Meta (+551140028922)" in error["message"]
    assert "190" in error["message"]
    assert error["numbers"][0]["waba_id"] == WABA
    assert (await engine.http.get("/api/v1/templates", headers=headers)).json()["items"] == []


async def test_one_numbers_failure_does_not_cost_the_others(
    engine: RunningEngine, meta: MetaGraphFake
) -> None:
    tenant_id = await create_tenant(engine.context)
    good = await _meta_number(engine, tenant_id)
    bare, _ = await bind(
        engine.context,
        tenant_id,
        provider="meta",
        name="Sem WABA",
        display_number="+551140028944",
        phone_number_id="109283746500044",
        access_token=TOKEN,
        app_secret="b" * 32,
    )
    headers = await auth_headers(engine, tenant_id)
    meta.templates = [meta_template("boas_vindas", "Olá {{1}}")]

    answer = await engine.http.post("/api/v1/templates/sync", headers=headers)

    assert answer.status_code == 200, answer.text
    outcome = {number["instance_id"]: number for number in answer.json()["numbers"]}
    assert (outcome[good]["added"], outcome[good]["error"]) == (1, None)
    assert "no WABA id" in outcome[bare.id]["error"]


async def test_a_template_is_created_approved_for_a_simulator_number_only(
    engine: RunningEngine,
) -> None:
    tenant_id = await create_tenant(engine.context)
    simulator = await _simulator(engine, tenant_id)
    meta_number = await _meta_number(engine, tenant_id)
    gateway, _ = await bind(
        engine.context,
        tenant_id,
        provider="evolution",
        display_number="+551140028955",
        instance_name="loja-evo",
        api_url="http://127.0.0.1:9/evolution",
        api_key="evo-key-123456",
    )
    headers = await auth_headers(engine, tenant_id)
    body = {
        "instance_id": simulator,
        "name": "pedido_enviado",
        "language": "pt_BR",
        "category": "UTILITY",
        "body": "Olá {{1}}, seu pedido {{2}} saiu para entrega.",
    }

    created = await engine.http.post("/api/v1/templates", json=body, headers=headers)

    assert created.status_code == 201, created.text
    item = created.json()
    assert (item["status"], item["source"], item["parameter_count"]) == ("APPROVED", "local", 2)
    assert item["instance_ids"] == [simulator]
    again = await engine.http.post("/api/v1/templates", json=body, headers=headers)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "template_exists")
    on_meta = await engine.http.post(
        "/api/v1/templates", json={**body, "instance_id": meta_number}, headers=headers
    )
    assert (on_meta.status_code, on_meta.json()["error"]["code"]) == (422, "templates_come_from_meta")
    assert "sync" in on_meta.json()["error"]["message"]
    on_gateway = await engine.http.post(
        "/api/v1/templates", json={**body, "instance_id": gateway.id}, headers=headers
    )
    assert (on_gateway.status_code, on_gateway.json()["error"]["code"]) == (422, "template_unsupported")
    for bad, problem in (
        ({"name": "Pedido Enviado"}, "lowercase"),
        ({"category": "TRANSACTIONAL"}, "category"),
        ({"body": "Olá {{2}}"}, "{{1}}"),
        ({"body": None}, "body or components"),
    ):
        refused = await engine.http.post("/api/v1/templates", json={**body, **bad}, headers=headers)
        assert refused.status_code == 422, refused.text
        assert problem in refused.json()["error"]["message"], refused.text

    # And it can be sent at once, with its two parameters.
    send = {"to": "+5511987654321", "instance_id": simulator, "template": {"name": "pedido_enviado"}}
    send["template"]["parameters"] = ["Maria", "123"]  # type: ignore[index]
    sent = await engine.http.post("/api/v1/messages", json=send, headers=headers)
    assert sent.status_code == 202, sent.text


async def test_a_template_send_is_refused_before_anything_is_queued(
    engine: RunningEngine, meta: MetaGraphFake
) -> None:
    tenant_id = await create_tenant(engine.context)
    number = await _meta_number(engine, tenant_id)
    headers = await auth_headers(engine, tenant_id)
    meta.templates = [
        meta_template("pedido_enviado", "Olá {{1}}, seu pedido {{2}} saiu."),
        meta_template("promo_natal", "Promo {{1}}", status="PENDING", category="MARKETING"),
    ]
    assert (await engine.http.post("/api/v1/templates/sync", headers=headers)).status_code == 200

    async def send(name: str, parameters: list[str], language: str = "pt_BR") -> httpx.Response:
        template = {"name": name, "language": language, "parameters": parameters}
        body = {"to": "+5511987654321", "instance_id": number, "template": template}
        return await engine.http.post("/api/v1/messages", json=body, headers=headers)

    missing = await send("pedido_enviad", ["Maria", "1"])
    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "template_not_found")
    message = missing.json()["error"]["message"]
    assert "pedido_enviad (pt_BR)" in message
    assert "Loja Meta (+551140028922)" in message
    assert "close matches: pedido_enviado (pt_BR)" in message
    assert "sync" in message
    other_language = await send("pedido_enviado", ["Maria", "1"], "en_US")
    assert "close matches: pedido_enviado (pt_BR)" in other_language.json()["error"]["message"]

    pending = await send("promo_natal", ["10%"])
    assert (pending.status_code, pending.json()["error"]["code"]) == (422, "template_not_approved")
    assert "PENDING" in pending.json()["error"]["message"]
    assert pending.json()["error"]["status"] == "PENDING"

    short = await send("pedido_enviado", ["Maria"])
    assert (short.status_code, short.json()["error"]["code"]) == (422, "template_parameters")
    assert "needs 2 parameters (1, 2), got 1" in short.json()["error"]["message"]
    long = await send("pedido_enviado", ["Maria", "1", "extra"])
    assert long.json()["error"]["code"] == "template_parameters"

    # A Meta number without a WABA id has no templates to check against: refused, saying why.
    bare, _ = await bind(
        engine.context,
        tenant_id,
        provider="meta",
        name="Sem WABA",
        display_number="+551140028944",
        phone_number_id="109283746500044",
        access_token=TOKEN,
        app_secret="b" * 32,
    )
    template = {"name": "pedido_enviado", "parameters": ["Maria", "1"]}
    body = {"to": "+5511987654321", "instance_id": bare.id, "template": template}
    no_waba = await engine.http.post("/api/v1/messages", json=body, headers=headers)
    assert (no_waba.status_code, no_waba.json()["error"]["code"]) == (422, "template_not_found")
    assert f"PATCH /api/v1/instances/{bare.id} with waba_id" in no_waba.json()["error"]["message"]

    assert await _message_count(engine, tenant_id) == 0
    queued = await send("pedido_enviado", ["Maria", "123"])
    assert queued.status_code == 202, queued.text
    assert await _message_count(engine, tenant_id) == 1


async def test_agents_read_only_admins_write_and_tenants_are_apart(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    simulator = await _simulator(engine, tenant_id)
    admin = await auth_headers(engine, tenant_id)
    agent = await auth_headers(engine, tenant_id, "bia@loja.com.br", role="agent")
    supervisor = await auth_headers(engine, tenant_id, "caio@loja.com.br", role="supervisor")
    body = {"instance_id": simulator, "name": "aviso", "body": "Oi {{1}}"}
    assert (await engine.http.post("/api/v1/templates", json=body, headers=admin)).status_code == 201

    listed = await engine.http.get("/api/v1/templates", headers=agent)
    assert [item["name"] for item in listed.json()["items"]] == ["aviso"]
    for headers in (agent, supervisor):
        other = {**body, "name": "outro"}
        assert (await engine.http.post("/api/v1/templates", json=other, headers=headers)).status_code == 403
        assert (await engine.http.post("/api/v1/templates/sync", headers=headers)).status_code == 403

    other_tenant = await create_tenant(engine.context, "Outra")
    theirs = await _simulator(engine, other_tenant, "sim-outra")
    outsider = await auth_headers(engine, other_tenant, "davi@outra.com.br")
    assert (await engine.http.get("/api/v1/templates", headers=outsider)).json()["items"] == []
    stolen = await engine.http.post(
        "/api/v1/templates", json={**body, "instance_id": simulator}, headers=outsider
    )
    assert stolen.status_code == 404
    filtered = await engine.http.get(f"/api/v1/templates?instance_id={simulator}", headers=outsider)
    assert filtered.status_code == 404
    # Their own number has none of ours.
    mine = await engine.http.get(f"/api/v1/templates?instance_id={theirs}", headers=outsider)
    assert mine.json()["items"] == []
    bad_cursor = await engine.http.get("/api/v1/templates?cursor=nope", headers=admin)
    assert (bad_cursor.status_code, bad_cursor.json()["error"]["code"]) == (422, "invalid_cursor")


async def test_two_syncs_at_once_store_each_template_once(engine: RunningEngine, meta: MetaGraphFake) -> None:
    tenant_id = await create_tenant(engine.context)
    await _meta_number(engine, tenant_id)
    headers = await auth_headers(engine, tenant_id)
    meta.templates = [meta_template(f"aviso_{index:02d}", "Olá {{1}}") for index in range(30)]

    first, second = await asyncio.gather(
        engine.http.post("/api/v1/templates/sync", headers=headers),
        engine.http.post("/api/v1/templates/sync", headers=headers),
    )

    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert first.json()["added"] + second.json()["added"] == 30
    assert len(await _all(engine, headers)) == 30
