"""Events in through the API on a running engine, both deployments: admins map event types to
templates, a supervisor's key with events:write publishes, an agent's cannot; an event posted twice
and written once on events:materials by a producer with Redis notifies once, through the provider;
bad input is a 422 naming the problem; a tenant never sees another's mappings or events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from messaging_whatsapp.config import Settings
from messaging_whatsapp.inbox.models import Message
from messaging_whatsapp.notifications.service import materials_entry
from tests.e2e.conftest import RunningEngine, auth_headers, serve
from tests.fakes.http import FakeHttpServer
from tests.fakes.meta import MetaGraphFake
from tests.helpers import META_PHONE_NUMBER_ID, approved_template, bind, create_tenant, wait_until

TOKEN = "EAAG-test"
CUSTOMER = "+5511988887777"


@pytest.fixture
def meta() -> MetaGraphFake:
    return MetaGraphFake(token=TOKEN, phone_number_id=META_PHONE_NUMBER_ID)


@pytest.fixture
def provider(meta: MetaGraphFake) -> Iterator[FakeHttpServer]:
    with FakeHttpServer(meta, hold_seconds=2) as server:
        yield server


def _duplicates() -> float:
    return REGISTRY.get_sample_value("whatsapp_events_in_total", {"outcome": "duplicate"}) or 0.0


async def _api_key(
    engine: RunningEngine, admin: dict[str, str], role: str, scopes: list[str] | None
) -> dict[str, str]:
    created = await engine.http.post(
        "/api/v1/api-keys", json={"name": f"{role} key", "role": role, "scopes": scopes}, headers=admin
    )
    assert created.status_code == 201, created.text
    return {"authorization": f"Bearer {created.json()['api_key']}"}


def _error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_events_in_through_the_api(
    deployment: Settings, provider: FakeHttpServer, meta: MetaGraphFake
) -> None:
    settings = deployment.model_copy(
        update={"meta_graph_url": f"{provider.base_url}/v23.0", "rate_limits_enabled": False}
    )
    async with serve(settings) as engine:
        tenant_id = await create_tenant(engine.context)
        other_id = await create_tenant(engine.context, "Outra")
        admin = await auth_headers(engine, tenant_id, "ana@loja.com.br")
        other_admin = await auth_headers(engine, other_id, "rui@outra.com.br")
        instance, _ = await bind(
            engine.context,
            tenant_id,
            provider="meta",
            display_number="+551140028922",
            phone_number_id=META_PHONE_NUMBER_ID,
            access_token=TOKEN,
            app_secret="x" * 32,
        )
        other_number, _ = await bind(
            engine.context,
            other_id,
            provider="simulator",
            display_number="+551140028923",
            instance_name="sim-o",
        )

        await approved_template(engine.context, tenant_id, instance, "quote_created_template", 1)
        # Mappings: the four event types only, a template, payload keys; the tenant's numbers only.
        mapping = {"template": "quote_created_template", "language": "pt_BR", "parameters": ["customer_name"]}
        saved = await engine.http.put("/api/v1/event-mappings/quote_created", json=mapping, headers=admin)
        assert saved.status_code == 200, saved.text
        assert (saved.json()["template"], saved.json()["parameters"]) == (
            "quote_created_template",
            ["customer_name"],
        )
        refusals = [
            ("/api/v1/event-mappings/invoice_paid", mapping),
            ("/api/v1/event-mappings/quote_created", {**mapping, "template": "  "}),
            ("/api/v1/event-mappings/quote_created", {**mapping, "parameters": ["customer name"]}),
            ("/api/v1/event-mappings/quote_created", {**mapping, "parameters": [3]}),
            ("/api/v1/event-mappings/quote_created", {"language": "pt_BR"}),
        ]
        for path, body in refusals:
            refused = await engine.http.put(path, json=body, headers=admin)
            assert _error(refused) == (422, "validation_error"), (path, body, refused.text)
        foreign = {**mapping, "instance_id": other_number.id}
        refused = await engine.http.put("/api/v1/event-mappings/quote_created", json=foreign, headers=admin)
        assert _error(refused) == (404, "not_found")
        for event_type in ("order_status_changed", "delivery_started"):
            put = await engine.http.put(f"/api/v1/event-mappings/{event_type}", json=mapping, headers=admin)
            assert put.status_code == 200
        assert (
            await engine.http.delete("/api/v1/event-mappings/delivery_started", headers=admin)
        ).status_code == 204
        gone = await engine.http.delete("/api/v1/event-mappings/delivery_started", headers=admin)
        assert _error(gone) == (404, "not_found")
        listed = (await engine.http.get("/api/v1/event-mappings", headers=admin)).json()["items"]
        assert [item["event_type"] for item in listed] == ["quote_created", "order_status_changed"]

        # Roles: an agent's key cannot publish; a supervisor's key with events:write can, and
        # reads nothing of the integrations.
        agent_key = await _api_key(engine, admin, "agent", None)
        publisher = await _api_key(engine, admin, "supervisor", ["events:write"])
        event = {
            "id": "quote-123",
            "event_type": "quote_created",
            "payload": {"quote_id": "Q-1", "customer_phone": CUSTOMER, "customer_name": "João Silva"},
        }
        assert _error(await engine.http.post("/api/v1/events", json=event, headers=agent_key)) == (
            403,
            "forbidden",
        )
        assert (await engine.http.get("/api/v1/events", headers=publisher)).status_code == 403
        for bad in (
            {"event_type": "quote_created", "payload": {}},
            {"id": "x", "payload": {}},
            {"id": "x", "event_type": "quote_created", "payload": ["not", "an", "object"]},
            {"id": "x", "event_type": "quote_created", "payload": "text"},
            {**event, "tenant_id": other_id},
        ):
            assert _error(await engine.http.post("/api/v1/events", json=bad, headers=publisher)) == (
                422,
                "validation_error",
            ), bad
        huge = {**event, "payload": {"customer_phone": CUSTOMER, "notes": "x" * 70_000}}
        assert _error(await engine.http.post("/api/v1/events", json=huge, headers=publisher)) == (
            413,
            "payload_too_large",
        )

        # The same event twice through the API and once on the stream: one notification.
        duplicates = _duplicates()
        for _ in range(2):
            accepted = await engine.http.post("/api/v1/events", json=event, headers=publisher)
            assert accepted.status_code == 202, accepted.text
            assert accepted.json() == {"id": "quote-123", "status": "accepted"}
        entry = materials_entry(tenant_id, "quote-123", "quote_created", event["payload"])
        await engine.context.streams.append(engine.context.names.materials, entry)

        async def notified() -> list[dict[str, Any]]:
            items = (await engine.http.get("/api/v1/events", headers=admin)).json()["items"]
            return [item for item in items if item["outcome"] == "notified"]

        [item] = await wait_until(notified, what="the event notified")
        assert (item["event_id"], item["event_type"], item["reason"]) == ("quote-123", "quote_created", None)
        await wait_until(lambda: _at_least(_duplicates(), duplicates + 2), what="both duplicates handled")
        await wait_until(lambda: _at_least(len(meta.sent), 1), what="the template sent")
        [(_, body)] = meta.sent
        assert body["template"]["name"] == "quote_created_template"
        assert [p["text"] for p in body["template"]["components"][0]["parameters"]] == ["João Silva"]
        async with engine.context.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(Message).where(Message.id == item["message_id"])
            )
            assert count == 1
            assert await session.scalar(select(func.count()).select_from(Message)) == 1

        # Another tenant sees none of it.
        assert (await engine.http.get("/api/v1/events", headers=other_admin)).json()["items"] == []
        assert (await engine.http.get("/api/v1/event-mappings", headers=other_admin)).json()["items"] == []
        other_gone = await engine.http.delete("/api/v1/event-mappings/quote_created", headers=other_admin)
        assert _error(other_gone) == (404, "not_found")
        assert instance.tenant_id == tenant_id


async def _at_least(value: float, wanted: float) -> bool:
    return value >= wanted
