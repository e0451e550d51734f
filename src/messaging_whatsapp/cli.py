"""The `messaging-whatsapp` command line (also `python -m messaging_whatsapp.cli`).

User mistakes print one line to stderr and exit 1; JSON goes to stdout, logs to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from pydantic import ValidationError
from rich.live import Live
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp import migrate as migrations
from messaging_whatsapp.campaigns.dispatcher import Dispatcher
from messaging_whatsapp.campaigns_cli import register as register_campaign_commands
from messaging_whatsapp.cli_support import (
    JsonOption,
    fail,
    in_session,
    print_json,
    run_engine,
    stderr,
    stdout,
)
from messaging_whatsapp.config import Settings, get_settings
from messaging_whatsapp.context import EngineContext, settle_garbage_collector
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import InvalidInput, NotFound
from messaging_whatsapp.gateway_cli import register as register_gateway_commands
from messaging_whatsapp.inbox import service as inbox_service
from messaging_whatsapp.inbox.models import Message, SenderType
from messaging_whatsapp.inbox.schemas import MessageItem
from messaging_whatsapp.instances import service as instances_service
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.instances.resolver import InstanceResolver
from messaging_whatsapp.instances.schemas import BoundInstance, InstanceBind, InstanceItem
from messaging_whatsapp.phones import InvalidPhone, canonical_phone
from messaging_whatsapp.providers.base import DeliveryStatus, ProviderName
from messaging_whatsapp.sending import service as sending_service
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.simulator.service import Simulator
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.tenancy.models import DEFAULT_TICKET_INACTIVITY_MINUTES, Tenant
from messaging_whatsapp.tenancy.schemas import ApiKeyItem, CreatedApiKey, TenantItem, TenantUpdate
from messaging_whatsapp.worker.inbound import run_inbound_workers
from messaging_whatsapp.worker.scheduler import Scheduler
from messaging_whatsapp.worker.sender import Sender

app = typer.Typer(
    name="messaging-whatsapp",
    help="Multi-tenant WhatsApp messaging engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    settings = get_settings()
    try:
        migrations.upgrade(settings.database_url)
    except Exception as exc:
        raise fail(f"migration failed: {exc}") from None
    stderr.print("database is up to date")


@app.command("create-tenant")
def create_tenant(
    name: Annotated[str, typer.Option(help="The business's name.")],
    timezone: Annotated[str, typer.Option(help="IANA time zone for windows and daily counters.")] = (
        "America/Sao_Paulo"
    ),
    ticket_inactivity_minutes: Annotated[
        int, typer.Option(help="Close a ticket after this long without a message (0: never).")
    ] = DEFAULT_TICKET_INACTIVITY_MINUTES,
    as_json: JsonOption = False,
) -> None:
    """Create a tenant (a business)."""

    async def work(context: EngineContext) -> TenantItem:
        tenant = await in_session(
            context,
            lambda s: tenancy_service.create_tenant(s, name, timezone, ticket_inactivity_minutes),
        )
        return TenantItem.model_validate(tenant)

    tenant = run_engine(work)
    if as_json:
        print_json(tenant.model_dump(mode="json"))
    else:
        stdout.print(f"tenant {tenant.id} ({tenant.name}) created")


@app.command("update-tenant")
def update_tenant(
    tenant_id: Annotated[str, typer.Option(help="The tenant to change.")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    timezone: Annotated[str | None, typer.Option(help="A new IANA time zone.")] = None,
    ticket_inactivity_minutes: Annotated[
        int | None, typer.Option(help="Close a ticket after this long without a message (0: never).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Change a tenant's name or settings (what is not given stays as it is)."""
    try:
        changes = TenantUpdate(
            name=name, timezone=timezone, ticket_inactivity_minutes=ticket_inactivity_minutes
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise fail(f"--{str(error['loc'][0]).replace('_', '-')}: {error['msg']}") from None

    async def work(context: EngineContext) -> TenantItem:
        tenant = await in_session(context, lambda s: tenancy_service.update_tenant(s, tenant_id, changes))
        return TenantItem.model_validate(tenant)

    tenant = run_engine(work)
    if as_json:
        print_json(tenant.model_dump(mode="json"))
    else:
        minutes = tenant.ticket_inactivity_minutes
        closing = (
            f"close after {minutes} minutes without a message" if minutes else "never close by themselves"
        )
        stdout.print(f"tenant {tenant.id} ({tenant.name}): time zone {tenant.timezone}, tickets {closing}")


@app.command("create-user")
def create_user(
    tenant_id: Annotated[str, typer.Option(help="The tenant the user belongs to.")],
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(help="At least 8 characters.")],
    role: Annotated[str, typer.Option(help="admin or agent.")] = "agent",
    as_json: JsonOption = False,
) -> None:
    """Create a user who can log in to the API and the inbox."""

    async def work(context: EngineContext) -> dict[str, str]:
        user = await in_session(
            context, lambda s: tenancy_service.create_user(s, tenant_id, email, password, role)
        )
        return {"id": user.id, "tenant_id": user.tenant_id, "email": user.email, "role": user.role}

    user = run_engine(work)
    if as_json:
        print_json(user)
    else:
        stdout.print(f"user {user['email']} ({user['role']}) created")


