"""A number's credentials changed and the number unbound through the API, on a running engine: only
admins may, secrets are never echoed, and a webhook URL given out before the unbind is refused."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from messaging_whatsapp.providers.simulator import build_inbound_message_body
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import bind, create_tenant, wait_until


async def _post(engine: RunningEngine, url: str, message_id: str) -> httpx.Response:
    body = build_inbound_message_body("sim-loja", message_id, "5511987654321", "Oi", "Maria", 1763035300)
    return await engine.http.post(
        urlsplit(url).path, content=body, headers={"content-type": "application/json"}
    )


async def test_admins_change_and_unbind_a_number_and_its_old_webhook_url_stops_working(
    engine: RunningEngine,
) -> None:
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id, "ana@loja.com.br", "admin")
    supervisor = await auth_headers(engine, tenant_id, "lia@loja.com.br", "supervisor")
    agent = await auth_headers(engine, tenant_id, "bia@loja.com.br", "agent")
    options = {"provider": "simulator", "display_number": "+551140028922", "instance_name": "sim-loja"}
    instance, old_url = await bind(engine.context, tenant_id, **options)
    path = f"/api/v1/instances/{instance.id}"

    for headers in (supervisor, agent):
        refused = await engine.http.patch(path, json={"daily_limit": 5}, headers=headers)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
        refused = await engine.http.post(f"{path}/unbind", headers=headers)
        assert refused.status_code == 403
    wrong = await engine.http.patch(path, json={"api_key": "k"}, headers=admin)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "invalid_input")
    assert "api_key" in wrong.json()["error"]["message"]
    changed = await engine.http.patch(path, json={"daily_limit": 5, "name": "Loja SP"}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["daily_limit"], changed.json()["name"]) == (5, "Loja SP")
    assert not {"webhook_secret", "api_key", "credentials_encrypted", "webhook_url"} & set(changed.json())
    assert (await _post(engine, old_url, "SIM-1")).status_code == 200

    unbound = await engine.http.post(f"{path}/unbind", headers=admin)
    assert (unbound.status_code, unbound.json()["status"]) == (200, "unbound")

    async def refused_old_url() -> bool:
        return (await _post(engine, old_url, "SIM-2")).status_code == 401

    # Every process's cache sees the unbind within about two seconds.
    await wait_until(refused_old_url, timeout=10, what="the old webhook URL refused")
    again = await engine.http.post(f"{path}/unbind", headers=admin)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "instance_unbound")
    listed = (await engine.http.get("/api/v1/instances", headers=admin)).json()["items"]
    assert [(item["id"], item["status"]) for item in listed] == [(instance.id, "unbound")]

    rebound, new_url = await bind(engine.context, tenant_id, **options)
    assert rebound.id == instance.id

    async def accepted_new_url() -> bool:
        return (await _post(engine, new_url, "SIM-3")).status_code == 200

    await wait_until(accepted_new_url, timeout=10, what="the new webhook URL accepted")
    assert (await _post(engine, old_url, "SIM-4")).status_code == 401
