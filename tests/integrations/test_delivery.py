"""Events out, piece by piece on both databases: the fan-out makes one delivery per event however
often the stream delivers it, a claim is held by one pass at a time, the guarded client refuses a
private address (the attempt says why), a 410 turns the subscription off, the retry window ends
in failure, old deliveries are deleted; URLs and event types are checked when a subscription is
made; the signature matches the Standard Webhooks specification's published example."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook

from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.integrations import service
from messaging_whatsapp.integrations.catalogue import EVENT_TYPES, checked_event_types
from messaging_whatsapp.integrations.delivery import Outcome, claim_due, record, retry_at
from messaging_whatsapp.integrations.fanout import fan_out, read_event
from messaging_whatsapp.integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from messaging_whatsapp.integrations.payloads import signed_headers
from messaging_whatsapp.integrations.schemas import SubscriptionCreate
from messaging_whatsapp.integrations.tasks import WebhookWorker
from messaging_whatsapp.outbox.service import PublishedEvent, write_outbox
from tests.fakes.http import FakeHttpServer, RecordedRequest, Reply
from tests.helpers import SECRETS_USED, create_tenant

LEASE = timedelta(seconds=40)


def _ok(_request: RecordedRequest) -> Reply:
    return Reply(200)


def _with(context: EngineContext, **settings: Any) -> EngineContext:
    """The same database and streams under other settings (another process, say)."""
    return dataclasses.replace(context, settings=context.settings.model_copy(update=settings))


async def _subscribe(context: EngineContext, tenant_id: str, url: str, events: list[str]) -> str:
    async with context.sessions() as session, session.begin():
        subscription, secret = await service.create_subscription(
            session, context.cipher, tenant_id, SubscriptionCreate(url=url, events=events), allow_private=True
        )
    SECRETS_USED.add(secret)
    return subscription.id


async def _append_event(context: EngineContext, tenant_id: str, event_type: str, times: int = 1) -> str:
    """Write one event as the outbox does and append its entry `times` times (the relay is at
    least once: a crash between its append and its delete appends it again)."""
    async with context.sessions() as session, session.begin():
        [record] = await write_outbox(
            session,
            [PublishedEvent(event_type, tenant_id, {"phone": "+5511987654321"})],
            context.names.events,
        )
    for _ in range(times):
        await context.streams.append_many(context.names.events, record.entries)
    return record.entries[0]["event_id"]


async def _deliveries(context: EngineContext) -> list[WebhookDelivery]:
    async with context.sessions() as session:
        return list(
            (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at))).all()
        )


async def _attempts(context: EngineContext) -> list[WebhookAttempt]:
    async with context.sessions() as session:
        return list((await session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.number))).all())


async def test_an_event_the_stream_delivers_again_makes_one_delivery(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    other_id = await create_tenant(context, "Outra")
    wanted = await _subscribe(context, tenant_id, "http://127.0.0.1:9/a", ["whatsapp_ticket_closed"])
    every = await _subscribe(context, tenant_id, "http://127.0.0.1:9/b", ["*"])
    await _subscribe(context, other_id, "http://127.0.0.1:9/c", ["*"])
    worker = WebhookWorker(context)
    try:
        await context.streams.ensure_group(context.names.events, "webhooks")
        closed = await _append_event(context, tenant_id, "whatsapp_ticket_closed", times=2)
        read = await _append_event(context, tenant_id, "whatsapp_conversation_read")
        entries = [
            entry.fields
            for entry in await context.streams.entries_before(
                context.names.events, utcnow() + timedelta(seconds=1)
            )
        ]
        assert len(entries) == 3
        assert await worker.fan_out_once(block_ms=0) == 3
        # The same events once more (a redelivery after a crash before the acknowledgement).
        async with context.sessions() as session, session.begin():
            assert await fan_out(session, [read_event(fields) for fields in entries]) == 0
        assert await worker.fan_out_once(block_ms=0) == 0
    finally:
        await worker.close()
    made = {(d.subscription_id, d.event_id, d.event_type, d.status) for d in await _deliveries(context)}
    assert made == {
        (wanted, closed, "whatsapp_ticket_closed", "pending"),
        (every, closed, "whatsapp_ticket_closed", "pending"),
        (every, read, "whatsapp_conversation_read", "pending"),
    }
    # Every entry was acknowledged: nothing waits in the group.
    info = await context.streams.info(context.names.events)
    assert next(group for group in info.groups if group.name == "webhooks").pending == 0


async def test_one_claim_at_a_time_and_the_guarded_client_refuses_a_private_address(
    context: EngineContext,
) -> None:
    tenant_id = await create_tenant(context)
    with FakeHttpServer(_ok) as receiver:
        # Made where private addresses were allowed; delivered by a process where they are not
        # (as if the host's DNS had changed to a private address since).
        await _subscribe(context, tenant_id, f"{receiver.base_url}/hook", ["*"])
        guarded = _with(context, outbound_allow_private=False, webhook_delivery_retry_seconds="60")
        await context.streams.ensure_group(context.names.events, "webhooks")
        await _append_event(context, tenant_id, "whatsapp_ticket_opened")
        worker = WebhookWorker(guarded)
        try:
            await worker.fan_out_once(block_ms=0)
            now = utcnow()
            # Two passes at once: one holds the delivery, the other gets nothing.
            async with context.sessions() as first, first.begin():
                held = await claim_due(first, now, LEASE)
            async with context.sessions() as second, second.begin():
                assert await claim_due(second, now, LEASE) == []
            assert [one.attempt for one in held] == [1]
            # Once its lease has passed, another pass may take it (a process died mid-attempt).
            async with context.sessions() as third, third.begin():
                [again] = await claim_due(third, now + LEASE + timedelta(seconds=1), LEASE)
            assert again.attempt == 2
            async with context.sessions() as session, session.begin():
                await session.execute(update(WebhookDelivery).values(claimed_until=None))
            assert await worker.deliver_once() == 1
        finally:
            await worker.close()
        assert receiver.requests == []
    [delivery] = await _deliveries(context)
    [attempt] = await _attempts(context)
    assert delivery.status == "retrying"
    assert delivery.attempts == 3
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at > utcnow() + timedelta(seconds=50)
    assert attempt.number == 3
    assert attempt.status_code is None
    assert attempt.error is not None
    assert attempt.error.startswith("refused: 127.0.0.1 is not on the public internet")
    assert delivery.last_error == attempt.error


async def test_a_410_turns_the_subscription_off_and_the_window_ends_in_failure(
    context: EngineContext,
) -> None:
    tenant_id = await create_tenant(context)
    with FakeHttpServer(lambda _request: Reply(410)) as gone, FakeHttpServer(lambda _r: Reply(503)) as down:
        gone_id = await _subscribe(context, tenant_id, gone.base_url, ["whatsapp_ticket_opened"])
        down_id = await _subscribe(context, tenant_id, down.base_url, ["whatsapp_ticket_opened"])
        await context.streams.ensure_group(context.names.events, "webhooks")
        await _append_event(context, tenant_id, "whatsapp_ticket_opened")
        await _append_event(context, tenant_id, "whatsapp_ticket_opened")
        worker = WebhookWorker(
            _with(context, outbound_allow_private=True, webhook_delivery_window_seconds=0.5)
        )
        try:
            assert await worker.fan_out_once(block_ms=0) == 4
            # One at a time for the gone receiver: its first answer settles its second event.
            async with context.sessions() as session, session.begin():
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.subscription_id == gone_id)
                    .values(next_attempt_at=utcnow() + timedelta(seconds=1))
                )
                first = await session.scalar(
                    select(WebhookDelivery.id).where(WebhookDelivery.subscription_id == gone_id).limit(1)
                )
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == first)
                    .values(next_attempt_at=utcnow())
                )
            await asyncio.sleep(0.6)  # past the window of both events
            assert await worker.deliver_once() == 3
        finally:
            await worker.close()
    async with context.sessions() as session:
        subscription = await session.get(WebhookSubscription, gone_id)
    assert subscription is not None
    assert subscription.active is False
    assert subscription.disabled_reason == "the receiver answered 410 Gone"
    statuses = {
        (d.subscription_id, d.attempts, d.status, d.last_status_code) for d in await _deliveries(context)
    }
    assert statuses == {
        (gone_id, 1, "failed", 410),
        (gone_id, 0, "failed", None),
        (down_id, 1, "failed", 503),
    }
    assert len(down.requests) == 2
    assert len(gone.requests) == 1


async def test_old_deliveries_are_deleted(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    await _subscribe(context, tenant_id, "http://127.0.0.1:9/", ["*"])
    await context.streams.ensure_group(context.names.events, "webhooks")
    await _append_event(context, tenant_id, "whatsapp_ticket_opened")
    await _append_event(context, tenant_id, "whatsapp_ticket_closed")
    worker = WebhookWorker(context)
    try:
        await worker.fan_out_once(block_ms=0)
        async with context.sessions() as session, session.begin():
            oldest = await session.scalar(
                select(WebhookDelivery.id).order_by(WebhookDelivery.created_at).limit(1)
            )
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == oldest)
                .values(created_at=utcnow() - timedelta(days=31))
            )
        assert await worker.delete_expired() == 1
    finally:
        await worker.close()
    assert [d.event_type for d in await _deliveries(context)] == ["whatsapp_ticket_closed"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "not on the public internet"),
        ("http://localhost/hook", "not on the public internet"),
        ("http://169.254.169.254/latest/meta-data", "not on the public internet"),
        ("http://10.1.2.3/hook", "not on the public internet"),
        ("http://[::1]/hook", "not on the public internet"),
        ("http://[::ffff:192.168.0.1]/hook", "not on the public internet"),
        ("ftp://crm.example.com/hook", "http:// or https://"),
        ("https://ana:senha@crm.example.com/hook", "credentials"),
        ("https:///hook", "host"),
        ("https://crm.example.com:99999/hook", "not valid"),
    ],
)
async def test_a_url_the_engine_may_not_call_is_refused(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        await service.checked_url(url, allow_private=False)


async def test_private_addresses_are_allowed_for_local_development() -> None:
    assert await service.checked_url(" http://127.0.0.1:8080/hook ", allow_private=True) == (
        "http://127.0.0.1:8080/hook"
    )
    assert await service.checked_url("https://93.184.215.14/hook", allow_private=False)


def test_event_types_are_checked_against_the_catalogue() -> None:
    assert checked_event_types(["whatsapp_ticket_closed", "whatsapp_inbound_received"]) == [
        "whatsapp_inbound_received",
        "whatsapp_ticket_closed",
    ]
    assert checked_event_types(["whatsapp_ticket_closed", "*"]) == ["*"]
    for new in ("whatsapp_action_requested", "whatsapp_follow_up_ended", "whatsapp_notification_skipped"):
        assert new in EVENT_TYPES
    with pytest.raises(InvalidInput, match="unknown event types: ticket_closed; known: ") as refused:
        checked_event_types(["ticket_closed"])
    assert refused.value.details["known"] == list(EVENT_TYPES)


def test_the_signature_matches_the_specifications_example() -> None:
    # The example of the Standard Webhooks specification (and of its libraries' tests).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    at = datetime.fromtimestamp(1614265330, UTC)
    headers = signed_headers(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", '{"test": 2432232314}', at)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-timestamp"] == "1614265330"
    assert headers["webhook-id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    fresh = signed_headers(secret, "msg_1", "{}", utcnow())
    assert Webhook(secret).verify("{}", fresh) == {}


def test_retries_back_off_until_the_window_closes() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    occurred = utcnow()
    waits = [
        (at - occurred).total_seconds()
        for at in (retry_at(settings, n, occurred, occurred) for n in range(1, 11))
        if at is not None
    ]
    # After failed attempt n; the last wait repeats.
    expected = [5, 30, 120, 300, 1800, 3600, 7200, 14400, 28800, 28800]
    for wait, base in zip(waits, expected, strict=True):
        assert base <= wait <= base * 1.2
    assert retry_at(settings, 3, occurred - timedelta(hours=23, minutes=59), occurred) is None


async def test_an_erased_person_leaves_no_delivery_behind(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    other_id = await create_tenant(context, "Outra")
    await _subscribe(context, tenant_id, "http://127.0.0.1:9/", ["*"])
    await _subscribe(context, other_id, "http://127.0.0.1:9/", ["*"])
    await context.streams.ensure_group(context.names.events, "webhooks")
    await _append_event(context, tenant_id, "whatsapp_customer_opted_out")
    await _append_event(context, other_id, "whatsapp_customer_opted_out")
    worker = WebhookWorker(context)
    try:
        assert await worker.fan_out_once(block_ms=0) == 2
    finally:
        await worker.close()
    async with context.sessions() as session, session.begin():
        # The needles are the phone's digits, as the erasure looks for them ("+" or not).
        assert await service.forget_deliveries(session, tenant_id, {"5511987654321", "551187654321"}) == 1
    assert [d.tenant_id for d in await _deliveries(context)] == [other_id]


async def test_whatever_a_receiver_answers_is_recorded(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    with FakeHttpServer(lambda _request: Reply(502, b"\x00bad \xff gateway" + b"x" * 5000)) as receiver:
        await _subscribe(context, tenant_id, receiver.base_url, ["*"])
        await context.streams.ensure_group(context.names.events, "webhooks")
        await _append_event(context, tenant_id, "whatsapp_ticket_opened")
        worker = WebhookWorker(_with(context, outbound_allow_private=True))
        try:
            await worker.fan_out_once(block_ms=0)
            assert await worker.deliver_once() == 1
        finally:
            await worker.close()
    [attempt] = await _attempts(context)
    assert attempt.status_code == 502
    assert attempt.response_body is not None
    assert attempt.response_body.startswith("bad \ufffd gateway")
    assert len(attempt.response_body) == 1000
    [delivery] = await _deliveries(context)
    assert delivery.status == "retrying"


async def test_a_subscription_deleted_during_an_attempt_leaves_nothing_behind(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    subscription_id = await _subscribe(context, tenant_id, "http://127.0.0.1:9/", ["*"])
    await context.streams.ensure_group(context.names.events, "webhooks")
    await _append_event(context, tenant_id, "whatsapp_ticket_opened")
    worker = WebhookWorker(context)
    try:
        await worker.fan_out_once(block_ms=0)
    finally:
        await worker.close()
    async with context.sessions() as session, session.begin():
        [claimed] = await claim_due(session, utcnow(), LEASE)
    async with context.sessions() as session, session.begin():
        await service.delete_subscription(session, tenant_id, subscription_id)
    async with context.sessions() as session, session.begin():
        outcome = Outcome(attempted_at=utcnow(), duration_ms=12, status_code=200)
        assert await record(session, context.settings, claimed, outcome) == "deleted"
    assert await _deliveries(context) == []
    assert await _attempts(context) == []
