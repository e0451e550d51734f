"""What the admin page relies on, on both deployments: a tenant always keeps an active admin, an
open event stream ends once its user is deactivated or its key revoked, and /admin with its
fragments is for admins only (the 403 page, and 403 JSON, for everyone else)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.tenancy.access import SCOPES
from messaging_whatsapp.web.admin_pages import SCOPE_LABELS
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import ServerThread, create_tenant

STREAM = "/api/v1/events/stream"
# No stream read waits longer: a stream that stays open fails the test, never hangs it.
READ_TIMEOUT = 10.0


@pytest.fixture
async def engine(deployment: Settings) -> AsyncIterator[RunningEngine]:
    """The all-in-one engine with a short keep-alive, so an open stream checks its caller often."""
    settings = deployment.model_copy(update={"realtime_keepalive_seconds": 0.3})
    port = int(settings.public_url.rsplit(":", 1)[1])
    context = await EngineContext.open(settings)
    with ServerThread(create_app(settings, Role.ALL), port, settings) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            yield RunningEngine(settings, server.base_url, context, http)
    await context.close()


async def _me(engine: RunningEngine, headers: dict[str, str]) -> str:
    users = (await engine.http.get("/api/v1/users", headers=headers)).json()["items"]
    return next(user["id"] for user in users if user["role"] == "admin")


async def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated_nor_deleted(
    engine: RunningEngine,
) -> None:
    tenant_id = await create_tenant(engine.context)
    ana = await auth_headers(engine, tenant_id, "ana@loja.com.br")
    ana_id = await _me(engine, ana)

    for change in (
        engine.http.patch(f"/api/v1/users/{ana_id}", json={"role": "supervisor"}, headers=ana),
        engine.http.patch(f"/api/v1/users/{ana_id}", json={"is_active": False}, headers=ana),
        engine.http.post(f"/api/v1/users/{ana_id}/deactivate", headers=ana),
        engine.http.delete(f"/api/v1/users/{ana_id}", headers=ana),
    ):
        refused = await change
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "last_admin"
        assert "last active admin" in refused.json()["error"]["message"]
    # Refused, nothing changed: her session still works.
    assert (await engine.http.get("/api/v1/users", headers=ana)).status_code == 200

    body = {"email": "rui@loja.com.br", "password": "lanche de quinta no parque", "role": "agent"}
    rui = (await engine.http.post("/api/v1/users", json=body, headers=ana)).json()
    # An agent or an inactive admin does not count as the admin the tenant keeps.
    changed = await engine.http.patch(f"/api/v1/users/{rui['id']}", json={"role": "admin"}, headers=ana)
    assert changed.status_code == 200
    assert (await engine.http.post(f"/api/v1/users/{rui['id']}/deactivate", headers=ana)).status_code == 200
    refused = await engine.http.patch(f"/api/v1/users/{ana_id}", json={"role": "agent"}, headers=ana)
    assert refused.json()["error"]["code"] == "last_admin"

    reactivated = await engine.http.patch(f"/api/v1/users/{rui['id']}", json={"is_active": True}, headers=ana)
    assert reactivated.status_code == 200
    demoted = await engine.http.patch(f"/api/v1/users/{ana_id}", json={"role": "agent"}, headers=ana)
    assert demoted.status_code == 200, demoted.text
    # Her token carried the admin role: it ended with the change.
    assert (await engine.http.get("/api/v1/tenant", headers=ana)).status_code == 401


async def test_an_admin_may_still_change_other_admins_while_one_stays(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    ana = await auth_headers(engine, tenant_id, "ana@loja.com.br")
    await auth_headers(engine, tenant_id, "rui@loja.com.br")
    listed = (await engine.http.get("/api/v1/users", headers=ana)).json()["items"]
    rui_id = next(user["id"] for user in listed if user["email"] == "rui@loja.com.br")

    assert (await engine.http.post(f"/api/v1/users/{rui_id}/deactivate", headers=ana)).status_code == 200
    assert (await engine.http.delete(f"/api/v1/users/{rui_id}", headers=ana)).status_code == 204


async def _ended(response: httpx.Response) -> bool:
    """Read the stream until the server ends it (True), or READ_TIMEOUT passes (False)."""
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            async for _chunk in response.aiter_bytes():
                pass
    except TimeoutError:
        return False
    return True


async def test_an_open_stream_ends_when_its_user_is_deactivated_and_cannot_reopen(
    engine: RunningEngine,
) -> None:
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id, "chefe@loja.com.br")
    bia = await auth_headers(engine, tenant_id, "bia@loja.com.br", role="agent")
    listed = (await engine.http.get("/api/v1/users", headers=admin)).json()["items"]
    bia_id = next(user["id"] for user in listed if user["email"] == "bia@loja.com.br")

    async with engine.http.stream("GET", STREAM, headers=bia, timeout=READ_TIMEOUT) as response:
        assert response.status_code == 200
        async with engine.http.stream("GET", STREAM, headers=admin, timeout=READ_TIMEOUT) as kept:
            assert (
                await engine.http.post(f"/api/v1/users/{bia_id}/deactivate", headers=admin)
            ).status_code == 200
            assert await _ended(response)
            # The admin's stream goes on: keep-alives still come.
            async with asyncio.timeout(READ_TIMEOUT):
                async for chunk in kept.aiter_bytes():
                    if b"keep-alive" in chunk:
                        break
    assert (await engine.http.get(STREAM, headers=bia)).status_code == 401


async def test_an_open_stream_ends_when_its_api_key_is_revoked(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id, "chefe@loja.com.br")
    created = (await engine.http.post("/api/v1/api-keys", json={"name": "painel"}, headers=admin)).json()
    key = {"authorization": f"Bearer {created['api_key']}"}

    async with engine.http.stream("GET", STREAM, headers=key, timeout=READ_TIMEOUT) as response:
        assert response.status_code == 200
        revoked = await engine.http.post(f"/api/v1/api-keys/{created['id']}/revoke", headers=admin)
        assert revoked.status_code == 200
        assert await _ended(response)
    assert (await engine.http.get(STREAM, headers=key)).status_code == 401


async def test_admin_pages_are_for_admins_only(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context, name="Loja da Ana")
    admin = await auth_headers(engine, tenant_id, "chefe@loja.com.br")
    for role in ("supervisor", "agent"):
        headers = await auth_headers(engine, tenant_id, f"{role}@loja.com.br", role=role)
        page = await engine.http.get("/admin", headers=headers)
        assert page.status_code == 403
        assert 'data-testid="forbidden"' in page.text
        assert "admin-page" not in page.text
        for path in (
            "/admin/fragments/users",
            "/admin/fragments/api-keys",
            "/api/v1/users",
            "/api/v1/api-keys",
        ):
            refused = await engine.http.get(path, headers=headers)
            assert refused.status_code == 403, path
            assert refused.json()["error"]["code"] == "forbidden"

    page = await engine.http.get("/admin", headers=admin)
    assert page.status_code == 200
    assert 'data-testid="admin-page"' in page.text
    assert "Loja da Ana" in page.text
    assert page.text.count('data-testid="user-row"') == 3
    rows = await engine.http.get("/admin/fragments/users", headers=admin)
    assert rows.text.count('data-testid="user-row"') == 3
    assert "<html" not in rows.text
    assert (await engine.http.get("/admin")).status_code in (303, 307)


def test_the_page_describes_every_scope_an_api_key_can_have() -> None:
    assert SCOPE_LABELS.keys() == SCOPES.keys()
