"""Messages from the terminal: `list-conversations`, `send-test` (following its receipts) and
`simulate-inbound` (a customer's message through the public webhook)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.cli.support import (
    JsonOption,
    fail,
    find_instance,
    in_session,
    print_json,
    print_table,
    run_engine,
    stderr,
    stdout,
    tenant_or_only_one,
)
from messaging_whatsapp.cli.support import table as support_table
from messaging_whatsapp.config import get_settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.inbox import service as inbox_service
from messaging_whatsapp.inbox.models import Message, SenderType
from messaging_whatsapp.instances.resolver import InstanceResolver
from messaging_whatsapp.outbox.service import relay_outbox, write_outbox
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.events import DeliveryStatus
from messaging_whatsapp.sending import service as sending_service
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.sending.schemas import QueuedMessageItem, SendMessageRequest
from messaging_whatsapp.sending.submissions import QueuedMessage, queued_events
from messaging_whatsapp.simulator.service import Simulator
from messaging_whatsapp.tenancy import service as tenancy_service


def list_conversations(
    tenant_id: Annotated[str | None, typer.Option(help="Needed when there are several tenants.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List a tenant's conversations, most recent first."""

    async def work(context: EngineContext) -> list[dict[str, Any]]:
        async def load(session: AsyncSession) -> list[dict[str, Any]]:
            tenant = await tenant_or_only_one(session, tenant_id)
            await tenancy_service.get_tenant(session, tenant)
            page = await inbox_service.list_conversations(session, tenant, limit=limit)
            return [item.model_dump(mode="json") for item in page.items]

        return await in_session(context, load)

    items = run_engine(work)
    if as_json:
        print_json(items)
        return
    table = support_table("id", "contact", "name", "status", "unread", "last message")
    for item in items:
        contact = item["contact"]
        opted = " (opted out)" if contact["opted_out"] else ""
        table.add_row(
            item["id"],
            (contact["phone"] or contact["bsuid"] or contact["lid"] or "") + opted,
            contact["name"] or "",
            item["status"],
            str(item["unread_count"]),
            item["last_message_at"] or "",
        )
    print_table(table)


# A message in one of these moves no further.
FINAL_STATUSES = frozenset({DeliveryStatus.READ.value, DeliveryStatus.FAILED.value})


async def queue_text(
    context: EngineContext, tenant_id: str | None, request: SendMessageRequest
) -> QueuedMessage:
    """Queue a message as the system would (every rule applies, `to` read with the tenant's
    country) and offer it to the senders; the request's instance may be named by its id or name."""
    async with context.sessions() as session, session.begin():
        if request.instance_id:
            instance = await find_instance(session, request.instance_id, tenant_id)
            tenant = instance.tenant_id
            request = request.model_copy(update={"instance_id": instance.id})
        else:
            tenant = await tenant_or_only_one(
                session,
                tenant_id,
                "there are several tenants: say which with --tenant-id (or which number with --instance)",
            )
        queued = await sending_service.queue_message(
            session, tenant, request, idempotency_key=None, sender_type=SenderType.SYSTEM, now=utcnow()
        )
        outbox = await write_outbox(session, queued_events([queued]), context.names.events)
    await relay_outbox(context, outbox)
    await offer_messages(context, [(queued.message.id, queued.message.tenant_id)])
    return queued


async def message_statuses(context: EngineContext, message_ids: list[str]) -> dict[str, Message]:
    """The messages as stored now, by id."""
    async with context.sessions() as session:
        rows = await session.scalars(select(Message).where(Message.id.in_(message_ids)))
        return {row.id: row for row in rows}


def send_test(
    to: Annotated[
        str,
        typer.Option(help="The recipient's phone: +CC..., or national, a number of the tenant's country."),
    ],
    text: Annotated[str, typer.Option(help="The message.")],
    instance: Annotated[
        str | None, typer.Option(help="Instance id or name (default: the best that can send).")
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

    async def work(context: EngineContext) -> QueuedMessageItem:
        queued = await queue_text(context, tenant_id, request)
        message = queued.message
        if not as_json:
            stderr.print(f"queued {message.id} to {queued.to}; following its receipts (Ctrl-C to stop)")
        deadline = time.monotonic() + wait
        last = message.status
        while time.monotonic() < deadline:
            current = (await message_statuses(context, [message.id]))[message.id]
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
        return QueuedMessageItem(**dict(inbox_service.message_item(current)), to=queued.to)

    item = run_engine(work)
    if as_json:
        print_json(item.model_dump(mode="json"))


def simulate_inbound(
    instance_id: Annotated[str, typer.Option(help="A simulator instance's id or name.")],
    from_: Annotated[
        str,
        typer.Option("--from", help="The customer's phone: +CC..., or national, of the tenant's country."),
    ],
    text: Annotated[str, typer.Option(help="What the customer writes.")],
    name: Annotated[str | None, typer.Option(help="The customer's profile name.")] = None,
) -> None:
    """Post a customer's message, signed, through the public webhook, as a real one would arrive."""

    async def work(context: EngineContext) -> tuple[str, str]:
        async with context.sessions() as session:
            found = await find_instance(session, instance_id)
        resolver = InstanceResolver.for_context(context)
        instance = await resolver.by_id(found.id)
        if instance is None or instance.provider is not ProviderName.SIMULATOR:
            raise NotFound(f"no simulator instance {instance_id}")
        phone = await in_session(
            context, lambda s: tenancy_service.tenant_phone(s, instance.tenant_id, from_)
        )
        simulator = Simulator(context.settings, resolver)
        try:
            message_id = await simulator.post_inbound(instance, phone, text, name, raise_on_failure=True)
        finally:
            await simulator.close()
        return message_id, phone

    message_id, phone = run_engine(work)
    stdout.print(f"posted {message_id} from {phone} to {get_settings().public_url}")
