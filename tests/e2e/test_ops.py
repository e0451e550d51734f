"""The operator's API on both deployments (embedded: SQLite and the table queue; scaled: PostgreSQL
and Redis Streams): platform admins only, the streams' figures, the DLQ with its reasons, replaying
one entry and all of them (they land back and are applied), workers by their heartbeats, and
/readyz failing on a stream whose oldest entry waits too long."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest
from sqlalchemy import update

from messaging_whatsapp.config import Settings
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.ops.service import EngineProcess, record_heartbeat
from messaging_whatsapp.streams.base import StreamEntry
from messaging_whatsapp.streams.records import dead_letter_fields
from messaging_whatsapp.tenancy.models import User
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import (
    bind_example_numbers,
    create_outbound_message,
    create_platform_admin,
    create_tenant,
    dead_letter_inbound,
    get_message,
    meta_text_body,
    wait_until,
)

# Short, so a stalled stream turns /readyz red within the test.
MAX_PENDING_AGE_S = 2.0
ROUTES = (
    ("GET", "/api/v1/ops/streams"),
    ("GET", "/api/v1/ops/dlq"),
    ("GET", "/api/v1/ops/workers"),
    ("POST", "/api/v1/ops/dlq/replay"),
)


@pytest.fixture
def deployment(deployment: Settings) -> Settings:
    """The deployment with a short READY_MAX_PENDING_AGE_SECONDS."""
    return deployment.model_copy(update={"ready_max_pending_age_seconds": MAX_PENDING_AGE_S})


async def _operator(
    engine: RunningEngine, tenant_id: str, email: str = "ops@plataforma.com.br"
) -> dict[str, str]:
    await create_platform_admin(engine.context, tenant_id, email)
    answer = await engine.http.post("/api/v1/auth/login", json={"email": email, "password": "s3cret-pass"})
    assert answer.status_code == 200, answer.text
    return {"authorization": f"Bearer {answer.json()['access_token']}"}


async def test_only_platform_admins_reach_the_operator_api(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    operator = await _operator(engine, tenant_id)
    admin = await auth_headers(engine, tenant_id, "ana@loja.com.br", "admin")
    key = await engine.http.post("/api/v1/api-keys", json={"name": "erp", "role": "admin"}, headers=admin)
    others = {
        "tenant admin": admin,
        "supervisor": await auth_headers(engine, tenant_id, "lia@loja.com.br", "supervisor"),
        "agent": await auth_headers(engine, tenant_id, "bia@loja.com.br", "agent"),
        "API key": {"authorization": f"Bearer {key.json()['api_key']}"},
        # The operator's own key is a key: never a platform admin.
        "operator's key": {
            "authorization": "Bearer "
            + (await engine.http.post("/api/v1/api-keys", json={"name": "ops"}, headers=operator)).json()[
                "api_key"
            ]
        },
    }
    for method, path in ROUTES:
        body = {"ids": ["1"]} if method == "POST" else None
        answer = await engine.http.request(method, path, json=body, headers=operator)
        assert answer.status_code == 200, (path, answer.text)
        for who, headers in others.items():
            refused = await engine.http.request(method, path, json=body, headers=headers)
            assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden"), (who, path)
    assert (await engine.http.get("/api/v1/ops/streams")).status_code == 401

    # Taking the flag away shuts the door on the next request, with the same token.
    async with engine.context.sessions() as session, session.begin():
        await session.execute(
            update(User).where(User.email == "ops@plataforma.com.br").values(is_platform_admin=False)
        )
    assert (await engine.http.get("/api/v1/ops/streams", headers=operator)).status_code == 403


async def test_streams_show_length_pending_and_the_oldest_pending_age(engine: RunningEngine) -> None:
    operator = await _operator(engine, await create_tenant(engine.context))
    streams, events = engine.context.streams, engine.context.names.events
    await streams.ensure_group(events, "crm")
    await streams.append_many(events, [{"event_type": "test", "n": str(n)} for n in range(3)])
    assert len(await streams.read(events, "crm", "crm-1", count=2)) == 2

    report = (await engine.http.get("/api/v1/ops/streams", headers=operator)).json()

    by_name = {stream["name"]: stream for stream in report["streams"]}
    assert list(by_name) == engine.context.names.every
    shown = by_name[events]
    assert shown["length"] >= 3
    # The engine's own group on the events stream ("webhooks", events out) may hold a few too.
    assert shown["pending"] == sum(group["pending"] for group in shown["groups"]) >= 2
    [crm] = [group for group in shown["groups"] if group["name"] == "crm"]
    assert (crm["pending"], crm["consumers"]) == (2, 1)
    assert crm["oldest_pending_age_seconds"] >= 0
    assert shown["oldest_pending_age_seconds"] >= crm["oldest_pending_age_seconds"]
    assert report["max_pending_age_seconds"] == MAX_PENDING_AGE_S
    assert report["outbox"]["count"] >= 0
    assert by_name[engine.context.names.dlq]["groups"] == []


async def test_the_dlq_lists_reasons_and_replays_one_then_all_back_into_the_inbox(
    engine: RunningEngine,
) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context, "Loja Centro"))
    operator = await _operator(engine, numbers.tenant_id)
    bodies = [meta_text_body(f"wamid.OPS{n}", f"mensagem {n}") for n in range(3)]
    dead = [
        await dead_letter_inbound(engine.context, numbers.meta, body, f"apply failed: boom {n}")
        for n, body in enumerate(bodies)
    ]

    first = (await engine.http.get("/api/v1/ops/dlq?limit=2", headers=operator)).json()
    assert first["total"] == 3
    assert [item["id"] for item in first["items"]] == dead[:2]
    item = first["items"][0]
    assert item["reason"] == "apply failed: boom 0"
    assert (item["provider"], item["tenant_id"], item["tenant_name"]) == (
        "meta",
        numbers.tenant_id,
        "Loja Centro",
    )
    assert (item["stream"], item["group"], item["attempts"], item["replayable"]) == (
        engine.context.names.inbound,
        "workers",
        5,
        True,
    )
    assert item["instance_id"] == numbers.meta.id
    rest = (
        await engine.http.get(f"/api/v1/ops/dlq?limit=2&cursor={first['next_cursor']}", headers=operator)
    ).json()
    assert ([i["id"] for i in rest["items"]], rest["next_cursor"]) == ([dead[2]], None)
    bad = await engine.http.get("/api/v1/ops/dlq?cursor=bm9wZQ", headers=operator)
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_cursor")

    one = await engine.http.post(
        "/api/v1/ops/dlq/replay", json={"ids": [dead[1], "nobody"]}, headers=operator
    )
    assert one.json() == {"replayed": 1, "unknown_ids": ["nobody"]}
    await wait_until(
        lambda: get_message(engine.context, numbers.meta.id, "wamid.OPS1"), what="the replayed message"
    )
    assert await get_message(engine.context, numbers.meta.id, "wamid.OPS0") is None
    listed = (await engine.http.get("/api/v1/ops/dlq", headers=operator)).json()
    assert [i["id"] for i in listed["items"]] == [dead[0], dead[2]]

    everything = await engine.http.post("/api/v1/ops/dlq/replay", headers=operator)
    assert everything.json() == {"replayed": 2, "unknown_ids": []}
    for n in (0, 2):
        await wait_until(
            lambda n=n: get_message(engine.context, numbers.meta.id, f"wamid.OPS{n}"), what=f"message {n}"
        )
    assert (await engine.http.get("/api/v1/ops/dlq", headers=operator)).json()["total"] == 0
    refused = await engine.http.post("/api/v1/ops/dlq/replay", json={"ids": []}, headers=operator)
    assert refused.status_code == 422


async def test_a_senders_dlq_entry_names_the_number_and_provider_of_its_message(
    engine: RunningEngine,
) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context, "Loja Sul"))
    operator = await _operator(engine, numbers.tenant_id)
    message_id = await create_outbound_message(
        engine.context, numbers.twilio, "+5511987650002", "SM-OPS-1", status="failed"
    )
    outbound = engine.context.names.outbound
    entry = StreamEntry(outbound, message_id, {"message_id": message_id, "tenant_id": numbers.tenant_id}, 5)
    record = dead_letter_fields(outbound, "senders", entry, "retries exhausted after 5 attempts: 503")
    await engine.context.streams.append(engine.context.names.dlq, record)

    [item] = (await engine.http.get("/api/v1/ops/dlq", headers=operator)).json()["items"]

    assert (item["provider"], item["instance_id"], item["message_id"]) == (
        "twilio",
        numbers.twilio.id,
        message_id,
    )
    assert (item["tenant_name"], item["stream"], item["group"]) == ("Loja Sul", outbound, "senders")
    assert item["reason"] == "retries exhausted after 5 attempts: 503"


async def test_workers_are_listed_by_their_heartbeats(engine: RunningEngine) -> None:
    operator = await _operator(engine, await create_tenant(engine.context))
    now = utcnow()
    quiet = EngineProcess(new_id(), "sender", ("sender",), "worker-7", 4242, now - timedelta(hours=2))
    gone = EngineProcess(new_id(), "inbound", ("inbound",), "worker-8", 4343, now - timedelta(days=2))
    stopped = EngineProcess(new_id(), "scheduler", ("dispatcher", "scheduler"), "worker-9", 4444, now)
    async with engine.context.sessions() as session, session.begin():
        await record_heartbeat(session, quiet, now - timedelta(minutes=5))
        await record_heartbeat(session, gone, now - timedelta(hours=3))
        await record_heartbeat(session, stopped, now, stopped=True)

    report = (await engine.http.get("/api/v1/ops/workers", headers=operator)).json()

    by_host = {(item["host"], item["pid"]): item for item in report["items"]}
    serving = by_host[(socket.gethostname(), os.getpid())]
    assert (serving["role"], serving["alive"], serving["stopped_at"]) == ("all", True, None)
    assert serving["parts"] == ["api", "webhook", "inbound", "sender", "dispatcher", "scheduler", "webhooks"]
    assert by_host[("worker-7", 4242)]["alive"] is False
    assert by_host[("worker-7", 4242)]["seconds_since_heartbeat"] >= 300
    assert by_host[("worker-9", 4444)]["alive"] is False
    assert by_host[("worker-9", 4444)]["stopped_at"] is not None
    assert ("worker-8", 4343) not in by_host, "a process silent for hours leaves the listing"


async def test_readyz_fails_naming_a_stream_whose_oldest_entry_waits_too_long(engine: RunningEngine) -> None:
    streams, inbound = engine.context.streams, engine.context.names.inbound
    assert (await engine.http.get("/readyz")).status_code == 200
    # A consumer group that stopped reading: its entries wait.
    await streams.ensure_group(inbound, "stalled")
    await streams.append(inbound, {"provider": "meta", "body": "{}"})

    async def not_ready() -> dict[str, object] | None:
        answer = await engine.http.get("/readyz")
        return answer.json() if answer.status_code == 503 else None

    body = await wait_until(not_ready, what="/readyz to fail")
    assert body["status"] == "not_ready"
    assert f"stream {inbound}" in body["checks"]  # type: ignore[operator]
    assert inbound in body["error"]["message"]  # type: ignore[index]

    # The group catches up: ready again.
    while batch := await streams.read(inbound, "stalled", "c", count=100):
        await streams.ack(inbound, "stalled", [entry.id for entry in batch])

    async def ready() -> bool:
        return (await engine.http.get("/readyz")).status_code == 200

    await wait_until(ready, what="/readyz to recover")