@app.command("create-api-key")
def create_api_key(
    tenant_id: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
    as_json: JsonOption = False,
) -> None:
    """Create an API key for machine access; the key is shown once."""

    async def work(context: EngineContext) -> CreatedApiKey:
        key, raw = await in_session(context, lambda s: tenancy_service.create_api_key(s, tenant_id, name))
        return CreatedApiKey(**ApiKeyItem.model_validate(key).model_dump(), api_key=raw)

    created = run_engine(work)
    if as_json:
        print_json(created.model_dump(mode="json"))
    else:
        stdout.print(f"API key {created.name}: {created.api_key}  (store it now; it is not shown again)")


@app.command("list-api-keys")
def list_api_keys(tenant_id: Annotated[str, typer.Option()], as_json: JsonOption = False) -> None:
    """List a tenant's API keys (their first characters, never the keys), revoked ones too."""

    async def work(context: EngineContext) -> list[ApiKeyItem]:
        keys = await in_session(context, lambda s: tenancy_service.list_api_keys(s, tenant_id))
        return [ApiKeyItem.model_validate(key) for key in keys]

    items = run_engine(work)
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
        return
    table = Table("id", "name", "starts with", "role", "created", "revoked")
    for item in items:
        revoked = f"{item.revoked_at:%Y-%m-%d %H:%M}" if item.revoked_at else ""
        table.add_row(
            item.id, item.name, item.prefix, item.role, f"{item.created_at:%Y-%m-%d %H:%M}", revoked
        )
    stdout.print(table)


