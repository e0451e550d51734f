"""Numbers through the API and the numbers page's fragments, on both deployments: binding per
provider (admins; secrets never come back), linking a gateway's phone by QR code against the fake
Evolution API and WuzAPI (the state the gateway answers is stored and announced, the webhook then
says connected), and the fragments the page fetches, each the caller's own."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import segno

from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.base import ConnectChallenge
from messaging_whatsapp.providers.events import ConnectionState
from messaging_whatsapp.tenancy.deps import CSRF_COOKIE, SESSION_COOKIE
from messaging_whatsapp.web.numbers_pages import qr_markup
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.fakes.evolution import GLOBAL_KEY, FakeEvolution
from tests.fakes.http import FakeHttpServer
from tests.fakes.wuzapi import ADMIN_TOKEN, FakeWuzapi
from tests.helpers import bind, create_tenant, published_events, wait_until

SECRETS = ("EAAG-secret-token", "app-secret-123", "verify-tok-123", "twilio-auth-456", "evo-key-789")


@pytest.fixture
def evolution() -> Iterator[tuple[FakeEvolution, FakeHttpServer]]:
    fake = FakeEvolution()
    with FakeHttpServer(fake, hold_seconds=2) as server:
        yield fake, server


@pytest.fixture
def wuzapi() -> Iterator[tuple[FakeWuzapi, FakeHttpServer]]:
    fake = FakeWuzapi()
    with FakeHttpServer(fake, hold_seconds=2) as server:
        yield fake, server


async def _browser(engine: RunningEngine, email: str) -> httpx.AsyncClient:
    """A client logged in through the login form, as a browser is (session and CSRF cookies)."""
    client = httpx.AsyncClient(base_url=engine.base_url, timeout=10)
    await client.get("/login")
    form = {"email": email, "password": "s3cret-pass", "csrf_token": client.cookies[CSRF_COOKIE]}
    answer = await client.post("/login", data=form)
    assert answer.status_code == 303, answer.text
    assert SESSION_COOKIE in client.cookies
    return client


@pytest.fixture
async def tenant(engine: RunningEngine) -> tuple[str, dict[str, str], dict[str, str]]:
    """A tenant with an admin and a supervisor: (tenant id, admin's header, supervisor's header)."""
    tenant_id = await create_tenant(engine.context, "Loja Números")
    admin = await auth_headers(engine, tenant_id, "ana@numeros.com.br", "admin")
    supervisor = await auth_headers(engine, tenant_id, "lia@numeros.com.br", "supervisor")
    return tenant_id, admin, supervisor


async def test_admins_bind_a_number_per_provider_and_its_secrets_never_come_back(
    engine: RunningEngine, tenant: tuple[str, dict[str, str], dict[str, str]]
) -> None:
    _tenant_id, admin, supervisor = tenant
    simulator = {"provider": "simulator", "instance_name": "sim-num", "display_number": "+5511940028922"}
    refused = await engine.http.post("/api/v1/instances", json=simulator, headers=supervisor)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")

    bound = await engine.http.post("/api/v1/instances", json=simulator, headers=admin)
    assert bound.status_code == 201, bound.text
    assert bound.json()["provider"] == "simulator"
    assert bound.json()["webhook_url"].startswith(f"{engine.settings.public_url}/webhooks/simulator/")
    again = await engine.http.post("/api/v1/instances", json=simulator, headers=admin)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "conflict")

    meta = {
        "provider": "meta",
        "display_number": "+551140028922",
        "phone_number_id": "109876543210",
        "access_token": SECRETS[0],
        "app_secret": SECRETS[1],
        "verify_token": SECRETS[2],
    }
    answer = await engine.http.post("/api/v1/instances", json=meta, headers=admin)
    assert answer.status_code == 201, answer.text
    twilio = {
        "provider": "twilio",
        "display_number": "+551140028933",
        "account_sid": "AC0123",
        "auth_token": SECRETS[3],
    }
    assert (await engine.http.post("/api/v1/instances", json=twilio, headers=admin)).status_code == 201
    listed = await engine.http.get("/api/v1/instances", headers=supervisor)
    assert {item["provider"] for item in listed.json()["items"]} == {"simulator", "meta", "twilio"}
    assert not any(secret in answer.text + listed.text for secret in SECRETS)

    # What is missing or wrong is named, as a 422.
    missing = await engine.http.post(
        "/api/v1/instances",
        json={"provider": "evolution", "api_url": "https://evo.example.com"},
        headers=admin,
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "invalid_input")
    assert "--instance-name" in missing.json()["error"]["message"]
    assert "--api-key" in missing.json()["error"]["message"]
    wrong = await engine.http.post(
        "/api/v1/instances",
        json={"provider": "evolution", "instance_name": "x", "api_url": "gopher://x", "api_key": SECRETS[4]},
        headers=admin,
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "validation_error")
    assert "api_url" in wrong.json()["error"]["message"]
    unknown = await engine.http.post("/api/v1/instances", json={"provider": "carrier-pigeon"}, headers=admin)
    assert unknown.status_code == 422


async def test_a_gateway_number_shows_its_qr_code_until_the_phone_is_linked(
    engine: RunningEngine,
    tenant: tuple[str, dict[str, str], dict[str, str]],
    evolution: tuple[FakeEvolution, FakeHttpServer],
) -> None:
    _tenant_id, admin, supervisor = tenant
    fake, server = evolution
    gateway = fake.add_instance("loja-qr", state="close")
    body = {
        "provider": "evolution",
        "instance_name": "loja-qr",
        "api_url": server.base_url,
        "api_key": gateway.token,
        "name": "Loja QR",
    }
    bound = await engine.http.post("/api/v1/instances", json=body, headers=admin)
    assert bound.status_code == 201, bound.text
    instance_id = bound.json()["id"]
    connect = f"/api/v1/instances/{instance_id}/connect"
    assert (await engine.http.post(connect, headers=supervisor)).status_code == 403

    answer = await engine.http.post(connect, headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "connecting"
    assert answer.json()["qr_code"] == gateway.qrcode["code"]
    # The webhook was pointed at us before asking, and the state the gateway answered is stored
    # and announced (the page's row shows "connecting" at once).
    assert gateway.webhook is not None
    assert urlsplit(gateway.webhook["url"]).path == urlsplit(bound.json()["webhook_url"]).path
    assert await _state(engine, instance_id) == "connecting"
    heard = await published_events(engine.context, "whatsapp_instance_connection_changed")
    assert [json.loads(event["payload"])["connection_state"] for event in heard] == ["connecting"]

    # The page's fragment draws the same code as SVG; asked again while connecting, the same code.
    client = await _browser(engine, "ana@numeros.com.br")
    try:
        qr_path = f"/numbers/fragments/qr/{instance_id}"
        assert (await client.post(qr_path)).status_code == 403  # no CSRF token
        csrf = {"X-CSRF-Token": client.cookies[CSRF_COOKIE]}
        drawn = await client.post(qr_path, headers=csrf)
        assert drawn.status_code == 200, drawn.text
        assert 'data-state="connecting"' in drawn.text
        assert "<svg" in drawn.text
        assert str(qr_markup(_challenge(gateway.qrcode["code"]))) in drawn.text
        # Asked again while still connecting: nothing new to announce.
        assert await published_events(engine.context, "whatsapp_instance_connection_changed") == []

        # The phone scans: Evolution posts connection.update; the number is connected.
        url, headers, update = fake.link_phone("loja-qr", "5511940028977")
        posted = await engine.http.post(urlsplit(url).path, json=update, headers=headers)
        assert posted.status_code == 200, posted.text

        async def connected() -> bool:
            return await _state(engine, instance_id) == "open"

        await wait_until(connected, what="the connection stored")
        linked = await client.post(qr_path, headers=csrf)
        assert 'data-state="open"' in linked.text
        assert 'data-testid="qr-code"' not in linked.text
        # Bound without its phone number: learnt from the gateway once linked.
        card = await client.get(f"/numbers/fragments/number/{instance_id}")
        assert 'data-connection="open"' in card.text
        assert "+55 11 94002-8977" in card.text
    finally:
        await client.aclose()
    assert (await engine.http.post(connect, headers=admin)).json()["state"] == "open"


async def test_admins_create_a_number_on_its_gateway_and_the_keys_are_not_kept(
    engine: RunningEngine,
    tenant: tuple[str, dict[str, str], dict[str, str]],
    evolution: tuple[FakeEvolution, FakeHttpServer],
    wuzapi: tuple[FakeWuzapi, FakeHttpServer],
) -> None:
    _tenant_id, admin, supervisor = tenant
    fake_evolution, evolution_server = evolution
    body = {"provider": "evolution", "instance_name": "loja-nova", "api_url": evolution_server.base_url}
    refused = await engine.http.post("/api/v1/instances/gateway", json=body, headers=supervisor)
    assert refused.status_code == 403
    missing = await engine.http.post("/api/v1/instances/gateway", json=body, headers=admin)
    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "invalid_input")
    assert "--api-key" in missing.json()["error"]["message"]
    wrong_key = await engine.http.post(
        "/api/v1/instances/gateway", json={**body, "api_key": "not-the-key"}, headers=admin
    )
    assert (wrong_key.status_code, wrong_key.json()["error"]["code"]) == (422, "gateway_error")
    assert "loja-nova" not in fake_evolution.instances

    created = await engine.http.post(
        "/api/v1/instances/gateway", json={**body, "api_key": GLOBAL_KEY}, headers=admin
    )
    assert created.status_code == 201, created.text
    made = fake_evolution.instances["loja-nova"]
    assert made.webhook is not None
    assert urlsplit(made.webhook["url"]).path == urlsplit(created.json()["webhook_url"]).path
    answer = await engine.http.post(f"/api/v1/instances/{created.json()['id']}/connect", headers=admin)
    assert answer.json()["qr_code"] == made.qrcode["code"]

    fake_wuzapi, wuzapi_server = wuzapi
    wuz = {
        "provider": "wuzapi",
        "instance_name": "loja-wuz-nova",
        "api_url": wuzapi_server.base_url,
        "admin_token": ADMIN_TOKEN,
    }
    created = await engine.http.post("/api/v1/instances/gateway", json=wuz, headers=admin)
    assert created.status_code == 201, created.text
    assert [user.name for user in fake_wuzapi.users.values()] == ["loja-wuz-nova"]
    simulator = {"provider": "simulator", "instance_name": "x", "api_url": "https://x.example.com"}
    not_gateway = await engine.http.post("/api/v1/instances/gateway", json=simulator, headers=admin)
    assert not_gateway.status_code == 422
    listed = await engine.http.get("/api/v1/instances", headers=admin)
    assert GLOBAL_KEY not in listed.text
    assert ADMIN_TOKEN not in listed.text


async def test_connect_refusals_say_why(
    engine: RunningEngine,
    tenant: tuple[str, dict[str, str], dict[str, str]],
    evolution: tuple[FakeEvolution, FakeHttpServer],
) -> None:
    tenant_id, admin, _supervisor = tenant
    _fake, server = evolution
    simulator, _url = await bind(
        engine.context,
        tenant_id,
        provider="simulator",
        instance_name="sim-r",
        display_number="+5511940028922",
    )
    not_gateway = await engine.http.post(f"/api/v1/instances/{simulator.id}/connect", headers=admin)
    assert (not_gateway.status_code, not_gateway.json()["error"]["code"]) == (422, "invalid_input")
    assert "QR-code gateway" in not_gateway.json()["error"]["message"]

    # The gateway does not know the instance (or the key): its refusal is the message, as a 422.
    unknown, _url = await bind(
        engine.context, tenant_id, provider="evolution", instance_name="nowhere",
        api_url=server.base_url, api_key=GLOBAL_KEY,
    )  # fmt: skip
    refused = await engine.http.post(f"/api/v1/instances/{unknown.id}/connect", headers=admin)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "gateway_error")
    assert "evolution refused" in refused.json()["error"]["message"]

    # Another tenant's number is not there.
    other_tenant = await create_tenant(engine.context, "Outra Loja")
    other = await auth_headers(engine, other_tenant, "bia@outra.com.br", "admin")
    hidden = await engine.http.post(f"/api/v1/instances/{unknown.id}/connect", headers=other)
    assert hidden.status_code == 404


async def test_a_wuzapi_number_shows_the_gateways_png(
    engine: RunningEngine,
    tenant: tuple[str, dict[str, str], dict[str, str]],
    wuzapi: tuple[FakeWuzapi, FakeHttpServer],
) -> None:
    _tenant_id, admin, _supervisor = tenant
    fake, server = wuzapi
    png = io.BytesIO()
    segno.make_qr("2@wuzapi-qr-code,noise,identity").save(png, kind="png", scale=4)
    image = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    fake.add_user("loja-wuz", "wuz-user-token", qr=image)
    body = {
        "provider": "wuzapi",
        "instance_name": "loja-wuz",
        "api_url": server.base_url,
        "api_key": "wuz-user-token",
    }
    bound = await engine.http.post("/api/v1/instances", json=body, headers=admin)
    assert bound.status_code == 201, bound.text
    answer = await engine.http.post(f"/api/v1/instances/{bound.json()['id']}/connect", headers=admin)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["state"], answer.json()["qr_code"]) == ("connecting", None)
    assert answer.json()["qr_image_base64"]
    drawn = qr_markup(
        ConnectChallenge(ConnectionState.CONNECTING, qr_image_base64=answer.json()["qr_image_base64"])
    )
    assert drawn is not None
    assert 'src="data:image/png;base64,' + base64.b64encode(png.getvalue()).decode() + '"' in str(drawn)
    # Anything that is not a PNG is not put in the page.
    for junk in ("not base64 at all!", base64.b64encode(b"<svg onload=alert(1)>").decode()):
        assert qr_markup(ConnectChallenge(ConnectionState.CONNECTING, qr_image_base64=junk)) is None


async def test_the_numbers_page_and_its_fragments_are_the_callers_own(
    engine: RunningEngine, tenant: tuple[str, dict[str, str], dict[str, str]]
) -> None:
    tenant_id, _admin, _supervisor = tenant
    mine, _url = await bind(
        engine.context, tenant_id, provider="simulator", instance_name="sim-own",
        display_number="+5511940028922", name="Loja <b>Centro</b>",
    )  # fmt: skip
    other_tenant = await create_tenant(engine.context, "Outra")
    theirs, _url = await bind(
        engine.context, other_tenant, provider="simulator", instance_name="sim-other",
        display_number="+5511940028933",
    )  # fmt: skip
    await auth_headers(engine, tenant_id, "bia@numeros.com.br", "agent")

    anonymous = await engine.http.get("/numbers", follow_redirects=False)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/login")
    assert (await engine.http.get(f"/numbers/fragments/number/{mine.id}")).status_code == 401

    supervisor = await _browser(engine, "lia@numeros.com.br")
    agent = await _browser(engine, "bia@numeros.com.br")
    admin = await _browser(engine, "ana@numeros.com.br")
    try:
        seen = await supervisor.get("/numbers")
        assert seen.status_code == 200
        assert re.findall(r'data-testid="instance-row" data-instance-id="([^"]+)"', seen.text) == [mine.id]
        assert 'data-health="excellent"' in seen.text
        # A name is text, never markup; supervisors get no actions and no bind form.
        assert "Loja &lt;b&gt;Centro&lt;/b&gt;" in seen.text
        assert 'data-action="pause"' not in seen.text
        assert "bind-dialog" not in seen.text
        shown = await admin.get("/numbers")
        assert 'data-action="pause"' in shown.text
        assert 'data-testid="bind-dialog"' in shown.text
        assert (await agent.get("/numbers")).status_code == 403

        card = await supervisor.get(f"/numbers/fragments/number/{mine.id}")
        assert card.status_code == 200
        assert f'data-instance-id="{mine.id}"' in card.text
        assert 'data-testid="instance-warmup" data-day="1"' in card.text
        assert (await supervisor.get(f"/numbers/fragments/number/{theirs.id}")).status_code == 404
        assert (await agent.get(f"/numbers/fragments/number/{mine.id}")).status_code == 403
        csrf = {"X-CSRF-Token": supervisor.cookies[CSRF_COOKIE]}
        assert (await supervisor.post(f"/numbers/fragments/qr/{mine.id}", headers=csrf)).status_code == 403
        admin_csrf = {"X-CSRF-Token": admin.cookies[CSRF_COOKIE]}
        other_qr = await admin.post(f"/numbers/fragments/qr/{theirs.id}", headers=admin_csrf)
        assert other_qr.status_code == 404
    finally:
        for client in (supervisor, agent, admin):
            await client.aclose()


def _challenge(code: str) -> ConnectChallenge:
    return ConnectChallenge(ConnectionState.CONNECTING, qr_code=code)


async def _state(engine: RunningEngine, instance_id: str) -> str:
    async with engine.context.sessions() as session:
        instance = await session.get(WhatsAppInstance, instance_id)
        assert instance is not None
        return instance.connection_state
