"""AI replies on a running engine (both deployments), answering from a fake OpenAI-compatible
server: a customer's question through the simulator's webhook is answered by the assistant with
its sources; drafts wait for the agent; the settings, preview and mode routes follow the contract
and refuse bad input, other roles and other tenants."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from messaging_whatsapp.config import Settings
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.simulator import build_inbound_message_body
from tests.e2e.conftest import RunningEngine, auth_headers, serve
from tests.fakes.ai import API_KEY
from tests.fakes.http import FakeHttpServer
from tests.helpers import BoundNumbers, bind_example_numbers, create_tenant, wait_until
from tests.knowledge.helpers import FAQ

SETTINGS = "/api/v1/assistant/settings"
PREVIEW = "/api/v1/assistant/preview"


@pytest.fixture
async def engine(deployment: Settings, ai_server: FakeHttpServer) -> AsyncIterator[RunningEngine]:
    """The engine answering from the fake AI server, a burst ending a fifth of a second after it."""
    settings = deployment.model_copy(
        update={
            "ai_base_url": f"{ai_server.base_url}/v1",
            "ai_api_key": SecretStr(API_KEY),
            "ai_debounce_seconds": 0.2,
        }
    )
    async with serve(settings) as running:
        yield running


async def _tenant(engine: RunningEngine, mode: str) -> tuple[BoundNumbers, dict[str, str]]:
    """A tenant with the FAQ, its simulator number in `mode`, and its admin's headers."""
    tenant_id = await create_tenant(engine.context)
    numbers = await bind_example_numbers(engine.context, tenant_id)
    admin = await auth_headers(engine, tenant_id)
    faq = await engine.http.post(
        "/api/v1/knowledge/documents", json={"title": "FAQ", "text": FAQ}, headers=admin
    )
    assert faq.status_code == 201, faq.text
    changed = await engine.http.patch(
        f"/api/v1/instances/{numbers.simulator.id}", json={"ai_mode": mode}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["ai_mode"] == mode
    return numbers, admin


async def _customer_writes(engine: RunningEngine, numbers: BoundNumbers, text: str) -> None:
    body = build_inbound_message_body(
        numbers.simulator.instance_name or "",
        f"SIM-{time.time_ns()}",
        "5511987654321",
        text,
        "Maria",
        int(time.time()),
    )
    path = urlsplit(numbers.urls[ProviderName.SIMULATOR]).path
    response = await engine.http.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


async def _conversation(engine: RunningEngine, headers: dict[str, str]) -> str:
    async def first() -> str | None:
        items = (await engine.http.get("/api/v1/conversations", headers=headers)).json()["items"]
        return str(items[0]["id"]) if items else None

    return await wait_until(first, what="the customer's conversation")


async def test_a_customer_question_is_answered_with_its_sources(engine: RunningEngine) -> None:
    numbers, admin = await _tenant(engine, "auto")
    await _customer_writes(engine, numbers, "Em quantos dias posso devolver um produto?")
    conversation = await _conversation(engine, admin)

    async def answered() -> dict[str, Any] | None:
        url = f"/api/v1/conversations/{conversation}/messages"
        items = (await engine.http.get(url, headers=admin)).json()["items"]
        sent = [m for m in items if m["sender_type"] == "ai" and m["status"] != "queued"]
        return sent[0] if sent else None

    answer = await wait_until(answered, timeout=20, what="the assistant's answer sent")
    assert "7 dias" in answer["content"]
    document = (await engine.http.get("/api/v1/knowledge/documents", headers=admin)).json()["items"][0]
    chunks = (await engine.http.get(f"/api/v1/knowledge/documents/{document['id']}", headers=admin)).json()
    returns = next(c["id"] for c in chunks["chunks"] if c["source"] == "FAQ > Trocas e devoluções")
    assert answer["sources"] == [returns]
    single = (await engine.http.get(f"/api/v1/messages/{answer['id']}", headers=admin)).json()
    assert (single["sender_type"], single["sources"]) == ("ai", [returns])
    replies = (
        await engine.http.get(f"/api/v1/conversations/{conversation}/ai-replies", headers=admin)
    ).json()
    assert [(r["status"], r["mode"]) for r in replies["items"]] == [("sent", "auto")]


async def test_a_draft_waits_for_the_agent_and_is_the_tenants_alone(engine: RunningEngine) -> None:
    numbers, admin = await _tenant(engine, "drafts")
    await _customer_writes(engine, numbers, "Vocês aceitam pix?")
    conversation = await _conversation(engine, admin)
    draft_url = f"/api/v1/conversations/{conversation}/ai-draft"

    async def drafted() -> dict[str, Any] | None:
        draft: dict[str, Any] | None = (await engine.http.get(draft_url, headers=admin)).json()["draft"]
        return draft

    draft = await wait_until(drafted, timeout=20, what="the assistant's draft")
    assert "Pix" in draft["text"]
    assert [s["source"] for s in draft["sources"]] == ["FAQ > Pagamento"]
    messages = (await engine.http.get(f"/api/v1/conversations/{conversation}/messages", headers=admin)).json()
    assert [m["sender_type"] for m in messages["items"]] == ["lead"]  # nothing sent

    stranger = await auth_headers(engine, await create_tenant(engine.context, "Outra"), "bia@outra.com.br")
    assert (await engine.http.get(draft_url, headers=stranger)).status_code == 404
    discard = f"/api/v1/ai-replies/{draft['id']}/discard"
    assert (await engine.http.post(discard, headers=stranger)).status_code == 404
    discarded = await engine.http.post(discard, headers=admin)
    assert discarded.status_code == 200, discarded.text
    assert discarded.json()["status"] == "discarded"
    assert (await engine.http.get(draft_url, headers=admin)).json() == {"draft": None}


async def test_settings_preview_and_mode_follow_the_contract(engine: RunningEngine) -> None:
    numbers, admin = await _tenant(engine, "off")
    defaults = (await engine.http.get(SETTINGS, headers=admin)).json()
    assert defaults["endpoint"] == "engine"
    assert defaults["api_key_set"] is False

    saved = await engine.http.put(
        SETTINGS,
        json={
            "instructions": "Trate o cliente por você.",
            "api_key": "sk-tenant-own-key-123",
            "model": "m-1",
        },
        headers=admin,
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["api_key_set"] is True
    assert "sk-tenant-own-key-123" not in saved.text
    assert (saved.json()["instructions"], saved.json()["model"]) == ("Trate o cliente por você.", "m-1")
    # The tenant's key is used with the engine's server: the fake refuses it, so the preview hands off.
    refused = (await engine.http.post(PREVIEW, json={"question": "Aceitam pix?"}, headers=admin)).json()
    assert (refused["handed_off"], refused["reason"]) == (True, "ai_failed")
    back = await engine.http.put(SETTINGS, json={"api_key": None, "model": None}, headers=admin)
    assert (back.json()["api_key_set"], back.json()["model"]) == (False, "gpt-4o-mini")

    preview = (await engine.http.post(PREVIEW, json={"question": "Aceitam pix?"}, headers=admin)).json()
    assert preview["handed_off"] is False
    assert "Pix" in preview["text"]
    assert [s["source"] for s in preview["sources"]] == ["FAQ > Pagamento"]
    nothing = (
        await engine.http.post(
            PREVIEW, json={"question": "Vocês consertam motor de caminhão?"}, headers=admin
        )
    ).json()
    assert (nothing["handed_off"], nothing["reason"]) == (True, "no_knowledge")
    assert nothing["text"] == defaults["handoff_message"]

    agent = await auth_headers(engine, numbers.tenant_id, "caio@loja.com.br", "agent")
    assert (await engine.http.get(SETTINGS, headers=agent)).status_code == 200
    assert (await engine.http.put(SETTINGS, json={"guardrails": "x"}, headers=agent)).status_code == 403
    for bad in ({"base_url": "ftp://ia.exemplo.com"}, {"temperature": 2}, {"instructions": "x" * 4001}):
        response = await engine.http.put(SETTINGS, json=bad, headers=admin)
        assert response.status_code == 422, (bad, response.text)
    mode = await engine.http.patch(
        f"/api/v1/instances/{numbers.simulator.id}", json={"ai_mode": "sometimes"}, headers=admin
    )
    assert mode.status_code == 422
    assert "ai_mode" in mode.text
