"""Bad input gets the right 4xx with a JSON error and queues nothing; a well-signed envelope whose
inside is unusable is accepted and lands in the DLQ with its reason. Never a 5xx, never a dead worker."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from messaging_whatsapp.inbox.models import Message
from messaging_whatsapp.providers.base import ProviderName
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import (
    bind_example_numbers,
    create_tenant,
    example,
    example_bytes,
    meta_signature,
    wait_until,
)

JSON = {"content-type": "application/json"}


async def _inbound_length(engine: RunningEngine) -> int:
    return (await engine.context.streams.info(engine.context.names.inbound)).length


async def _dlq_entries(engine: RunningEngine) -> list[dict[str, str]]:
    streams, dlq = engine.context.streams, engine.context.names.dlq
    await streams.ensure_group(dlq, "test-reader")
    return [entry.fields for entry in await streams.read(dlq, "test-reader", "t", 100, 0)]


def _signed(body: bytes) -> dict[str, str]:
    return {**JSON, "x-hub-signature-256": meta_signature(body)}


@pytest.fixture
async def bound(engine: RunningEngine) -> RunningEngine:
    """The engine with the example numbers bound."""
    await bind_example_numbers(engine.context, await create_tenant(engine.context))
    return engine


async def test_refusals_name_the_problem_and_queue_nothing(bound: RunningEngine) -> None:
    engine = bound
    good = example_bytes("meta_text.json")
    truncated = good[: len(good) // 2]
    unknown = json.loads(good)
    unknown["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999"
    unknown_body = json.dumps(unknown).encode()
    huge = b'{"object":"whatsapp_business_account","pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    cases = [
        ("truncated JSON", "/webhooks/meta", truncated, _signed(truncated), 400, "malformed_payload"),
        ("not JSON at all", "/webhook", b"hello", JSON, 400, "malformed_payload"),
        (
            "wrong content type",
            "/webhook",
            good,
            {**_signed(good), "content-type": "text/plain"},
            415,
            "unsupported_media_type",
        ),
        (
            "wrong signature",
            "/webhook",
            good,
            {**JSON, "x-hub-signature-256": "sha256=" + "0" * 64},
            401,
            "unauthorized",
        ),
        ("missing signature", "/webhook", good, JSON, 401, "unauthorized"),
        # An unknown instance answers as a wrong signature does: no oracle on which numbers exist.
        ("unknown instance", "/webhook", unknown_body, _signed(unknown_body), 401, "unauthorized"),
        ("2 MiB body", "/webhook", huge, _signed(huge), 413, "payload_too_large"),
        ("unknown provider", "/webhooks/telegram", good, _signed(good), 404, "not_found"),
        ("unknown instance id", "/webhooks/meta/no-such-id", good, _signed(good), 401, "unauthorized"),
    ]
    before = await _inbound_length(engine)
    for label, path, body, headers, status, code in cases:
        response = await engine.http.post(path, content=body, headers=headers)
        assert response.status_code == status, (label, response.status_code, response.text)
        assert response.json()["error"]["code"] == code, label
        assert response.json()["error"]["message"], label
    assert await _inbound_length(engine) == before


async def test_gateway_secret_is_required(bound: RunningEngine) -> None:
    engine = bound
    body = example_bytes("evolution_messages_upsert_text.json")
    without_apikey = json.loads(body)
    without_apikey["apikey"] = None
    anonymous = json.dumps(without_apikey).encode()
    async with engine.context.sessions() as session:
        from sqlalchemy import select

        from messaging_whatsapp.instances.models import WhatsAppInstance

        evolution = await session.scalar(
            select(WhatsAppInstance).where(WhatsAppInstance.provider == "evolution")
        )
    assert evolution is not None
    before = await _inbound_length(engine)
    wrong_secret = f"/webhooks/evolution/{evolution.id}/not-the-secret"
    assert (await engine.http.post(wrong_secret, content=anonymous, headers=JSON)).status_code == 401
    assert (await engine.http.post("/webhook", content=anonymous, headers=JSON)).status_code == 401
    assert await _inbound_length(engine) == before
    # The gateway's own apikey, where it sends one, is accepted too.
    assert (await engine.http.post("/webhook", content=body, headers=JSON)).status_code == 200


async def test_unusable_inside_a_signed_envelope_goes_to_the_dlq(bound: RunningEngine) -> None:
    engine = bound
    wrong_types = copy.deepcopy(example("meta_text.json"))
    wrong_types["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = 12345
    missing_keys = copy.deepcopy(example("meta_text.json"))
    del missing_keys["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    for payload in (wrong_types, missing_keys):
        body = json.dumps(payload).encode()
        response = await engine.http.post("/webhook", content=body, headers=_signed(body))
        assert response.status_code == 200, response.text
    good = example_bytes("meta_text.json")
    assert (await engine.http.post("/webhook", content=good, headers=_signed(good))).status_code == 200

    dead: list[dict[str, str]] = []

    async def two_dead() -> bool:
        dead.extend(await _dlq_entries(engine))
        return len(dead) >= 2

    await wait_until(two_dead, what="two DLQ entries")
    assert all("unusable meta payload" in entry["error"] for entry in dead)
    assert all(entry["stream"] == engine.context.names.inbound for entry in dead)
    # The worker lived on and applied the good one.
    health = await engine.http.get("/readyz")
    assert health.status_code == 200


async def test_well_signed_unhandled_event_is_accepted(bound: RunningEngine) -> None:
    engine = bound
    payload = copy.deepcopy(example("meta_text.json"))
    payload["entry"][0]["changes"][0]["field"] = "account_update"
    payload["entry"][0]["changes"][0]["value"] = {
        "metadata": payload["entry"][0]["changes"][0]["value"]["metadata"],
        "event": "VERIFIED_ACCOUNT",
    }
    body = json.dumps(payload).encode()
    response = await engine.http.post("/webhook", content=body, headers=_signed(body))
    assert response.status_code == 200
    qr = example_bytes("evolution_qrcode_updated.json")
    async with engine.context.sessions() as session:
        from sqlalchemy import select

        from messaging_whatsapp.instances.models import WhatsAppInstance

        evolution = await session.scalar(
            select(WhatsAppInstance).where(WhatsAppInstance.provider == "evolution")
        )
    assert evolution is not None
    path = urlsplit(f"/webhooks/{ProviderName.EVOLUTION.value}/{evolution.id}").path
    from messaging_whatsapp.instances.service import decrypt_credentials

    secret = decrypt_credentials(evolution, engine.context.cipher)["webhook_secret"]
    assert (await engine.http.post(f"{path}/{secret}", content=qr, headers=JSON)).status_code == 200

    async def counted() -> bool:
        return (
            'whatsapp_ignored_events_total{reason="unhandled_event"}'
            in (await engine.http.get("/metrics")).text
        )

    await wait_until(counted, what="unhandled events counted")
    assert await _dlq_entries(engine) == []


@pytest.mark.parametrize("instance_id", ["", "x" * 37])
async def test_a_campaign_naming_a_malformed_instance_id_is_a_422(
    bound: RunningEngine, instance_id: str
) -> None:
    tenant_id = await create_tenant(bound.context)
    headers = await auth_headers(bound, tenant_id)
    body = {"name": "Promo", "messages": [{"content": "Oi"}], "instance_ids": [instance_id]}

    created = await bound.http.post("/api/v1/campaigns", json=body, headers=headers)
    assert created.status_code == 422, created.text
    assert created.json()["error"]["code"] == "validation_error"

    draft = await bound.http.post("/api/v1/campaigns", json={**body, "instance_ids": []}, headers=headers)
    assert draft.status_code == 201, draft.text
    changed = await bound.http.patch(
        f"/api/v1/campaigns/{draft.json()['id']}", json={"instance_ids": [instance_id]}, headers=headers
    )
    assert changed.status_code == 422, changed.text


async def test_nul_and_lone_surrogates_in_a_webhook_are_stored_cleaned_with_their_batch(
    bound: RunningEngine,
) -> None:
    texts = {
        "wamid.NUL": ("Oi\\u0000 tudo bem?", "Oi tudo bem?"),
        "wamid.SURROGATE": ("Olá \\ud800 e \\ud83d\\ude00", "Olá \ufffd e \U0001f600"),
        "wamid.PLAIN": ("Quero um orçamento", "Quero um orçamento"),
    }
    template = example("meta_text.json")
    for message_id, (escaped, _) in texts.items():
        payload = copy.deepcopy(template)
        message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
        message["id"] = message_id
        message["text"]["body"] = "TEXT"
        body = json.dumps(payload).replace('"TEXT"', f'"{escaped}"').encode()
        response = await bound.http.post("/webhook", content=body, headers=_signed(body))
        assert response.status_code == 200, response.text

    async def stored() -> dict[str, str | None] | None:
        async with bound.context.sessions() as session:
            rows = (await session.execute(select(Message.provider_message_id, Message.content))).all()
        return {row.provider_message_id: row.content for row in rows} if len(rows) == 3 else None

    contents = await wait_until(stored, timeout=15, what="the three messages")
    assert contents == {message_id: clean for message_id, (_, clean) in texts.items()}
    assert await _dlq_entries(bound) == []


async def test_an_entry_the_database_refuses_goes_to_the_dlq_at_once_and_alone(bound: RunningEngine) -> None:
    template = example("meta_text.json")
    refused = copy.deepcopy(template)
    # Longer than the column: PostgreSQL refuses it (SQLite stores it; either way it is not retried).
    refused["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid." + "X" * 300
    good = copy.deepcopy(template)
    good["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.GOOD"
    for payload in (refused, good):
        body = json.dumps(payload).encode()
        assert (await bound.http.post("/webhook", content=body, headers=_signed(body))).status_code == 200

    async def settled() -> bool:
        async with bound.context.sessions() as session:
            stored = set(await session.scalars(select(Message.provider_message_id)))
        dead = (await bound.context.streams.info(bound.context.names.dlq)).length
        return "wamid.GOOD" in stored and (len(stored) == 2 or dead > 0)

    await wait_until(settled, timeout=15, what="the good message stored and the other settled")
    dead = await _dlq_entries(bound)
    if bound.settings.database_url.startswith("postgresql"):
        assert len(dead) == 1
        assert dead[0]["error"].startswith("unusable entry: the database refused its data")
        assert dead[0]["deliveries"] == "1"


async def test_nul_and_lone_surrogates_sent_to_the_api_are_a_422_that_says_where(
    engine: RunningEngine,
) -> None:
    tenant_id = await create_tenant(engine.context)
    headers = await auth_headers(engine, tenant_id)
    json_headers = {**headers, "content-type": "application/json"}
    cases = [
        # Unauthenticated login was one of the places a NUL answered 500.
        (
            "POST",
            "/api/v1/auth/login",
            b'{"email": "a\\u0000@b.com", "password": "x"}',
            {"content-type": JSON["content-type"]},
        ),
        (
            "POST",
            "/api/v1/campaigns",
            b'{"name": "Promo\\u0000", "messages": [{"content": "Oi"}]}',
            json_headers,
        ),
        (
            "POST",
            "/api/v1/campaigns",
            b'{"name": "Promo \\ud800", "messages": [{"content": "Oi"}]}',
            json_headers,
        ),
        ("PATCH", "/api/v1/tenant", b'{"name": "Loja\\u0000"}', json_headers),
        ("GET", "/api/v1/contacts?phone=%00", None, headers),
        ("GET", "/api/v1/conversations/abc%00def/messages", None, headers),
    ]
    for method, path, body, request_headers in cases:
        response = await engine.http.request(method, path, content=body, headers=request_headers)
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["error"]["code"] == "validation_error", path
    # An emoji's escaped surrogate pair is text like any other.
    emoji = b'{"name": "Promo \\ud83d\\ude00", "messages": [{"content": "Oi"}]}'
    created = await engine.http.post("/api/v1/campaigns", content=emoji, headers=json_headers)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Promo \U0001f600"


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_of_several_mebibytes_gets_a_413_the_client_can_read(
    bound: RunningEngine, chunked: bool
) -> None:
    body = b'{"object":"whatsapp_business_account","pad":"' + b"x" * (8 * 1024 * 1024) + b'"}'

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    content: bytes | AsyncIterator[bytes] = pieces() if chunked else body
    response = await bound.http.post("/webhook", content=content, headers=_signed(body), timeout=30)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
