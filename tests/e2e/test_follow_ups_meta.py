"""A follow-up on a Meta number after the 24-hour window, end to end on both deployments: the text
step is skipped and logged, the template step reaches the Meta fake as the Cloud API takes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from messaging_whatsapp.inbox.models import Ticket
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.fakes.meta import MetaGraphFake
from tests.followups.test_follow_ups import PHONE, customer_writes
from tests.helpers import (
    META_PHONE_NUMBER_ID,
    approved_template,
    bind,
    create_tenant,
    wait_until,
)

TOKEN = "EAAG-follow-up-token"


@pytest.fixture
def meta() -> MetaGraphFake:
    # Nobody wrote in the last 24 hours.
    return MetaGraphFake(token=TOKEN, phone_number_id=META_PHONE_NUMBER_ID, window=set())


@pytest.fixture
def engine(meta_engine: RunningEngine) -> RunningEngine:
    """The whole engine, its Meta numbers talking to the Graph API fake (tests/e2e/conftest.py)."""
    return meta_engine


async def test_after_the_window_only_the_template_step_goes(
    engine: RunningEngine, meta: MetaGraphFake
) -> None:
    tenant_id = await create_tenant(engine.context)
    instance, _ = await bind(
        engine.context,
        tenant_id,
        provider="meta",
        display_number="+551140028922",
        phone_number_id=META_PHONE_NUMBER_ID,
        access_token=TOKEN,
        app_secret="b" * 32,
    )
    await approved_template(engine.context, tenant_id, instance, "retomar_conversa", 1)
    await customer_writes(engine.context, tenant_id, instance.id, datetime.now(UTC) - timedelta(hours=25))
    async with engine.context.sessions() as session:
        ticket_id = (await session.scalars(select(Ticket.id).where(Ticket.tenant_id == tenant_id))).one()
    headers = await auth_headers(engine, tenant_id)
    body = {
        "steps": [
            {"delay_seconds": 0, "text": "Oi, ainda tem interesse?"},
            {
                "delay_seconds": 0,
                "template": {"name": "retomar_conversa", "language": "pt_BR", "parameters": ["Ana"]},
            },
        ],
        "close_ticket": False,
        "final_wait_seconds": 3600,
    }
    path = f"/api/v1/tickets/{ticket_id}/follow-ups"
    started = await engine.http.post(path, json=body, headers=headers)
    assert started.status_code == 201, started.text

    async def template_sent() -> list[dict[str, Any]] | None:
        return [sent for _, sent in meta.sent if sent["type"] == "template"] or None

    [template] = await wait_until(template_sent, timeout=30, what="the template at the Meta fake")
    assert template["to"] == PHONE
    assert template["template"]["name"] == "retomar_conversa"
    assert meta.outside_window == []  # no free-form text went out
    [item] = (await engine.http.get(path, headers=headers)).json()["items"]
    assert [(s["outcome"], s["reason"]) for s in item["steps"]] == [
        ("skipped", "outside_service_window"),
        ("sent", None),
    ]
    assert item["status"] == "running"
