"""Analytics over HTTP on both deployments: the figures, rates, p90, buckets in the tenant's time
zone, filters, tenants apart and bad input; a receipt applied twice counts once; and the figures
of a real campaign and one-to-one sends through the simulator equal the campaign's and the
numbers' own counters."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from messaging_whatsapp.analytics.rollup import fold_changes
from messaging_whatsapp.batch import Receipt
from messaging_whatsapp.campaigns.models import Campaign, CampaignContact
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Contact, Conversation, Message, Ticket
from messaging_whatsapp.inbox.receipts import apply_receipts
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.events import STATUS_RANK, DeliveryStatus, StatusUpdate
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import bind, create_tenant, wait_until

# 10:10 in São Paulo (the tenant's zone, UTC-3) on Monday 2 November 2026.
MORNING = datetime(2026, 11, 2, 13, 10, tzinfo=UTC)
# 23:30 the same local day, already the 3rd in UTC.
NIGHT = datetime(2026, 11, 3, 2, 30, tzinfo=UTC)
# Each stored contact a phone of its own.
PHONES = itertools.count(10_000_000)
DAYS = {"from": "2026-11-02T00:00:00-03:00", "to": "2026-11-04T00:00:00-03:00"}


class Store:
    """Messages written as the engine stores them, with chosen times and statuses."""

    def __init__(self, engine: RunningEngine, instance: WhatsAppInstance) -> None:
        self.engine = engine
        self.instance = instance
        self.serial = 0

    async def message(
        self,
        created_at: datetime,
        status: str,
        *,
        direction: str = "outbound",
        sender_type: str = "campaign",
        delivered_after: float | None = None,
        read_after: float | None = None,
        sent: bool = True,
        ticket_id: str | None = None,
    ) -> Message:
        """One message of a new contact (or of the ticket's contact), `*_after` seconds from sent."""
        self.serial += 1
        async with self.engine.context.sessions() as session, session.begin():
            conversation = await self._conversation(session, ticket_id)
            sent_at = created_at + timedelta(seconds=1) if sent and direction == "outbound" else None
            message = Message(
                tenant_id=self.instance.tenant_id,
                instance_id=self.instance.id,
                conversation_id=conversation.id,
                contact_id=conversation.contact_id,
                ticket_id=ticket_id,
                direction=direction,
                sender_type=sender_type if direction == "outbound" else "lead",
                type="text",
                content="Olá",
                provider_message_id=f"wamid.{self.instance.id[:8]}.{self.serial}",
                status=status,
                status_rank=STATUS_RANK[DeliveryStatus(status)] if direction == "outbound" else 0,
                created_at=created_at,
                sent_at=sent_at,
                delivered_at=sent_at + timedelta(seconds=delivered_after)
                if sent_at and delivered_after
                else None,
                read_at=sent_at + timedelta(seconds=read_after) if sent_at and read_after else None,
            )
            session.add(message)
        return message

    async def ticket(self) -> str:
        """An open ticket of a new conversation."""
        async with self.engine.context.sessions() as session, session.begin():
            conversation = await self._conversation(session, None)
            ticket = Ticket(tenant_id=self.instance.tenant_id, conversation_id=conversation.id)
            session.add(ticket)
            await session.flush()
            return ticket.id

    async def _conversation(self, session: Any, ticket_id: str | None) -> Conversation:
        if ticket_id is not None:
            ticket = await session.get(Ticket, ticket_id)
            found: Conversation = await session.get(Conversation, ticket.conversation_id)
            return found
        contact = Contact(tenant_id=self.instance.tenant_id, phone=f"+55119{next(PHONES):08d}")
        session.add(contact)
        await session.flush()
        conversation = Conversation(
            tenant_id=self.instance.tenant_id, contact_id=contact.id, instance_id=self.instance.id
        )
        session.add(conversation)
        await session.flush()
        return conversation


async def fold(engine: RunningEngine) -> None:
    """Fold every change in now (the scheduler does so every two seconds)."""
    async with engine.context.sessions() as session, session.begin():
        await fold_changes(session, utcnow())


async def in_campaign(engine: RunningEngine, tenant_id: str, name: str, messages: list[Message]) -> str:
    """A campaign whose contacts are these messages' (as the dispatcher links them)."""
    async with engine.context.sessions() as session, session.begin():
        campaign = Campaign(tenant_id=tenant_id, name=name)
        session.add(campaign)
        await session.flush()
        for message in messages:
            session.add(
                CampaignContact(
                    campaign_id=campaign.id,
                    tenant_id=tenant_id,
                    contact_id=message.contact_id,
                    message_id=message.id,
                    status=message.status,
                )
            )
        return campaign.id


async def seeded(engine: RunningEngine) -> dict[str, Any]:
    """A tenant with two numbers and a known day of messages (see the module's constants)."""
    tenant_id = await create_tenant(engine.context)
    first, _ = await bind(
        engine.context,
        tenant_id,
        provider="simulator",
        display_number="+551140000001",
        instance_name="loja-a",
    )
    second, _ = await bind(
        engine.context,
        tenant_id,
        provider="simulator",
        display_number="+551140000002",
        instance_name="loja-b",
    )
    a, b = Store(engine, first), Store(engine, second)
    read = [await a.message(MORNING, "read", delivered_after=d, read_after=60) for d in (1, 1, 2, 2)]
    for delivered_after in (3, 3, 100):
        await a.message(MORNING, "delivered", delivered_after=delivered_after)
    await a.message(MORNING, "failed")  # sent, then a failed receipt
    await a.message(MORNING, "failed", sent=False)  # refused by the provider
    ticket_id = await a.ticket()
    for minute in (20, 21, 22):
        await a.message(MORNING.replace(minute=minute), "queued", direction="inbound", ticket_id=ticket_id)
    # The agent's first reply, five minutes after the customer's first message.
    await a.message(MORNING.replace(minute=25), "sent", sender_type="user", ticket_id=ticket_id)
    for _ in range(5):
        await b.message(NIGHT, "delivered", delivered_after=4)
    for _ in range(2):
        await b.message(NIGHT, "queued", direction="inbound")
    campaign_id = await in_campaign(engine, tenant_id, "Black Friday", read)
    await fold(engine)
    headers = await auth_headers(
        engine, tenant_id, email=f"sup-{tenant_id[:8]}@loja.com.br", role="supervisor"
    )
    return {
        "tenant_id": tenant_id,
        "a": first.id,
        "b": second.id,
        "campaign_id": campaign_id,
        "headers": headers,
    }


async def get(engine: RunningEngine, path: str, headers: dict[str, str], **params: str) -> Any:
    response = await engine.http.get(f"/api/v1/analytics/{path}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_delivery_figures_rates_and_times_by_local_day(engine: RunningEngine) -> None:
    seed = await seeded(engine)
    report = await get(engine, "delivery", seed["headers"], **DAYS)
    totals = report["totals"]
    assert {k: totals[k] for k in ("outbound", "sent", "delivered", "read", "failed")} == {
        "outbound": 15, "sent": 14, "delivered": 12, "read": 4, "failed": 2,
    }  # fmt: skip
    assert (totals["delivery_rate"], totals["read_rate"], totals["failure_rate"]) == (85.71, 33.33, 13.33)
    # Delivered after 1, 1, 2, 2, 3, 3, 100 and 5 x 4 seconds: the mean is exact.
    assert totals["average_delivery_ms"] == round(1000 * (1 + 1 + 2 + 2 + 3 + 3 + 100 + 5 * 4) / 12)
    # The p90 (the 11th of 12: 4 s, below the one slow 100 s) within its histogram bucket (3 s, 5 s].
    assert 3_000 < totals["p90_delivery_ms"] <= 5_000
    assert totals["average_read_ms"] == 60_000
    assert 45_000 < totals["p90_read_ms"] <= 60_000
    # Both numbers' messages fall on the 2nd in São Paulo, though the second's are the 3rd in UTC.
    assert report["timezone"] == "America/Sao_Paulo"
    assert [(p["start"], p["sent"], p["delivered"], p["read"], p["failed"]) for p in report["series"]] == [
        ("2026-11-02T00:00:00-03:00", 14, 12, 4, 2),
        ("2026-11-03T00:00:00-03:00", 0, 0, 0, 0),
    ]
    by_number = {row["name"]: (row["sent"], row["delivered"]) for row in report["instances"]}
    assert by_number == {"+551140000001": (9, 7), "+551140000002": (5, 5)}
    by_campaign = {row["name"]: row["read"] for row in report["campaigns"]}
    assert by_campaign == {"Black Friday": 4, None: 0}


async def test_volume_peak_hour_and_first_response(engine: RunningEngine) -> None:
    seed = await seeded(engine)
    report = await get(engine, "volume", seed["headers"], **DAYS)
    assert (report["inbound"], report["outbound"]) == (5, 15)
    assert (report["peak_hour"], report["peak_hour_messages"]) == ("10:00", 13)
    assert (report["responses"], report["average_response_ms"]) == (1, 300_000)
    assert report["messages_per_hour"] == round(20 / 48, 2)
    assert [(p["inbound"], p["outbound"]) for p in report["series"]] == [(5, 15), (0, 0)]


async def test_hour_buckets_and_filters(engine: RunningEngine) -> None:
    seed = await seeded(engine)
    day = {"from": "2026-11-02T00:00:00-03:00", "to": "2026-11-03T00:00:00-03:00"}
    report = await get(engine, "delivery", seed["headers"], bucket="hour", **day)
    assert len(report["series"]) == 24
    busy = {p["start"]: p["sent"] for p in report["series"] if p["sent"]}
    assert busy == {"2026-11-02T10:00:00-03:00": 9, "2026-11-02T23:00:00-03:00": 5}
    one_number = await get(engine, "delivery", seed["headers"], instance_id=seed["b"], **DAYS)
    assert (one_number["totals"]["sent"], one_number["totals"]["read"]) == (5, 0)
    one_campaign = await get(engine, "delivery", seed["headers"], campaign_id=seed["campaign_id"], **DAYS)
    assert (one_campaign["totals"]["sent"], one_campaign["totals"]["read"]) == (4, 4)
    volume = await get(engine, "volume", seed["headers"], instance_id=seed["a"], **DAYS)
    assert (volume["inbound"], volume["outbound"]) == (3, 10)


async def test_csv_export_has_a_row_per_bucket(engine: RunningEngine) -> None:
    seed = await seeded(engine)
    response = await engine.http.get(
        "/api/v1/analytics/delivery", params={**DAYS, "format": "csv"}, headers=seed["headers"]
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [
        ["start", "sent", "delivered", "read", "failed"],
        ["2026-11-02T00:00:00-03:00", "14", "12", "4", "2"],
        ["2026-11-03T00:00:00-03:00", "0", "0", "0", "0"],
    ]
    volume = await engine.http.get(
        "/api/v1/analytics/volume", params={**DAYS, "format": "csv"}, headers=seed["headers"]
    )
    assert volume.text.splitlines()[:2] == ["start,inbound,outbound", "2026-11-02T00:00:00-03:00,5,15"]


async def test_tenants_apart_and_bad_input(engine: RunningEngine) -> None:
    seed = await seeded(engine)
    other_id = await create_tenant(engine.context, "Outra")
    other_number, _ = await bind(
        engine.context, other_id, provider="simulator", display_number="+551140000009", instance_name="outra"
    )
    other_headers = await auth_headers(engine, other_id, email="ana@outra.com.br")
    # The other tenant sees none of the first's messages, and cannot name its number or campaign.
    report = await get(engine, "delivery", other_headers, **DAYS)
    assert report["totals"]["outbound"] == 0
    assert report["instances"] == []
    for params in ({"instance_id": seed["a"]}, {"campaign_id": seed["campaign_id"]}):
        response = await engine.http.get(
            "/api/v1/analytics/delivery", params={**DAYS, **params}, headers=other_headers
        )
        assert response.status_code == 404
        assert next(iter(params.values())) in response.json()["error"]["message"]
    mine = await engine.http.get(
        "/api/v1/analytics/volume", params={"instance_id": other_number.id}, headers=other_headers
    )
    assert mine.status_code == 200
    bad = [
        ({"from": "2026-11-03T00:00:00Z", "to": "2026-11-02T00:00:00Z"}, "from must be before to"),
        ({"from": "2025-01-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}, "exceeds 400 days"),
        ({"bucket": "week"}, "bucket"),
        ({"from": "yesterday"}, "from"),
        ({"format": "xml"}, "format"),
        # The fuzz's find: a year-1 `to` overflowed the default range's arithmetic (a 500).
        ({"to": "0001-01-01T00:00:01Z"}, "to must fall between 2000 and 2099"),
        ({"from": "9999-12-31T23:00:00+14:00"}, "from must fall between 2000 and 2099"),
    ]
    for params, named in bad:
        for path in ("delivery", "volume"):
            response = await engine.http.get(
                f"/api/v1/analytics/{path}", params=params, headers=seed["headers"]
            )
            assert response.status_code == 422, (params, response.text)
            assert named in response.text, (params, response.text)
    agent = await auth_headers(engine, seed["tenant_id"], email="agente@loja.com.br", role="agent")
    assert (await engine.http.get("/api/v1/analytics/delivery", headers=agent)).status_code == 403


async def test_a_receipt_applied_twice_counts_once(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    number, _ = await bind(
        engine.context,
        tenant_id,
        provider="simulator",
        display_number="+551140000003",
        instance_name="loja-c",
    )
    now = utcnow()
    message = await Store(engine, number).message(now - timedelta(minutes=1), "sent")
    headers = await auth_headers(engine, tenant_id)
    for _ in range(2):
        receipt = Receipt(tenant_id, number.id, message.provider_message_id or "")
        receipt.fold(StatusUpdate(receipt.provider_message_id, DeliveryStatus.READ, now))
        async with engine.context.sessions() as session, session.begin():
            await apply_receipts(session, [receipt])
        await fold(engine)
        totals = (await get(engine, "delivery", headers))["totals"]
        assert (totals["sent"], totals["delivered"], totals["read"]) == (1, 1, 1)


async def test_figures_agree_with_the_campaign_and_the_numbers_counters(engine: RunningEngine) -> None:
    """A campaign and one-to-one sends through the simulator (receipts, reads, failures)."""
    tenant_id = await create_tenant(engine.context)
    numbers = [
        (
            await bind(
                engine.context,
                tenant_id,
                provider="simulator",
                display_number=f"+55114003000{i}",
                instance_name=f"sim-{i}",
            )
        )[0].id
        for i in range(2)
    ]
    headers = await auth_headers(engine, tenant_id)
    body: dict[str, Any] = {
        "name": "Natal",
        "rotation_mode": "round_robin",
        "instance_ids": numbers,
        "messages": [{"content": "Oi {{name}}!"}],
        "contacts": [
            {"phone": f"+55119900001{index:02d}", "name": f"Cliente {index}"} for index in range(24)
        ],
        "settings": {"interval_min_s": 0, "interval_max_s": 0, "warmup": False, "send_window": None},
    }
    created = (await engine.http.post("/api/v1/campaigns", json=body, headers=headers)).json()
    campaign_path = f"/api/v1/campaigns/{created['id']}"
    assert (await engine.http.post(f"{campaign_path}/start", headers=headers)).status_code == 200
    for index in range(6):
        sent = await engine.http.post(
            "/api/v1/messages",
            json={"instance_id": numbers[index % 2], "to": f"+55119900002{index:02d}", "text": "Olá"},
            headers=headers,
        )
        assert sent.status_code == 202, sent.text

    async def settled() -> bool:
        """Every message answered and its receipts in (the simulator reads 60 %, fails 2 %)."""
        campaign = (await engine.http.get(campaign_path, headers=headers)).json()
        async with engine.context.sessions() as session:
            waiting = await session.scalar(
                select(func.count()).where(
                    Message.tenant_id == tenant_id, Message.status.in_(("queued", "sent"))
                )
            )
        return campaign["status"] == "completed" and waiting == 0

    await wait_until(settled, timeout=60, what="every message delivered, read or failed")

    async def folded() -> dict[str, Any] | None:
        # The scheduler folds the last receipts within its pass (two seconds).
        report = await get(engine, "delivery", headers)
        return (
            report
            if report["totals"]["outbound"] == 30
            and report["totals"]["sent"] + report["totals"]["failed"] >= 30
            else None
        )

    await wait_until(folded, timeout=20, what="the analytics to fold every message in")
    stages = ("sent", "delivered", "read", "failed")

    async def both() -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(analytics, counters) for the campaign, then for each number."""
        await fold(engine)
        campaign = (await engine.http.get(campaign_path, headers=headers)).json()
        figures = (await get(engine, "delivery", headers, campaign_id=created["id"]))["totals"]
        pairs = [(tuple(figures[k] for k in stages), tuple(campaign[f"{k}_count"] for k in stages))]
        async with engine.context.sessions() as session:
            instances = {
                i.id: i
                for i in await session.scalars(
                    select(WhatsAppInstance).where(WhatsAppInstance.tenant_id == tenant_id)
                )
            }
        for instance_id in numbers:
            one = (await get(engine, "delivery", headers, instance_id=instance_id))["totals"]
            instance = instances[instance_id]
            counted = (
                instance.msgs_sent_today,
                instance.msgs_delivered_today,
                instance.msgs_read_today,
                instance.msgs_failed_today,
            )
            pairs.append((tuple(one[k] for k in stages), counted))
        return pairs

    async def agreeing() -> bool:
        return all(figures == counters for figures, counters in await both())

    # A read receipt may still come after `settled` (to both sides): they agree once all are in.
    try:
        await wait_until(agreeing, timeout=20, what="the analytics to agree with the counters")
    except AssertionError:
        for figures, counters in await both():
            assert figures == counters