@app.command("revoke-api-key")
def revoke_api_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (list-api-keys shows it).")],
    tenant_id: Annotated[str, typer.Option()],
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key: its next request is refused."""

    async def work(context: EngineContext) -> ApiKeyItem:
        key = await in_session(context, lambda s: tenancy_service.revoke_api_key(s, tenant_id, key_id))
        return ApiKeyItem.model_validate(key)

    item = run_engine(work)
    if as_json:
        print_json(item.model_dump(mode="json"))
        return
    stdout.print(f"API key {item.name} ({item.prefix}...) revoked")


@app.command("bind-tenant")
def bind_tenant(
    tenant_id: Annotated[str, typer.Option()],
    provider: Annotated[ProviderName, typer.Option(case_sensitive=False)],
    display_number: Annotated[str, typer.Option(help="The WhatsApp number, E.164.")],
    name: Annotated[str | None, typer.Option(help="A label for the number.")] = None,
    phone_number_id: Annotated[str | None, typer.Option(help="Meta: phone number id.")] = None,
    waba_id: Annotated[str | None, typer.Option(help="Meta: WhatsApp Business Account id.")] = None,
    access_token: Annotated[str | None, typer.Option(help="Meta: access token.")] = None,
    verify_token: Annotated[str | None, typer.Option(help="Meta: webhook verify token.")] = None,
    app_secret: Annotated[str | None, typer.Option(help="Meta: app secret (signatures).")] = None,
    account_sid: Annotated[str | None, typer.Option(help="Twilio: account SID.")] = None,
    auth_token: Annotated[str | None, typer.Option(help="Twilio: auth token.")] = None,
    instance_name: Annotated[str | None, typer.Option(help="Evolution / WuzAPI / simulator name.")] = None,
    api_url: Annotated[str | None, typer.Option(help="Evolution / WuzAPI: base URL.")] = None,
    api_key: Annotated[str | None, typer.Option(help="Evolution API key / WuzAPI user token.")] = None,
    hmac_key: Annotated[str | None, typer.Option(help="WuzAPI: HMAC key for signed webhooks.")] = None,
    daily_limit: Annotated[int, typer.Option(help="Messages per day at most.")] = 1000,
    messaging_tier: Annotated[
        int | None,
        typer.Option(help="Meta/Twilio: the portfolio's 24 h unique-user limit (250, 2000, 10000, 100000)."),
    ] = 250,
    as_json: JsonOption = False,
) -> None:
    """Bind a WhatsApp number to a tenant through a provider; prints the webhook URL to configure."""
    try:
        bind = InstanceBind(
            provider=provider,
            display_number=display_number,
            name=name,
            phone_number_id=phone_number_id,
            waba_id=waba_id,
            access_token=access_token,
            verify_token=verify_token,
            app_secret=app_secret,
            account_sid=account_sid,
            auth_token=auth_token,
            instance_name=instance_name,
            api_url=api_url,
            api_key=api_key,
            hmac_key=hmac_key,
            daily_limit=daily_limit,
            messaging_tier=messaging_tier,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None

    async def work(context: EngineContext) -> BoundInstance:
        async def bind_in(session: AsyncSession) -> BoundInstance:
            instance, url = await instances_service.bind_instance(
                session, context.cipher, context.settings, tenant_id, bind
            )
            item = InstanceItem.of(instance, utcnow())
            return BoundInstance(**item.model_dump(), webhook_url=url)

        return await in_session(context, bind_in)

    bound = run_engine(work)
    if as_json:
        print_json(bound.model_dump(mode="json"))
        return
    stdout.print(f"{bound.provider} number {bound.display_number} bound as instance {bound.id}")
    stdout.print(f"webhook URL: {bound.webhook_url}")


@app.command("list-bindings")
def list_bindings(
    tenant_id: Annotated[str | None, typer.Option(help="Only this tenant's numbers.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List bound numbers with their connection state and health."""

    async def work(context: EngineContext) -> list[InstanceItem]:
        async def load(session: AsyncSession) -> list[InstanceItem]:
            instances = await instances_service.list_instances(session, tenant_id)
            return [InstanceItem.of(instance, utcnow()) for instance in instances]

        return await in_session(context, load)

    items = run_engine(work)
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
        return
    table = Table("id", "provider", "name", "number", "connection", "status", "health", "sent today")
    for item in items:
        table.add_row(
            item.id,
            item.provider,
            item.name,
            item.display_number,
            item.connection_state,
            item.status,
            f"{item.health_score:.0f}",
            str(item.msgs_sent_today),
        )
    stdout.print(table)


def _set_status(instance_id: str, status: InstanceStatus) -> InstanceItem:
    async def work(context: EngineContext) -> InstanceItem:
        resolved = await InstanceResolver.for_context(context).by_id(instance_id)
        if resolved is None:
            raise NotFound(f"instance {instance_id} not found")

        async def change(session: AsyncSession) -> InstanceItem:
            instance = await instances_service.set_instance_status(
                session, resolved.tenant_id, instance_id, status
            )
            return InstanceItem.of(instance, utcnow())

        return await in_session(context, change)

    return run_engine(work)


