"""An automatic AI number on Meta's Cloud API, end to end on both deployments: a customer's
signed webhook in, "typing..." shown on their message (marked read with the typing indicator, as
FORMATS.md's mark-read request has it), then the answer as a free-form text inside the 24-hour
window, as the Cloud API takes it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from messaging_whatsapp.config import Settings
from messaging_whatsapp.providers.base import ProviderName
from tests.e2e.conftest import RunningEngine, auth_headers, serve
from tests.fakes.ai import API_KEY
from tests.fakes.http import FakeHttpServer
from tests.fakes.meta import MetaGraphFake
from tests.helpers import (
    META_PHONE_NUMBER_ID,
    bind_example_numbers,
    create_tenant,
    example,
    meta_signature,
    wait_until,
)
from tests.knowledge.helpers import FAQ

CUSTOMER = "5511987654321"


@pytest.fixture
def meta() -> MetaGraphFake:
    return MetaGraphFake(token="EAAG-test", phone_number_id=META_PHONE_NUMBER_ID, window={CUSTOMER})


@pytest.fixture
def meta_server(meta: MetaGraphFake) -> Iterator[FakeHttpServer]:
    with FakeHttpServer(meta, hold_seconds=2) as server:
        yield server


@pytest.fixture
async def engine(
    deployment: Settings, meta_server: FakeHttpServer, ai_server: FakeHttpServer
) -> AsyncIterator[RunningEngine]:
    """The whole engine, its Meta numbers on the Graph fake, its answers from the AI fake."""
    settings = deployment.model_copy(
        update={
            "meta_graph_url": f"{meta_server.base_url}/v23.0",
            "ai_base_url": f"{ai_server.base_url}/v1",
            "ai_api_key": SecretStr(API_KEY),
            "ai_debounce_seconds": 0.2,
        }
    )
    async with serve(settings) as running:
        yield running


def _customer_message(wamid: str, text: str) -> bytes:
    payload = example("meta_text.json")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"], message["text"]["body"], message["timestamp"] = wamid, text, str(int(time.time()))
    return json.dumps(payload).encode()


async def test_a_meta_customer_sees_typing_then_the_answer(
    engine: RunningEngine, meta: MetaGraphFake, meta_server: FakeHttpServer
) -> None:
    numbers = await bind_example_numbers(engine.context, await create_tenant(engine.context))
    admin = await auth_headers(engine, numbers.tenant_id)
    faq = await engine.http.post(
        "/api/v1/knowledge/documents", json={"title": "FAQ", "text": FAQ}, headers=admin
    )
    assert faq.status_code == 201, faq.text
    mode = await engine.http.patch(
        f"/api/v1/instances/{numbers.meta.id}", json={"ai_mode": "auto"}, headers=admin
    )
    assert mode.status_code == 200, mode.text

    body = _customer_message("wamid.AI-QUESTION-1", "Em quantos dias posso devolver um produto?")
    path = urlsplit(numbers.urls[ProviderName.META]).path
    headers = {"content-type": "application/json", "x-hub-signature-256": meta_signature(body)}
    assert (await engine.http.post(path, content=body, headers=headers)).status_code == 200

    async def answered() -> dict[str, object] | None:
        return meta.sent[0][1] if meta.sent else None

    sent = await wait_until(answered, timeout=20, what="the answer at the Graph fake")
    assert sent["type"] == "text"
    assert sent["to"] == CUSTOMER
    assert "7 dias" in sent["text"]["body"]  # type: ignore[index]
    assert meta.outside_window == []
    typing = [
        r.json()
        for r in meta_server.accepted
        if r.path.endswith("/messages") and r.json().get("status") == "read"
    ]
    assert typing == [
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": "wamid.AI-QUESTION-1",
            "typing_indicator": {"type": "text"},
        }
    ]
