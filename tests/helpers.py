"""Typed helpers shared by tests: a real server on a loopback port, signing, waiting, test data."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
import uvicorn
from sqlalchemy import select, update

from messaging_whatsapp.api.serving import server_config
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Contact, Conversation, Direction, Message, SenderType
from messaging_whatsapp.instances import service as instances_service
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.instances.schemas import InstanceBind
from messaging_whatsapp.phones import canonical_phone
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.templates.models import MessageTemplateRow, TemplateSource
from messaging_whatsapp.templates.service import scope_of
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.tenancy import users

EXAMPLES = Path(__file__).parent / "fixtures" / "examples"
T = TypeVar("T")

# Secrets the format examples were signed with.
META_APP_SECRET = "3f1c9a7e5b2d4f60a8c1e3b5d7f9a2c4"
TWILIO_AUTH_TOKEN = "9c2e7a4f1b8d3e6a0c5f2b9e4d7a1c83"
WUZAPI_HMAC_KEY = "a8F3kL9pQ2wE7rT5yU1iO4pA6sD0fG3hJ5"
META_PHONE_NUMBER_ID = "109283746501928"
BUSINESS_NUMBER = "+551140028922"
EVOLUTION_API_KEY = "B7C4E1D2-5A6F-4B3C-9D8E-1F2A3B4C5D6E"

# Every secret the suite hands the engine; the logs of the whole run must name none of them
# (tests/conftest.py checks at the end).
SECRETS_USED: set[str] = {META_APP_SECRET, TWILIO_AUTH_TOKEN, WUZAPI_HMAC_KEY, EVOLUTION_API_KEY}


def example(name: str) -> Any:
    """A format example, parsed."""
    return json.loads((EXAMPLES / name).read_text())


def example_bytes(name: str) -> bytes:
    """A format example's exact bytes (a provider body file)."""
    return (EXAMPLES / name).read_bytes()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def engine_settings(
    database_url: str, redis_url: str | None, prefix: str, data_dir: Path, port: int
) -> Settings:
    """Settings for one test deployment (nothing read from the environment's .env)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=redis_url,
        stream_prefix=prefix,
        public_url=f"http://127.0.0.1:{port}",
        data_dir=data_dir,
        worker_block_ms=100,
        worker_batch_size=200,
        stream_visibility_timeout_ms=3000,
        stream_max_deliveries=3,
        instance_cache_ttl_seconds=5,
        # The fake gateways listen on loopback.
        outbound_allow_private=True,
    )


class ServerThread:
    """A real uvicorn server on a loopback port, in a thread, like a deployed engine: under the
    settings' header and body timeouts and per-client cap, as `serve` runs it."""

    def __init__(self, app: Callable[..., Any], port: int, settings: Settings, **options: Any) -> None:
        options = {"log_level": "warning", "lifespan": "on", **options}
        config = server_config(app, settings, "127.0.0.1", port, **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base_url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


async def wait_until(check: Callable[[], Awaitable[T | None]], timeout: float = 15.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


def meta_signature(body: bytes, secret: str = META_APP_SECRET) -> str:
    """X-Hub-Signature-256 as Meta computes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def wuzapi_signature(body: bytes, key: str = WUZAPI_HMAC_KEY) -> str:
    """x-hmac-signature as WuzAPI computes it."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def twilio_signature(url: str, params: dict[str, str], token: str = TWILIO_AUTH_TOKEN) -> str:
    """X-Twilio-Signature computed by the official twilio library (a real client's signature)."""
    from twilio.request_validator import RequestValidator

    signature: str = RequestValidator(token).compute_signature(url, params)
    return signature


def b64(data: bytes) -> str:
    """Base64 text."""
    return base64.b64encode(data).decode()


@dataclass
class BoundNumbers:
    """A tenant with one number per provider, as the format examples address them."""

    tenant_id: str
    meta: WhatsAppInstance
    twilio: WhatsAppInstance
    evolution: WhatsAppInstance
    wuzapi: WhatsAppInstance
    simulator: WhatsAppInstance
    urls: dict[ProviderName, str]


async def create_tenant(context: EngineContext, name: str = "Loja", **options: Any) -> str:
    """A new tenant's id (`options` as tenancy.service.create_tenant takes them)."""
    async with context.sessions() as session, session.begin():
        tenant = await tenancy_service.create_tenant(session, name, **options)
        return tenant.id


async def create_user(
    context: EngineContext, tenant_id: str, email: str, password: str = "s3cret-pass", role: str = "admin"
) -> str:
    """A new user's id (an admin unless `role` says otherwise)."""
    async with context.sessions() as session, session.begin():
        user = await users.create_user(session, tenant_id, email, password, role)
        return user.id


async def bind(context: EngineContext, tenant_id: str, **options: Any) -> tuple[WhatsAppInstance, str]:
    """Bind a number; returns the instance and its webhook URL (its secrets join SECRETS_USED)."""
    async with context.sessions() as session, session.begin():
        instance, url = await instances_service.bind_instance(
            session, context.cipher, context.settings, tenant_id, InstanceBind(**options)
        )
    credentials = instances_service.decrypt_credentials(instance, context.cipher)
    SECRETS_USED.update(value for value in credentials.values() if len(value) >= 8)
    return instance, url


async def bind_example_numbers(context: EngineContext, tenant_id: str) -> BoundNumbers:
    """Bind the five numbers the format examples are addressed to."""
    meta, meta_url = await bind(
        context,
        tenant_id,
        provider="meta",
        display_number=BUSINESS_NUMBER,
        phone_number_id=META_PHONE_NUMBER_ID,
        waba_id="104857293847561",
        access_token="EAAG-test",
        verify_token="tok-verificacao-7d2f",
        app_secret=META_APP_SECRET,
    )
    twilio, twilio_url = await bind(
        context,
        tenant_id,
        provider="twilio",
        display_number=BUSINESS_NUMBER,
        account_sid="AC3f9e1c7a5b2d4e6f8a0c1b3d5e7f9a2c",
        auth_token=TWILIO_AUTH_TOKEN,
    )
    evolution, evolution_url = await bind(
        context,
        tenant_id,
        provider="evolution",
        display_number=BUSINESS_NUMBER,
        instance_name="loja-centro",
        api_url="http://127.0.0.1:9/evolution",
        api_key=EVOLUTION_API_KEY,
    )
    wuzapi, wuzapi_url = await bind(
        context,
        tenant_id,
        provider="wuzapi",
        display_number=BUSINESS_NUMBER,
        instance_name="loja-centro",
        api_url="http://127.0.0.1:9/wuzapi",
        api_key="wuz-token",
        hmac_key=WUZAPI_HMAC_KEY,
    )
    simulator, simulator_url = await bind(
        context,
        tenant_id,
        provider="simulator",
        display_number=BUSINESS_NUMBER,
        instance_name="sim-loja",
    )
    return BoundNumbers(
        tenant_id,
        meta,
        twilio,
        evolution,
        wuzapi,
        simulator,
        {
            ProviderName.META: meta_url,
            ProviderName.TWILIO: twilio_url,
            ProviderName.EVOLUTION: evolution_url,
            ProviderName.WUZAPI: wuzapi_url,
            ProviderName.SIMULATOR: simulator_url,
        },
    )


async def create_outbound_message(
    context: EngineContext,
    instance: WhatsAppInstance,
    phone: str,
    provider_message_id: str,
    status: str = "sent",
) -> str:
    """An outbound message as the sender would have stored it (the sender comes with sending)."""
    now = utcnow()
    async with context.sessions() as session, session.begin():
        e164 = canonical_phone(phone)
        contact = await session.scalar(
            select(Contact).where(Contact.tenant_id == instance.tenant_id, Contact.phone == e164)
        )
        if contact is None:
            contact = Contact(tenant_id=instance.tenant_id, phone=e164)
            session.add(contact)
            await session.flush()
        conversation = await session.scalar(
            select(Conversation).where(
                Conversation.contact_id == contact.id, Conversation.instance_id == instance.id
            )
        )
        if conversation is None:
            conversation = Conversation(
                tenant_id=instance.tenant_id, contact_id=contact.id, instance_id=instance.id
            )
            session.add(conversation)
            await session.flush()
        message = Message(
            tenant_id=instance.tenant_id,
            instance_id=instance.id,
            conversation_id=conversation.id,
            contact_id=contact.id,
            direction=Direction.OUTBOUND.value,
            sender_type=SenderType.USER.value,
            type="text",
            content="Olá!",
            provider_message_id=provider_message_id,
            status=status,
            status_rank=1 if status == "sent" else 0,
            sent_at=now if status == "sent" else None,
        )
        session.add(message)
        await session.flush()
        return message.id


async def get_message(context: EngineContext, instance_id: str, provider_message_id: str) -> Message | None:
    """A message by its provider id."""
    async with context.sessions() as session:
        message: Message | None = await session.scalar(
            select(Message).where(
                Message.instance_id == instance_id, Message.provider_message_id == provider_message_id
            )
        )
        return message


def ts(seconds: int) -> datetime:
    """A UTC datetime from unix seconds."""
    from datetime import UTC

    return datetime.fromtimestamp(seconds, UTC)


async def published_events(context: EngineContext, event_type: str) -> list[dict[str, str]]:
    """The events of this type on the events stream not yet seen by this test's reader group."""
    streams, stream = context.streams, context.names.events
    await streams.ensure_group(stream, "test-reader")
    entries = await streams.read(stream, "test-reader", "t1", 1000, 0)
    return [entry.fields for entry in entries if entry.fields["event_type"] == event_type]


async def create_platform_admin(
    context: EngineContext, tenant_id: str, email: str, password: str = "s3cret-pass", role: str = "admin"
) -> str:
    """A new user who is also a platform admin (what `create-user --platform-admin` makes)."""
    async with context.sessions() as session, session.begin():
        user = await users.create_user(session, tenant_id, email, password, role, platform_admin=True)
        return user.id


def meta_text_body(provider_message_id: str, text: str) -> str:
    """The Meta text example's body with another message id and text."""
    payload = example("meta_text.json")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"], message["text"]["body"] = provider_message_id, text
    return json.dumps(payload)


async def dead_letter_inbound(
    context: EngineContext, instance: WhatsAppInstance, body: str, reason: str = "worker crashed"
) -> str:
    """Put a raw request of `instance` in the DLQ as the inbound worker would have after failing
    on it (a usable request: a replay applies it); returns the DLQ entry's id."""
    from messaging_whatsapp.streams.base import StreamEntry
    from messaging_whatsapp.streams.records import dead_letter_fields

    fields = {
        "provider": instance.provider,
        "instance_id": instance.id,
        "tenant_id": instance.tenant_id,
        "content_type": "application/json",
        "body": body,
        "url": "",
        "received_at": utcnow().isoformat(),
    }
    inbound = context.names.inbound
    entry = StreamEntry(inbound, "1", fields, deliveries=5)
    return await context.streams.append(
        context.names.dlq, dead_letter_fields(inbound, "workers", entry, reason)
    )


async def approved_template(
    context: EngineContext,
    tenant_id: str,
    instance: WhatsAppInstance | str,
    name: str,
    params: int | list[str] = 0,
    *,
    language: str = "pt_BR",
    status: str = "APPROVED",
) -> None:
    """Store a template the number may send (as the sync or POST /api/v1/templates would), with
    `params` body parameters ({{1}}..{{n}}, or these names). A Meta number without a WABA id is
    given one first: Meta keeps templates per WABA. Storing the same one again changes nothing."""
    async with context.sessions() as session, session.begin():
        instance_id = instance if isinstance(instance, str) else instance.id
        row = await session.scalar(select(WhatsAppInstance).where(WhatsAppInstance.id == instance_id))
        assert row is not None, "the instance must exist"
        assert row.tenant_id == tenant_id, "the instance must be the tenant's"
        if row.provider == ProviderName.META.value and not row.waba_id:
            waba_id = "1" + row.id.replace("-", "")[:14].translate(str.maketrans("abcdef", "123456"))
            await session.execute(
                update(WhatsAppInstance).where(WhatsAppInstance.id == row.id).values(waba_id=waba_id)
            )
            row.waba_id = waba_id
        scope = scope_of(row)
        assert scope is not None, f"{row.provider} numbers have no stored templates"
        names = [str(i) for i in range(1, params + 1)] if isinstance(params, int) else list(params)
        exists = await session.scalar(
            select(MessageTemplateRow.id).where(
                MessageTemplateRow.tenant_id == tenant_id,
                MessageTemplateRow.scope == scope,
                MessageTemplateRow.name == name,
                MessageTemplateRow.language == language,
            )
        )
        if exists is not None:
            return
        body = " ".join(["Olá"] + [f"{{{{{n}}}}}" for n in names])
        session.add(
            MessageTemplateRow(
                tenant_id=tenant_id,
                scope=scope,
                source=TemplateSource.META.value if row.provider == "meta" else TemplateSource.LOCAL.value,
                name=name,
                language=language,
                status=status,
                category="UTILITY",
                components=[{"type": "BODY", "text": body}],
                body=body,
                parameter_names=names,
                parameter_count=len(names),
            )
        )


@asynccontextmanager
async def deployment_context(
    request: pytest.FixtureRequest, tmp_path: Path, stream_prefix: str, **updates: Any
) -> AsyncIterator[EngineContext]:
    """An engine context on a migrated database of the test's own (a copy: no migration to run), on
    the deployment `request.param` names: "embedded" (SQLite, the stream table) or "scaled"
    (PostgreSQL, Redis Streams, whose keys under the prefix are removed after), with `updates` to
    its settings."""
    if request.param == "embedded":
        settings = engine_settings(
            request.getfixturevalue("fresh_sqlite_url"), None, stream_prefix, tmp_path, free_port()
        )
    else:
        redis_url = request.getfixturevalue("redis_url")
        settings = engine_settings(
            request.getfixturevalue("fresh_postgres_url"), redis_url, stream_prefix, tmp_path, free_port()
        )
    settings = settings.model_copy(update=updates)
    context = await EngineContext.open(settings)
    try:
        yield context
    finally:
        await context.close()
        if settings.redis_url:
            client = redis.Redis.from_url(settings.redis_url)
            keys = list(client.scan_iter(match=f"{stream_prefix}*"))
            if keys:
                client.delete(*keys)
            client.close()
