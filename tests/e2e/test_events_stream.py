"""GET /api/v1/events/stream: a tenant's live events over Server-Sent Events, in both deployments."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.inbox.models import Message
from messaging_whatsapp.outbox.service import PublishedEvent, relay_outbox, write_outbox
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import (
    ServerThread,
    bind_example_numbers,
    create_tenant,
    engine_settings,
    example,
    free_port,
    meta_signature,
    wait_until,
)

STREAM = "/api/v1/events/stream"
# No read on a stream waits longer than this: a missing event fails the test, never hangs it.
READ_TIMEOUT = 10.0


@pytest.fixture
async def engine(deployment: Settings) -> AsyncIterator[RunningEngine]:
    """The all-in-one engine, with a keep-alive short enough to see one in a test."""
    settings = deployment.model_copy(update={"realtime_keepalive_seconds": 0.3})
    port = int(settings.public_url.rsplit(":", 1)[1])
    context = await EngineContext.open(settings)
    with ServerThread(create_app(settings, Role.ALL), port, settings) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            yield RunningEngine(settings, server.base_url, context, http)
    await context.close()


@dataclass
class Frame:
    """One Server-Sent Events frame."""

    id: str | None = None
    event: str | None = None
    data: dict[str, Any] | None = None
    comments: list[str] = field(default_factory=list)


class EventStream:
    """An open event stream, read frame by frame (each read bounded by READ_TIMEOUT)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def frame(self) -> Frame:
        """The next frame, comments included."""
        frame = Frame()
        async with asyncio.timeout(READ_TIMEOUT):
            async for line in self.lines:
                if not line:
                    if frame.id or frame.event or frame.comments:
                        return frame
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    frame.comments.append(value)
                elif name == "id":
                    frame.id = value
                elif name == "event":
                    frame.event = value
                elif name == "data":
                    frame.data = json.loads(value)
        raise AssertionError("the stream ended")

    async def event(self, *types: str) -> Frame:
        """The next event (of one of `types`, if given), skipping comments."""
        while True:
            frame = await self.frame()
            if frame.event and (not types or frame.event in types):
                return frame


@dataclass
class Streams:
    """Opens event streams on the engine and closes them at the end of the test."""

    engine: RunningEngine
    opened: list[Any] = field(default_factory=list)

    async def open(self, headers: dict[str, str], **params: str) -> EventStream:
        """A stream, asserted open (200, text/event-stream)."""
        manager = self.engine.http.stream("GET", STREAM, headers=headers, params=params, timeout=READ_TIMEOUT)
        response = await manager.__aenter__()
        self.opened.append(manager)
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = EventStream(response)
        # The opening comment: the server has subscribed, so what follows reaches this client.
        assert "stream open" in (await stream.frame()).comments
        return stream

    async def close(self) -> None:
        """Close every stream opened."""
        opened, self.opened = self.opened, []
        for manager in opened:
            await manager.__aexit__(None, None, None)


@pytest.fixture
async def streams(engine: RunningEngine) -> AsyncIterator[Streams]:
    """Streams closed after the test."""
    opened = Streams(engine)
    yield opened
    await opened.close()


