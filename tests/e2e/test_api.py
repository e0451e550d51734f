"""The REST API's contract: authentication, API keys, pagination, uniform errors."""

from __future__ import annotations

import copy
import json

import pytest

from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.tenancy import service as tenancy_service
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import (
    bind_example_numbers,
    create_tenant,
    create_user,
    example,
    meta_signature,
    wait_until,
)


async def test_login_failures_are_401_without_saying_which_part_was_wrong(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    await create_user(engine.context, tenant_id, "ana@loja.com.br")
    for body in (
        {"email": "ana@loja.com.br", "password": "wrong-pass"},
        {"email": "x@y.z", "password": "s3cret-pass"},
    ):
        response = await engine.http.post("/api/v1/auth/login", json=body)
        assert response.status_code == 401
        assert response.json() == {"error": {"code": "unauthorized", "message": "wrong email or password"}}
    response = await engine.http.post("/api/v1/auth/login", json={"email": 5})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    response = await engine.http.post(
        "/api/v1/auth/login", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    for token in ("not-a-jwt", "mwk_not-a-key"):
        response = await engine.http.get("/api/v1/contacts", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


async def test_api_keys_are_hashed_and_scoped_to_their_tenant(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    await bind_example_numbers(engine.context, tenant_id)
    async with engine.context.sessions() as session, session.begin():
        key, raw = await tenancy_service.create_api_key(session, tenant_id, "erp")
    assert raw not in (key.key_hash, key.prefix)
    response = await engine.http.get("/api/v1/instances", headers={"authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    assert len(response.json()["items"]) == 5


async def test_a_revoked_api_key_is_refused_at_once_and_only_its_tenant_can_revoke_it(
    engine: RunningEngine,
) -> None:
    tenant_id = await create_tenant(engine.context)
    other_tenant_id = await create_tenant(engine.context)
    async with engine.context.sessions() as session, session.begin():
        key, raw = await tenancy_service.create_api_key(session, tenant_id, "erp")
    headers = {"authorization": f"Bearer {raw}"}
    assert (await engine.http.get("/api/v1/instances", headers=headers)).status_code == 200

    async with engine.context.sessions() as session, session.begin():
        with pytest.raises(NotFound):
            await tenancy_service.revoke_api_key(session, other_tenant_id, key.id)
    assert (await engine.http.get("/api/v1/instances", headers=headers)).status_code == 200

    async with engine.context.sessions() as session, session.begin():
        revoked = await tenancy_service.revoke_api_key(session, tenant_id, key.id)
    assert revoked.revoked_at is not None
    refused = await engine.http.get("/api/v1/instances", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


async def test_admins_manage_api_keys_over_http(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id)
    created = await engine.http.post("/api/v1/api-keys", json={"name": "erp"}, headers=admin)
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["name"] == "erp"
    assert key["revoked_at"] is None
    assert key["api_key"].startswith(key["prefix"])
    machine = {"authorization": f"Bearer {key['api_key']}"}
    assert (await engine.http.get("/api/v1/instances", headers=machine)).status_code == 200

    listed = (await engine.http.get("/api/v1/api-keys", headers=admin)).json()["items"]
    assert [item["id"] for item in listed] == [key["id"]]
    assert key["api_key"] not in json.dumps(listed)

    revoked = await engine.http.post(f"/api/v1/api-keys/{key['id']}/revoke", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert (await engine.http.get("/api/v1/instances", headers=machine)).status_code == 401


async def test_api_keys_are_an_admins_business_within_their_own_tenant(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    other_admin = await auth_headers(engine, await create_tenant(engine.context), "rui@outra.com.br")
    async with engine.context.sessions() as session, session.begin():
        key, _ = await tenancy_service.create_api_key(session, tenant_id, "erp")
    agent = await auth_headers(engine, tenant_id, "bia@loja.com.br", role="agent")

    assert (await engine.http.get("/api/v1/api-keys", headers=agent)).status_code == 403
    assert (await engine.http.post("/api/v1/api-keys", json={}, headers=agent)).status_code == 403
    elsewhere = await engine.http.post(f"/api/v1/api-keys/{key.id}/revoke", headers=other_admin)
    assert elsewhere.status_code == 404
    assert elsewhere.json()["error"]["code"] == "not_found"
    assert (await engine.http.get("/api/v1/api-keys", headers=other_admin)).json()["items"] == []
    bad = await engine.http.post("/api/v1/api-keys", json={"name": ""}, headers=other_admin)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_error"


async def test_listings_page_with_cursors(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    await bind_example_numbers(engine.context, tenant_id)
    await create_user(engine.context, tenant_id, "ops@loja.com.br")
    login = await engine.http.post(
        "/api/v1/auth/login", json={"email": "ops@loja.com.br", "password": "s3cret-pass"}
    )
    headers = {"authorization": f"Bearer {login.json()['access_token']}"}
    for index in range(5):
        payload = copy.deepcopy(example("meta_text.json"))
        value = payload["entry"][0]["changes"][0]["value"]
        value["contacts"][0]["wa_id"] = f"5511988880{index:03d}"
        value["messages"][0].update({"from": f"5511988880{index:03d}", "id": f"wamid.PAGE-{index}"})
        body = json.dumps(payload).encode()
        signed = {"content-type": "application/json", "x-hub-signature-256": meta_signature(body)}
        assert (await engine.http.post("/webhook", content=body, headers=signed)).status_code == 200

    async def five() -> bool:
        page = (await engine.http.get("/api/v1/conversations", headers=headers)).json()
        return len(page["items"]) == 5

    await wait_until(five, what="five conversations")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await engine.http.get("/api/v1/conversations", headers=headers, params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    bad = await engine.http.get("/api/v1/conversations", headers=headers, params={"cursor": "%%%"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_cursor"
    missing = await engine.http.get("/api/v1/nothing-here", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_admins_change_their_own_tenants_settings(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    other_id = await create_tenant(engine.context, "Outra")
    admin = await auth_headers(engine, tenant_id)
    agent = await auth_headers(engine, tenant_id, "bia@loja.com.br", role="agent")

    shown = await engine.http.get("/api/v1/tenant", headers=agent)
    assert shown.json() == {
        "id": tenant_id,
        "name": "Loja",
        "timezone": "America/Sao_Paulo",
        "default_country": "BR",
        "ticket_inactivity_minutes": 1440,
        "retention_messages_days": None,
        "retention_closed_tickets_days": None,
        "retention_raw_requests_days": None,
    }
    assert (await engine.http.patch("/api/v1/tenant", json={}, headers=agent)).status_code == 403
    changed = await engine.http.patch(
        "/api/v1/tenant", json={"timezone": "America/Manaus", "ticket_inactivity_minutes": 0}, headers=admin
    )
    assert (changed.status_code, changed.json()["timezone"], changed.json()["name"]) == (
        200,
        "America/Manaus",
        "Loja",
    )
    assert changed.json()["ticket_inactivity_minutes"] == 0
    refusals = [
        ({"timezone": "America/Atlantida"}, "invalid_timezone"),
        ({"ticket_inactivity_minutes": -1}, "validation_error"),
        ({"ticket_inactivity_minutes": "soon"}, "validation_error"),
        ({"name": ""}, "validation_error"),
        ({"id": other_id}, "validation_error"),
    ]
    for body, code in refusals:
        refused = await engine.http.patch("/api/v1/tenant", json=body, headers=admin)
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, code), body
    async with engine.context.sessions() as session:
        other = await tenancy_service.get_tenant(session, other_id)
        assert (other.timezone, other.ticket_inactivity_minutes) == ("America/Sao_Paulo", 1440)


async def test_admins_set_how_long_the_tenants_data_is_kept(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id)
    supervisor = await auth_headers(engine, tenant_id, "bia@loja.com.br", role="supervisor")
    retention = {
        "retention_messages_days": 365,
        "retention_closed_tickets_days": 90,
        "retention_raw_requests_days": 7,
    }

    changed = await engine.http.patch("/api/v1/tenant", json=retention, headers=admin)

    assert changed.status_code == 200, changed.text
    shown = (await engine.http.get("/api/v1/tenant", headers=supervisor)).json()
    assert {key: shown[key] for key in retention} == retention
    assert shown["ticket_inactivity_minutes"] == 1440
    off = await engine.http.patch("/api/v1/tenant", json={"retention_messages_days": None}, headers=admin)
    assert {key: off.json()[key] for key in retention} == {**retention, "retention_messages_days": None}
    untouched = await engine.http.patch("/api/v1/tenant", json={"name": "Loja Centro"}, headers=admin)
    assert untouched.json()["retention_raw_requests_days"] == 7
    denied = await engine.http.patch(
        "/api/v1/tenant", json={"retention_raw_requests_days": 1}, headers=supervisor
    )
    assert denied.status_code == 403
    for value in (0, -1, 3651, "a month", 1.5, [30]):
        refused = await engine.http.patch(
            "/api/v1/tenant", json={"retention_closed_tickets_days": value}, headers=admin
        )
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, "validation_error"), value
        assert refused.json()["error"]["message"].startswith("retention_closed_tickets_days"), value
    [message] = {
        (
            await engine.http.patch("/api/v1/tenant", json={"retention_messages_days": days}, headers=admin)
        ).json()["error"]["message"]
        for days in (0, 3651)
    }
    assert message == "retention_messages_days: must be 1 to 3650 days, or null to keep forever"
    assert (await engine.http.get("/api/v1/tenant", headers=admin)).json()[
        "retention_closed_tickets_days"
    ] == 90