@app.command("pause-instance")
def pause_instance(
    instance_id: Annotated[str, typer.Argument(help="The instance to pause.")], as_json: JsonOption = False
) -> None:
    """Stop sending through an instance until it is resumed."""
    item = _set_status(instance_id, InstanceStatus.PAUSED)
    if as_json:
        print_json(item.model_dump(mode="json"))
        return
    stdout.print(f"instance {item.id} ({item.display_number}) is {item.status}")


@app.command("resume-instance")
def resume_instance(
    instance_id: Annotated[str, typer.Argument(help="The instance to resume.")], as_json: JsonOption = False
) -> None:
    """Send through an instance again, e.g. once the provider's refusal that paused it is fixed."""
    item = _set_status(instance_id, InstanceStatus.ACTIVE)
    if as_json:
        print_json(item.model_dump(mode="json"))
        return
    stdout.print(f"instance {item.id} ({item.display_number}) is {item.status}")


@app.command("list-conversations")
def list_conversations(
    tenant_id: Annotated[str, typer.Option()],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List a tenant's conversations, most recent first."""

    async def work(context: EngineContext) -> list[dict[str, Any]]:
        async def load(session: AsyncSession) -> list[dict[str, Any]]:
            await tenancy_service.get_tenant(session, tenant_id)
            page = await inbox_service.list_conversations(session, tenant_id, limit=limit)
            return [item.model_dump(mode="json") for item in page.items]

        return await in_session(context, load)

    items = run_engine(work)
    if as_json:
        print_json(items)
        return
    table = Table("id", "contact", "name", "status", "unread", "last message")
    for item in items:
        contact = item["contact"]
        opted = " (opted out)" if contact["opted_out"] else ""
        table.add_row(
            item["id"],
            contact["phone"] + opted,
            contact["name"] or "",
            item["status"],
            str(item["unread_count"]),
            item["last_message_at"] or "",
        )
    stdout.print(table)


@app.command("stream-info")
def stream_info(as_json: JsonOption = False) -> None:
    """Length and pending entries of every stream, and the DLQ."""

    async def work(context: EngineContext) -> list[dict[str, Any]]:
        names = context.names
        streams = [names.inbound, names.outbound, names.events, names.materials, names.dlq]
        infos = [await context.streams.info(stream) for stream in streams]
        return [
            {
                "stream": info.stream,
                "length": info.length,
                "groups": [
                    {"name": g.name, "pending": g.pending, "consumers": g.consumers, "lag": g.lag}
                    for g in info.groups
                ],
            }
            for info in infos
        ]

    infos = run_engine(work)
    if as_json:
        print_json(infos)
        return
    table = Table("stream", "length", "group", "pending", "consumers", "lag")
    for info in infos:
        groups = info["groups"] or [{"name": "-", "pending": "", "consumers": "", "lag": ""}]
        for group in groups:
            table.add_row(
                info["stream"],
                str(info["length"]),
                group["name"],
                str(group["pending"]),
                str(group["consumers"]),
                "" if group["lag"] is None else str(group["lag"]),
            )
    stdout.print(table)


@app.command("replay-dlq")
def replay_dlq(
    limit: Annotated[int | None, typer.Option(help="Replay at most this many entries.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Move dead-lettered entries back onto the streams they came from."""

    async def work(context: EngineContext) -> int:
        return await context.streams.replay_dlq(limit)

    moved = run_engine(work)
    if as_json:
        print_json({"replayed": moved})
    else:
        stdout.print(f"replayed {moved} entr{'y' if moved == 1 else 'ies'}")


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Migrations run on every start; their INFO lines are noise once the schema is current.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request's URL at INFO, and webhook URLs carry per-instance secrets.
    logging.getLogger("httpx").setLevel(logging.WARNING)


async def _ensure_demo(context: EngineContext) -> None:
    """Create the demo tenant, login and simulator number once, and print how to use them."""
    from messaging_whatsapp.demo import ensure_demo_tenant

    demo = await ensure_demo_tenant(context)
    login_body = json.dumps({"email": demo.email, "password": demo.password})
    stderr.print(
        f"\n[bold]demo tenant[/bold] {demo.tenant_id}\n"
        f"  login:     {demo.email} / {demo.password}\n"
        f"  token:     curl -s -X POST {context.settings.public_url}/api/v1/auth/login "
        f"-H 'content-type: application/json' -d '{login_body}'\n"
        f"  simulator: instance {demo.instance_id}, webhook {demo.webhook_url}\n",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def serve(
    role: Annotated[str, typer.Option(help="all (API, webhook and workers), api or webhook.")] = "all",
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="Create a demo tenant and print its login.")] = False,
    workers: Annotated[int, typer.Option(help="HTTP worker processes (api/webhook roles).")] = 1,
) -> None:
    """Run the HTTP server (and, for role all, the workers in process)."""
    import uvicorn

    from messaging_whatsapp.api.app import Role

    try:
        server_role = Role(role)
    except ValueError:
        raise fail(f"--role must be one of {', '.join(r.value for r in Role)}") from None
    if workers > 1 and server_role is Role.ALL:
        raise fail("--workers > 1 needs --role api or webhook (run `worker` processes for the rest)")
    settings = get_settings()
    _configure_logging(settings)

    async def prepare(context: EngineContext) -> None:
        if demo:
            await _ensure_demo(context)

    run_engine(prepare)
    stderr.print(f"messaging-whatsapp ({server_role.value}) on http://{host}:{port}  docs: /docs")
    if workers > 1:
        factory = f"messaging_whatsapp.api.asgi:{server_role.value}_app"
        uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, log_level="warning")
        return
    from messaging_whatsapp.api.app import create_app

    uvicorn.run(
        create_app(settings, server_role), host=host, port=port, log_level="warning", access_log=False
    )


WORKER_ROLES = ("all", "inbound", "sender", "dispatcher", "scheduler")


@app.command()
def worker(
    role: Annotated[
        str,
        typer.Option(
            help="all (inbound, sender, campaign dispatcher and scheduler), inbound, sender, dispatcher "
            "or scheduler."
        ),
    ] = "all",
) -> None:
    """Run workers until interrupted (run as many as you like, on any host)."""
    if role not in WORKER_ROLES:
        raise fail(f"--role must be one of {', '.join(WORKER_ROLES)}")
    _run_workers(role)


@app.command()
def scheduler() -> None:
    """Run the time-driven work: campaigns (scheduled starts and their dispatch) and closing idle
    tickets. Several may run."""
    _run_workers("dispatcher", "scheduler", label="scheduler")


def _run_workers(*roles: str, label: str | None = None) -> None:
    settings = get_settings()
    _configure_logging(settings)
    wanted = set(WORKER_ROLES[1:]) if "all" in roles else set(roles)

    async def work(context: EngineContext) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        settle_garbage_collector()
        runners = []
        if "inbound" in wanted:
            runners.append(run_inbound_workers(context, stop))
        if "sender" in wanted:
            runners.append(Sender(context).run(stop))
        if "dispatcher" in wanted:
            runners.append(Dispatcher(context).run(stop))
        if "scheduler" in wanted:
            runners.append(Scheduler(context).run(stop))
        stderr.print(f"{label or roles[0]} worker running; Ctrl-C to stop")
        await asyncio.gather(*runners)

    run_engine(work)


# --------------------------------------------------------------------------------------------------
# Sending from the terminal


FINAL_STATUSES = frozenset({DeliveryStatus.READ.value, DeliveryStatus.FAILED.value})
SETTLED_AFTER = 3.0


async def _tenant_for(session: AsyncSession, tenant_id: str | None, instance_id: str | None) -> str:
    """The tenant named, the instance's tenant, or the only tenant there is."""
    if tenant_id:
        return tenant_id
    if instance_id:
        instance = await session.get(WhatsAppInstance, instance_id)
        if instance is None:
            raise NotFound(f"instance {instance_id} not found")
        return instance.tenant_id
    tenants = list((await session.scalars(select(Tenant.id).limit(2))).all())
    if len(tenants) != 1:
        raise InvalidInput("say which tenant with --tenant-id (or which number with --instance)")
    return tenants[0]


async def _queue(context: EngineContext, tenant_id: str | None, request: SendMessageRequest) -> Message:
    async with context.sessions() as session, session.begin():
        tenant = await _tenant_for(session, tenant_id, request.instance_id)
        queued = await sending_service.queue_message(
            session, tenant, request, idempotency_key=None, sender_type=SenderType.SYSTEM, now=utcnow()
        )
    await offer_messages(context, [(queued.message.id, queued.message.tenant_id)])
    return queued.message


async def _statuses(context: EngineContext, message_ids: list[str]) -> dict[str, Message]:
    async with context.sessions() as session:
        rows = await session.scalars(select(Message).where(Message.id.in_(message_ids)))
        return {row.id: row for row in rows}


@app.command("send-test")
def send_test(
    to: Annotated[str, typer.Option(help="The recipient's phone, E.164 (+55...).")],
    text: Annotated[str, typer.Option(help="The message.")],
    instance: Annotated[
        str | None, typer.Option(help="Instance id (default: the best that can send).")
    ] = None,
    tenant_id: Annotated[str | None, typer.Option(help="Needed when there are several tenants.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to follow the message's receipts.")] = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Send one text message and follow it to sent, delivered, read or failed."""
    try:
        request = SendMessageRequest(to=to, text=text, instance_id=instance)
    except ValidationError as exc:
        raise fail(exc.errors()[0]["msg"]) from None

    async def work(context: EngineContext) -> MessageItem:
        message = await _queue(context, tenant_id, request)
        if not as_json:
            stderr.print(f"queued {message.id} to {to}; following its receipts (Ctrl-C to stop)")
        deadline = time.monotonic() + wait
        last = message.status
        while time.monotonic() < deadline:
            current = (await _statuses(context, [message.id]))[message.id]
            if current.status != last and not as_json:
                stdout.print(
                    f"  {current.status}"
                    + (f" ({current.error_code}: {current.error_title})" if current.error_code else "")
                )
            last = current.status
            if last in FINAL_STATUSES:
                break
            await asyncio.sleep(0.2)
        if last == DeliveryStatus.QUEUED.value and not as_json:
            stderr.print("still queued: is a sender running (`serve` or `worker --role sender`)?")
        return inbox_service.message_item(current)

    item = run_engine(work)
    if as_json:
        print_json(item.model_dump(mode="json"))


@app.command("simulate-inbound")
def simulate_inbound(
    instance_id: Annotated[str, typer.Option(help="A simulator instance.")],
    from_: Annotated[str, typer.Option("--from", help="The customer's phone, E.164 (+55...).")],
    text: Annotated[str, typer.Option(help="What the customer writes.")],
    name: Annotated[str | None, typer.Option(help="The customer's profile name.")] = None,
) -> None:
    """Post a customer's message, signed, through the public webhook, as a real one would arrive."""
    try:
        phone = canonical_phone(from_)
    except InvalidPhone as exc:
        raise fail(str(exc)) from None

    async def work(context: EngineContext) -> str:
        resolver = InstanceResolver.for_context(context)
        instance = await resolver.by_id(instance_id)
        if instance is None or instance.provider is not ProviderName.SIMULATOR:
            raise NotFound(f"no simulator instance {instance_id}")
        simulator = Simulator(context.settings, resolver)
        try:
            return await simulator.post_inbound(instance, phone, text, name, raise_on_failure=True)
        finally:
            await simulator.close()

    message_id = run_engine(work)
    stdout.print(f"posted {message_id} from {phone} to {get_settings().public_url}")


@app.command()
def demo(
    messages: Annotated[int, typer.Option(help="How many messages to send.", min=1, max=60)] = 9,
    wait: Annotated[float, typer.Option(help="Seconds to follow the receipts.")] = 30.0,
) -> None:
    """Show the engine end to end: three simulated numbers send, receipts come back live."""
    settings = get_settings()
    _configure_logging(settings)

    async def work(context: EngineContext) -> None:
        from messaging_whatsapp.demo import ensure_demo_tenant

        tenant = await ensure_demo_tenant(context)
        async with _engine_reachable(settings):
            ids = []
            for index in range(messages):
                request = SendMessageRequest(
                    to=f"+55119876500{index:02d}",
                    text=f"Olá! Mensagem de demonstração {index + 1}",
                    instance_id=tenant.instance_ids[index % len(tenant.instance_ids)],
                )
                ids.append((await _queue(context, tenant.tenant_id, request)).id)
            await _follow(context, ids, wait)

    run_engine(work)


@contextlib.asynccontextmanager
async def _engine_reachable(settings: Settings) -> AsyncIterator[None]:
    """Use the engine at PUBLIC_URL, or run one in this process for as long as needed."""
    import httpx
    import uvicorn

    from messaging_whatsapp.api.app import Role, create_app

    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            (await client.get(f"{settings.public_url}/healthz")).raise_for_status()
        stderr.print(f"using the engine at {settings.public_url}")
        yield
        return
    except httpx.HTTPError:
        pass
    address = urlsplit(settings.public_url)
    config = uvicorn.Config(
        create_app(settings, Role.ALL),
        host=address.hostname or "127.0.0.1",
        port=address.port or 80,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise fail(f"could not start an engine on {settings.public_url}")
        await asyncio.sleep(0.05)
    stderr.print(f"started an engine on {settings.public_url} for the demo")
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def _follow(context: EngineContext, message_ids: list[str], wait: float) -> None:
    """A live table of the messages' statuses until they settle (no change for a while) or time runs out."""
    deadline = time.monotonic() + wait
    last_change = time.monotonic()
    seen: dict[str, str] = {}
    with Live(console=stdout, refresh_per_second=8) as live:
        while time.monotonic() < deadline:
            rows = await _statuses(context, message_ids)
            live.update(_status_table([rows[i] for i in message_ids if i in rows]))
            current = {row.id: row.status for row in rows.values()}
            if current != seen:
                seen, last_change = current, time.monotonic()
            if all(status in FINAL_STATUSES for status in current.values()):
                return
            # Not every message is read: once nothing has moved for a while, the demo is over.
            unsent = DeliveryStatus.QUEUED.value in current.values()
            if not unsent and time.monotonic() - last_change > SETTLED_AFTER:
                return
            await asyncio.sleep(0.15)


def _status_table(rows: list[Message]) -> Table:
    table = Table("message", "instance", "status", "sent", "delivered", "read", "error")
    colours = {"queued": "dim", "sent": "cyan", "delivered": "green", "read": "bold green", "failed": "red"}
    for row in rows:
        table.add_row(
            row.id[-8:],
            row.instance_id[-8:],
            f"[{colours.get(row.status, '')}]{row.status}[/]",
            _clock(row.sent_at),
            _clock(row.delivered_at),
            _clock(row.read_at),
            row.error_code or "",
        )
    return table


def _clock(at: datetime | None) -> str:
    return at.strftime("%H:%M:%S") if at else ""


register_gateway_commands(app)
register_campaign_commands(app)


def main() -> None:
    """Entry point of the console script."""
    app()


if __name__ == "__main__":
    main()
