"""Events out over HTTP on a running engine, both deployments (SQLite + table stream, PostgreSQL +
Redis Streams): a subscribed URL gets its events signed by the Standard Webhooks convention (the
`standardwebhooks` package verifies them), retried after the receiver failed twice, each attempt
visible through the API; other event types are not sent; the secret is shown once, never listed
and never stored in clear; roles and tenants are kept apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy import select, text
from standardwebhooks import Webhook

from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.integrations.models import WebhookSubscription
from messaging_whatsapp.outbox.service import PublishedEvent, relay_outbox, write_outbox
from tests.e2e.conftest import RunningEngine, auth_headers, serve
from tests.fakes.http import FakeHttpServer, Fault, RecordedRequest, Reply
from tests.helpers import SECRETS_USED, create_tenant, wait_until

SUBSCRIPTIONS = "/api/v1/webhook-subscriptions"


@pytest.fixture
async def fast_engine(deployment: Settings) -> AsyncIterator[RunningEngine]:
    """The engine with retries a fraction of a second apart and a short POST timeout."""
    settings = deployment.model_copy(
        update={
            "webhook_delivery_retry_seconds": "0.2",
            "webhook_delivery_timeout_seconds": 0.5,
            "webhook_delivery_pass_seconds": 0.1,
        }
    )
    async with serve(settings) as running:
        yield running


async def publish(context: EngineContext, tenant_id: str, event_type: str, payload: dict[str, Any]) -> str:
    """Publish an event as every producer does (outbox in its transaction, relayed after commit)."""
    async with context.sessions() as session, session.begin():
        records = await write_outbox(
            session, [PublishedEvent(event_type, tenant_id, payload)], context.names.events
        )
    await relay_outbox(context, records)
    return records[0].entries[0]["event_id"]


def _ok(_request: RecordedRequest) -> Reply:
    return Reply(200, {"received": True})


async def test_a_subscribed_event_is_signed_retried_after_two_failures_and_logged(
    fast_engine: RunningEngine,
) -> None:
    engine = fast_engine
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id)
    with FakeHttpServer(_ok, hold_seconds=3) as receiver:
        url = f"{receiver.base_url}/hooks/mw?source=engine"
        created = await engine.http.post(
            SUBSCRIPTIONS,
            json={"url": url, "events": ["whatsapp_customer_opted_out"], "description": "CRM"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        subscription = created.json()
        secret = subscription["secret"]
        SECRETS_USED.add(secret)
        assert secret.startswith("whsec_")
        assert subscription["events"] == ["whatsapp_customer_opted_out"]
        # 500, then no answer within the timeout, then the receiver's own 200.
        receiver.script(Reply(500, {"error": "database down"}), Fault.TIMEOUT)

        skipped = await publish(engine.context, tenant_id, "whatsapp_message_sent", {"message_id": "m-1"})
        event_id = await publish(
            engine.context, tenant_id, "whatsapp_customer_opted_out", {"phone": "+5511987654321"}
        )

        async def delivered() -> list[RecordedRequest]:
            return list(receiver.accepted)

        accepted = (await wait_until(delivered, timeout=30, what="the third attempt accepted"))[0]
        requests = list(receiver.requests)

    assert len(requests) == 3
    assert {request.headers["webhook-id"] for request in requests} == {event_id}
    assert all(request.path == "/hooks/mw" and request.query == {"source": "engine"} for request in requests)
    assert accepted.headers["content-type"] == "application/json"
    body = Webhook(secret).verify(accepted.body, accepted.headers)
    assert body["type"] == "whatsapp_customer_opted_out"
    assert body["timestamp"].endswith("Z")
    assert body["data"] == {"phone": "+5511987654321", "event_id": event_id, "tenant_id": tenant_id}
    # Each attempt was signed for its own moment, and only with the subscription's secret.
    for request in requests:
        assert Webhook(secret).verify(request.body, request.headers) == body
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 44).verify(accepted.body, accepted.headers)

    async def settled() -> dict[str, Any] | None:
        page = await engine.http.get(f"{SUBSCRIPTIONS}/{subscription['id']}/deliveries", headers=admin)
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        return page.json() if items and items[0]["status"] == "delivered" else None

    page = await wait_until(settled, what="the delivery recorded as delivered")
    [delivery] = page["items"]  # the unsubscribed event made none
    assert skipped not in accepted.body.decode()
    assert (delivery["event_id"], delivery["event_type"], delivery["attempts_count"]) == (
        event_id,
        "whatsapp_customer_opted_out",
        3,
    )
    attempts = delivery["attempts"]
    assert [a["number"] for a in attempts] == [1, 2, 3]
    assert [a["status_code"] for a in attempts] == [500, None, 200]
    assert attempts[0]["error"] == "HTTP 500"
    assert "database down" in attempts[0]["response_body"]
    assert attempts[1]["error"].startswith("timeout")
    assert attempts[2]["error"] is None
    assert delivery["last_status_code"] == 200
    assert all(a["duration_ms"] >= 0 for a in attempts)

    # The secret: in the creation's answer only, and encrypted at rest.
    listed = await engine.http.get(SUBSCRIPTIONS, headers=admin)
    one = await engine.http.get(f"{SUBSCRIPTIONS}/{subscription['id']}", headers=admin)
    assert secret not in listed.text
    assert secret not in one.text
    assert "secret" not in listed.json()["items"][0]
    async with engine.context.sessions() as session:
        stored = await session.scalar(select(WebhookSubscription))
        raw = [tuple(row) for row in await session.execute(text("SELECT * FROM webhook_subscriptions"))]
    assert stored is not None
    assert stored.secret_encrypted != secret
    assert engine.context.cipher.decrypt(stored.secret_encrypted) == secret
    assert not any(secret in str(value) or secret[6:] in str(value) for row in raw for value in row)


async def test_roles_tenants_and_bad_input(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    other_id = await create_tenant(engine.context, "Outra")
    admin = await auth_headers(engine, tenant_id, "ana@loja.com.br", "admin")
    supervisor = await auth_headers(engine, tenant_id, "lia@loja.com.br", "supervisor")
    agent = await auth_headers(engine, tenant_id, "bia@loja.com.br", "agent")
    other_admin = await auth_headers(engine, other_id, "rui@outra.com.br", "admin")
    body = {"url": "https://crm.example.com/hooks", "events": ["*"]}

    for caller in (supervisor, agent):
        assert (await engine.http.get(SUBSCRIPTIONS, headers=caller)).status_code == 403
        assert (await engine.http.post(SUBSCRIPTIONS, json=body, headers=caller)).status_code == 403

    created = await engine.http.post(SUBSCRIPTIONS, json=body, headers=admin)
    assert created.status_code == 201, created.text
    SECRETS_USED.add(created.json()["secret"])
    subscription_id = created.json()["id"]
    assert created.json()["events"] == ["*"]

    # Another tenant's id is not there for them.
    for method, path in (
        ("GET", f"{SUBSCRIPTIONS}/{subscription_id}"),
        ("GET", f"{SUBSCRIPTIONS}/{subscription_id}/deliveries"),
        ("POST", f"{SUBSCRIPTIONS}/{subscription_id}/test"),
        ("DELETE", f"{SUBSCRIPTIONS}/{subscription_id}"),
    ):
        answer = await engine.http.request(method, path, headers=other_admin)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "not_found"
    assert (await engine.http.get(SUBSCRIPTIONS, headers=other_admin)).json()["items"] == []

    # Unknown event types: 422 naming them and listing the known ones; nothing stored.
    refused = await engine.http.post(
        SUBSCRIPTIONS,
        json={"url": body["url"], "events": ["whatsapp_ticket_closed", "pedido_pago"]},
        headers=admin,
    )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "unknown_event_type"
    assert error["unknown"] == ["pedido_pago"]
    assert "whatsapp_action_requested" in error["known"]
    assert "pedido_pago" in error["message"]
    for bad in (
        {"url": "ftp://crm.example.com/hooks", "events": ["*"]},
        {"url": "https://user:senha@crm.example.com/hooks", "events": ["*"]},
        {"url": "https://crm.example.com/hooks", "events": []},
        {"url": "https://crm.example.com/hooks"},
    ):
        answer = await engine.http.post(SUBSCRIPTIONS, json=bad, headers=admin)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["error"]["message"]
    assert len((await engine.http.get(SUBSCRIPTIONS, headers=admin)).json()["items"]) == 1

    deleted = await engine.http.delete(f"{SUBSCRIPTIONS}/{subscription_id}", headers=admin)
    assert deleted.status_code == 204
    assert (await engine.http.get(f"{SUBSCRIPTIONS}/{subscription_id}", headers=admin)).status_code == 404
    assert (await engine.http.get(SUBSCRIPTIONS, headers=admin)).json()["items"] == []


async def test_a_test_event_reaches_the_subscription(fast_engine: RunningEngine) -> None:
    engine = fast_engine
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id)
    with FakeHttpServer(_ok) as receiver:
        created = await engine.http.post(
            SUBSCRIPTIONS,
            json={"url": receiver.base_url, "events": ["whatsapp_ticket_closed"]},
            headers=admin,
        )
        secret = created.json()["secret"]
        SECRETS_USED.add(secret)
        queued = await engine.http.post(f"{SUBSCRIPTIONS}/{created.json()['id']}/test", headers=admin)
        assert queued.status_code == 202, queued.text

        async def accepted() -> list[RecordedRequest]:
            return list(receiver.accepted)

        [request] = await wait_until(accepted, what="the test event")
    body = Webhook(secret).verify(request.body, request.headers)
    assert body["type"] == "whatsapp_webhook_test"
    assert body["data"]["tenant_id"] == tenant_id
    assert orjson.loads(request.body)["data"]["event_id"] == queued.json()["event_id"]
