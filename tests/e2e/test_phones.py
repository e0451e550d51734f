"""One reading of a typed phone over the API, on both deployments: a national `to` is a number of
the tenant's default country (Brazil unless set), the 202 shows the E.164 it goes to, and what
is not a valid number is refused with 422 invalid_phone naming it, before anything is queued."""

from __future__ import annotations

from sqlalchemy import func, select

from messaging_whatsapp.inbox.models import Message
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import bind, create_tenant


async def test_typed_phones_are_read_with_the_tenants_country(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    number, _ = await bind(
        engine.context, tenant_id, provider="simulator", instance_name="sim", display_number="(11) 4002-8922"
    )
    assert number.display_number == "+551140028922"
    headers = await auth_headers(engine, tenant_id)

    async def send(to: str) -> tuple[int, dict[str, str]]:
        body = {"to": to, "instance_id": number.id, "text": "Olá"}
        response = await engine.http.post("/api/v1/messages", json=body, headers=headers)
        return response.status_code, response.json()

    assert (await engine.http.get("/api/v1/tenant", headers=headers)).json()["default_country"] == "BR"
    for to, e164 in [
        ("(11) 98765-4321", "+5511987654321"),
        ("11987654321", "+5511987654321"),
        ("+1 415 555 2671", "+14155552671"),
    ]:
        status, item = await send(to)
        assert (status, item["to"]) == (202, e164), to
    async with engine.context.sessions() as session:
        sent = await session.scalar(select(func.count()).select_from(Message))
    status, refused = await send("(11) 9876-543")
    assert (status, refused["error"]["code"], refused["error"]["phone"]) == (
        422,
        "invalid_phone",
        "(11) 9876-543",
    )
    assert "'(11) 9876-543' is not a valid phone number of BR" in refused["error"]["message"]
    async with engine.context.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == sent

    for country in ("XX", "USA", "Brazil"):
        wrong = await engine.http.patch("/api/v1/tenant", json={"default_country": country}, headers=headers)
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "invalid_country"), country
    changed = await engine.http.patch("/api/v1/tenant", json={"default_country": "us"}, headers=headers)
    assert (changed.status_code, changed.json()["default_country"]) == (200, "US")

    status, item = await send("(415) 555-2671")
    assert (status, item["to"]) == (202, "+14155552671")
    status, item = await send("+55 11 98765-4321")
    assert (status, item["to"]) == (202, "+5511987654321")
    for to in ("(11) 98765-4321", "11987654321"):
        status, refused = await send(to)
        assert (status, refused["error"]["code"]) == (422, "invalid_phone"), to
        assert "of US" in refused["error"]["message"]

    # Finding a contact reads its phone the same way.
    found = await engine.http.get("/api/v1/contacts", params={"phone": "(415) 555-2671"}, headers=headers)
    assert [contact["phone"] for contact in found.json()["items"]] == ["+14155552671"]
    wrong = await engine.http.get("/api/v1/contacts", params={"phone": "(11) 98765-4321"}, headers=headers)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "invalid_phone")
