"""The browser's session over plain HTTP: the cookie works for pages and the API alike, a change
authenticated by the cookie needs the CSRF token, strangers get /login (pages) or 401 (the rest)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.tenancy.deps import CSRF_COOKIE, SESSION_COOKIE
from tests.helpers import ServerThread, create_tenant, create_user, free_port
from tests.web.conftest import PASSWORD, WebEngine, web_settings
from tests.web.test_inbox_browser import conversation_of

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _log_in(engine: WebEngine, email: str) -> httpx.AsyncClient:
    """A client that logged in through the form, as a browser does (cookies kept)."""
    client = httpx.AsyncClient(base_url=engine.base_url, timeout=10)
    form = await client.get("/login")
    assert form.status_code == 200
    token = client.cookies[CSRF_COOKIE]
    answer = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/inbox"
    assert SESSION_COOKIE in client.cookies
    return client


async def test_a_cookie_session_changes_nothing_without_the_csrf_token(web_engine: WebEngine) -> None:
    _tenant, instance = await web_engine.tenant("Loja CSRF", "ana@csrf.com.br")
    conversation_id = await conversation_of(
        web_engine, await web_engine.inbound(instance, "+5511987650020", "Oi", "Lia")
    )
    client = await _log_in(web_engine, "ana@csrf.com.br")
    try:
        read = f"/api/v1/conversations/{conversation_id}/read"
        refused = await client.post(read)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf"
        wrong = await client.post(read, headers={"X-CSRF-Token": "not-the-token"})
        assert wrong.status_code == 403
        accepted = await client.post(read, headers={"X-CSRF-Token": client.cookies[CSRF_COOKIE]})
        assert accepted.status_code == 200, accepted.text
        # Reading needs no token; the API's JSON answers the cookie as it answers a bearer token.
        listed = await client.get("/api/v1/conversations")
        assert listed.status_code == 200
        assert listed.json()["items"][0]["id"] == conversation_id
        # A bearer token (or API key) needs none: a foreign page cannot make a browser send one.
        login = await web_engine.http.post(
            "/api/v1/auth/login", json={"email": "ana@csrf.com.br", "password": PASSWORD}
        )
        bearer = {"authorization": f"Bearer {login.json()['access_token']}"}
        assert (await web_engine.http.post(read, headers=bearer)).status_code == 200
        # Logging out is a change too.
        assert (await client.post("/logout")).status_code == 403
        out = await client.post("/logout", data={"csrf_token": client.cookies[CSRF_COOKIE]})
        assert out.status_code == 303
        assert out.headers["location"] == "/login"
        assert SESSION_COOKIE not in client.cookies
    finally:
        await client.aclose()


async def test_the_login_form_needs_its_csrf_token_and_counts_failures(web_engine: WebEngine) -> None:
    await web_engine.tenant("Loja Form", "ana@form.com.br")
    async with httpx.AsyncClient(base_url=web_engine.base_url, timeout=10) as client:
        await client.get("/login")
        forged = await client.post("/login", data={"email": "ana@form.com.br", "password": PASSWORD})
        assert forged.status_code == 403
        assert SESSION_COOKIE not in client.cookies
        token = client.cookies[CSRF_COOKIE]
        statuses = []
        for _ in range(12):
            answer = await client.post(
                "/login", data={"email": "ana@form.com.br", "password": "wrong", "csrf_token": token}
            )
            statuses.append(answer.status_code)
        assert statuses[0] == 401
        assert statuses[-1] == 429, statuses
        assert "Muitas tentativas" in answer.text


async def test_strangers_go_to_login_from_pages_and_get_401_elsewhere(web_engine: WebEngine) -> None:
    async with httpx.AsyncClient(base_url=web_engine.base_url, timeout=10) as stranger:
        for page in ("/", "/inbox", "/inbox/0190a0f0-0000-7000-8000-000000000000"):
            answer = await stranger.get(page)
            assert answer.status_code == 303, page
            assert answer.headers["location"] == "/login"
        for path in (
            "/inbox/fragments/conversations",
            "/inbox/fragments/conversation/x",
            "/inbox/fragments/chat/x",
            "/inbox/fragments/message/x",
            "/inbox/fragments/lead/x",
            "/api/v1/events/stream",
            "/api/v1/conversations",
        ):
            answer = await stranger.get(path)
            assert answer.status_code == 401, path
            assert answer.json()["error"]["code"] == "unauthorized"
    async with httpx.AsyncClient(
        base_url=web_engine.base_url, timeout=10, cookies={SESSION_COOKIE: "not-a-token"}
    ) as forger:
        assert (await forger.get("/api/v1/conversations")).status_code == 401
        assert (await forger.get("/inbox")).headers["location"] == "/login"


async def test_behind_https_the_session_cookie_is_secure(sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "engine.db"
    shutil.copyfile(Path(make_url(sqlite_url).database or ""), database)
    settings = web_settings(f"sqlite:///{database}", None, "https:", tmp_path, port).model_copy(
        update={"public_url": "https://inbox.loja.com.br"}
    )
    context = await EngineContext.open(settings)
    try:
        tenant_id = await create_tenant(context, "Loja HTTPS")
        await create_user(context, tenant_id, "ana@https.com.br", PASSWORD)
        with ServerThread(create_app(settings, Role.API), port, settings):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                form = await client.get("/login")
                assert "Secure" in form.headers["set-cookie"]
                token = form.cookies[CSRF_COOKIE]
                body = {"email": "ana@https.com.br", "password": PASSWORD, "csrf_token": token}
                # A browser would send the Secure cookie back over https only; this client is told to.
                client.cookies.set(CSRF_COOKIE, token)
                answer = await client.post("/login", data=body)
                assert answer.status_code == 303
                cookies = answer.headers.get_list("set-cookie")
                session = next(cookie for cookie in cookies if cookie.startswith(f"{SESSION_COOKIE}="))
                assert all(part in session for part in ("HttpOnly", "Secure", "SameSite=lax"))
    finally:
        await context.close()