async def _inbound(engine: RunningEngine, number: int, phone: str = "5511987654321") -> str:
    """POST one Meta text message (a new provider id each time); returns its provider id."""
    payload = copy.deepcopy(example("meta_text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    provider_id = f"wamid.realtime-{phone}-{number}"
    value["contacts"][0]["wa_id"] = phone
    value["messages"][0].update({"id": provider_id, "from": phone, "text": {"body": f"mensagem {number}"}})
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"content-type": "application/json", "x-hub-signature-256": meta_signature(body)}
    response = await engine.http.post("/webhook", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return provider_id


async def _stored(engine: RunningEngine, provider_id: str) -> str:
    """Wait until the inbound message is stored; its id."""

    async def find() -> str | None:
        async with engine.context.sessions() as session:
            return await session.scalar(select(Message.id).where(Message.provider_message_id == provider_id))

    return await wait_until(find, what=f"message {provider_id} stored")


async def _count_messages(engine: RunningEngine, tenant_id: str) -> int:
    async with engine.context.sessions() as session:
        return int(await session.scalar(select(func.count()).where(Message.tenant_id == tenant_id)) or 0)


async def test_inbound_reaches_its_tenant_live_and_is_replayed_after_a_reconnect(
    engine: RunningEngine, streams: Streams
) -> None:
    tenant_a = await create_tenant(engine.context, "Loja A")
    tenant_b = await create_tenant(engine.context, "Loja B")
    await bind_example_numbers(engine.context, tenant_a)
    headers_a = await auth_headers(engine, tenant_a, "ana@a.com.br")
    headers_b = await auth_headers(engine, tenant_b, "bia@b.com.br", role="agent")
    stream_a = await streams.open(headers_a)
    stream_b = await streams.open(headers_b)

    first_id = await _stored(engine, await _inbound(engine, 1))
    # The customer's first message opens a ticket (in the team's queue), then is announced.
    opened = await stream_a.event()
    assert opened.event == "ticket_updated"
    assert opened.data is not None
    assert opened.data["status"] == "open"
    first = await stream_a.event()
    assert first.event == "new_message"
    assert first.data is not None
    assert first.data["message_id"] == first_id
    assert first.data["direction"] == "inbound"
    conversation_id = first.data["conversation_id"]
    assert opened.data["conversation_id"] == conversation_id
    updated = await stream_a.event()
    assert updated.event == "conversation_updated"
    assert updated.data == {
        "conversation_id": conversation_id,
        "contact_id": first.data["contact_id"],
        "message_id": first_id,
    }
    # Tenant B's client was handed nothing: the first frame it gets is a keep-alive comment.
    frame = await stream_b.frame()
    assert frame.event is None
    assert "keep-alive" in frame.comments

    # Gone (the lid closed) while two more arrive; back with the last id it saw.
    await streams.close()
    missed = [await _stored(engine, await _inbound(engine, n)) for n in (2, 3)]
    assert await _count_messages(engine, tenant_a) == 3
    resumed = await streams.open({**headers_a, "last-event-id": updated.id or ""})
    replayed = [await resumed.event("new_message") for _ in missed]
    assert [event.data["message_id"] for event in replayed if event.data] == missed
    ids = [first.id, updated.id, *(event.id for event in replayed)]
    numbers = [tuple(int(part) for part in (event_id or "").split("-")) for event_id in ids]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)

    # A malformed Last-Event-ID is treated as absent: live from now on, no replay.
    fresh = await streams.open({**headers_a, "last-event-id": "not-an-id"})
    fourth = await _stored(engine, await _inbound(engine, 4))
    live = await fresh.event()
    assert live.event == "new_message"
    assert live.data
    assert live.data["message_id"] == fourth

    # An id older than what is kept: one resync, then live events.
    stale = await streams.open({**headers_a, "last-event-id": "1-0"})
    resync = await stale.event()
    assert resync.event == "resync"
    fifth = await _stored(engine, await _inbound(engine, 5))
    after = await stale.event("new_message")
    assert after.data
    assert after.data["message_id"] == fifth


async def test_stream_refuses_strangers_and_narrows_to_one_conversation(
    engine: RunningEngine, streams: Streams
) -> None:
    tenant_a = await create_tenant(engine.context, "Loja A")
    tenant_b = await create_tenant(engine.context, "Loja B")
    await bind_example_numbers(engine.context, tenant_a)
    headers_a = await auth_headers(engine, tenant_a, "ana@a.com.br")
    headers_b = await auth_headers(engine, tenant_b, "bia@b.com.br")

    unauthenticated = await engine.http.get(STREAM)
    assert unauthenticated.status_code == 401
    assert "bearer" in unauthenticated.json()["error"]["message"]

    stream_a = await streams.open(headers_a)
    await _stored(engine, await _inbound(engine, 1, phone="5511987654321"))
    conversation_id = (await stream_a.event("new_message")).data["conversation_id"]  # type: ignore[index]

    # Another tenant's conversation, and one that does not exist: 404, as in the inbox.
    for headers, wanted in ((headers_b, conversation_id), (headers_a, "no-such-conversation")):
        refused = await engine.http.get(STREAM, headers=headers, params={"conversation_id": wanted})
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "not_found"

    # Narrowed: another customer's message is left out, this conversation's comes through.
    narrowed = await streams.open(headers_a, conversation_id=conversation_id)
    other = await _stored(engine, await _inbound(engine, 2, phone="5511912345678"))
    mine = await _stored(engine, await _inbound(engine, 3, phone="5511987654321"))
    # Two messages applied apart may be relayed in either order: the tenant-wide stream has both.
    heard = {(await stream_a.event("new_message")).data["message_id"] for _ in range(2)}  # type: ignore[index]
    assert heard == {other, mine}
    event = await narrowed.event()
    assert event.event == "new_message"
    assert event.data == {**(event.data or {}), "message_id": mine, "conversation_id": conversation_id}


@pytest.mark.usefixtures("redis_cleanup")
async def test_scaled_api_process_hears_events_published_by_a_worker_process(
    fresh_postgres_url: str, redis_url: str, stream_prefix: str, tmp_path: Path
) -> None:
    # `serve --role api` runs no worker: the test's own context stands in for a `worker` process.
    port = free_port()
    settings = engine_settings(fresh_postgres_url, redis_url, stream_prefix, tmp_path, port).model_copy(
        update={"realtime_keepalive_seconds": 0.3}
    )
    worker = await EngineContext.open(settings)
    try:
        with ServerThread(create_app(settings, Role.API), port, settings) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
                engine = RunningEngine(settings, server.base_url, worker, http)
                tenant_a = await create_tenant(worker, "Loja A")
                tenant_b = await create_tenant(worker, "Loja B")
                opened = Streams(engine)
                try:
                    stream_a = await opened.open(await auth_headers(engine, tenant_a, "ana@a.com.br"))
                    stream_b = await opened.open(await auth_headers(engine, tenant_b, "bia@b.com.br"))
                    event = PublishedEvent(
                        "whatsapp_delivery_confirmed",
                        tenant_a,
                        {"message_id": "m1", "conversation_id": "c1", "instance_id": "i1", "status": "read"},
                    )
                    async with worker.sessions() as session, session.begin():
                        records = await write_outbox(session, [event], worker.names.events)
                    await relay_outbox(worker, records)
                    status = await stream_a.event()
                    assert status.event == "message_status"
                    assert status.data == event.payload
                    frame = await stream_b.frame()
                    assert frame.event is None
                finally:
                    await opened.close()
    finally:
        await worker.close()
