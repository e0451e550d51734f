"""A campaign sent end to end: dispatcher, sender, the simulator over HTTP, receipts back through
the webhook, on both deployments. Every contact gets exactly one message and ends in a final
state; the campaign's counters agree with its contacts."""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from messaging_whatsapp.campaigns.models import CampaignContact
from messaging_whatsapp.consent.models import OptOut
from messaging_whatsapp.inbox.models import Contact, Message, SenderType
from messaging_whatsapp.instances.resolver import InstanceResolver
from messaging_whatsapp.simulator.service import Simulator
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.e2e.test_events_stream import Streams
from tests.helpers import bind, create_tenant, wait_until

CONTACTS = 30
FINAL = {"sent", "delivered", "read", "failed", "opted_out", "skipped"}


async def test_a_round_robin_campaign_reaches_everyone_once(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    numbers = []
    for index in range(3):
        instance, _ = await bind(
            engine.context,
            tenant_id,
            provider="simulator",
            display_number=f"+55114002000{index}",
            instance_name=f"sim-{index}",
        )
        numbers.append(instance.id)
    headers = await auth_headers(engine, tenant_id)
    async with engine.context.sessions() as session, session.begin():
        session.add(OptOut(tenant_id=tenant_id, phone="+5511990000029", reason="keyword"))
    body: dict[str, Any] = {
        "name": "Natal",
        "rotation_mode": "round_robin",
        "instance_ids": numbers,
        "messages": [{"content": "Oi {{name}}! Cupom {{cupom}}"}, {"content": "Olá {{name}}, use {{cupom}}"}],
        "contacts": [
            {"phone": f"+55119900000{index:02d}", "name": f"Cliente {index}", "variables": {"cupom": "NATAL"}}
            for index in range(CONTACTS)
        ],
        "settings": {"interval_min_s": 0, "interval_max_s": 0, "warmup": False, "send_window": None},
    }
    created = (await engine.http.post("/api/v1/campaigns", json=body, headers=headers)).json()
    assert created["import"]["opted_out"] == 1
    path = f"/api/v1/campaigns/{created['id']}"
    assert (await engine.http.post(f"{path}/start", headers=headers)).status_code == 200

    async def completed() -> dict[str, Any] | None:
        campaign = (await engine.http.get(path, headers=headers)).json()
        return campaign if campaign["status"] == "completed" else None

    campaign = await wait_until(completed, timeout=60, what="the campaign to complete")

    async with engine.context.sessions() as session:
        contacts = list(
            await session.scalars(select(CampaignContact).where(CampaignContact.campaign_id == created["id"]))
        )
        messages = list(
            await session.scalars(select(Message).where(Message.sender_type == SenderType.CAMPAIGN.value))
        )
    assert len(contacts) == CONTACTS - 1
    assert all(contact.status in FINAL for contact in contacts)
    # One message per contact, never two.
    assert Counter(message.contact_id for message in messages) == Counter(c.contact_id for c in contacts)
    # Round robin: 29 messages over 3 numbers.
    assert sorted(Counter(message.instance_id for message in messages).values()) == [9, 10, 10]
    assert all(
        message.content and "{{" not in message.content and "Cliente" in message.content
        for message in messages
    )
    assert campaign["pending_count"] == 0

    async def counters_agree() -> dict[str, Any] | None:
        """Receipts keep arriving after completion; the counters must catch up with the contacts."""
        async with engine.context.sessions() as session:
            rows = list(
                await session.scalars(
                    select(CampaignContact).where(CampaignContact.campaign_id == created["id"])
                )
            )
        current = (await engine.http.get(path, headers=headers)).json()
        expected = {
            # A message the provider took and later reported failed counts as sent and as failed.
            "sent_count": sum(1 for row in rows if row.sent_at is not None),
            "delivered_count": sum(1 for row in rows if row.status_rank >= 2),
            "read_count": sum(1 for row in rows if row.status_rank >= 3),
            "failed_count": sum(1 for row in rows if row.status == "failed"),
        }
        agree = all(current[name] == value for name, value in expected.items())
        return current if agree and expected["delivered_count"] > 0 else None

    campaign = await wait_until(counters_agree, timeout=30, what="the counters to agree with the contacts")
    logs = (await engine.http.get(f"{path}/logs?limit=200", headers=headers)).json()["items"]
    types = Counter(log["log_type"] for log in logs)
    assert (types["started"], types["completed"]) == (1, 1)
    assert types["message_sent"] == campaign["sent_count"]

    # A reply is engagement: the campaign contact notes it.
    first = "+5511990000000"
    resolver = InstanceResolver.for_context(engine.context)
    resolved = await resolver.by_id(numbers[0])
    assert resolved is not None
    simulator = Simulator(engine.settings, resolver)
    try:
        await simulator.post_inbound(resolved, first, "Quero!", None, raise_on_failure=True)
    finally:
        await simulator.close()

    async def replied() -> list[dict[str, Any]] | None:
        items = (await engine.http.get(f"{path}/contacts?limit=200", headers=headers)).json()["items"]
        noted = [item for item in items if item["replied_at"] is not None]
        return noted or None

    [noted] = await wait_until(replied, timeout=20, what="the reply to reach the campaign contact")
    assert noted["contact"]["phone"] == first


async def test_an_opt_out_mid_campaign_stops_that_person_in_every_campaign(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    number, _ = await bind(
        engine.context,
        tenant_id,
        provider="simulator",
        display_number="+551140020009",
        instance_name="sim-slow",
    )
    headers = await auth_headers(engine, tenant_id)
    stopper = "+5511990000005"  # the last one, about 10 s in
    contacts = [{"phone": f"+55119900000{index:02d}"} for index in range(6)]
    paced = {"interval_min_s": 2, "interval_max_s": 2, "warmup": False, "send_window": None}
    ids = []
    for name in ("Paced", "Later"):
        body = {
            "name": name,
            "instance_ids": [number.id],
            "messages": [{"content": "Oi"}],
            "contacts": contacts,
            "settings": paced,
        }
        ids.append((await engine.http.post("/api/v1/campaigns", json=body, headers=headers)).json()["id"])
    assert (await engine.http.post(f"/api/v1/campaigns/{ids[0]}/start", headers=headers)).status_code == 200

    async def under_way() -> dict[str, Any] | None:
        campaign = (await engine.http.get(f"/api/v1/campaigns/{ids[0]}", headers=headers)).json()
        return campaign if campaign["sent_count"] > 0 else None

    await wait_until(under_way, timeout=20, what="the campaign to be under way")
    resolver = InstanceResolver.for_context(engine.context)
    resolved = await resolver.by_id(number.id)
    assert resolved is not None
    simulator = Simulator(engine.settings, resolver)
    try:
        await simulator.post_inbound(resolved, stopper, "SAIR", None, raise_on_failure=True)
    finally:
        await simulator.close()

    async def stopped_everywhere() -> list[str] | None:
        async with engine.context.sessions() as session:
            statuses = list(
                await session.scalars(
                    select(CampaignContact.status)
                    .join(Contact, Contact.id == CampaignContact.contact_id)
                    .where(Contact.phone == stopper)
                )
            )
        return statuses if statuses == ["opted_out", "opted_out"] else None

    await wait_until(stopped_everywhere, timeout=20, what="the opt-out to reach both campaigns")

    async def completed() -> dict[str, Any] | None:
        campaign = (await engine.http.get(f"/api/v1/campaigns/{ids[0]}", headers=headers)).json()
        return campaign if campaign["status"] == "completed" else None

    campaign = await wait_until(completed, timeout=40, what="the paced campaign to complete")
    assert campaign["opted_out_count"] == 1
    async with engine.context.sessions() as session:
        to_stopper = await session.scalar(
            select(func.count())
            .select_from(Message)
            .join(Contact, Contact.id == Message.contact_id)
            .where(Contact.phone == stopper, Message.direction == "outbound")
        )
    assert to_stopper == 0
    logs = (
        await engine.http.get(f"/api/v1/campaigns/{ids[1]}/logs?log_type=contact_opted_out", headers=headers)
    ).json()
    assert len(logs["items"]) == 1


async def test_progress_is_published_live(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    number, _ = await bind(
        engine.context,
        tenant_id,
        provider="simulator",
        display_number="+551140020008",
        instance_name="sim-live",
    )
    headers = await auth_headers(engine, tenant_id)
    body = {
        "name": "Ao vivo",
        "instance_ids": [number.id],
        "messages": [{"content": "Oi"}],
        "contacts": [{"phone": f"+55119900001{index:02d}"} for index in range(5)],
        "settings": {"interval_min_s": 0, "interval_max_s": 0, "warmup": False},
    }
    campaign_id = (await engine.http.post("/api/v1/campaigns", json=body, headers=headers)).json()["id"]
    live = Streams(engine)
    screen = await live.open(headers)
    await engine.http.post(f"/api/v1/campaigns/{campaign_id}/start", headers=headers)
    streams, stream = engine.context.streams, engine.context.names.events
    await streams.ensure_group(stream, "progress-reader")
    seen: list[dict[str, Any]] = []

    async def completed_published() -> list[dict[str, Any]] | None:
        for entry in await streams.read(stream, "progress-reader", "r1", 500, 0):
            if entry.fields["event_type"] == "campaign_updated":
                seen.append(json.loads(entry.fields["payload"]))
        mine = [event for event in seen if event["id"] == campaign_id]
        return mine if mine and mine[-1]["status"] == "completed" else None

    updates = await wait_until(completed_published, timeout=30, what="a campaign_updated saying completed")
    assert updates[-1]["pending_count"] == 0
    assert updates[-1]["progress"] == 100
    # Live screens hear it too, with the counters by their short names.
    try:
        while (heard := (await screen.event("campaign_updated")).data or {})["status"] != "completed":
            assert heard["campaign_id"] == campaign_id
        assert (heard["total"], heard["sent"], heard["pending"], heard["progress"]) == (5, 5, 0, 100)
    finally:
        await live.close()


async def test_progress_streams_as_server_sent_events_until_the_campaign_completes(
    engine: RunningEngine,
) -> None:
    tenant_id = await create_tenant(engine.context)
    instance, _ = await bind(
        engine.context,
        tenant_id,
        provider="simulator",
        display_number="+551140020009",
        instance_name="sim-sse",
    )
    headers = await auth_headers(engine, tenant_id)
    body: dict[str, Any] = {
        "name": "Ao vivo",
        "instance_ids": [instance.id],
        "messages": [{"content": "Oi {{name}}"}],
        "contacts": [{"phone": f"+55119911100{index:02d}", "name": f"C{index}"} for index in range(8)],
        "settings": {"interval_min_s": 0, "interval_max_s": 0, "warmup": False, "send_window": None},
    }
    created = (await engine.http.post("/api/v1/campaigns", json=body, headers=headers)).json()
    path = f"/api/v1/campaigns/{created['id']}"
    stranger = await auth_headers(engine, await create_tenant(engine.context, "Outra"), "bia@outra.com.br")
    assert (await engine.http.get(f"{path}/progress", headers=stranger)).status_code == 404

    updates: list[dict[str, Any]] = []
    async with engine.http.stream("GET", f"{path}/progress", headers=headers, timeout=60) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                assert line == "event: campaign_updated"
            elif line.startswith("data:"):
                updates.append(json.loads(line.removeprefix("data:")))
                # Started once the stream's first snapshot is in: the headers come before it, and a
                # start sent then could be what the snapshot already shows.
                if len(updates) == 1:
                    started = await engine.http.post(f"{path}/start", headers=headers)
                    assert started.status_code == 200

    assert updates[0]["status"] == "draft"
    assert updates[-1]["status"] == "completed"
    assert updates[-1]["progress"] == 100
    sent = [update["sent_count"] for update in updates]
    assert sent == sorted(sent)
    assert sent[-1] == 8


async def test_a_progress_stream_ends_quietly_when_its_campaign_is_deleted(
    engine: RunningEngine, caplog: pytest.LogCaptureFixture
) -> None:
    tenant_id = await create_tenant(engine.context)
    headers = await auth_headers(engine, tenant_id)
    body = {"name": "Rascunho", "messages": [{"content": "Oi"}]}
    created = (await engine.http.post("/api/v1/campaigns", json=body, headers=headers)).json()
    path = f"/api/v1/campaigns/{created['id']}"

    updates: list[dict[str, Any]] = []
    async with engine.http.stream("GET", f"{path}/progress", headers=headers, timeout=30) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                updates.append(json.loads(line.removeprefix("data:")))
                assert (await engine.http.delete(path, headers=headers)).status_code == 204

    assert [update["status"] for update in updates] == ["draft"]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
