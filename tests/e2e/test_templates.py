"""A template campaign on a Meta number, end to end on both deployments: the served engine refuses
free-form text the Cloud API would fail with 131047, and the template reaches the Meta fake as the
Cloud API takes it, its parameters filled from each contact's row."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import RunningEngine, auth_headers
from tests.fakes.meta import MetaGraphFake
from tests.helpers import (
    META_PHONE_NUMBER_ID,
    approved_template,
    bind,
    create_tenant,
    wait_until,
)

TOKEN = "EAAG-e2e-token"
TEMPLATE = {"name": "promo_natal", "language": "pt_BR", "parameters": ["{{name}}", "{{cupom}}"]}


@pytest.fixture
def meta() -> MetaGraphFake:
    # Nobody wrote to the number: every free-form message would come back failed with 131047.
    return MetaGraphFake(token=TOKEN, phone_number_id=META_PHONE_NUMBER_ID, window=set())


@pytest.fixture
def engine(meta_engine: RunningEngine) -> RunningEngine:
    """The whole engine, its Meta numbers talking to the Graph API fake (tests/e2e/conftest.py)."""
    return meta_engine


def _campaign(number: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "Natal",
        "instance_ids": [number],
        "messages": messages,
        "contacts": [
            {
                "phone": f"+55119944{index:05d}",
                "name": f"Cliente {index}",
                "variables": {"cupom": f"NATAL{index}"},
            }
            for index in range(3)
        ],
        "settings": {"interval_min_s": 0, "interval_max_s": 0, "warmup": False, "send_window": None},
    }


async def test_a_template_campaign_reaches_the_meta_fake(engine: RunningEngine, meta: MetaGraphFake) -> None:
    tenant_id = await create_tenant(engine.context)
    instance, _ = await bind(
        engine.context,
        tenant_id,
        provider="meta",
        display_number="+551140028922",
        phone_number_id=META_PHONE_NUMBER_ID,
        access_token=TOKEN,
        app_secret="a" * 32,
    )
    headers = await auth_headers(engine, tenant_id)
    await approved_template(engine.context, tenant_id, instance, "promo_natal", 2)

    # One-to-one free-form to someone who never wrote: refused, pointing at templates.
    answer = await engine.http.post(
        "/api/v1/messages", json={"to": "+5511994400000", "text": "Oi!"}, headers=headers
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "outside_service_window"
    assert "template" in answer.json()["error"]["message"]

    # A template on a gateway number: refused before anything is queued (not accepted, then failed).
    gateway, _ = await bind(
        engine.context,
        tenant_id,
        provider="evolution",
        display_number="+551140028933",
        instance_name="loja-evo",
        api_url="http://127.0.0.1:9/evolution",
        api_key="evo-key-123456",
    )
    body = {"to": "+5511994400000", "instance_id": gateway.id, "template": {"name": "boas_vindas"}}
    answer = await engine.http.post("/api/v1/messages", json=body, headers=headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "template_unsupported")

    # A free-form campaign cannot start on the official number.
    free_form = await engine.http.post(
        "/api/v1/campaigns", json=_campaign(instance.id, [{"content": "Oi {{name}}"}]), headers=headers
    )
    assert free_form.status_code == 201, free_form.text
    refused = await engine.http.post(f"/api/v1/campaigns/{free_form.json()['id']}/start", headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "template_required"
    assert "+551140028922" in refused.json()["error"]["message"]

    # The template campaign starts, and its variation reads back as given.
    created = await engine.http.post(
        "/api/v1/campaigns", json=_campaign(instance.id, [{"template": TEMPLATE}]), headers=headers
    )
    assert created.status_code == 201, created.text
    path = f"/api/v1/campaigns/{created.json()['id']}"
    [variation] = (await engine.http.get(path, headers=headers)).json()["messages"]
    assert (variation["content"], variation["template"], variation["media"]) == (None, TEMPLATE, None)
    started = await engine.http.post(f"{path}/start", headers=headers)
    assert started.status_code == 200, started.text

    async def all_sent() -> list[dict[str, Any]] | None:
        bodies = [body for _, body in meta.sent]
        return bodies if len(bodies) == 3 else None

    bodies = await wait_until(all_sent, timeout=30, what="three template messages at the Meta fake")
    assert meta.outside_window == []
    by_recipient = {body["to"]: body for body in bodies}
    assert sorted(by_recipient) == [f"55119944{index:05d}" for index in range(3)]
    for index in range(3):
        body = by_recipient[f"55119944{index:05d}"]
        assert body["type"] == "template"
        assert body["template"] == {
            "name": "promo_natal",
            "language": {"code": "pt_BR"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": f"Cliente {index}"},
                        {"type": "text", "text": f"NATAL{index}"},
                    ],
                }
            ],
        }

    async def contacts_sent() -> list[dict[str, Any]] | None:
        items = (await engine.http.get(f"{path}/contacts", headers=headers)).json()["items"]
        return items if all(item["status"] == "sent" for item in items) else None

    await wait_until(contacts_sent, timeout=15, what="the campaign contacts to be sent")
